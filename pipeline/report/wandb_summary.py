"""The report as one W&B run (``job_type="report"``): a table of every run, line plots of the
curves (test error against width per noise level first) and the figures as images, so a
dashboard shows the double-descent curve without manual panel setup."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from ddsweep.pipeline.report import analysis as A
from ddsweep.pipeline.report.collect import Sweep
from ddsweep.pipeline.report.page import FigureEntry
from ddsweep.pipeline.report.tables import group_table, run_table
from ddsweep.pipeline.store.tracking import wandb_mode as _run_wandb_mode

# (metric, W&B key, title, scale): the first entry is the headline double-descent curve.
CURVES = (
    ("test/error", "curves/01_test_error", "test error (%)", 100),
    ("train/error", "curves/02_train_error_noisy", "train error on the labels trained on (%)", 100),
    ("train/error_clean", "curves/03_train_error_clean", "train error on clean labels (%)", 100),
    ("train/memorized", "curves/04_memorized", "mislabeled train points fit (%)", 100),
    ("regions1d/mean", "curves/05_regions1d", "1-D region count", 1),
    ("regions/train/mean", "curves/06_regions_train", "regions per train plane", 1),
    ("regions/test/mean", "curves/07_regions_test", "regions per test plane", 1),
    ("regions/clean_class/mean", "curves/08_regions_clean_class", "regions per clean-class plane", 1),
    ("regions/mislabeled/mean", "curves/09_regions_mislabeled", "regions per mislabeled plane", 1),
    ("repro/plane_agreement", "curves/10_plane_agreement", "plane agreement between seeds (%)", 100),
    ("repro/test_disagreement", "curves/11_test_disagreement", "test disagreement between seeds (%)", 100),
    ("repro/pd_l1", "curves/12_pd_l1", "L1 prediction difference between seeds (%)", 100),
)


def wandb_mode(env: Optional[dict] = None) -> str:
    """The run's rule (ddsweep.pipeline.store.tracking.wandb_mode), with no explicit mode."""
    return _run_wandb_mode(None, env)


def log_summary(sweep: Sweep, layout: A.Layout, entries: list[FigureEntry], out_dir: Path) -> str:
    """Log the summary run; returns where W&B keeps it (its local directory, or its URL online)."""
    import wandb  # heavy: only when asked for

    mode = wandb_mode()
    settings = _wandb_settings(sweep)
    run = wandb.init(
        project=settings.get("project") or "ddsweep", entity=settings.get("entity"),
        group=settings.get("group"), job_type="report", name=f"report-{sweep.root.resolve().name}",
        mode=mode, dir=None if os.environ.get("WANDB_DIR") else str(out_dir),
        config={"runs_dir": str(sweep.root.resolve()), "x_key": layout.x_key,
                "group_keys": layout.group_keys, "n_runs": len(sweep.runs),
                "n_missing": len(sweep.missing)},
        settings=wandb.Settings(silent=True, console="off"),
    )
    try:
        run.log(_payload(wandb, sweep, layout, entries))
        if layout.width_sweep:
            for label, runs in layout.groups.items():
                threshold, peak = A.curve_markers(runs, layout.x_of)
                run.summary[f"interpolation_threshold/{label}"] = threshold
                run.summary[f"test_error_peak/{label}"] = peak[0] if peak else None
        where = run.url if mode == "online" and run.url else str(Path(run.dir).parent)
    finally:
        run.finish()
    return where


def _wandb_settings(sweep: Sweep) -> dict:
    """project / entity / group of the sweep's runs (the first run with a wandb section)."""
    for run in sweep.runs:
        section = run.config.get("wandb")
        if isinstance(section, dict):
            return section
    return {}


def _payload(wandb, sweep: Sweep, layout: A.Layout, entries: list[FigureEntry]) -> dict:
    payload: dict = {}  # insertion order is panel order: the test-error curve first
    for metric, key, title, scale in CURVES:
        xs, ys, keys = [], [], []
        for label, runs in layout.groups.items():
            stats = A.curve(runs, layout.x_of, metric)
            if stats:
                xs.append([s.x for s in stats])
                ys.append([s.mean * scale for s in stats])
                keys.append(label)
        if ys:
            payload[key] = wandb.plot.line_series(xs=xs, ys=ys, keys=keys, xname=layout.x_label,
                                                  title=f"{title} against {layout.x_label}")
    columns, rows = run_table(sweep, layout)
    payload["runs"] = wandb.Table(columns=columns, data=[[_cell(v) for v in row] for row in rows])
    columns, rows = group_table(layout)
    payload["curve_summary"] = wandb.Table(columns=columns, data=[[_cell(v) for v in row] for row in rows])
    for entry in entries:
        png = entry.files.get("png")
        if png is not None:
            payload[f"figures/{entry.name}"] = wandb.Image(str(png), caption=entry.title)
    return payload


def _cell(value: Any) -> Any:
    """Numbers and text as they are, anything nested (a list of seeds) as its text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return str(value)
