"""Figures of decision planes (METHODS.md, "Decision plane through three inputs").

Object-oriented matplotlib only (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global state,
no backend switching. Label maps follow the convention of ``pipeline.measure.planes``: ``[R, R]``
indexed ``[j (v), i (u)]``, drawn with ``origin="lower"``; -1 marks pixels outside the map.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
import torch

from pipeline.measure.repro import plane_agreement

MISLABELED_LABEL = "mislabeled anchor (label ≠ true class)"
ANCHOR_LABEL = "anchor"
DISAGREE_LABEL = "seeds disagree"
_GOLDEN = 0.6180339887498949


def class_colors(num_classes: int) -> np.ndarray:
    """``[num_classes, 4]`` RGBA colours, one per class: tab10 up to 10 classes, tab20 up to 20,
    beyond that turbo sampled at golden-ratio steps so that neighbouring ids differ strongly."""
    if num_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(num_classes))
    if num_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(num_classes))
    return matplotlib.colormaps["turbo"]((np.arange(num_classes) * _GOLDEN) % 1.0)


def _new_figure(figsize: tuple[float, float]) -> Figure:
    # Constrained layout fits titles and outside legends in one render (bbox_inches="tight" at
    # save time renders twice, which doubled the cost of pictures during training).
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _name(class_names: Sequence[str] | None, c: int) -> str:
    return str(class_names[c]) if class_names is not None else str(c)


def _extent(u: np.ndarray, v: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel-edge extent of a grid whose pixel centres are u [R] × v [R]."""
    du, dv = (u[-1] - u[0]) / (len(u) - 1) / 2, (v[-1] - v[0]) / (len(v) - 1) / 2
    return (u[0] - du, u[-1] + du, v[0] - dv, v[-1] + dv)


def _show_labels(ax, label_map: np.ndarray, colors: np.ndarray, extent=None) -> None:
    cmap = ListedColormap(colors).with_extremes(bad=(0, 0, 0, 0))
    ax.imshow(np.ma.masked_less(label_map, 0), cmap=cmap, vmin=-0.5, vmax=len(colors) - 0.5,
              origin="lower", extent=extent, interpolation="nearest", aspect="equal")


def _draw_plane_on(ax, label_map, u, v, anchor_coords, *, class_names, num_classes,
                   anchor_labels, anchor_true_labels, anchor_mislabeled, train_points) -> set[int]:
    """Draw one plane with its anchors on ``ax``; return the class ids that need a legend entry."""
    colors = class_colors(num_classes)
    label_map, u, v = np.asarray(label_map), np.asarray(u, float), np.asarray(v, float)
    coords = np.asarray(anchor_coords, float)
    _show_labels(ax, label_map, colors, _extent(u, v))
    noisy = [int(c) for c in anchor_labels]
    true = noisy if anchor_true_labels is None else [int(c) for c in anchor_true_labels]
    mis = [False] * len(coords) if anchor_mislabeled is None else [bool(m) for m in anchor_mislabeled]
    if train_points is not None:
        pts, pt_labels = np.asarray(train_points[0], float), np.asarray(train_points[1], int)
        ax.scatter(pts[:, 0], pts[:, 1], s=12, c=colors[pt_labels], edgecolors="black",
                   linewidths=0.4, zorder=3)
    for k in range(len(coords)):
        style = (dict(marker="*", s=320, edgecolors="red", linewidths=2.0) if mis[k]
                 else dict(marker="o", s=90, edgecolors="black", linewidths=1.5))
        ax.scatter(coords[k, 0], coords[k, 1], color=colors[noisy[k]], zorder=4, **style)
        text = _name(class_names, noisy[k])
        if mis[k] or true[k] != noisy[k]:
            text += f" (true: {_name(class_names, true[k])})"
        ax.annotate(f"x{k + 1}: {text}", (coords[k, 0], coords[k, 1]), xytext=(7, 7),
                    textcoords="offset points", fontsize=8, zorder=5,
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.85))
    if len(coords):
        ax.set_xlabel("u: plane coordinate along x1→x2")
        ax.set_ylabel("v: plane coordinate towards x3")
    else:  # the input space itself (2-D data)
        ax.set_xlabel("input x[0]")
        ax.set_ylabel("input x[1]")
    present = {int(c) for c in np.unique(label_map) if c >= 0}
    return present | set(noisy) | set(true)


def _legend_handles(classes: set[int], class_names, num_classes: int, mislabeled: bool,
                    extra: Sequence = (), anchors: bool = True) -> list:
    colors = class_colors(num_classes)
    handles = [Patch(facecolor=colors[c], edgecolor="none", label=_name(class_names, c))
               for c in sorted(classes)]
    if anchors:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=8,
                          markerfacecolor="lightgray", markeredgecolor="black", label=ANCHOR_LABEL))
    if mislabeled:
        handles.append(Line2D([], [], linestyle="none", marker="*", markersize=14,
                              markerfacecolor="lightgray", markeredgecolor="red",
                              markeredgewidth=2, label=MISLABELED_LABEL))
    return handles + list(extra)


def draw_plane(
    label_map,
    u,
    v,
    anchor_coords,
    *,
    class_names: Sequence[str] | None,
    anchor_labels: Sequence[int],
    anchor_true_labels: Sequence[int] | None = None,
    anchor_mislabeled: Sequence[bool] | None = None,
    title: str = "",
    num_classes: int,
    train_points: tuple | None = None,
) -> Figure:
    """One decision plane: ``label_map [R, R]`` ([j (v), i (u)]), axes ``u, v [R]``, anchors at
    ``anchor_coords [3, 2]`` labelled with their (noisy) labels and, when they differ, their true
    class ("cat (true: dog)"); mislabeled anchors are red-edged stars. ``train_points`` optionally
    overlays ``(coords [K, 2], labels [K])``. The legend lists the classes present and the anchor
    classes. ``title`` is used as given (callers put model, width, noise, epoch, regions in it).
    """
    fig = _new_figure((7.5, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    classes = _draw_plane_on(ax, label_map, u, v, anchor_coords, class_names=class_names,
                             num_classes=num_classes, anchor_labels=anchor_labels,
                             anchor_true_labels=anchor_true_labels,
                             anchor_mislabeled=anchor_mislabeled, train_points=train_points)
    mislabeled = anchor_mislabeled is not None and any(bool(m) for m in anchor_mislabeled)
    ax.legend(handles=_legend_handles(classes, class_names, num_classes, mislabeled,
                                      anchors=len(anchor_labels) > 0),
              loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0)
    ax.set_title(title, fontsize=9)
    return fig


def mean_pairwise_agreement(label_maps: np.ndarray) -> float:
    """Plane agreement of ``label_maps [S, R, R]`` as the metric defines it
    (pipeline.measure.repro.plane_agreement); 1.0 for a single map."""
    agreement = plane_agreement(torch.as_tensor(np.asarray(label_maps)))
    return 1.0 if agreement is None else agreement


def draw_plane_pair(
    label_maps,
    u,
    v,
    anchor_coords,
    *,
    class_names: Sequence[str] | None,
    anchor_labels: Sequence[int],
    anchor_true_labels: Sequence[int] | None = None,
    anchor_mislabeled: Sequence[bool] | None = None,
    title: str = "",
    num_classes: int,
    seed_names: Sequence[str] | None = None,
) -> Figure:
    """The same plane under S seeds, side by side (``label_maps [S, R, R]``). Pixels where not all
    seeds agree are darkened and hatched on every panel; the title gets the plane agreement (mean
    over seed pairs of the fraction of equal pixels)."""
    maps = np.asarray(label_maps)
    S = maps.shape[0]
    disagree = (maps != maps[:1]).any(axis=0)  # [R, R]
    agreement = mean_pairwise_agreement(maps)
    fig = _new_figure((4.2 * S + 2.5, 4.6))
    classes: set[int] = set()
    extent = _extent(np.asarray(u, float), np.asarray(v, float))
    for s in range(S):
        ax = fig.add_subplot(1, S, s + 1)
        classes |= _draw_plane_on(ax, maps[s], u, v, anchor_coords, class_names=class_names,
                                  num_classes=num_classes, anchor_labels=anchor_labels,
                                  anchor_true_labels=anchor_true_labels,
                                  anchor_mislabeled=anchor_mislabeled, train_points=None)
        overlay = np.zeros((*disagree.shape, 4))
        overlay[disagree] = (0, 0, 0, 0.55)
        ax.imshow(overlay, origin="lower", extent=extent, interpolation="nearest",
                  aspect="equal", zorder=2)
        if disagree.any():
            ax.contourf(np.linspace(extent[0], extent[1], disagree.shape[1]),
                        np.linspace(extent[2], extent[3], disagree.shape[0]),
                        disagree.astype(float), levels=[0.5, 1.5], colors="none",
                        hatches=["////"], zorder=2)
        ax.set_title(seed_names[s] if seed_names is not None else f"seed {s}", fontsize=9)
    mislabeled = anchor_mislabeled is not None and any(bool(m) for m in anchor_mislabeled)
    extra = [Patch(facecolor=(0, 0, 0, 0.55), hatch="////", label=DISAGREE_LABEL)]
    fig.axes[-1].legend(handles=_legend_handles(classes, class_names, num_classes, mislabeled,
                                                extra),
                        loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                        borderaxespad=0)
    fig.suptitle(f"{title}\nplane agreement {agreement:.3f}".strip(), fontsize=10)
    return fig


def _figure_image(fig: Figure) -> np.ndarray:
    """RGBA pixels ``[H, W, 4]`` of a rendered figure."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def montage(
    panels: Sequence,
    titles: Sequence[str],
    ncols: int = 4,
    *,
    num_classes: int | None = None,
    suptitle: str = "",
    panel_size: float = 3.0,
) -> Figure:
    """A grid of panels (e.g. the same plane across widths or seeds). Each panel is a Figure
    (rendered as an image) or a label map ``[R, R]`` ([j (v), i (u)]) drawn in the class colours
    of ``num_classes`` (default: largest label + 1)."""
    if len(panels) != len(titles):
        raise ValueError(f"montage: {len(panels)} panels but {len(titles)} titles")
    if ncols < 1:
        raise ValueError(f"montage: ncols must be >= 1, got {ncols}")
    n = len(panels)
    ncols = min(ncols, max(n, 1))
    nrows = max(-(-n // ncols), 1)
    maps = [np.asarray(p) for p in panels if not isinstance(p, Figure)]
    if num_classes is None and maps:
        num_classes = int(max(m.max() for m in maps)) + 1
    fig = _new_figure((panel_size * ncols, panel_size * nrows + (0.4 if suptitle else 0)))
    for k, (panel, title) in enumerate(zip(panels, titles)):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        if isinstance(panel, Figure):
            ax.imshow(_figure_image(panel), interpolation="antialiased")
        else:
            _show_labels(ax, np.asarray(panel), class_colors(num_classes))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def save_figure(fig: Figure, path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (``path.tmp``, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
