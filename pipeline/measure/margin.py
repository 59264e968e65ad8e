"""Margins along directions between train points (METHODS.md, "Margin (optional)").

From a base point x_base, step along the unit direction towards x_toward on a fixed, growing grid
of distances s_1 < s_2 < ... < s_K. The margin is the last distance before the predicted label
first differs from the label predicted at x_base itself:
    first k with label(x_base + s_k·d) ≠ label(x_base):  margin = s_{k-1}  (0 when k = 1)
    no change within the grid:                            margin = s_K     (a lower bound)
The grid is in input-space distance and may run past x_toward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.measure.evaluate import LogitsFn, predict_affine


def geometric_steps(first: float, last: float, n: int) -> Tensor:
    """``n`` geometrically growing distances from ``first`` to ``last`` (float64)."""
    if not 0 < first < last or n < 2:
        raise ValueError(f"need 0 < first < last and n >= 2, got {first}, {last}, {n}")
    return torch.logspace(torch.log10(torch.tensor(first)), torch.log10(torch.tensor(last)), n,
                          dtype=torch.float64)


def margins(
    logits_fn: LogitsFn,
    x_base: Tensor,
    x_toward: Tensor,
    steps: Tensor,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Margins ``[S, P]`` (float64) of the base points ``x_base [P, *shape]`` towards
    ``x_toward [P, *shape]`` on the step grid ``steps [K]`` (positive, strictly increasing)."""
    steps = steps.double().cpu()
    if steps.dim() != 1 or steps.numel() == 0 or steps[0] <= 0 or (steps.diff() <= 0).any():
        raise ValueError("steps must be a non-empty 1-D grid of positive, increasing distances")
    P = x_base.shape[0]
    base = x_base.reshape(P, -1)
    direction = x_toward.reshape(P, -1).double() - base.double()
    norm = direction.norm(dim=1, keepdim=True)
    if (norm == 0).any():
        raise ValueError("x_base and x_toward must differ for every pair")
    direction = (direction / norm).to(base.dtype)  # [P, D]
    dist = torch.cat([steps.new_zeros(1), steps]).to(base.dtype).to(base.device)  # [K+1]
    K1 = dist.numel()

    def coefficients(start: int, end: int) -> tuple[Tensor, Tensor]:
        k = torch.arange(start, end, device=base.device)
        return k // K1, dist[k % K1][:, None]  # pair, distance

    labels = predict_affine(logits_fn, x_base, direction.reshape(x_base.shape)[:, None], coefficients,
                            P * K1, max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)
    labels = labels.reshape(-1, P, K1).cpu()  # [S, P, K+1]; column 0 is the base point
    changed = labels[..., 1:] != labels[..., :1]  # [S, P, K]
    first = torch.where(changed.any(-1), changed.int().argmax(-1), steps.numel())  # [S, P]
    before = torch.cat([steps.new_zeros(1), steps])  # before[k] = s_k, with s_0 = 0
    return before[first]


def margin_summary(margin: Tensor, changed: Tensor) -> dict[str, Tensor]:
    """Mean and median over base points of ``margin [S, P]``, split by whether each base point is
    mislabeled (``changed [P]`` bool). Values are ``[S]``; a group with no base point is absent.
    Keys: clean/mean, clean/median, mislabeled/mean, mislabeled/median."""
    changed = changed.bool().cpu()
    margin = margin.double().cpu()
    out = {}
    for name, mask in (("clean", ~changed), ("mislabeled", changed)):
        if mask.any():
            out[f"{name}/mean"] = margin[:, mask].mean(dim=-1)
            out[f"{name}/median"] = margin[:, mask].quantile(0.5, dim=-1)
    return out
