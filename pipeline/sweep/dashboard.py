"""`ddsweep dashboard`: a sweep's W&B workspace, so the project opens on its double descent.

    target = resolve_target("runs/demo")       # a sweep directory, or a W&B sweep ENTITY/PROJECT/ID
    spec = dashboard_spec(target)              # plain data (JSON): runs, grouping, sections, panels
    workspace = to_workspace(spec, "entity")   # W&B's `wandb_workspaces` objects; .save() publishes

The spec is ours and plain so that it can be written offline and pushed later unchanged:
`<sweep dir>/dashboard.json`, then `ddsweep dashboard DIR --push`. Its panels name W&B keys as
`config:<dotted config key>`, `summary:<summary key>` (a run's final values) or history metrics:

    double descent     test/error (final and best epoch) and train/error against model.width
    regions and seeds  regions/<family>/mean, regions1d/mean, repro/* against model.width
    decision planes    planes/<family>_<i> and planes/<family>_<i>_seeds, by epoch
    training curves    test/error, train/error, train/loss against epoch

Against width the panels are scatter plots (a point per run, log width axis): W&B's line plots
draw a run's history, and a run has a single width. The runs are the sweep's (its W&B sweep, or
for a local sweep its runs directory, `output_dir`), grouped by `data.noise.rate`.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ddsweep.errors import ConfigError, OneLineParser, UserError
from ddsweep.pipeline.store.tracking import STEP_METRIC, has_api_key, wandb_mode, warn

SPEC_FILE = "dashboard.json"
FORMAT = "ddsweep-dashboard/1"
WIDTH = "model.width"
NOISE = "data.noise.rate"
MAX_POINTS_READ = 256  # points whose configs decide the panels (families, pictures, seeds)
DEFAULT_MAX_RUNS = 100  # runs per panel when the sweep's size is unknown (W&B's own default is 10)
# A W&B sweep path: entity and project names, then the 8-character sweep id W&B gives.
SWEEP_PATH = re.compile(r"^([\w.-]+)/([\w.-]+)/([a-z0-9]{8})$")


@dataclass
class Target:
    """What the dashboard shows: where its runs are and what they log."""

    name: str
    project: str
    entity: str | None = None
    sweep_id: str | None = None  # the W&B sweep, when there is one
    runs_dir: str | None = None  # a local sweep's runs: their config's output_dir
    sweep_dir: Path | None = None
    families: list = field(default_factory=lambda: ["train", "test"])
    drawn: int = 2  # pictures per family
    regions1d: bool = True
    seeds: int = 2  # the most seeds in one run: repro/* and the *_seeds pictures need two
    points: int | None = None


# ----------------------------------------------------------------------------- what to show

def resolve_target(arg: str) -> Target:
    """A sweep directory (with its sweep.yaml) or a W&B sweep `ENTITY/PROJECT/ID`."""
    path = Path(arg)
    if path.is_dir():
        return _from_sweep_dir(path)
    if path.exists():
        raise UserError(f"{arg}: not a directory; give a sweep directory or a W&B sweep ENTITY/PROJECT/ID")
    match = SWEEP_PATH.match(arg)
    if match is None:
        raise UserError(f"{arg}: no such sweep directory, and not a W&B sweep ENTITY/PROJECT/ID "
                        "(an 8-character sweep id)")
    entity, project, sweep_id = match.groups()
    return _with_configs(Target(name=f"sweep {sweep_id}", project=project, entity=entity, sweep_id=sweep_id),
                         [_default_config()])


def _from_sweep_dir(sweep_dir: Path) -> Target:
    from ddsweep.pipeline.sweep import state as st
    from ddsweep.pipeline.sweep.wandb_project import SWEEP_ID_FILE, project_entity
    from ddsweep.pipeline.sweep.spec import load_spec

    if not (sweep_dir / st.SWEEP_FILE).is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no {st.SWEEP_FILE}); give the directory "
                        "`ddsweep sweep` wrote (its --output), or a W&B sweep ENTITY/PROJECT/ID")
    spec = load_spec(sweep_dir / st.SWEEP_FILE)
    project, entity = project_entity(spec)
    target = Target(name=sweep_dir.resolve().name, project=project, entity=entity, sweep_dir=sweep_dir)
    saved = (st.read_json(sweep_dir / SWEEP_ID_FILE) or {}).get("sweep")
    if saved:  # ENTITY/PROJECT/ID, as ddsweep.pipeline.sweep.online recorded it
        target.entity, target.project, target.sweep_id = str(saved).split("/", 2)
    else:  # the local engine runs every point with --output_dir=<sweep dir, resolved>/runs
        target.runs_dir = str(sweep_dir.resolve() / "runs")
    configs, target.points = _point_configs(spec)
    return _with_configs(target, configs)


def _point_configs(spec) -> tuple[list, int | None]:
    """The training configs of the sweep's first MAX_POINTS_READ points, and how many points the
    sweep has where it says (a grid, or a run_cap); bayes points come one at a time, so its first
    point stands for all (what the command sets)."""
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.sweep.spec import config_args, expand, make_point

    if spec.method == "bayes":
        points, count = [make_point(spec, 0, {})], spec.config.get("run_cap")
    else:
        try:
            points = expand(spec)
        except UserError:  # random without run_cap: draw a few to see what they log
            points = expand(spec, max_points=MAX_POINTS_READ)
        count = len(points) if spec.method == "grid" or spec.config.get("run_cap") else None
    configs, seen = [], set()
    for point in points[:MAX_POINTS_READ]:
        config_file, pairs = config_args(spec, point)
        if (config_file, tuple(pairs)) in seen:
            continue
        seen.add((config_file, tuple(pairs)))
        try:
            configs.append(load_config(config_file, pairs))
        except ConfigError as err:
            raise UserError(f"{spec.name}: {err}") from None
    return configs, count


def _default_config():
    from ddsweep.pipeline.config import Config

    return Config()


def _with_configs(target: Target, configs: list) -> Target:
    """Families, pictures and seed counts over every config (a family any point measures is shown)."""
    measured = [c for c in configs if c.planes.every_n_epochs > 0]
    target.families = list(dict.fromkeys(f for c in measured for f in c.planes.families))
    target.drawn = max((c.planes.draw for c in measured if c.planes.draw_every_n_epochs > 0), default=0)
    target.regions1d = any(c.regions1d.pairs > 0 for c in measured)
    target.seeds = max(len(c.seeds) for c in configs)
    return target


# ----------------------------------------------------------------------------- the spec (plain data)

def _against_width(metric: str, title: str) -> dict:
    return {"kind": "scatter", "title": f"{title} against width", "x": f"config:{WIDTH}", "y": f"summary:{metric}",
            "log_x": True}


def _against_epoch(metric: str, title: str) -> dict:
    return {"kind": "line", "title": f"{title} against epoch", "x": STEP_METRIC, "y": [metric]}


def dashboard_spec(target: Target) -> dict:
    """The workspace as plain data; every panel key is one the training run logs (ddsweep.pipeline.store.tracking:
    test/error's summaries are test/error.last and test/error.min)."""
    regions = [_against_width(f"regions/{fam}/mean", f"regions per {fam} plane") for fam in target.families]
    if target.regions1d:
        regions.append(_against_width("regions1d/mean", "1-D region count"))
    if target.seeds > 1 and target.families:
        regions += [_against_width("repro/plane_agreement", "plane agreement between seeds"),
                    _against_width("repro/test_disagreement", "test disagreement between seeds")]
    suffixes = ["", "_seeds"] if target.seeds > 1 else [""]
    pictures = [f"planes/{fam}_{i}{s}" for fam in target.families for i in range(target.drawn) for s in suffixes]
    sections = [
        {"name": "Double descent: error against width", "panels": [
            _against_width("test/error.last", "test error (final epoch)"),
            _against_width("train/error", "train error on the labels trained on (final epoch)"),
            _against_width("test/error.min", "test error (best epoch)")]},
        {"name": "Decision regions and seed agreement against width", "panels": regions},
        {"name": "Decision planes", "panels": [
            {"kind": "media", "title": "decision planes (first seed; all seeds side by side)", "keys": pictures,
             "columns": len(suffixes)}] if pictures else []},
        {"name": "Training curves", "panels": [
            _against_epoch("test/error", "test error"), _against_epoch("train/error", "train error"),
            _against_epoch("train/loss", "train loss")]},
    ]
    return {
        "format": FORMAT, "name": f"ddsweep: {target.name}", "entity": target.entity, "project": target.project,
        "sweep_id": target.sweep_id, "runs_dir": target.runs_dir, "group_by": [NOISE], "x_axis": STEP_METRIC,
        "max_runs": max(10, target.points or DEFAULT_MAX_RUNS),
        "sections": [s for s in sections if s["panels"]],
    }


# ----------------------------------------------------------------------------- W&B's objects

def to_workspace(spec: dict, entity: str | None = None):
    """The spec as a `wandb_workspaces` Workspace (nothing is sent until its .save())."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    if spec.get("sweep_id"):
        filters = [ws.Metric("Sweep") == spec["sweep_id"]]
    elif spec.get("runs_dir"):
        filters = [ws.Config("output_dir") == spec["runs_dir"]]
    else:
        filters = []
    sections = [ws.Section(name=s["name"], panels=[_panel(wr, p) for p in s["panels"]], is_open=True)
                for s in spec["sections"]]
    return ws.Workspace(
        entity=entity or spec["entity"], project=spec["project"], name=spec["name"], sections=sections,
        settings=ws.WorkspaceSettings(x_axis=spec["x_axis"], max_runs=spec["max_runs"]),
        runset_settings=ws.RunsetSettings(groupby=[ws.Config(k) for k in spec["group_by"]], filters=filters))


def _panel(wr, panel: dict):
    if panel["kind"] == "scatter":
        return wr.ScatterPlot(title=panel["title"], x=_key(wr, panel["x"]), y=_key(wr, panel["y"]),
                              log_x=panel["log_x"])
    if panel["kind"] == "line":
        return wr.LinePlot(title=panel["title"], x=panel["x"], y=list(panel["y"]))
    if panel["kind"] == "media":  # gallery over the steps (= epochs) on which pictures were drawn
        return wr.MediaBrowser(title=panel["title"], media_keys=list(panel["keys"]), num_columns=panel["columns"],
                               gallery_axis="step")
    raise UserError(f"dashboard spec: unknown panel kind {panel['kind']!r} (scatter, line, media)")


def _key(wr, key: str):
    section, _, name = key.partition(":")
    return wr.Config(name) if section == "config" else wr.SummaryMetric(name)


# ----------------------------------------------------------------------------- writing and pushing

def spec_path(target: Target, out: str | None) -> Path:
    if out:
        return Path(out)
    if target.sweep_dir is not None:
        return target.sweep_dir / SPEC_FILE
    return Path(f"dashboard-{target.sweep_id}.json")


def write_spec(spec: dict, path: Path) -> None:
    from ddsweep.pipeline.store.rundir import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(spec, indent=2) + "\n")


def read_spec(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: no dashboard spec here; write it first with `ddsweep dashboard` "
                        "(without --push)") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable dashboard spec ({err})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise UserError(f"{path}: not a ddsweep dashboard spec (a JSON object with format {FORMAT!r})")
    return spec


def push(spec: dict) -> str:
    """Save the workspace on W&B (online); returns its URL."""
    import wandb

    entity = spec.get("entity") or wandb.Api().default_entity
    return to_workspace(spec, entity).save().url


def push_command(arg: str, out: str | None) -> str:
    return f"ddsweep dashboard {arg} --push" + (f" --out {out}" if out else "")


def after_sweep_created(sweep_dir: Path, out=None) -> None:
    """The dashboard of an online sweep just created. Never fails the sweep: any failure is one
    warning line naming the command to try again."""
    out = out or sys.stdout
    try:
        target = resolve_target(str(sweep_dir))
        spec = dashboard_spec(target)
        write_spec(spec, spec_path(target, None))
        print(f"W&B dashboard: {push(spec)}", file=out, flush=True)
    except Exception as err:  # noqa: BLE001 - the sweep matters more than its dashboard
        warn(f"no W&B dashboard ({type(err).__name__}: {err}); try again with: ddsweep dashboard {sweep_dir}")


# ----------------------------------------------------------------------------- command line

DESCRIPTION = """\
Build the W&B workspace of a sweep: its runs grouped by data.noise.rate; test and train error,
region counts and seed agreement against model.width (log axis); the decision-plane pictures;
and the training curves against epoch.

Online (logged in to W&B, not WANDB_MODE=offline) it saves the workspace on W&B and prints its URL.
Offline (or with --offline) it writes the same workspace as JSON (DIR/dashboard.json) and prints
the command that pushes it later; nothing goes over the network."""

EPILOG = """\
examples:
  ddsweep dashboard runs/demo               # online: the workspace's URL; offline: runs/demo/dashboard.json
  ddsweep dashboard runs/demo --offline     # only write the JSON
  ddsweep dashboard runs/demo --push        # push the JSON written earlier
  ddsweep dashboard lab/ddsweep/abc123xy    # a W&B sweep by its path"""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ddsweep dashboard", description=DESCRIPTION, epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("sweep", metavar="SWEEP_DIR_OR_ID",
                   help="a sweep directory (what `ddsweep sweep` wrote) or a W&B sweep ENTITY/PROJECT/ID")
    p.add_argument("--offline", action="store_true", help="write the JSON only, even when W&B is online")
    p.add_argument("--push", action="store_true", help="push the JSON written earlier to W&B, unchanged")
    p.add_argument("--out", metavar="FILE",
                   help="the JSON file (default: SWEEP_DIR/dashboard.json, or dashboard-ID.json here)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.push and args.offline:
        raise UserError("--push and --offline: --push sends the JSON to W&B; choose one")
    from ddsweep.pipeline.sweep.wandb_project import is_online

    target = resolve_target(args.sweep)
    path = spec_path(target, args.out)
    online = not args.offline and is_online()
    if args.push:
        if not online:
            raise UserError(f"--push: W&B is offline (mode {wandb_mode()}, API key "
                            f"{'set' if has_api_key() else 'missing'}); run `wandb login` or set WANDB_MODE=online")
        spec = read_spec(path)
    else:
        spec = dashboard_spec(target)
        write_spec(spec, path)
        print(f"dashboard spec: {path}")
        if not online:
            print(f"W&B is offline; push it later with: {push_command(args.sweep, args.out)}")
            return 0
    try:
        url = push(spec)
    except Exception as err:  # noqa: BLE001 - W&B's errors are many; the JSON stays for a later try
        print(f"ddsweep: error: W&B did not save the dashboard ({type(err).__name__}: {err}); "
              f"the spec is in {path}; try again with: {push_command(args.sweep, args.out)}", file=sys.stderr)
        return 1
    print(f"W&B dashboard: {url}")
    return 0
