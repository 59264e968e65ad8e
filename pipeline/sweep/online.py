"""W&B online: the sweep on W&B's server, agents on this machine, and the line for other machines.

Used when W&B is online (`WANDB_MODE` not offline/disabled) and logged in (an API key from `wandb
login` or WANDB_API_KEY), unless `--local`. The sweep sent to W&B is the sweep directory's
sweep.yaml (the file with the command-line overrides folded into its command) plus
`--output_dir=<sweep dir>/runs`, so runs land in the same place on every machine (relative to where
the agent runs), and `--max-points` as its run_cap. The sweep's id is kept in
`<sweep dir>/wandb_sweep.json`, so running the same command again (or `--resume DIR`) starts agents
for the same W&B sweep instead of creating another. A new sweep also gets its W&B workspace
(`ddsweep dashboard`: curves against width per noise level), printed as `W&B dashboard: URL`.

Agents run as `python -m wandb agent ENTITY/PROJECT/ID` with this environment's bin directory first
on PATH, so the sweep's `ddsweep` command is this installation's.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from subprocess import Popen

from ddsweep.pipeline.sweep import state as st
from ddsweep.pipeline.sweep.local import PROJECT_ROOT, check_sweep_dir, write_sweep_file
from ddsweep.pipeline.sweep.spec import SweepSpec
from ddsweep.pipeline.sweep.wandb_project import SWEEP_ID_FILE, is_online, project_entity  # noqa: F401 - re-exported

def wandb_config(spec: SweepSpec, sweep_dir: Path, max_points: int | None, fuse: bool = True) -> dict:
    """The sweep as W&B's server runs it: run directories under this sweep directory, and (`fuse`)
    the noise rates of a grid as one fused group per agent run (ddsweep.pipeline.sweep.fuse)."""
    from ddsweep.pipeline.sweep.fuse import fused_wandb_config

    config = spec.effective()
    if fuse:
        config = fused_wandb_config(config, spec)
    config["command"] = spec.command + [f"--output_dir={sweep_dir / 'runs'}"]
    if max_points is not None:
        config["run_cap"] = min(config.get("run_cap", max_points), max_points)
    return config


def create_sweep(spec: SweepSpec, sweep_dir: Path, max_points: int | None = None, fuse: bool = True) -> str:
    """ENTITY/PROJECT/ID of this directory's W&B sweep, created on first use."""
    check_sweep_dir(spec, sweep_dir)
    saved = st.read_json(sweep_dir / SWEEP_ID_FILE)
    if saved and saved.get("sweep"):
        return saved["sweep"]
    import wandb

    project, entity = project_entity(spec)
    sweep_id = wandb.sweep(wandb_config(spec, sweep_dir, max_points, fuse), entity=entity, project=project)
    path = f"{entity or default_entity()}/{project}/{sweep_id}"
    write_sweep_file(spec, sweep_dir)
    st.write_state(sweep_dir / SWEEP_ID_FILE, {"sweep": path, "file": spec.name})
    publish_dashboard(sweep_dir)
    return path


def publish_dashboard(sweep_dir: Path) -> None:
    """The new sweep's W&B workspace (`ddsweep dashboard`); a failure is one warning line."""
    from ddsweep.pipeline.sweep.dashboard import after_sweep_created

    after_sweep_created(sweep_dir)


def default_entity() -> str:
    import wandb

    return wandb.Api().default_entity


def agent_command(path: str) -> list[str]:
    return [sys.executable, "-m", "wandb", "agent", path]


def agent_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run(spec: SweepSpec, sweep_dir: Path, *, agents: int = 1, max_points: int | None = None, fuse: bool = True,
        out=None) -> int:
    """Create (or reuse) the W&B sweep, print the agent line, and run `agents` agents here."""
    out = out or sys.stdout
    path = create_sweep(spec, sweep_dir, max_points, fuse)
    print(f"W&B sweep {path} ({spec.name} -> {sweep_dir}). Run more agents on other machines with:\n"
          f"  wandb agent {path}", file=out, flush=True)
    return launch_agents(path, agents)


def launch_agents(path: str, count: int) -> int:
    procs = [Popen(agent_command(path), env=agent_env()) for _ in range(count)]
    codes = []
    for proc in procs:
        while True:
            try:
                codes.append(proc.wait())
                break
            except KeyboardInterrupt:  # the agents got Ctrl-C too; wait for them to stop their runs
                continue
    return 0 if all(c == 0 for c in codes) else 1


def run_agent(path: str) -> int:
    """One agent in the foreground: what a SLURM job runs online."""
    return subprocess.run(agent_command(path), env=agent_env()).returncode
