"""The run table and the per-curve summary, as plain columns and rows shared by the HTML page,
runs.csv and the W&B table."""
from __future__ import annotations

from typing import Any

from ddsweep.pipeline.report import analysis as A
from ddsweep.pipeline.report.collect import Sweep

# (metric, column title, scale): errors and agreement in percent, as in the figures.
METRIC_COLUMNS = (
    ("test/error", "test error (%)", 100),
    ("train/error", "train error, noisy labels (%)", 100),
    ("train/error_clean", "train error, clean labels (%)", 100),
    ("train/memorized", "memorized (%)", 100),
    ("test/loss", "test loss", 1),
    ("regions1d/mean", "1-D regions", 1),
    ("regions/train/mean", "regions (train planes)", 1),
    ("regions/test/mean", "regions (test planes)", 1),
    ("repro/plane_agreement", "plane agreement (%)", 100),
    ("repro/test_disagreement", "test disagreement (%)", 100),
    ("model/params", "parameters", 1),
)
CONFIG_COLUMNS = (
    ("model.name", "model"),
    ("model.width", "width"),
    ("data.name", "data"),
)


def run_table(sweep: Sweep, layout: A.Layout) -> tuple[list[str], list[list[Any]]]:
    """One row per run (sweep points without a directory included): name, status, key config,
    the other swept keys, and the final metrics any run has. Values are raw (None when absent)."""
    metrics = [m for m in METRIC_COLUMNS if any(r.value(m[0]) is not None for r in sweep.runs)]
    extra = [k for k in layout.group_keys + ([layout.x_key] if layout.x_key else [])
             if k not in A.NOISE_KEYS and k not in dict(CONFIG_COLUMNS)]
    columns = (["run", "status"] + [title for _, title in CONFIG_COLUMNS]
               + ["noise", "seeds", "epochs"] + [A.KEY_LABELS.get(k, k) for k in extra]
               + [title for _, title, _ in metrics])
    rows = []
    for run in sweep.runs:
        s = run.settings
        configured = s.get("train.epochs")
        epochs = f"{run.epochs_completed if run.epochs_completed is not None else '?'}/{configured or '?'}"
        seeds = s.get("seeds")
        row = [run.name, run.status] + [s.get(k) for k, _ in CONFIG_COLUMNS]
        row += [A.noise_label(run) if "data.noise.rate" in s else None,
                ", ".join(map(str, seeds)) if isinstance(seeds, tuple) else seeds, epochs]
        row += [s.get(k) for k in extra]
        row += [None if run.value(m) is None else run.value(m) * scale for m, _, scale in metrics]
        rows.append(row)
    return columns, rows


def group_table(layout: A.Layout) -> tuple[list[str], list[list[Any]]]:
    """Per curve: runs, the test error at the largest x, and for width sweeps the interpolation
    threshold and the test-error peak."""
    x = layout.x_label
    columns = ["curve", "runs", f"test error at largest {x} (%)"]
    if layout.width_sweep:
        columns += [f"interpolation threshold ({x})", f"test-error peak at ({x})", "peak test error (%)"]
    rows = []
    for label, runs in layout.groups.items():
        test = A.curve(runs, layout.x_of, "test/error")
        row = [label, len(runs), test[-1].mean * 100 if test else None]
        if layout.width_sweep:
            threshold, peak = A.curve_markers(runs, layout.x_of)
            row += [threshold, peak[0] if peak else None, peak[1] * 100 if peak else None]
        rows.append(row)
    return columns, rows


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e7:
            return str(int(value))
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)
