"""The report's figures, drawn with matplotlib's object API (no pyplot, so no global backend state).

Every function takes the runs (already arranged by ``analysis.make_layout``) and returns a
``matplotlib.figure.Figure``, or None when no run has what the figure needs. Errors, agreement
and disagreement are shown in percent everywhere.
"""
from __future__ import annotations

import io

import math
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ddsweep.pipeline.store.rundir import atomic_write_bytes
from ddsweep.pipeline.viz.picture import class_colors
from ddsweep.pipeline.report import analysis as A
from ddsweep.pipeline.report.collect import Run

DPI = 130
MONTAGE_COLUMNS = 8  # at most this many x values in a plane montage
PLANE_FILE = re.compile(r"^(?P<family>.+)_(?P<index>\d+)_e(?P<epoch>\d+)\.npz$")
PLANE_FAMILY_PREFERENCE = ("test", "train", "clean_class", "mislabeled")

XOf = Callable[[Run], Optional[float]]


def save(fig: Figure, out_dir: Path, name: str, formats: list[str]) -> dict:
    """Write ``name.<fmt>`` for each format; returns {fmt: path}."""
    paths = {}
    for fmt in formats:
        path = out_dir / f"{name}.{fmt}"
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=DPI)  # constrained layout already fits the labels
        atomic_write_bytes(path, buffer.getvalue())  # a killed report never leaves half a figure
        paths[fmt] = path
    return paths


# ----------------------------------------------------------------------------- helpers

def group_colors(labels: list[str]) -> dict:
    cmap = colormaps["tab10"] if len(labels) <= 10 else colormaps["viridis"]
    n = max(len(labels) - 1, 1)
    return {lab: cmap(i if len(labels) <= 10 else i / n) for i, lab in enumerate(labels)}


def use_log(xs) -> bool:
    xs = [x for x in xs if x is not None]
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 8


def _x_axis(ax, label: str, log: bool, xs=()) -> None:
    """Label the x axis; tick the values themselves when there are few, else (log axis) 1-2-5
    steps, written as plain numbers."""
    values = sorted({x for x in xs if x is not None})
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if 0 < len(values) <= 12:
        ax.set_xticks(values, [_fmt_x(x) for x in values], rotation=45 if len(values) > 6 else 0)
    elif log:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _fmt_x(v)))
    ax.set_xlabel(f"{label} (log scale)" if log else label)
    ax.grid(True, which="major", alpha=0.3)


def _draw_curve(ax, stats: list, color, scale: float = 1.0, **style):
    if not stats:
        return None
    x = np.array([s.x for s in stats])
    m = np.array([s.mean for s in stats]) * scale
    sd = np.array([s.std for s in stats]) * scale
    line, = ax.plot(x, m, marker="o", ms=3.5, color=color, **style)
    if any(s.n > 1 for s in stats):
        ax.fill_between(x, m - sd, m + sd, color=color, alpha=0.18, lw=0)
    return line


def markers(layout: A.Layout, x_of: XOf) -> dict:
    """Per group: (interpolation threshold x, (peak x, peak test error)), both None unless the
    sweep is over width."""
    if not layout.width_sweep:
        return {label: (None, None) for label in layout.groups}
    return {label: A.curve_markers(runs, x_of) for label, runs in layout.groups.items()}


def _threshold_lines(ax, layout, marks, colors) -> None:
    for label in layout.groups:
        threshold = marks[label][0]
        if threshold is not None:
            ax.axvline(threshold, color=colors[label], ls=":", lw=1.2)


def _group_legend(fig: Figure, ax, title: Optional[str] = None) -> None:
    """The curves' legend below the panels, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ncols = 1 if len(labels) == 1 else (2 if max(map(len, labels)) > 45 else 3)
        fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, len(labels)),
                   fontsize=8, title=title, title_fontsize=8)


def _all_x(layout: A.Layout, x_of: XOf) -> list:
    return [x_of(r) for runs in layout.groups.values() for r in runs]


def _fmt_x(x: float) -> str:
    """Whole numbers below 10,000 exactly (widths, batch sizes), larger ones as 103k or 11.2M."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:.3g}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.3g}k"
    return str(int(x)) if float(x).is_integer() else f"{x:.3g}"


# ----------------------------------------------------------------------------- 1. errors

def error_figure(layout: A.Layout, x_of: XOf, x_label: str) -> Optional[Figure]:
    """Test error | train error (noisy labels solid, clean dashed) | memorization, against x."""
    if not layout.groups or not any(x_of(r) is not None for r in _runs(layout)):
        return None
    has_memo = any(r.value("train/memorized") is not None for r in _runs(layout))
    ncols = 3 if has_memo else 2
    fig = Figure(figsize=(5.2 * ncols, 4.6), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    colors = group_colors(list(layout.groups))
    marks = markers(layout, x_of)
    log = use_log(_all_x(layout, x_of))
    for label, runs in layout.groups.items():
        c = colors[label]
        threshold, peak = marks[label]
        desc = ([f"interpolation threshold {_fmt_x(threshold)}"] if threshold is not None else []) + \
               ([f"test-error peak {_fmt_x(peak[0])}"] if peak is not None else
                ["no test-error peak near it"] if threshold is not None else [])
        legend = label + (f" ({', '.join(desc)})" if desc else "")
        _draw_curve(axes[0], A.curve(runs, x_of, "test/error"), c, 100, label=legend)
        if peak is not None:
            axes[0].plot([peak[0]], [peak[1] * 100], marker="*", ms=15, color=c, mec="black", zorder=5)
        _draw_curve(axes[1], A.curve(runs, x_of, "train/error"), c, 100)
        _draw_curve(axes[1], A.curve(runs, x_of, "train/error_clean"), c, 100, ls="--")
        if has_memo:
            _draw_curve(axes[2], A.curve(runs, x_of, "train/memorized"), c, 100)
    for ax in axes:
        _threshold_lines(ax, layout, marks, colors)
        _x_axis(ax, x_label, log, _all_x(layout, x_of))
    axes[0].set(ylabel="test error (%)", title="Test error")
    axes[1].set(ylabel="train error (%)", title="Train error: noisy labels (solid), clean labels (dashed)")
    axes[1].title.set_fontsize(10)
    styles = [Line2D([], [], color="k", label="on the labels trained on (noisy)"),
              Line2D([], [], color="k", ls="--", label="on the clean labels")]
    if layout.width_sweep:
        axes[1].axhline(A.INTERPOLATION_TOL * 100, color="gray", lw=0.8, ls="-.")
        styles += [Line2D([], [], color="gray", ls="-.", label=f"interpolation tolerance {A.INTERPOLATION_TOL:.0%}"),
                   Line2D([], [], color="k", ls=":", label="interpolation threshold"),
                   Line2D([], [], color="gray", marker="*", ms=10, mec="black", ls="", label="test-error peak")]
    axes[1].legend(handles=styles, fontsize=8)
    if has_memo:
        axes[2].set(ylabel="mislabeled train points fit (%)", title="Memorization of noisy labels")
    _group_legend(fig, axes[0])
    kind = "Double descent: error" if layout.width_sweep else "Test and train error"
    fig.suptitle(f"{kind} against {x_label} (mean ± std over seeds)")
    return fig


def _runs(layout: A.Layout) -> list[Run]:
    return [r for runs in layout.groups.values() for r in runs]


def _curve_panels(layout: A.Layout, x_of: XOf, panels: list, scale: float, what: str, how: str) -> Figure:
    """One panel per (metric, title, y label), one curve per group, threshold lines."""
    fig = Figure(figsize=(4.5 * len(panels), 4.3), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = group_colors(list(layout.groups))
    marks = markers(layout, x_of)
    log = use_log(_all_x(layout, x_of))
    for ax, (metric, title, ylabel) in zip(axes, panels):
        for label, group in layout.groups.items():
            _draw_curve(ax, A.curve(group, x_of, metric), colors[label], scale, label=label)
        _threshold_lines(ax, layout, marks, colors)
        _x_axis(ax, layout.x_label, log, _all_x(layout, x_of))
        ax.set(title=title, ylabel=ylabel)
    _group_legend(fig, axes[0], "dotted: interpolation threshold" if layout.width_sweep else None)
    fig.suptitle(f"{what} against {layout.x_label} ({how})")
    return fig


# ----------------------------------------------------------------------------- 2. regions

def regions_figure(layout: A.Layout, x_of: XOf) -> Optional[Figure]:
    runs = _runs(layout)
    panels = [(f"regions/{f}/mean", f"{f} planes", "regions per plane (mean over planes)")
              for f in A.region_families(runs)]
    if any(r.value("regions1d/mean") is not None for r in runs):
        panels.append(("regions1d/mean", "1-D: segments between train points",
                       "regions per segment (mean over pairs)"))
    if not panels:
        return None
    return _curve_panels(layout, x_of, panels, 1, "Decision-region counts", "mean ± std over seeds")


# ----------------------------------------------------------------------------- 3. agreement

AGREEMENT_PANELS = (
    ("repro/plane_agreement", "Plane agreement", "grid points where seeds agree (%)"),
    ("repro/test_disagreement", "Test-set disagreement ΔH", "test points predicted differently (%)"),
    ("repro/pd_l1", "L1 prediction difference Δ1", "½‖p₁ − p₂‖₁, mean over test (%)"),
)


def agreement_figure(layout: A.Layout, x_of: XOf) -> Optional[Figure]:
    runs = _runs(layout)
    panels = [p for p in AGREEMENT_PANELS if any(r.value(p[0]) is not None for r in runs)]
    if not panels:
        return None
    return _curve_panels(layout, x_of, panels, 100, "Seed-to-seed reproducibility", "mean over seed pairs")


# ----------------------------------------------------------------------------- 4. regions vs gap

def gap_figure(layout: A.Layout, metric: str) -> tuple[Optional[Figure], float, int]:
    """Scatter of the region count against the generalization gap, one point per run, with r and n."""
    xs_all, ys_all = [], []
    fig = Figure(figsize=(7.0, 5.0 + 0.12 * len(layout.groups)), layout="constrained")
    ax = fig.subplots()
    colors = group_colors(list(layout.groups))
    for label, runs in layout.groups.items():
        pts = [(A.generalization_gap(r), r.value(metric)) for r in runs]
        pts = [(g * 100, v) for g, v in pts if g is not None and v is not None]
        if pts:
            g, v = zip(*pts)
            ax.scatter(g, v, color=colors[label], s=28, edgecolor="black", lw=0.4, label=label)
            xs_all += g
            ys_all += v
    r, n = A.pearson(xs_all, ys_all)
    if n == 0:
        return None, r, n
    text = f"Pearson r = {r:.3f}  (n = {n} runs)" if not math.isnan(r) else f"Pearson r undefined (n = {n} runs)"
    ax.text(0.02, 0.97, text, transform=ax.transAxes, va="top", fontsize=11,
            bbox=dict(boxstyle="round", fc="white", ec="gray"))
    ax.set(xlabel="generalization gap: train accuracy − test accuracy (percentage points)",
           ylabel=_region_label(metric), title="Region count against generalization gap (one point per run)")
    ax.grid(True, alpha=0.3)
    if len(layout.groups) > 1:
        _group_legend(fig, ax)
    return fig, r, n


def _region_label(metric: str) -> str:
    if metric == "regions1d/mean":
        return "1-D region count (mean over train pairs)"
    return f"regions per {metric.split('/')[1]} plane (mean)"


# ----------------------------------------------------------------------------- 5. epoch-wise heat map

def heatmap_figure(layout: A.Layout, x_of: XOf) -> Optional[Figure]:
    maps = {label: A.heatmap(runs, x_of) for label, runs in layout.groups.items()}
    maps = {k: v for k, v in maps.items() if v[2].size}
    if not maps:
        return None
    ncols = min(3, len(maps))
    nrows = math.ceil(len(maps) / ncols)
    fig = Figure(figsize=(5.2 * ncols, 3.9 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    vmax = max(np.nanmax(m) for _, _, m in maps.values()) * 100
    marks = markers(layout, x_of)
    mesh = None
    for ax, (label, (xs, epochs, values)) in zip(axes, maps.items()):
        edges = np.concatenate([[epochs[0] - 0.5], (epochs[:-1] + epochs[1:]) / 2, [epochs[-1] + 0.5]])
        rows = np.arange(len(xs) + 1) - 0.5
        mesh = ax.pcolormesh(edges, rows, values * 100, cmap="magma", vmin=0, vmax=vmax,
                             shading="flat", rasterized=True)
        ticks = A.subsample(list(range(len(xs))), 16)
        ax.set_yticks(ticks, [_fmt_x(xs[i]) for i in ticks])
        threshold = marks[label][0]
        if threshold is not None and threshold in xs:
            ax.axhline(list(xs).index(threshold), color="cyan", ls="--", lw=1)
        if epochs[-1] >= 100:
            ax.set_xscale("log")
        ax.set(xlabel="epoch" + (" (log scale)" if epochs[-1] >= 100 else ""), ylabel=layout.x_label,
               title=label)
        ax.set_facecolor("#cccccc")  # epochs a run has no value for
    for ax in axes[len(maps):]:
        ax.set_visible(False)
    fig.colorbar(mesh, ax=axes[:len(maps)].tolist(), label="test error (%)", shrink=0.9)
    fig.suptitle(f"Epoch-wise test error by epoch and {layout.x_label} (mean over seeds"
                 + ("; dashed: interpolation threshold)" if layout.width_sweep else ")"))
    return fig


# ----------------------------------------------------------------------------- 6. plane montages

def plane_files(run: Run) -> dict:
    """{(family, index): [(epoch, path), ...] sorted by epoch} of the run's raw plane files."""
    found: dict = {}
    planes = run.run_dir / "planes" if run.run_dir else None
    if planes is None or not planes.is_dir():
        return found
    for path in planes.iterdir():
        m = PLANE_FILE.match(path.name)
        if m:
            key = (m["family"], int(m["index"]))
            found.setdefault(key, []).append((int(m["epoch"]), path))
    return {k: sorted(v) for k, v in found.items()}


def choose_plane(runs: list[Run]) -> Optional[tuple[str, int]]:
    """The (family, index) that most runs have, preferring test then train planes, then index 0."""
    counts: dict = {}
    for run in runs:
        for key in plane_files(run):
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None

    def rank(key):
        family, index = key
        pref = PLANE_FAMILY_PREFERENCE.index(family) if family in PLANE_FAMILY_PREFERENCE else 99
        return (-counts[key], pref, index)
    return min(counts, key=rank)


def load_plane(run: Run, key: tuple[str, int]) -> Optional[dict]:
    """The run's latest-epoch plane ``key`` as a dict of arrays (plus 'epoch'), or None."""
    files = plane_files(run).get(key)
    if not files:
        return None
    epoch, path = files[-1]
    try:
        with np.load(path, allow_pickle=False) as z:
            plane = {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None
    if "labels" not in plane or plane["labels"].ndim != 3:
        return None
    plane["epoch"] = epoch
    return plane


def _class_cmap(n: int) -> ListedColormap:
    """The class colours of the run's own plane pictures (ddsweep.pipeline.viz.picture); -1 (off the map) blank."""
    return ListedColormap(class_colors(max(n, 1))).with_extremes(bad=(0, 0, 0, 0))


def _extent(plane: dict):
    """Pixel-edge extent of a grid whose pixel centres are u [R] × v [R]."""
    u, v = plane.get("u"), plane.get("v")
    if u is None or v is None or len(u) < 2 or len(v) < 2:
        return None
    du, dv = (u[-1] - u[0]) / (len(u) - 1) / 2, (v[-1] - v[0]) / (len(v) - 1) / 2
    return (u[0] - du, u[-1] + du, v[0] - dv, v[-1] + dv)


def _n_classes(planes: list[dict]) -> tuple[int, list[str]]:
    names: list = []
    n = 0
    for p in planes:
        if "class_names" in p and len(p["class_names"]) > len(names):
            names = [c.decode() if isinstance(c, bytes) else str(c) for c in p["class_names"].tolist()]
        n = max(n, int(p["labels"].max()) + 1, int(np.max(p.get("anchor_labels", [0]))) + 1)
    n = max(n, len(names))
    return n, names + [str(i) for i in range(len(names), n)]


def _draw_plane(ax, plane: dict, seed: int, cmap, norm, title: str) -> None:
    labels = np.ma.masked_less(plane["labels"][seed], 0)  # [R, R], rows are v, columns are u
    ax.imshow(labels, origin="lower", extent=_extent(plane), cmap=cmap, norm=norm, interpolation="nearest",
              aspect="equal")
    _draw_anchors(ax, plane, cmap, norm)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _draw_anchors(ax, plane: dict, cmap, norm) -> None:
    if "anchors" not in plane:
        return
    anchors = plane["anchors"]  # [3, 2] plane coordinates
    labels = plane.get("anchor_labels", np.zeros(len(anchors), int))
    wrong = plane.get("anchor_mislabeled", np.zeros(len(anchors), bool))
    for (x, y), lab, bad in zip(anchors, labels, wrong):
        ax.scatter([x], [y], s=70 if bad else 45, marker="X" if bad else "o", color=cmap(norm(lab)),
                   edgecolor="white" if bad else "black", lw=1.4 if bad else 0.8, zorder=3)


def _montage_legend(fig: Figure, names: list[str], cmap, extra: list = ()) -> None:
    handles = [Patch(color=cmap(i), label=name) for i, name in enumerate(names)]
    handles += [Line2D([], [], marker="o", ls="", color="gray", mec="black", label="anchor (in its label's colour)"),
                Line2D([], [], marker="X", ls="", color="gray", mec="white", ms=9,
                       label="mislabeled anchor (in its noisy label's colour)"), *extra]
    per_row = max(2, int(fig.get_figwidth() / 1.6))  # legend entries that fit across the figure
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), per_row), fontsize=8)


def _montage_width(columns: list) -> float:
    """Inches: 2 per panel, and never too narrow for the title and the legend."""
    return max(2.0 * len(columns) + 0.8, 9.0)


def width_montage(layout: A.Layout, x_of: XOf, key: tuple[str, int]) -> Optional[Figure]:
    """The same plane at each run's last measured epoch: one row per group, one column per x."""
    cells = {}
    for label, runs in layout.groups.items():
        for run in runs:
            plane = load_plane(run, key)
            if plane is not None and x_of(run) is not None:
                cells.setdefault(label, {})[x_of(run)] = plane
    if not cells:
        return None
    columns = A.subsample(sorted({x for row in cells.values() for x in row}), MONTAGE_COLUMNS)
    n, names = _n_classes([p for row in cells.values() for p in row.values()])
    cmap, norm = _class_cmap(n), BoundaryNorm(np.arange(n + 1) - 0.5, n)
    fig = Figure(figsize=(_montage_width(columns), 2.15 * len(cells) + 1.4), layout="constrained")
    axes = fig.subplots(len(cells), len(columns), squeeze=False)
    for i, (label, row) in enumerate(cells.items()):
        for j, x in enumerate(columns):
            ax = axes[i, j]
            if x in row:
                _draw_plane(ax, row[x], 0, cmap, norm, f"{layout.x_label}={_fmt_x(x)}, ep {row[x]['epoch']}")
            else:  # keep the axes (and the row label): this run has no such plane
                ax.set(xticks=[], yticks=[], title=f"{layout.x_label}={_fmt_x(x)}")
                ax.text(0.5, 0.5, "no plane", ha="center", va="center", transform=ax.transAxes, color="gray")
            if j == 0:
                ax.set_ylabel(label, fontsize=9)
    _montage_legend(fig, names, cmap)
    fig.suptitle(f"Decision plane '{key[0]}' #{key[1]} across {layout.x_label} (first seed, last measured epoch)")
    return fig


def seed_montage(layout: A.Layout, x_of: XOf, key: tuple[str, int]) -> Optional[Figure]:
    """One group's plane for every seed (rows) and x (columns), plus a row marking where the seeds
    disagree. The group is the last one (the highest noise level of a width sweep)."""
    for label in reversed(list(layout.groups)):
        row = {x_of(r): p for r in layout.groups[label]
               if x_of(r) is not None and (p := load_plane(r, key)) is not None}
        if row and max(p["labels"].shape[0] for p in row.values()) > 1:
            break
    else:
        return None
    columns = A.subsample(sorted(row), MONTAGE_COLUMNS)
    n_seeds = max(row[x]["labels"].shape[0] for x in columns)
    n, names = _n_classes(list(row.values()))
    cmap, norm = _class_cmap(n), BoundaryNorm(np.arange(n + 1) - 0.5, n)
    fig = Figure(figsize=(_montage_width(columns), 2.15 * (n_seeds + 1) + 1.4), layout="constrained")
    axes = fig.subplots(n_seeds + 1, len(columns), squeeze=False)
    for j, x in enumerate(columns):
        plane = row[x]
        labels = plane["labels"]  # [S, R, R]
        for s in range(n_seeds):
            if s < labels.shape[0]:
                _draw_plane(axes[s, j], plane, s, cmap, norm, f"{layout.x_label}={_fmt_x(x)}")
            else:
                axes[s, j].set_axis_off()
        differ = (labels != labels[:1]).any(axis=0)  # [R, R]
        ax = axes[n_seeds, j]
        ax.imshow(differ, origin="lower", extent=_extent(plane), cmap="Greys", vmin=0, vmax=1,
                  interpolation="nearest", aspect="equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"seeds differ on {differ.mean():.0%}", fontsize=9)
    seeds = _seed_names(layout.groups[label][0], n_seeds)
    for s in range(n_seeds):
        axes[s, 0].set_ylabel(f"seed {seeds[s]}", fontsize=9)
    axes[n_seeds, 0].set_ylabel("disagreement (black)", fontsize=9)
    _montage_legend(fig, names, cmap)
    fig.suptitle(f"Decision plane '{key[0]}' #{key[1]} for each seed: {label} (last measured epoch)")
    return fig


def _seed_names(run: Run, n: int) -> list:
    seeds = run.seeds
    return [seeds[i] if i < len(seeds) else i for i in range(n)]
