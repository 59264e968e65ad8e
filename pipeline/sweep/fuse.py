"""Which sweep points train together as one fused group (ddsweep.pipeline.train.group).

Points whose parameters are equal but for `data.noise.rate` and `seeds` fuse, when the command is
`ddsweep train ... ${args}` and their configs allow it (`group_problem`: `train.fuse_seeds` on,
not 16-mixed). A group runs as one process: the command of its first point plus
`--group=<sweep dir>/args/<first id>.group.json`, the list of every member's run name and fused
values. `ddsweep sweep --no-fuse-points` runs every point alone. Groups never cross shards: a
point belongs to the shard of its group's first point.

W&B agents get the same groups from the sweep W&B runs (`fused_wandb_config`): the fused
parameters become one list-valued value (`data.noise.rate: [[0.0, 0.1, 0.2]]`), so each agent run
is a group, `ddsweep train --data.noise.rate=[0.0,0.1,0.2]`, and each of its runs its own W&B run.
"""
from __future__ import annotations

import copy
import json

from ddsweep.errors import ConfigError
from ddsweep.pipeline.sweep.spec import DDSWEEP, Point, SweepSpec, build_command, config_args

FUSED_PARAMS = ("data.noise.rate", "seeds")


def runs_ddsweep_train(spec: SweepSpec) -> bool:
    """The command is `ddsweep train` with W&B's plain `${args}` (what --group extends)."""
    command = [str(c) for c in spec.command]
    if "${args}" not in command:
        return False
    for i, token in enumerate(command[:-1]):
        if command[i + 1] == "train" and (token == DDSWEEP or token.endswith("/ddsweep")):
            return True
        if token == "-m" and command[i + 1:i + 3] == [DDSWEEP, "train"]:
            return True
    return False


def fused_keys(spec: SweepSpec) -> tuple[str, ...]:
    """The fused parameters that vary in this sweep and that no command-line override fixes."""
    fixed = {arg[2:].split("=", 1)[0] for arg in spec.overrides if arg.startswith("--")}
    return tuple(k for k in FUSED_PARAMS if k in spec.varying() and k not in fixed)


def point_groups(spec: SweepSpec, points: list[Point], enabled: bool = True) -> list[list[Point]]:
    """The points in groups that train as one process, in order of their first point."""
    keys = fused_keys(spec) if enabled and runs_ddsweep_train(spec) else ()
    if not keys:
        return [[p] for p in points]
    groups: dict = {}
    for p in points:
        rest = json.dumps({k: v for k, v in p.params.items() if k not in keys}, sort_keys=True, default=str)
        groups.setdefault(rest, []).append(p)
    out = []
    for members in groups.values():
        out += [members] if len(members) > 1 and _fusable(spec, members) else [[p] for p in members]
    return sorted(out, key=lambda g: g[0].index)


def _fusable(spec: SweepSpec, members: list[Point]) -> bool:
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.train.group import group_problem

    try:
        cfgs = [load_config(*config_args(spec, p)).model_copy(update={"run_name": p.id}) for p in members]
    except ConfigError:
        return False  # validate_points reports it; such points run (and fail) alone
    return group_problem(cfgs) is None


def group_file_text(spec: SweepSpec, members: list[Point]) -> str:
    """The `--group` file of a group: each member's run name and fused values."""
    keys = fused_keys(spec)
    return json.dumps([{"run_name": p.id, **{k: p.params[k] for k in keys if k in p.params}} for p in members],
                      indent=1) + "\n"


def group_command(spec: SweepSpec, members: list[Point], runs_dir: str, group_file) -> list[str]:
    """The argument list of a group: its first point's command, run directories under `runs_dir`."""
    extra = [f"--output_dir={runs_dir}", f"--run_name={members[0].id}"]
    if len(members) > 1:
        extra.append(f"--group={group_file}")
    return build_command(spec, members[0], extra)


def fused_wandb_config(config: dict, spec: SweepSpec) -> dict:
    """A W&B sweep config whose agent runs are fused groups: each fused parameter's values become
    one list value, so the server hands out one run per group. Only `data.noise.rate` is fused
    this way (W&B agent runs cannot name several seed lists); a grid over seeds stays a grid."""
    if not runs_ddsweep_train(spec) or "data.noise.rate" not in fused_keys(spec) or spec.method != "grid":
        return config
    param = spec.parameters["data.noise.rate"]
    values = param.get("values")
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in values):
        return config
    out = copy.deepcopy(config)
    out["parameters"]["data.noise.rate"] = {"value": list(values)}
    return out


def describe(groups: list[list[Point]]) -> str:
    fused = [g for g in groups if len(g) > 1]
    if not fused:
        return ""
    points = sum(len(g) for g in fused)
    return f"{points} points fused into {len(fused)} groups (--no-fuse-points to run each alone)"

