"""Numbers behind the figures: which key is the x axis, how runs group into curves, mean ± std over
seeds, the interpolation threshold, the test-error peak, Pearson's r and the epoch × width heat map.

Pure functions of ``Run`` records (METHODS.md, "Double-descent bookkeeping").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ddsweep.pipeline.report.collect import Run

# A run interpolates its (noisy) training labels when its final train error is at most this
# fraction; the interpolation threshold of a curve is the smallest width that does (METHODS.md:
# "train error on the noisy labels is ~0"). 1% leaves room for a few unfit points at CIFAR scale.
INTERPOLATION_TOL = 0.01
# The test-error peak is the highest interior local maximum of test error against width within
# this factor of the interpolation threshold (METHODS.md: "the test-error peak is expected near
# it"). Widths are swept on roughly geometric grids, so nearness is a ratio; a global maximum would
# put the peak of a monotonically falling curve at its narrowest width.
PEAK_WINDOW = 2.0
WIDTH_KEY = "model.width"
NOISE_KEYS = ("data.noise.kind", "data.noise.rate")
# Readable axis names for the keys a sweep usually varies.
KEY_LABELS = {
    "model.width": "width k",
    "model.name": "model",
    "model.activation": "activation",
    "model.depth": "depth",
    "train.lr": "learning rate",
    "train.batch_size": "batch size",
    "train.weight_decay": "weight decay",
    "train.epochs": "epochs",
    "train.optimizer": "optimizer",
    "data.noise.rate": "label-noise rate",
    "data.noise.kind": "label-noise kind",
    "data.n_train": "train set size",
    "repro.vary": "randomness varied",
    "repro.shuffle_window": "shuffle window",
}


@dataclass
class Stat:
    """One point of a curve: x, and the mean and std over the seeds (and runs) that share it."""

    x: float
    mean: float
    std: float
    n: int


@dataclass
class Layout:
    """How the plotted runs are arranged: the x axis key and one curve (group) per setting of the
    other varying keys."""

    x_key: Optional[str]
    group_keys: list
    groups: dict = field(default_factory=dict)  # label -> list[Run] (plotted runs only)

    @property
    def width_sweep(self) -> bool:
        """Whether the x axis is the width: only then are the interpolation threshold and the
        test-error peak marked."""
        return self.x_key == WIDTH_KEY

    @property
    def x_label(self) -> str:
        return KEY_LABELS.get(self.x_key, self.x_key or "run")

    def x_of(self, run: Run) -> Optional[float]:
        value = run.settings.get(self.x_key) if self.x_key else None
        return float(value) if _is_number(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def varying_keys(runs: list[Run], order: list[str] = ()) -> list[str]:
    """Settings whose value differs between runs, in ``order`` first (sweep.yaml), then config order."""
    with_config = [r for r in runs if r.config] or runs
    keys: dict = {}
    for run in with_config:
        keys.update(dict.fromkeys(run.settings))
    varying = [k for k in keys if len({_sort_key(r.settings.get(k)) for r in with_config}) > 1]
    first = [k for k in order if k in varying]
    return first + [k for k in varying if k not in first]


def choose_x_key(runs: list[Run], varying: list[str]) -> Optional[str]:
    """Width when it varies (or nothing numeric does); else the first varying numeric key."""
    if WIDTH_KEY in varying:
        return WIDTH_KEY
    for key in varying:
        values = {r.settings.get(key) for r in runs if r.config}
        if len(values) > 1 and all(_is_number(v) for v in values):
            return key
    return WIDTH_KEY if any(WIDTH_KEY in r.settings for r in runs) else None


def make_layout(runs: list[Run], order: list[str] = ()) -> Layout:
    varying = varying_keys(runs, order)
    x_key = choose_x_key(runs, varying)
    group_keys = _drop_redundant([k for k in varying if k != x_key], runs, order)
    layout = Layout(x_key=x_key, group_keys=group_keys)
    plotted = sorted((r for r in runs if r.plotted),
                     key=lambda r: [_sort_key(r.settings.get(k)) for k in group_keys])
    for run in plotted:
        layout.groups.setdefault(group_label(run, group_keys), []).append(run)
    return layout


def _drop_redundant(keys: list[str], runs: list[Run], order) -> list[str]:
    """Leave out keys that only follow others (e.g. planes.families set per noise level): a key
    goes when the remaining keys split the runs into as many groups. Swept and noise keys stay
    longest; the others are tried first."""
    runs = [r for r in runs if r.config] or runs

    def n_groups(ks):
        return len({tuple(_sort_key(r.settings.get(k)) for k in ks) for r in runs})

    kept = list(keys)
    target = n_groups(kept)
    for key in sorted(keys, key=lambda k: (k in order or k in NOISE_KEYS, -keys.index(k))):
        rest = [k for k in kept if k != key]
        if rest and n_groups(rest) == target:
            kept = rest
    return kept


def _sort_key(value: Any) -> tuple:
    """Numbers in numeric order, before everything else in text order; usable in sets."""
    return (0, float(value), "") if _is_number(value) else (1, 0.0, str(value))


def group_label(run: Run, group_keys: list[str]) -> str:
    """E.g. 'symmetric noise 0.2', 'no label noise', 'learning rate=0.1, batch size=256'."""
    parts = []
    if any(k in group_keys for k in NOISE_KEYS):
        parts.append(noise_label(run))
    for key in group_keys:
        if key not in NOISE_KEYS:
            parts.append(f"{KEY_LABELS.get(key, key)}={_fmt(run.settings.get(key))}")
    return ", ".join(parts) or "all runs"


def noise_label(run: Run) -> str:
    rate = run.settings.get("data.noise.rate") or 0
    if not rate:
        return "no label noise"
    return f"{run.settings.get('data.noise.kind', '')} noise {rate:g}".strip()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_fmt, value)) + "]"
    return str(value)


def seed_stats(run: Run, metric: str) -> Optional[list[float]]:
    """The per-seed final values of ``metric``, or the bare mean as one value when there are none."""
    values = run.seed_values(metric)
    if values:
        return values
    bare = run.value(metric)
    return None if bare is None else [bare]


def curve(runs: list[Run], x_of, metric: str) -> list[Stat]:
    """Mean ± sample std over seeds of ``metric`` at each x (runs sharing an x pool their seeds)."""
    pooled: dict = {}
    for run in runs:
        x, values = x_of(run), seed_stats(run, metric)
        if x is not None and values:
            pooled.setdefault(x, []).extend(values)
    stats = []
    for x in sorted(pooled):
        v = np.asarray(pooled[x], dtype=float)
        std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        stats.append(Stat(x=x, mean=float(v.mean()), std=std, n=len(v)))
    return stats


def interpolation_threshold(xs, train_errors, tol: float = INTERPOLATION_TOL) -> Optional[float]:
    """Smallest x whose final train error (on the labels trained on) is ≤ ``tol``; None if none is."""
    fits = [x for x, e in zip(xs, train_errors) if e is not None and e <= tol]
    return min(fits) if fits else None


def local_maxima(xs, ys) -> list[tuple[float, float]]:
    """Interior local maxima (x, y) of the curve ``ys`` against ``xs`` (sorted by x, Nones dropped):
    a point, or a plateau of equal values, whose neighbours on both sides are strictly lower; a
    plateau is reported at its smallest x. The ends of the curve are never local maxima."""
    pairs = sorted((x, y) for x, y in zip(xs, ys) if y is not None)
    # collapse plateaus: runs of equal y become one (first x, y)
    runs: list[tuple[float, float]] = []
    for x, y in pairs:
        if not runs or y != runs[-1][1]:
            runs.append((x, y))
    return [runs[i] for i in range(1, len(runs) - 1) if runs[i - 1][1] < runs[i][1] > runs[i + 1][1]]


def error_peak(xs, test_errors, threshold: Optional[float],
               window: float = PEAK_WINDOW) -> Optional[tuple[float, float]]:
    """The test-error peak of a double-descent curve: (x, test error) of the highest interior local
    maximum with threshold / window <= x <= threshold * window; None when the curve has none there
    (e.g. it falls monotonically) or has no interpolation threshold. Equal heights: the x nearest
    the threshold (in ratio), then the smaller."""
    if threshold is None or threshold <= 0:
        return None
    near = [(x, e) for x, e in local_maxima(xs, test_errors) if threshold / window <= x <= threshold * window]
    if not near:
        return None
    return min(near, key=lambda p: (-p[1], abs(math.log(p[0] / threshold)), p[0]))


def curve_markers(runs: list[Run], x_of) -> tuple[Optional[float], Optional[tuple[float, float]]]:
    """(interpolation threshold, (peak x, peak test error) or None) of one curve, from the same
    means over seeds that the curve draws."""
    train = curve(runs, x_of, "train/error")
    test = curve(runs, x_of, "test/error")
    threshold = interpolation_threshold([s.x for s in train], [s.mean for s in train])
    return threshold, error_peak([s.x for s in test], [s.mean for s in test], threshold)


def pearson(xs, ys) -> tuple[float, int]:
    """Pearson's r over the pairs where both values exist, and their number n (r is nan when
    n < 2 or either side is constant)."""
    pairs = np.asarray([(x, y) for x, y in zip(xs, ys) if x is not None and y is not None], dtype=float)
    n = len(pairs)
    if n < 2 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
        return math.nan, n
    return float(np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]), n


def generalization_gap(run: Run) -> Optional[float]:
    """Train accuracy − test accuracy = test/error − train/error (train error on the labels trained on)."""
    test, train = run.value("test/error"), run.value("train/error")
    return None if test is None or train is None else test - train


def region_metric(runs: list[Run]) -> Optional[str]:
    """The region count the gap is correlated with: the 1-D count if any run has it, else the
    train-plane count."""
    for metric in ("regions1d/mean", "regions/train/mean"):
        if any(r.value(metric) is not None for r in runs):
            return metric
    return None


def region_families(runs: list[Run]) -> list[str]:
    """Triplet families with a region count in any run, in METHODS.md order, then others."""
    found = {k.split("/")[1] for r in runs for k in r.final
             if k.startswith("regions/") and k.endswith("/mean") and k.count("/") == 2}
    known = [f for f in ("train", "test", "clean_class", "mislabeled") if f in found]
    return known + sorted(found - set(known))


def heatmap(runs: list[Run], x_of, metric: str = "test/error"):
    """Epoch-wise curves as a matrix: (xs [W], epochs [E], values [W, E]) with nan where a run has
    no value at an epoch; runs sharing an x are averaged."""
    rows: dict = {}
    for run in runs:
        x = x_of(run)
        if x is None:
            continue
        series = {int(rec["epoch"]): rec[metric] for rec in run.history
                  if "epoch" in rec and _is_number(rec.get(metric))}
        if series:
            rows.setdefault(x, []).append(series)
    xs = sorted(rows)
    epochs = sorted({e for per_x in rows.values() for s in per_x for e in s})
    col = {e: j for j, e in enumerate(epochs)}
    sums = np.zeros((len(xs), len(epochs)))
    counts = np.zeros((len(xs), len(epochs)))
    for i, x in enumerate(xs):
        for series in rows[x]:
            for e, v in series.items():
                sums[i, col[e]] += v
                counts[i, col[e]] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return np.asarray(xs, dtype=float), np.asarray(epochs, dtype=int), values


def subsample(values: list, limit: int) -> list:
    """At most ``limit`` evenly spaced items, first and last kept."""
    if len(values) <= limit:
        return list(values)
    idx = np.unique(np.round(np.linspace(0, len(values) - 1, limit)).astype(int))
    return [values[i] for i in idx]
