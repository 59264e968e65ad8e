"""Margins along directions between train points (METHODS.md, "Margin (optional)").

From a base point x_base, step along the unit direction towards x_toward on a fixed, growing grid
of distances s_1 < s_2 < ... < s_K. The crossing distance of a direction is the last distance
before the predicted label first differs from the label predicted at x_base itself:
    first k with label(x_base + s_k·d) ≠ label(x_base):  s_{k-1}  (0 when k = 1)
The grid is in input-space distance and may run past x_toward. Two rules turn crossings into a
base point's margin (`margin.method`):

- `lower_bound` (`margins`): one direction per base point; a direction whose label never changes
  within the grid gets s_K (a lower bound).
- `dbviz` (`direction_margins` + `dbviz_average`), as dbViz's `avg_margin` (Somepalli et al. 2022,
  double-descent/dd_margin.py): J = N + 10 candidate directions towards random train points per
  base point, on dbViz's step grid (`dbviz_steps`); directions that never cross are dropped, the
  margin is the mean over the first N that cross, and a base point with fewer than N // 2
  crossing directions is dropped (NaN) from the summary.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ddsweep.pipeline.measure.evaluate import LogitsFn, predict_affine


def geometric_steps(first: float, last: float, n: int) -> Tensor:
    """``n`` geometrically growing distances from ``first`` to ``last`` (float64)."""
    if not 0 < first < last or n < 2:
        raise ValueError(f"need 0 < first < last and n >= 2, got {first}, {last}, {n}")
    return torch.logspace(torch.log10(torch.tensor(first)), torch.log10(torch.tensor(last)), n,
                          dtype=torch.float64)


def _check_steps(steps: Tensor) -> Tensor:
    steps = steps.double().cpu()
    if steps.dim() != 1 or steps.numel() == 0 or steps[0] <= 0 or (steps.diff() <= 0).any():
        raise ValueError("steps must be a non-empty 1-D grid of positive, increasing distances")
    return steps


def _first_change(logits_fn: LogitsFn, base: Tensor, direction: Tensor, steps: Tensor,
                  **kw) -> Tensor:
    """Index ``[S, P]`` of the first grid step whose label differs from the base point's (K when
    none does), for ``base [P, *shape]`` and unit ``direction [P, *shape]``."""
    P = base.shape[0]
    dist = torch.cat([steps.new_zeros(1), steps]).to(base.dtype).to(base.device)  # [K+1]
    K1 = dist.numel()

    def coefficients(start: int, end: int) -> tuple[Tensor, Tensor]:
        k = torch.arange(start, end, device=base.device)
        return k // K1, dist[k % K1][:, None]  # pair, distance

    labels = predict_affine(logits_fn, base, direction[:, None], coefficients, P * K1, **kw)
    labels = labels.reshape(-1, P, K1).cpu()  # [S, P, K+1]; column 0 is the base point
    changed = labels[..., 1:] != labels[..., :1]  # [S, P, K]
    return torch.where(changed.any(-1), changed.int().argmax(-1), steps.numel())  # [S, P]


def _unit(x_base: Tensor, x_toward: Tensor) -> tuple[Tensor, Tensor]:
    """Unit directions ``[P, *shape]`` from x_base towards x_toward, and which are zero ``[P]``."""
    P = x_base.shape[0]
    direction = x_toward.reshape(P, -1).double() - x_base.reshape(P, -1).double()  # [P, D]
    norm = direction.norm(dim=1, keepdim=True)
    zero = norm[:, 0] == 0
    direction = direction / norm.clamp(min=torch.finfo(torch.float64).tiny)
    return direction.to(x_base.dtype).reshape(x_base.shape), zero


def margins(
    logits_fn: LogitsFn,
    x_base: Tensor,
    x_toward: Tensor,
    steps: Tensor,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """`lower_bound` margins ``[S, P]`` (float64) of the base points ``x_base [P, *shape]`` towards
    ``x_toward [P, *shape]`` on the step grid ``steps [K]`` (positive, strictly increasing)."""
    steps = _check_steps(steps)
    direction, zero = _unit(x_base, x_toward)
    if zero.any():
        raise ValueError("x_base and x_toward must differ for every pair")
    first = _first_change(logits_fn, x_base, direction, steps,
                          max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)
    before = torch.cat([steps.new_zeros(1), steps])  # before[k] = s_k, with s_0 = 0
    return before[first]


def direction_margins(
    logits_fn: LogitsFn,
    x_base: Tensor,
    x_toward: Tensor,
    steps: Tensor,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Crossing distances ``[S, P, J]`` (float64) of ``x_base [P, *shape]`` along the directions
    towards each of ``x_toward [P, J, *shape]``; NaN where the label never changes within the grid
    ``steps [K]``, or where the target equals the base point (no direction)."""
    steps = _check_steps(steps)
    P, J = x_toward.shape[:2]
    base = x_base[:, None].expand(P, J, *x_base.shape[1:]).reshape(P * J, *x_base.shape[1:])
    direction, zero = _unit(base, x_toward.reshape(P * J, *x_base.shape[1:]))  # [P*J, *shape]
    first = _first_change(logits_fn, base, direction, steps,
                          max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)  # [S, P*J]
    before = torch.cat([steps.new_zeros(1), steps])  # before[k] = s_k, with s_0 = 0
    never = (first == steps.numel()) | zero  # [S, P*J]
    out = torch.where(never, torch.full_like(before[first], float("nan")), before[first])
    return out.reshape(-1, P, J)


def dbviz_average(crossings: Tensor, directions: int) -> Tensor:
    """dbViz's margin per base point ``[S, P]`` from ``crossings [S, P, J]`` (NaN: no crossing):
    the mean over the first ``directions`` crossing directions in candidate order, NaN where fewer
    than ``directions // 2`` of the J candidates cross (dbViz's `avg_margin`)."""
    if directions < 1:
        raise ValueError(f"directions must be >= 1, got {directions}")
    crossed = ~crossings.isnan()  # [S, P, J]
    rank = crossed.long().cumsum(-1)  # 1-based rank of each crossing direction among the crossing ones
    used = crossed & (rank <= directions)
    n_used = used.sum(-1)  # [S, P]
    total = torch.where(used, crossings, torch.zeros_like(crossings)).sum(-1)
    mean = total / n_used.clamp(min=1)
    keep = (n_used >= directions // 2) & (n_used > 0)
    return torch.where(keep, mean, torch.full_like(mean, float("nan")))


def dbviz_steps(max_steps: int = 200) -> Tensor:
    """dbViz's distance grid (`delta_counter` in double-descent/dd_margin.py) without its leading 0:
    ``max_steps - 1`` distances growing by 0.01 (11 steps), 0.1 (9), 0.5 (31), 1 (25), 10 (25),
    then 20, summed in the same float order; the default's 199 run from 0.01 to 2251.51."""
    deltas, delta, step = [], 0.0, 0.01
    for count in range(max_steps - 1):
        if 10 < count < 20:
            step = 0.1
        elif 20 <= count <= 50:
            step = 0.5
        elif 50 < count <= 75:
            step = 1.0
        elif 75 < count <= 100:
            step = 10.0
        elif count > 100:
            step = 20.0
        delta += step
        deltas.append(delta)
    return torch.tensor(deltas, dtype=torch.float64)


def draw_directions(points: int, candidates: int, *, n_points: int, generator: torch.Generator) -> Tensor:
    """Indices ``[points, 1 + candidates]``: base points drawn uniformly with replacement (as
    dbViz's ``np.random.choice``), each followed by ``candidates`` targets drawn uniformly with
    replacement among the other points."""
    if n_points < 2:
        raise ValueError(f"draw_directions needs at least 2 points, got {n_points}")
    base = torch.randint(0, n_points, (points,), generator=generator)  # [P]
    target = torch.randint(0, n_points - 1, (points, candidates), generator=generator)  # [P, J]
    target += (target >= base[:, None]).long()  # skip the base itself: uniform over the others
    return torch.cat([base[:, None], target], dim=1)


def margin_summary(margin: Tensor, changed: Tensor) -> dict[str, Tensor]:
    """Mean and median over base points of ``margin [S, P]`` (NaN entries left out), split by
    whether each base point is mislabeled (``changed [P]`` bool). Values are ``[S]``; a group
    with no base point is absent.
    Keys: clean/mean, clean/median, mislabeled/mean, mislabeled/median."""
    changed = changed.bool().cpu()
    margin = margin.double().cpu()
    out = {}
    for name, mask in (("clean", ~changed), ("mislabeled", changed)):
        if mask.any():
            # NaN marks a base point dbViz's rule dropped; a seed with none left gets NaN
            out[f"{name}/mean"] = margin[:, mask].nanmean(dim=-1)
            out[f"{name}/median"] = margin[:, mask].nanquantile(0.5, dim=-1)
    return out
