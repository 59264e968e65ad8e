"""`ddsweep report RUNS_DIR`: figures, an HTML page and optionally a W&B summary run of a sweep."""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ddsweep.pipeline.store.rundir import atomic_write_text, remove_temporaries
from ddsweep.errors import OneLineParser, UserError
from ddsweep.pipeline.report import analysis as A
from ddsweep.pipeline.report import figures as F
from ddsweep.pipeline.report.collect import Sweep, load_sweep
from ddsweep.pipeline.report.page import FigureEntry, write_page
from ddsweep.pipeline.report.tables import run_table

FORMATS = ("png", "svg", "pdf")
# Figures and notes speak of the plotted runs (finished, with a final test/error); when there are
# none, that is what the report says, not that some other metric is missing.
NOTHING_PLOTTED = "no run is plotted (none has finished with a final test/error)"


@dataclass
class Report:
    index: Path
    sweep: Sweep
    layout: A.Layout
    entries: list  # list[FigureEntry]
    notes: list
    wandb: Optional[str] = None  # where the W&B summary run is, when logged


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ddsweep report",
        description="Turn a sweep's run directories into double-descent figures (PNG/SVG), an HTML page "
                    "and optionally a summary W&B run. Works on partial sweeps and lists what is missing.")
    parser.add_argument("runs_dir", metavar="RUNS_DIR", type=Path,
                        help="a sweep directory (state.json + runs/) or any directory holding run directories")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: RUNS_DIR/report)")
    parser.add_argument("--wandb", action="store_true",
                        help="also log a summary W&B run (mode: WANDB_MODE, else online when logged in, "
                             "else offline)")
    parser.add_argument("--format", default="png,svg",
                        help=f"comma-separated figure formats among {', '.join(FORMATS)} (default: png,svg)")
    return parser


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UserError(f"--format: {text!r} is not allowed; give a comma-separated list of {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = build_report(args.runs_dir, args.out, parse_formats(args.format), args.wandb)
    except UserError as err:
        print(f"ddsweep report: error: {err}", file=sys.stderr)
        return 2
    sweep = report.sweep
    plotted = sum(r.plotted for r in sweep.runs)
    print(f"report: {len(sweep.runs)} runs, {plotted} plotted, {len(sweep.missing)} missing or failed"
          + (" (listed under 'Missing / failed' in the page)" if sweep.missing else ""))
    for note in report.notes:
        print(f"note: {note}")
    if report.wandb:
        print(f"W&B summary run: {report.wandb}")
    print(report.index)
    return 0


def build_report(runs_dir: Path, out: Optional[Path] = None, formats: tuple = ("png", "svg"),
                 use_wandb: bool = False) -> Report:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise UserError(f"RUNS_DIR: {runs_dir} is not a directory")
    out = Path(out) if out is not None else runs_dir / "report"
    _check_out(out, "--out" if out != runs_dir / "report" else "--out (default RUNS_DIR/report)", formats)
    sweep = load_sweep(runs_dir)
    if not sweep.runs:
        raise UserError(f"RUNS_DIR: no run directory (a directory with config.yaml) and no state.json "
                        f"under {runs_dir}")
    _mark_interrupted(sweep)
    out.mkdir(parents=True, exist_ok=True)
    remove_temporaries(out)  # what a killed report left half-written
    layout = A.make_layout(sweep.runs, sweep.param_order)
    notes: list = []
    if not layout.groups:
        notes.append(NOTHING_PLOTTED + ": there is nothing to plot; see 'Missing / failed'")
    entries = draw_figures(layout, out, list(formats), notes)
    _write_csv(out / "runs.csv", *run_table(sweep, layout))
    index = write_page(out, sweep, layout, entries, notes)
    report = Report(index=index, sweep=sweep, layout=layout, entries=entries, notes=notes)
    if use_wandb:
        from ddsweep.pipeline.report.wandb_summary import log_summary
        report.wandb = log_summary(sweep, layout, entries, out)
    return report


def _check_out(out: Path, what: str, formats) -> None:
    """Before any work: OUT can be written, and none of the files a report writes is a directory."""
    from ddsweep.pipeline.store.outputs import check_not_directories, check_output_dir

    check_output_dir(out, what)
    if out.is_dir():
        suffixes = {f".{fmt}" for fmt in formats} | {".html", ".csv"}
        check_not_directories([p for p in out.iterdir() if p.suffix in suffixes], what)


def _mark_interrupted(sweep: Sweep) -> None:
    """A sweep point listed as running (its summary.json or its record says so) that no engine
    runs any more (its engine was killed) is listed as interrupted."""
    from ddsweep.pipeline.sweep.state import interrupted_points

    running = [r for r in sweep.runs if r.status == "running"]
    stale = interrupted_points(sweep.root) if running else {}
    by_dir = {run_dir: why for run_dir, why in stale.values()}
    for run in running:
        why = by_dir.get(run.run_dir.resolve()) if run.run_dir is not None else stale.get(run.name, (None, None))[1]
        if why:
            run.status, run.error = "interrupted", why


def draw_figures(layout: A.Layout, out: Path, formats: list[str], notes: list) -> list[FigureEntry]:
    """Every figure of the report, drawn and saved; an entry with a note for each one that can't be."""
    x = layout.x_label
    runs = [r for group in layout.groups.values() for r in group]
    band = "line: mean over seeds, band: ± 1 sample std over seeds (per-seed final values)"
    thr = (f"Dotted verticals: interpolation threshold (smallest {x} whose final train error on the labels "
           f"trained on is ≤ {A.INTERPOLATION_TOL:.0%})." if layout.width_sweep else "")
    entries = []

    def add(name, title, caption, fig, why):
        # Every figure is drawn from the plotted runs only; with none, that is the whole reason.
        entry = FigureEntry(name=name, title=title, caption=caption, note=why if layout.groups else NOTHING_PLOTTED)
        if fig is not None:
            entry.files = F.save(fig, out, name, formats)
        entries.append(entry)

    add("errors", f"Test and train error against {x}",
        f"Final errors (%) against {x}, one curve per {_groups_word(layout)}; {band}. Left: test error"
        + (f", ★ its peak (the highest interior local maximum within a factor {A.PEAK_WINDOW:g} of the "
           "interpolation threshold; no star where a curve has none)" if layout.width_sweep else "")
        + ". Middle: train error on the noisy labels trained on (solid) and on the clean labels (dashed). "
        "Right (with label noise): share of mislabeled train points predicted as their noisy label. " + thr,
        F.error_figure(layout, layout.x_of, x), f"no plotted run has a value of {x}")
    params_of = lambda r: r.value("model/params")  # noqa: E731
    add("errors_vs_params", "Test and train error against parameter count",
        f"As above, with the model's parameter count (model/params) on the x axis; {band}.",
        F.error_figure(layout, params_of, "parameters") if layout.width_sweep else None,
        "no plotted run has model/params" if layout.width_sweep else "only drawn for width sweeps")
    add("regions", f"Decision-region counts against {x}",
        f"Mean number of regions per decision plane for each triplet family (8-connected components per "
        f"class, summed), and the 1-D count along segments between train points; {band}. {thr}",
        F.regions_figure(layout, layout.x_of), "no plotted run has a region count")
    add("agreement", f"Seed-to-seed agreement against {x}",
        "Between the models of each run that differ only in their seeds (mean over seed pairs): plane "
        "agreement (share of plane grid points predicted alike), test disagreement ΔH (share of test "
        f"points predicted differently) and the L1 prediction difference Δ1 = ½‖p₁ − p₂‖₁. {thr}",
        F.agreement_figure(layout, layout.x_of), "no plotted run has repro metrics (they need two or more seeds)")
    metric = A.region_metric(runs)
    gap_fig, r, n = F.gap_figure(layout, metric) if metric else (None, float("nan"), 0)
    if metric is None and runs:
        notes.append("no plotted run has regions1d/mean or regions/train/mean: region count against "
                     "generalization gap is not drawn")
    elif metric is not None and metric != "regions1d/mean":
        notes.append("no plotted run has the 1-D region count: the gap figure uses regions/train/mean")
    r_text = f"Pearson r undefined (n = {n} runs)" if math.isnan(r) else f"Pearson r = {r:.3f} over n = {n} runs"
    add("regions_vs_gap", "Region count against generalization gap",
        f"One point per finished run of the sweep: the final {metric} against the generalization gap "
        f"(train accuracy − test accuracy = test error − train error, percentage points), coloured by curve; "
        + r_text + " (printed on the figure).",
        gap_fig, "no plotted run has both a region count and the train and test errors")
    add("epochwise_test_error", f"Test error by epoch and {x}",
        f"Epoch-wise double descent: test error (%, mean over seeds) of each run at every epoch, one "
        f"panel per {_groups_word(layout)}; grey: no value"
        + ("; dashed: the interpolation threshold's row." if layout.width_sweep else "."),
        F.heatmap_figure(layout, layout.x_of), "no plotted run has metrics.jsonl with test/error")
    key = F.choose_plane(runs)
    why = "no plotted run has plane files (planes/*.npz)"
    add("planes_montage", f"The same decision plane across {x}",
        f"One decision plane ({key[0] + ' #' + str(key[1]) if key else '–'}) at each run's last measured "
        f"epoch, for the first seed: colours are predicted classes, dots the three anchor inputs in "
        f"the colour of their (train) label, ✕ a mislabeled anchor. Rows: {_groups_word(layout)}; at most "
        f"{F.MONTAGE_COLUMNS} values of {x}, evenly spaced.",
        F.width_montage(layout, layout.x_of, key) if key else None, why)
    add("planes_seeds", "The same decision plane for each seed",
        "The plane above for every seed of the runs of one curve (the last: highest noise level of a "
        "width sweep), with a last row marking in black where the seeds predict different classes.",
        F.seed_montage(layout, layout.x_of, key) if key else None,
        why if not key else "no plotted run has planes of two or more seeds")
    return entries


def _groups_word(layout: A.Layout) -> str:
    if not layout.group_keys:
        return "sweep (one curve)"
    names = ["noise level" if k in A.NOISE_KEYS else A.KEY_LABELS.get(k, k) for k in layout.group_keys]
    return " × ".join(dict.fromkeys(names))


def _write_csv(path: Path, columns: list, rows: list) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    atomic_write_text(path, buffer.getvalue())
