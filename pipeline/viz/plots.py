"""Figures of decision planes (METHODS.md, "Decision plane through three inputs"): the matplotlib
renderer of ``ddsweep.pipeline.viz.picture.PlanePicture``, for ``ddsweep plane`` and the report.

Object-oriented matplotlib only (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global state,
no backend switching. Label maps are drawn with ``origin="lower"`` (row j=0 at the bottom).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ddsweep.pipeline.viz.picture import DISAGREE_COLOR, MARKER_EDGE, LegendEntry, PlanePicture, class_colors

# Anchor markers on the plane (scatter) and in the legend (Line2D), by Anchor.marker.
_SCATTER = {"circle": dict(marker="o", s=90, linewidths=1.5),
            "star": dict(marker="*", s=320, linewidths=2.0)}
_LEGEND_MARKER = {"circle": dict(marker="o", markersize=8),
                  "star": dict(marker="*", markersize=14, markeredgewidth=2)}
_HATCH = "////"


def _new_figure(figsize: tuple[float, float]) -> Figure:
    # Constrained layout fits titles and outside legends in one render (bbox_inches="tight" at
    # save time renders twice, which doubled the cost of pictures during training).
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _show_labels(ax, label_map: np.ndarray, colors: np.ndarray, extent=None) -> None:
    cmap = ListedColormap(colors).with_extremes(bad=(0, 0, 0, 0))
    ax.imshow(np.ma.masked_less(label_map, 0), cmap=cmap, vmin=-0.5, vmax=len(colors) - 0.5,
              origin="lower", extent=extent, interpolation="nearest", aspect="equal")


def _draw_panel(ax, picture: PlanePicture, s: int) -> None:
    """Panel ``s``: its label map, the train points, the anchors with their texts, the axis
    names and, in the seeds picture, the darkened and hatched disagreement area."""
    _show_labels(ax, picture.maps[s], picture.colors, picture.extent)
    if len(picture.points):
        ax.scatter(picture.points[:, 0], picture.points[:, 1], s=12, c=picture.point_colors,
                   edgecolors="black", linewidths=0.4, zorder=3)
    for anchor in picture.anchors:
        ax.scatter(*anchor.xy, color=anchor.color, zorder=4, edgecolors=MARKER_EDGE[anchor.marker],
                   **_SCATTER[anchor.marker])
        ax.annotate(anchor.text, anchor.xy, xytext=(7, 7), textcoords="offset points", fontsize=8,
                    zorder=5, bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.85))
    ax.set_xlabel(picture.axis_names[0])
    ax.set_ylabel(picture.axis_names[1])
    if picture.seeds:
        _show_disagreement(ax, picture.disagree, picture.extent)


def _show_disagreement(ax, disagree: np.ndarray, extent) -> None:
    overlay = np.zeros((*disagree.shape, 4))  # [R, R, 4]
    overlay[disagree] = DISAGREE_COLOR
    ax.imshow(overlay, origin="lower", extent=extent, interpolation="nearest", aspect="equal", zorder=2)
    if disagree.any():
        ax.contourf(np.linspace(extent[0], extent[1], disagree.shape[1]),
                    np.linspace(extent[2], extent[3], disagree.shape[0]),
                    disagree.astype(float), levels=[0.5, 1.5], colors="none", hatches=[_HATCH], zorder=2)


def _legend_handle(entry: LegendEntry):
    if entry.kind in _LEGEND_MARKER:
        return Line2D([], [], linestyle="none", markerfacecolor=entry.color,
                      markeredgecolor=MARKER_EDGE[entry.kind], label=entry.label,
                      **_LEGEND_MARKER[entry.kind])
    if entry.kind == "hatch":
        return Patch(facecolor=entry.color, hatch=_HATCH, label=entry.label)
    return Patch(facecolor=entry.color, edgecolor="none", label=entry.label)


def draw(picture: PlanePicture) -> Figure:
    """The figure of ``picture`` (ddsweep.pipeline.viz.picture.describe_plane): one plane, or the seeds
    side by side each titled with its seed and the title over all; the legend right of the last
    panel."""
    S = len(picture.maps)
    fig = _new_figure((4.2 * S + 2.5, 4.6) if picture.seeds else (7.5, 6.0))
    for s in range(S):
        ax = fig.add_subplot(1, S, s + 1)
        _draw_panel(ax, picture, s)
        if picture.seeds:
            ax.set_title(picture.panel_titles[s], fontsize=9)
    fig.axes[-1].legend(handles=[_legend_handle(e) for e in picture.legend], loc="upper left",
                        bbox_to_anchor=(1.02, 1.0), fontsize=8, borderaxespad=0)
    if picture.seeds:
        fig.suptitle(picture.title, fontsize=10)
    else:
        fig.axes[0].set_title(picture.title, fontsize=9)
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
