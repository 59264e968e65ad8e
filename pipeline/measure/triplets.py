"""Triplets of inputs that span decision planes, and pairs for segments and margins
(METHODS.md, "Decision plane through three inputs" and "Reproducibility").

Families (indices into the train split unless said otherwise):
    train          3 distinct random train points
    test           3 distinct random test points (indices into the test split)
    test_distinct  3 test points of three distinct classes: 3 distinct classes drawn uniformly
                   among the classes present, then one random test point of each
    clean_class    3 distinct correctly-labeled train points of one class: the class drawn
                   uniformly among classes with at least 3 clean points
    mislabeled     columns [clean, clean, mislabeled]: a mislabeled train point drawn uniformly
                   among those whose true class c has at least 2 clean points, then 2 distinct
                   clean points of class c
A triplet whose points are repeated or collinear in input space is redrawn (at most ``max_tries``
rounds, then ValueError). Randomness only from the ``generator`` passed in (a CPU generator).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ddsweep.errors import ConfigError
from ddsweep.pipeline.measure.planes import DEFAULT_EPS, degenerate_mask

FAMILIES = ("train", "test", "test_distinct", "clean_class", "mislabeled")
TEST_FAMILIES = ("test", "test_distinct")
_CHECK_ROWS = 1024  # triplets checked for degeneracy per batch (bounds memory on large inputs)


class FamilyUnavailableError(ConfigError, ValueError):
    """A triplet family that cannot be drawn from this data (e.g. ``mislabeled`` without noise)."""


def _cpu_long(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().cpu().long()


def _clean_mask(y_noisy: Tensor, y_clean: Tensor | None, changed: Tensor | None) -> Tensor:
    if changed is not None:
        return ~changed.detach().cpu().bool()
    if y_clean is not None:
        return y_noisy == y_clean
    return torch.ones_like(y_noisy, dtype=torch.bool)


class _Groups:
    """Indices where ``mask`` holds, grouped by ``keys``: members of group c are
    ``order[offsets[c] : offsets[c] + counts[c]]``."""

    def __init__(self, keys: Tensor, mask: Tensor, num_groups: int):
        idx = mask.nonzero().flatten()
        k = keys[idx]
        sort = torch.sort(k, stable=True).indices
        self.order = idx[sort]
        self.counts = torch.bincount(k, minlength=num_groups)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts

    def members(self, group: Tensor, pos: Tensor) -> Tensor:
        return self.order[self.offsets[group] + pos]


def _uniform_below(m: Tensor, generator: torch.Generator) -> Tensor:
    """One integer uniform in [0, m) per entry of ``m`` (int64, all ≥ 1)."""
    r = torch.rand(m.shape, generator=generator, dtype=torch.float64)
    return torch.minimum((r * m).long(), m - 1)


def _distinct_below(m: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``[n, k]`` distinct integers in [0, m_row) per row (uniform over ordered k-tuples)."""
    cols: list[Tensor] = []
    for c in range(k):
        r = _uniform_below(m - c, generator)
        if cols:
            # shift past the values already taken, smallest first: r becomes the r-th free slot
            for taken in torch.stack(cols, 1).sort(dim=1).values.unbind(1):
                r = r + (r >= taken).long()
        cols.append(r)
    return torch.stack(cols, 1)


def _num_classes(*labels: Tensor | None) -> int:
    return max(int(t.max()) + 1 for t in labels if t is not None and t.numel())


def _unavailable(family: str, *, y_noisy=None, y_clean=None, changed=None, y_test=None,
                 n_train: int | None = None, n_test: int | None = None) -> str | None:
    """Why ``family`` cannot be drawn from this data, or None when it can."""
    key = f"planes.families: '{family}'"
    if family not in FAMILIES:
        return f"{key} is not a triplet family (allowed: {', '.join(FAMILIES)})"
    if family == "train":
        n = n_train if n_train is not None else (None if y_noisy is None else len(y_noisy))
        return None if n is not None and n >= 3 else f"{key} needs at least 3 train points"
    if family == "test":
        n = n_test if n_test is not None else (None if y_test is None else len(y_test))
        return None if n is not None and n >= 3 else f"{key} needs at least 3 test points"
    if family == "test_distinct":
        if y_test is None or y_test.unique().numel() < 3:
            return f"{key} needs test labels of at least 3 classes"
        return None
    if y_noisy is None:
        return f"{key} needs the train labels"
    y_noisy, y_clean = _cpu_long(y_noisy), _cpu_long(y_clean)
    clean = _clean_mask(y_noisy, y_clean, changed)
    C = _num_classes(y_noisy, y_clean)
    clean_counts = torch.bincount(y_noisy[clean], minlength=C)
    if family == "clean_class":
        if (clean_counts >= 3).any():
            return None
        return f"{key} needs a class with at least 3 correctly-labeled train points"
    # mislabeled
    if not (~clean).any():
        return f"{key} needs label noise (data.noise.rate > 0)"
    if y_clean is None:
        return f"{key} needs the clean train labels"
    if (clean_counts[y_clean[~clean]] >= 2).any():
        return None
    return f"{key} needs a mislabeled point whose true class has at least 2 clean points"


def available_families(*, y_noisy: Tensor | None = None, y_clean: Tensor | None = None,
                       changed: Tensor | None = None, y_test: Tensor | None = None,
                       n_train: int | None = None, n_test: int | None = None) -> list[str]:
    """The families of FAMILIES that can be drawn from this data."""
    return [f for f in FAMILIES if _unavailable(
        f, y_noisy=y_noisy, y_clean=y_clean, changed=changed, y_test=y_test,
        n_train=n_train, n_test=n_test) is None]


def check_family(family: str, *, y_noisy: Tensor | None = None, y_clean: Tensor | None = None,
                 changed: Tensor | None = None, y_test: Tensor | None = None,
                 n_train: int | None = None, n_test: int | None = None) -> None:
    """Raise FamilyUnavailableError (a ConfigError and a ValueError) with a one-line message
    naming ``planes.families`` when ``family`` cannot be drawn from this data."""
    why = _unavailable(family, y_noisy=y_noisy, y_clean=y_clean, changed=changed, y_test=y_test,
                       n_train=n_train, n_test=n_test)
    if why is not None:
        raise FamilyUnavailableError(why)


def _sampler(family: str, y_noisy, y_clean, changed, y_test, n_points: int):
    """A function ``draw(n, generator) -> idx [n, 3]`` for the family (no degeneracy check)."""
    if family in ("train", "test"):
        return lambda n, g: _distinct_below(torch.full((n,), n_points), 3, g)
    if family == "test_distinct":
        C = _num_classes(y_test)
        groups = _Groups(y_test, torch.ones_like(y_test, dtype=torch.bool), C)
        present = (groups.counts > 0).nonzero().flatten()

        def draw(n, g):
            classes = present[_distinct_below(torch.full((n,), len(present)), 3, g)]  # [n, 3]
            return groups.members(classes, _uniform_below(groups.counts[classes], g))
        return draw
    clean = _clean_mask(y_noisy, y_clean, changed)
    C = _num_classes(y_noisy, y_clean)
    clean_groups = _Groups(y_noisy, clean, C)
    if family == "clean_class":
        eligible = (clean_groups.counts >= 3).nonzero().flatten()

        def draw(n, g):
            c = eligible[_uniform_below(torch.full((n,), len(eligible)), g)]  # [n]
            pos = _distinct_below(clean_groups.counts[c], 3, g)  # [n, 3]
            return clean_groups.members(c[:, None], pos)
        return draw
    # mislabeled
    mis = (~clean).nonzero().flatten()
    mis = mis[clean_groups.counts[y_clean[mis]] >= 2]

    def draw(n, g):
        m = mis[_uniform_below(torch.full((n,), len(mis)), g)]  # [n]
        c = y_clean[m]
        pos = _distinct_below(clean_groups.counts[c], 2, g)  # [n, 2]
        return torch.cat([clean_groups.members(c[:, None], pos), m[:, None]], 1)
    return draw


def _rejection(draw, n: int, generator: torch.Generator, bad_fn, max_tries: int, what: str
               ) -> Tensor:
    """Draw n rows, redrawing the rows ``bad_fn`` flags, at most ``max_tries`` rounds."""
    idx = draw(n, generator)
    todo = torch.arange(n)
    for _ in range(max_tries):
        bad = bad_fn(idx[todo])
        todo = todo[bad]
        if todo.numel() == 0:
            return idx
        idx[todo] = draw(todo.numel(), generator)
    raise ValueError(f"could not draw {n} {what} without repeated or collinear points in "
                     f"{max_tries} tries ({todo.numel()} still degenerate); the data may hold "
                     f"too many duplicate inputs")


def draw_triplets(
    family: str,
    n: int,
    *,
    generator: torch.Generator,
    y_noisy: Tensor | None = None,
    y_clean: Tensor | None = None,
    changed: Tensor | None = None,
    x: Tensor | None = None,
    y_test: Tensor | None = None,
    x_test: Tensor | None = None,
    eps: float = DEFAULT_EPS,
    max_tries: int = 100,
) -> Tensor:
    """Indices ``[n, 3]`` (int64) of ``n`` non-degenerate triplets of ``family`` (module doc).

    Train families index ``x``/``y_noisy``; ``test`` and ``test_distinct`` index ``x_test``/
    ``y_test``. ``changed`` (mask of mislabeled train points) defaults to ``y_noisy != y_clean``.
    Raises FamilyUnavailableError when the data cannot supply the family.
    """
    y_noisy, y_clean, y_test = _cpu_long(y_noisy), _cpu_long(y_clean), _cpu_long(y_test)
    points = x_test if family in TEST_FAMILIES else x
    check_family(family, y_noisy=y_noisy, y_clean=y_clean, changed=changed, y_test=y_test,
                 n_train=None if x is None else x.shape[0],
                 n_test=None if x_test is None else x_test.shape[0])
    if points is None:
        raise ValueError(f"draw_triplets('{family}') needs "
                         f"{'x_test' if family in TEST_FAMILIES else 'x'} to reject degenerate "
                         "triplets")
    draw = _sampler(family, y_noisy, y_clean, changed, y_test, points.shape[0])

    def degenerate(rows: Tensor) -> Tensor:  # rows [m, 3] -> bool [m]
        out = [degenerate_mask(points[chunk.to(points.device)], eps).cpu()
               for chunk in rows.split(_CHECK_ROWS)]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)

    return _rejection(draw, n, generator, degenerate, max_tries, f"'{family}' triplets")


def draw_pairs(
    n: int,
    *,
    generator: torch.Generator,
    n_points: int,
    x: Tensor | None = None,
    eps: float = DEFAULT_EPS,
    max_tries: int = 100,
) -> Tensor:
    """Indices ``[n, 2]`` of pairs of distinct points among ``n_points``; with ``x`` given, pairs
    of identical inputs (‖xa − xb‖ ≤ eps·max(‖xa‖, ‖xb‖)) are redrawn."""
    if n_points < 2:
        raise ValueError(f"draw_pairs needs at least 2 points, got {n_points}")

    def draw(m, g):
        return _distinct_below(torch.full((m,), n_points), 2, g)

    def identical(rows: Tensor) -> Tensor:
        if x is None:
            return torch.zeros(rows.shape[0], dtype=torch.bool)
        out = []
        for chunk in rows.split(_CHECK_ROWS):
            pts = x[chunk.to(x.device)].reshape(chunk.shape[0], 2, -1).double()  # [m, 2, D]
            dist = (pts[:, 0] - pts[:, 1]).norm(dim=1)
            out.append((dist <= eps * pts.norm(dim=2).amax(dim=1)).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)

    return _rejection(draw, n, generator, identical, max_tries, "pairs")
