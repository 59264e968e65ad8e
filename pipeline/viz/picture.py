"""One description of a decision-plane picture (METHODS.md, "Decision plane through three inputs").

Both renderers draw from it: ``ddsweep.pipeline.viz.plots`` (matplotlib figures for ``ddsweep plane`` and
the report) and ``ddsweep.pipeline.viz.quicklook`` (Pillow pictures during training). Everything the two
pictures have in common is decided here and only here: class colours, legend entries, anchor
markers and their texts, title lines, axis names, where the seeds disagree and how much they
agree. A renderer only turns a ``PlanePicture`` into pixels.

Label maps are ``[R, R]`` indexed ``[j (v), i (u)]``, row j=0 at the lowest v; -1 marks pixels
outside the map. Colours are RGBA floats in [0, 1], as matplotlib takes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib
import numpy as np
import torch

from ddsweep.pipeline.measure.repro import plane_agreement

RGBA = tuple[float, float, float, float]
Extent = tuple[float, float, float, float]  # (u0, u1, v0, v1): the pixel edges of the grid

ANCHOR_LABEL = "anchor"
MISLABELED_LABEL = "mislabeled anchor (label ≠ true class)"
DISAGREE_LABEL = "seeds disagree"
DARKEN = 0.55  # where the seeds disagree, pixels are blended this far towards black
DISAGREE_COLOR: RGBA = (0.0, 0.0, 0.0, DARKEN)
LEGEND_MARKER_COLOR: RGBA = (211 / 255, 211 / 255, 211 / 255, 1.0)  # matplotlib's "lightgray"
# An anchor is a black-edged circle, or a red-edged star when its label is not its class.
MARKER_EDGE: dict[str, RGBA] = {"circle": (0.0, 0.0, 0.0, 1.0), "star": (1.0, 0.0, 0.0, 1.0)}
_AXIS_NAMES = {True: ("u: plane coordinate along x1→x2", "v: plane coordinate towards x3"),
               False: ("input x[0]", "input x[1]")}  # False: the 2-D input space itself
_GOLDEN = 0.6180339887498949


def class_colors(num_classes: int) -> np.ndarray:
    """``[num_classes, 4]`` RGBA colours, one per class: tab10 up to 10 classes, tab20 up to 20,
    beyond that turbo sampled at golden-ratio steps so that neighbouring ids differ strongly."""
    if num_classes <= 10:
        return matplotlib.colormaps["tab10"](np.arange(num_classes))
    if num_classes <= 20:
        return matplotlib.colormaps["tab20"](np.arange(num_classes))
    return matplotlib.colormaps["turbo"]((np.arange(num_classes) * _GOLDEN) % 1.0)


def plane_extent(u, v) -> Extent:
    """Pixel-edge extent (u0, u1, v0, v1) of a grid whose pixel centres are u [R] × v [R]
    (a one-pixel axis spans one unit)."""
    def edges(a):
        a = np.asarray(a, float)
        half = (a[-1] - a[0]) / (len(a) - 1) / 2 if len(a) > 1 else 0.5
        return float(a[0] - half), float(a[-1] + half)
    return (*edges(u), *edges(v))


@dataclass(frozen=True)
class Anchor:
    """One anchor of the plane: where it is (plane coordinates u, v), the colour of its (noisy)
    label, whether that label is not its true class, and its text ("x3: cat (true: dog)")."""

    xy: tuple[float, float]
    color: RGBA
    mislabeled: bool
    text: str

    @property
    def marker(self) -> str:
        """"star" for a mislabeled anchor, else "circle" (the keys of MARKER_EDGE)."""
        return "star" if self.mislabeled else "circle"


@dataclass(frozen=True)
class LegendEntry:
    """One legend row. ``kind``: "patch" (a class colour), "circle" / "star" (an anchor marker,
    as Anchor.marker) or "hatch" (the darkened, hatched area where the seeds disagree)."""

    kind: str
    label: str
    color: RGBA


@dataclass(frozen=True, eq=False)
class PlanePicture:
    """Everything a plane picture shows. ``maps [S, R, R]``: one panel per seed (the seeds
    picture) or S = 1 (a single plane, ``panel_titles`` empty); ``extent`` the pixel edges
    (u0, u1, v0, v1) of the maps; ``colors [C, 4]`` one colour per class; ``points [K, 2]`` train
    points to overlay in ``point_colors [K, 4]`` (K = 0: none); ``disagree [R, R]`` where not all
    seeds agree and ``agreement`` the plane agreement (both None for a single plane). Arrays are
    read-only."""

    maps: np.ndarray
    extent: Extent
    colors: np.ndarray
    title_lines: tuple[str, ...]
    panel_titles: tuple[str, ...]
    axis_names: tuple[str, str]
    anchors: tuple[Anchor, ...]
    legend: tuple[LegendEntry, ...]
    points: np.ndarray
    point_colors: np.ndarray
    disagree: np.ndarray | None
    agreement: float | None

    @property
    def seeds(self) -> bool:
        """True for the seeds picture (panels side by side, disagreement marked)."""
        return self.disagree is not None

    @property
    def title(self) -> str:
        return "\n".join(self.title_lines)

    @property
    def anchor_xy(self) -> np.ndarray:
        """``[K, 2]`` plane coordinates of the anchors."""
        return np.array([a.xy for a in self.anchors], float).reshape(-1, 2)


def describe_plane(
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
    train_points: tuple | None = None,
) -> PlanePicture:
    """The picture of one decision plane (``label_maps [R, R]``) or of the same plane under S seeds
    side by side (``label_maps [S, R, R]``), on axes ``u, v [R]``. Anchors at ``anchor_coords
    [K, 2]`` (K = 3, or 0 for the 2-D input plane) are labelled with their (noisy) label and, when
    it is not their true class, that class ("cat (true: dog)"); mislabeled anchors are stars.
    ``train_points`` optionally overlays ``(coords [N, 2], labels [N])``. The legend lists the
    classes on the maps and of the anchors. ``title`` is used as given (callers put model, width,
    noise, epoch, regions in it); the seeds picture adds a line with the plane agreement and
    names its panels ``seed_names`` (default "seed s")."""
    maps = np.asarray(label_maps)
    seeds = maps.ndim == 3
    if not seeds:
        if seed_names is not None:
            raise ValueError("describe_plane: seed_names need label maps [S, R, R], got one map [R, R]")
        maps = maps[None]  # [1, R, R]
    names = ([f"seed {s}" for s in range(len(maps))] if seed_names is None else [str(n) for n in seed_names])
    if seeds and len(names) != len(maps):
        raise ValueError(f"describe_plane: {len(names)} seed names for {len(maps)} label maps")
    colors = class_colors(num_classes)
    coords = np.asarray(anchor_coords, float).reshape(-1, 2)
    noisy = [int(c) for c in anchor_labels]
    true = noisy if anchor_true_labels is None else [int(c) for c in anchor_true_labels]
    mis = [False] * len(coords) if anchor_mislabeled is None else [bool(m) for m in anchor_mislabeled]
    anchors = tuple(Anchor((float(x), float(y)), _rgba(colors[noisy[k]]), mis[k],
                           _anchor_text(k, noisy[k], true[k], mis[k], class_names))
                    for k, (x, y) in enumerate(coords))
    disagree = (maps != maps[:1]).any(axis=0) if seeds else None  # [R, R]
    agreement = _agreement(maps) if seeds else None
    title_lines = title.split("\n") if title else []
    if seeds:
        title_lines.append(f"plane agreement {agreement:.3f}")
    present = {int(c) for c in np.unique(maps) if c >= 0}
    legend = _legend(sorted(present | set(noisy) | set(true)), colors, class_names, anchors, seeds)
    points, point_labels = ((np.zeros((0, 2)), np.zeros(0, int)) if train_points is None
                            else (np.asarray(train_points[0], float), np.asarray(train_points[1], int)))
    return PlanePicture(
        maps=_read_only(maps), extent=plane_extent(u, v), colors=_read_only(colors),
        title_lines=tuple(title_lines), panel_titles=tuple(names) if seeds else (),
        axis_names=_AXIS_NAMES[len(anchors) > 0], anchors=anchors, legend=legend,
        points=_read_only(points.reshape(-1, 2)), point_colors=_read_only(colors[point_labels]),
        disagree=None if disagree is None else _read_only(disagree), agreement=agreement)


def _name(class_names: Sequence[str] | None, c: int) -> str:
    return str(class_names[c]) if class_names is not None else str(c)


def _anchor_text(k: int, noisy: int, true: int, mislabeled: bool, class_names) -> str:
    text = f"x{k + 1}: {_name(class_names, noisy)}"
    if mislabeled or true != noisy:
        text += f" (true: {_name(class_names, true)})"
    return text


def _legend(classes: Sequence[int], colors: np.ndarray, class_names, anchors: tuple[Anchor, ...],
            seeds: bool) -> tuple[LegendEntry, ...]:
    """Classes in id order, then the anchor marker, the mislabeled marker and the disagreement
    patch where the picture has them."""
    entries = [LegendEntry("patch", _name(class_names, c), _rgba(colors[c])) for c in classes]
    if anchors:
        entries.append(LegendEntry("circle", ANCHOR_LABEL, LEGEND_MARKER_COLOR))
    if any(a.mislabeled for a in anchors):
        entries.append(LegendEntry("star", MISLABELED_LABEL, LEGEND_MARKER_COLOR))
    if seeds:
        entries.append(LegendEntry("hatch", DISAGREE_LABEL, DISAGREE_COLOR))
    return tuple(entries)


def _agreement(label_maps: np.ndarray) -> float:
    """Plane agreement of ``label_maps [S, R, R]`` as the metric defines it
    (ddsweep.pipeline.measure.repro.plane_agreement); 1.0 for a single map."""
    agreement = plane_agreement(torch.as_tensor(label_maps))
    return 1.0 if agreement is None else agreement


def _rgba(color) -> RGBA:
    return tuple(float(c) for c in color)


def _read_only(a: np.ndarray) -> np.ndarray:
    # A read-only view: the caller's own array stays writable.
    view = a.view()
    view.flags.writeable = False
    return view
