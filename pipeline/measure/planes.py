"""Decision planes through three inputs (METHODS.md, "Decision plane through three inputs").

    â = (x2−x1)/‖x2−x1‖;  b = x3−x1;  b̂ = (b − (â·b)â)/‖b − (â·b)â‖
    x1→(0,0), x2→(‖x2−x1‖,0), x3→(â·b, ‖b − (â·b)â‖)
    u = linspace(xmin − r·Lx, xmax + r·Lx, R);  v = linspace(ymin − r·Ly, ymax + r·Ly, R)
    point(i,j) = x1 + u_i·â + v_j·b̂

Grid convention, used everywhere (plots included): a label map is ``[R, R]`` indexed
``[j, i]`` = ``[v index, u index]`` (rows are v, columns are u), so
``imshow(label_map, origin="lower", extent=(u[0], u[-1], v[0], v[-1]))`` shows the plane.
The R*R points of a plane are flattened in the same order: flat index ``j*R + i``.

Geometry (basis, coordinates, u, v) is computed and returned in float64; grid points are built in
the anchors' dtype.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from ddsweep.pipeline.measure.evaluate import LogitsFn, predict_affine

DEFAULT_EPS = 1e-5


def _flat(anchors: Tensor) -> Tensor:
    """[T, 3, *shape] -> [T, 3, D] in float64."""
    return anchors.reshape(anchors.shape[0], 3, -1).double()


def _geometry(anchors: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Float64 pieces of the plane: d = x2−x1 [T, D], b = x3−x1 [T, D], ‖d‖ [T], â·b [T],
    b⊥ = b − (â·b)â [T, D]."""
    flat = _flat(anchors)
    d = flat[:, 1] - flat[:, 0]
    b = flat[:, 2] - flat[:, 0]
    d_norm = d.norm(dim=1)
    a_hat = d / d_norm.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    ab = (a_hat * b).sum(dim=1)
    b_perp = b - ab[:, None] * a_hat
    return d_norm, a_hat, ab, b_perp, b


def degenerate_mask(anchors: Tensor, eps: float = DEFAULT_EPS) -> Tensor:
    """Bool ``[T]``: triplet t of ``anchors [T, 3, *shape]`` is repeated or (nearly) collinear.

    Degenerate when ‖x2−x1‖ ≤ eps·scale or ‖b − (â·b)â‖ ≤ eps·scale, where scale is the largest
    pairwise distance of the three points (so all-identical points are degenerate too).
    """
    d_norm, _, _, b_perp, b = _geometry(anchors)
    flat = _flat(anchors)
    scale = torch.stack([d_norm, b.norm(dim=1), (flat[:, 2] - flat[:, 1]).norm(dim=1)]).amax(0)
    tol = eps * scale
    return (scale == 0) | (d_norm <= tol) | (b_perp.norm(dim=1) <= tol)


def is_degenerate(x1: Tensor, x2: Tensor, x3: Tensor, eps: float = DEFAULT_EPS) -> bool:
    """Whether the triplet (x1, x2, x3) of inputs ``[*shape]`` is repeated or collinear
    (see ``degenerate_mask``)."""
    return bool(degenerate_mask(torch.stack([x1, x2, x3])[None], eps)[0])


def plane_basis_batch(anchors: Tensor, eps: float = DEFAULT_EPS) -> tuple[Tensor, Tensor, Tensor]:
    """Orthonormal plane basis of each triplet of ``anchors [T, 3, *shape]``.

    Returns ``a_hat [T, *shape]``, ``b_hat [T, *shape]`` and the anchors' plane coordinates
    ``coords [T, 3, 2]``, all float64. Raises ValueError on a degenerate triplet.
    """
    bad = degenerate_mask(anchors, eps)
    if bad.any():
        raise ValueError(f"degenerate plane triplets (repeated or collinear points): "
                         f"{bad.nonzero().flatten().tolist()}")
    d_norm, a_hat, ab, b_perp, _ = _geometry(anchors)
    b_perp_norm = b_perp.norm(dim=1)
    b_hat = b_perp / b_perp_norm[:, None]
    zeros = torch.zeros_like(d_norm)
    coords = torch.stack([torch.stack([zeros, zeros], 1),
                          torch.stack([d_norm, zeros], 1),
                          torch.stack([ab, b_perp_norm], 1)], dim=1)  # [T, 3, 2]
    shape = (anchors.shape[0], *anchors.shape[2:])
    return a_hat.reshape(shape), b_hat.reshape(shape), coords


def plane_basis(x1: Tensor, x2: Tensor, x3: Tensor, eps: float = DEFAULT_EPS
                ) -> tuple[Tensor, Tensor, Tensor]:
    """``(a_hat [*shape], b_hat [*shape], coords [3, 2])`` of one triplet (float64)."""
    a_hat, b_hat, coords = plane_basis_batch(torch.stack([x1, x2, x3])[None], eps)
    return a_hat[0], b_hat[0], coords[0]


def plane_axes(coords: Tensor, resolution: int, margin: float) -> tuple[Tensor, Tensor]:
    """Grid axes ``u [T, R]``, ``v [T, R]`` over the bounding box of ``coords [T, 3, 2]``
    widened by ``margin`` times each side."""
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    lo, hi = coords.amin(dim=1), coords.amax(dim=1)  # [T, 2]
    lo, hi = lo - margin * (hi - lo), hi + margin * (hi - lo)
    steps = torch.linspace(0, 1, resolution, dtype=coords.dtype, device=coords.device)
    axes = lo[:, :, None] + (hi - lo)[:, :, None] * steps  # [T, 2, R]
    return axes[:, 0], axes[:, 1]


class PlaneGrid:
    """The T*R*R grid points of T planes as a virtual list (plane-major, then flat index j*R+i),
    generated slice by slice so that no more than one slice exists at once."""

    def __init__(self, anchors: Tensor, resolution: int, margin: float, eps: float = DEFAULT_EPS):
        self.shape = tuple(anchors.shape[2:])
        self.dtype = anchors.dtype
        self.resolution = resolution
        a_hat, b_hat, self.coords = plane_basis_batch(anchors, eps)
        self.u, self.v = plane_axes(self.coords, resolution, margin)  # [T, R] each
        T = anchors.shape[0]
        # points are built in the anchors' dtype: float32 is ample for x1 + u·â + v·b̂
        self.origin = anchors[:, 0].reshape(T, -1)  # [T, D]
        self.basis = torch.stack([a_hat.reshape(T, -1), b_hat.reshape(T, -1)], 1).to(self.dtype)
        jj, ii = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
        self._i, self._j = ii.flatten().to(anchors.device), jj.flatten().to(anchors.device)
        self.n_points = T * resolution * resolution

    def coefficients(self, start: int, end: int) -> tuple[Tensor, Tensor]:
        """Plane index ``t [n]`` and plane coordinates ``(u, v) [n, 2]`` (float64) of the flat slice."""
        per_plane = self.resolution ** 2
        k = torch.arange(start, end, device=self.u.device)
        t, flat = k // per_plane, k % per_plane
        return t, torch.stack([self.u[t, self._i[flat]], self.v[t, self._j[flat]]], 1)

    def points(self, start: int, end: int) -> Tensor:
        """Grid points ``[end - start, *shape]`` of the flat slice [start, end): x1 + u·â + v·b̂."""
        t, uv = self.coefficients(start, end)
        uv = uv.to(self.dtype)
        pts = self.origin[t] + uv[:, :1] * self.basis[t, 0] + uv[:, 1:] * self.basis[t, 1]  # [n, D]
        return pts.reshape(end - start, *self.shape)


def plane_grid(anchors: Tensor, resolution: int, margin: float, eps: float = DEFAULT_EPS
               ) -> tuple[Tensor, Tensor, Tensor]:
    """All grid points ``[T, R*R, *shape]`` (flat index j*R + i) and axes ``u, v [T, R]``.

    Materializes everything: for large inputs use ``iter_plane_points`` or ``predict_planes``.
    """
    grid = PlaneGrid(anchors, resolution, margin, eps)
    T = anchors.shape[0]
    points = grid.points(0, grid.n_points).reshape(T, resolution * resolution, *grid.shape)
    return points, grid.u, grid.v


def iter_plane_points(anchors: Tensor, resolution: int, margin: float, chunk_points: int,
                      eps: float = DEFAULT_EPS) -> Iterator[Tensor]:
    """The T*R*R grid points in order (plane-major, then j*R + i), ``chunk_points`` at a time
    (chunks may span planes); each chunk is ``[n, *shape]``."""
    grid = PlaneGrid(anchors, resolution, margin, eps)
    for start in range(0, grid.n_points, chunk_points):
        yield grid.points(start, min(start + chunk_points, grid.n_points))


def predict_planes(
    logits_fn: LogitsFn,
    anchors: Tensor,
    resolution: int = 50,
    margin: float = 0.1,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
    eps: float = DEFAULT_EPS,
) -> Tensor:
    """Argmax label maps ``[S, T, R, R]`` (int64, indexed [.., j (v), i (u)]) of the planes through
    the triplets ``anchors [T, 3, *shape]``.

    Points of several planes share one forward call; at most ``max_points_per_call`` points exist
    at once. ``amp_dtype`` (e.g. torch.bfloat16 on CUDA) runs the forward under autocast. A model
    wrapped by ``as_logits_fn`` runs its first layer on the anchors only (``predict_affine``).
    """
    grid = PlaneGrid(anchors, resolution, margin, eps)
    labels = predict_affine(logits_fn, anchors[:, 0], grid.basis.reshape(-1, 2, *grid.shape), grid.coefficients,
                            grid.n_points, max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)
    return labels.reshape(labels.shape[0], anchors.shape[0], resolution, resolution)
