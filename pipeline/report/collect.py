"""Read a sweep's run directories (and its state.json) into plain records.

Nothing here draws or writes: the figures, the page and the W&B summary all read the same
``Sweep`` object. A run directory is any directory holding ``config.yaml`` (DESIGN.md, "Run
directory"); a sweep directory additionally holds ``state.json`` and ``sweep.yaml``, whose points
without a finished run directory are reported as missing.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ddsweep.pipeline.config import dotted

FINISHED = "finished"
# Config sections that say where and how a run was recorded, not what was trained.
NOT_SETTINGS = ("provenance", "wandb", "output_dir", "run_name")
# Directories never searched for runs: W&B's local files, our own output, checkpoints.
SKIP_DIRS = {"wandb", "report", "checkpoints", "planes", "__pycache__"}


@dataclass
class Run:
    """One run directory, or one sweep point that has none yet."""

    name: str  # path relative to the report's RUNS_DIR, or the sweep point id
    run_dir: Optional[Path]
    status: str  # finished | failed | diverged | running | pending | incomplete
    error: Optional[str] = None
    config: dict = field(default_factory=dict)  # nested config.yaml
    settings: dict = field(default_factory=dict)  # flat dotted settings (NOT_SETTINGS left out)
    final: dict = field(default_factory=dict)  # final metric values
    history: list = field(default_factory=list)  # metrics.jsonl records, in order
    epochs_completed: Optional[int] = None
    problems: list = field(default_factory=list)  # what is missing or unreadable

    def value(self, metric: str) -> Optional[float]:
        """Final value of ``metric`` (the mean over seeds for a bare name); None if absent or not finite."""
        return _finite(self.final.get(metric))

    def seed_values(self, metric: str) -> list[float]:
        """Final per-seed values of ``metric`` (``<metric>/seed<N>``), ordered by seed."""
        pattern = re.compile(re.escape(metric) + r"/seed(\d+)$")
        found = []
        for key, value in self.final.items():
            m = pattern.match(key)
            if m and _finite(value) is not None:
                found.append((int(m.group(1)), float(value)))
        return [v for _, v in sorted(found)]

    @property
    def plotted(self) -> bool:
        """Finished with a final test error: the runs that every curve is drawn from."""
        return self.status == FINISHED and self.value("test/error") is not None

    @property
    def seeds(self) -> list:
        return list(self.config.get("seeds") or [])


@dataclass
class Sweep:
    root: Path
    runs: list  # list[Run]: every run directory found, then sweep points without one
    param_order: list = field(default_factory=list)  # swept keys in sweep.yaml order

    @property
    def missing(self) -> list:
        """Runs that are not plotted, each with the reason: not finished, or final metrics missing."""
        out = []
        for run in self.runs:
            if run.plotted:
                continue
            if run.status != FINISHED:
                reason = run.status + (f": {_last_line(run.error)}" if run.error else "")
            else:
                reason = "finished, but no final test/error"
            if run.problems:
                reason += " (" + "; ".join(run.problems) + ")"
            out.append((run, reason))
        return out


def _last_line(error: Any, limit: int = 300) -> str:
    """The message of an error that may be a whole traceback: its last non-empty line, shortened."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else str(error)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _finite(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def flatten(tree: dict) -> dict:
    """Nested config → ``{"model.width": 8, ...}`` without NOT_SETTINGS; lists become tuples so
    values are hashable."""
    top = {k: v for k, v in tree.items() if k not in NOT_SETTINGS}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in dotted(top).items()}


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under ``root`` (``root`` included) holding config.yaml, sorted; a run
    directory's own subdirectories are not searched."""
    found = []
    for here, dirs, files in os.walk(root):
        if "config.yaml" in files:
            found.append(Path(here))
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
    return sorted(found)


def read_run(run_dir: Path, name: str) -> Run:
    run = Run(name=name, run_dir=run_dir, status="incomplete")
    try:
        run.config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        run.problems.append(f"config.yaml unreadable: {err}")
    if not isinstance(run.config, dict):
        run.problems.append("config.yaml is not a mapping")
        run.config = {}
    run.settings = flatten(run.config)
    run.history = _read_jsonl(run_dir / "metrics.jsonl", run.problems)
    for record in run.history:  # the last value seen of every metric
        run.final.update({k: v for k, v in record.items() if k not in ("epoch", "step", "time")})
    if run.history:
        run.epochs_completed = run.history[-1].get("epoch")
    summary = _read_json(run_dir / "summary.json", run.problems)
    if summary is not None:
        run.status = str(summary.get("status") or "incomplete")
        run.error = summary.get("error")
        run.final.update(summary.get("metrics") or {})
        if summary.get("epochs_completed") is not None:
            run.epochs_completed = summary["epochs_completed"]
    return run


def _read_json(path: Path, problems: list) -> Optional[dict]:
    if not path.is_file():
        problems.append(f"no {path.name}")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        problems.append(f"{path.name} unreadable: {err}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name} is not an object")
        return None
    return data


def _read_jsonl(path: Path, problems: list) -> list[dict]:
    """One record per line; a truncated or corrupt line (a run killed mid-write) is skipped."""
    if not path.is_file():
        problems.append("no metrics.jsonl")
        return []
    records, bad = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    if bad:
        problems.append(f"{bad} unreadable line(s) in metrics.jsonl")
    return records


def load_sweep(root: Path) -> Sweep:
    """All runs under ``root``, plus the points of ``root/state.json`` that have no run directory."""
    root = Path(root)
    runs = [read_run(d, d.name if d == root else d.relative_to(root).as_posix()) for d in find_run_dirs(root)]
    by_dir = {r.run_dir.resolve(): r for r in runs}
    for point in _state_points(root):
        run = by_dir.get(_point_dir(root, point))
        state = str(point.get("status") or "pending")
        if run is None:
            params = point.get("params") or {}
            runs.append(Run(name=str(point.get("id", "?")), run_dir=None, status=state,
                            error=point.get("error"), settings=_hashable(params),
                            problems=["no run directory"]))
        elif run.status == "incomplete" and state != FINISHED:
            run.status, run.error = state, run.error or point.get("error")
    return Sweep(root=root, runs=runs, param_order=_param_order(root))


def _state_points(root: Path) -> list[dict]:
    path = root / "state.json"
    if not path.is_file():
        return []
    try:
        points = json.loads(path.read_text()).get("points") or []
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(points, list):
        return []
    # a damaged or hand-edited state.json: only points whose fields have their types are listed
    return [p for p in points if isinstance(p, dict) and isinstance(p.get("run_dir") or "", str)
            and isinstance(p.get("params") or {}, dict)]


def _point_dir(root: Path, point: dict) -> Optional[Path]:
    run_dir = point.get("run_dir")
    if not run_dir:
        return None
    path = Path(run_dir)
    if not path.is_absolute():
        path = root / path if (root / path).exists() else Path.cwd() / path
    return path.resolve()


def _param_order(root: Path) -> list[str]:
    path = root / "sweep.yaml"
    try:
        spec = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return []
    params = spec.get("parameters") if isinstance(spec, dict) else None
    return list(params) if isinstance(params, dict) else []


def _hashable(params: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
