"""Fragmentation: decision-region counts on planes, segments and triangles
(METHODS.md, "Fragmentation: regions on a plane" and "Region count along segments (1-D)")."""

from __future__ import annotations

import numpy as np
import torch
from skimage.measure import label as _connected_components
from torch import Tensor

from ddsweep.pipeline.measure.evaluate import LogitsFn, predict_affine

_OUTSIDE = -1  # label of pixels that are not part of the map (outside the triangle)


def count_regions(label_map) -> int:
    """Region count of one label map ``[R, R]`` (tensor or array of class ids ≥ 0): for each class
    present, its 8-connected components, summed; minimum 1. Pixels equal to -1 are not part of the
    map and are not counted."""
    arr = label_map.cpu().numpy() if isinstance(label_map, Tensor) else np.asarray(label_map)
    # skimage labels connected regions of *equal value*, so one pass counts every class's
    # components; background=-1 leaves class 0 counted and masked-out pixels ignored.
    _, n = _connected_components(arr.astype(np.int64), background=_OUTSIDE, connectivity=2,
                                 return_num=True)
    return max(int(n), 1)


def count_regions_batch(labels: Tensor) -> Tensor:
    """Region counts ``[...]`` (int64) of label maps ``[..., R, R]``."""
    maps = labels.detach().cpu().numpy().reshape(-1, *labels.shape[-2:])
    counts = [count_regions(m) for m in maps]
    return torch.tensor(counts, dtype=torch.int64).reshape(labels.shape[:-2])


def summarize(counts: Tensor) -> dict[str, Tensor]:
    """Mean, median and std over the last axis of ``counts [..., T]`` (shape ``[...]`` each).

    The median of an even number of values is the mean of the two middle ones; std is the
    population std (no Bessel correction, so one plane gives 0, not NaN)."""
    c = counts.double()
    return {"mean": c.mean(dim=-1), "median": c.quantile(0.5, dim=-1),
            "std": c.std(dim=-1, correction=0)}


def segment_counts(
    logits_fn: LogitsFn,
    xa: Tensor,
    xb: Tensor,
    points: int = 200,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """1-D region counts ``[S, P]`` along the segments (1−α)xa + αxb, α = linspace(0, 1, points),
    of the pairs ``xa, xb [P, *shape]``: 1 + the number of label changes between consecutive
    points."""
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    P = xa.shape[0]
    alpha = torch.linspace(0, 1, points, dtype=xa.dtype, device=xa.device)

    def coefficients(start: int, end: int) -> tuple[Tensor, Tensor]:
        k = torch.arange(start, end, device=xa.device)
        return k // points, alpha[k % points][:, None]  # pair, α

    labels = predict_affine(logits_fn, xa, (xb - xa)[:, None], coefficients, P * points,
                            max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)
    labels = labels.reshape(-1, P, points)
    return 1 + (labels[..., 1:] != labels[..., :-1]).sum(dim=-1)


def triangle_mask(points: int, device=None) -> Tensor:
    """Bool ``[points, points]`` indexed [j (β), i (α)]: True inside the triangle α+β ≤ 1."""
    idx = torch.arange(points, device=device)
    return idx[:, None] + idx[None, :] <= points - 1


def triangle_label_maps(
    logits_fn: LogitsFn,
    x1: Tensor,
    x2: Tensor,
    x3: Tensor,
    points: int = 50,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Label maps ``[S, T, points, points]`` of the triangles x1 + α(x2−x1) + β(x3−x1),
    α, β in linspace(0, 1, points), α+β ≤ 1, for ``x1, x2, x3 [T, *shape]``; indexed
    [.., j (β), i (α)], -1 outside the triangle (those points are never evaluated)."""
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    T = x1.shape[0]
    inside = triangle_mask(points, x1.device)
    jj, ii = inside.nonzero(as_tuple=True)  # in-triangle pixels, row-major
    steps = torch.linspace(0, 1, points, dtype=x1.dtype, device=x1.device)
    ab = torch.stack([steps[ii], steps[jj]], 1)  # [M, 2] (α, β)
    M = ab.shape[0]

    def coefficients(start: int, end: int) -> tuple[Tensor, Tensor]:
        k = torch.arange(start, end, device=x1.device)
        return k // M, ab[k % M]  # triangle, (α, β)

    labels = predict_affine(logits_fn, x1, torch.stack([x2 - x1, x3 - x1], 1), coefficients, T * M,
                            max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)
    S = labels.shape[0]
    maps = torch.full((S, T, points, points), _OUTSIDE, dtype=torch.int64, device=labels.device)
    maps[:, :, jj, ii] = labels.reshape(S, T, M)
    return maps


def triangle_counts(
    logits_fn: LogitsFn,
    x1: Tensor,
    x2: Tensor,
    x3: Tensor,
    points: int = 50,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """2-D region counts ``[S, T]`` on the triangles of ``x1, x2, x3 [T, *shape]``
    (see ``triangle_label_maps``): 8-connected components among in-triangle pixels only."""
    maps = triangle_label_maps(logits_fn, x1, x2, x3, points,
                               max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)
    return count_regions_batch(maps)
