"""Label noise on the train split, as defined in METHODS.md ("Label noise").

All randomness comes from `torch.Generator().manual_seed(seed)` on the CPU, so the noisy labels
depend only on (clean labels, kind, rate, seed, pairs): never on the training seed or device.

Rules where METHODS.md leaves a choice:
- `symmetric` (exact): M = round_half_up(rate * N) labels change. M is split over the original
  classes in proportion to class size by the largest-remainder rule: class c gets
  floor(M * n_c / N), and the remaining labels go one each to the classes with the largest
  fractional parts (ties to the lower class index). So every class's count m_c is within 1 of
  M * n_c / N and the counts sum to M. Within a class the m_c points are a uniformly random
  subset; each gets a uniformly drawn class among the other C - 1.
- `uniform` (per-sample): each label independently, with probability rate, is replaced by a
  uniformly drawn class among all C (so it may stay the same: about rate * (C - 1) / C change).
- `uniform_incorrect` (per-sample, Nakkiran et al. 2019): each label independently, with
  probability rate, is replaced by a uniformly drawn INCORRECT class, one of the other C - 1 (so
  about rate * N labels change, every replaced one to a different class).
- `asymmetric` (exact per source class): for each source class s of `pairs`, exactly
  round_half_up(rate * n_s) uniformly chosen points of clean class s are relabeled pairs[s]. The
  points are chosen from the clean labels, so flips never chain (cat->dog and dog->cat swap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ddsweep.data.constants import CIFAR10_ASYMMETRIC_PAIRS
from ddsweep.errors import DataError

NOISE_KINDS = ("symmetric", "uniform", "uniform_incorrect", "asymmetric")


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    noisy: torch.Tensor = field(repr=False)  # [N] int64, the labels trained on
    clean: torch.Tensor = field(repr=False)  # [N] int64
    changed: torch.Tensor = field(repr=False)  # [N] bool, noisy != clean

    @property
    def noise_fraction(self) -> float:
        return self.changed.float().mean().item() if self.changed.numel() else 0.0


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def apply_label_noise(
    clean: torch.Tensor,
    num_classes: int,
    *,
    kind: str,
    rate: float,
    seed: int,
    pairs: dict[int, int] | None = None,
) -> NoisyLabels:
    """Corrupt `clean` [N] int64 labels in 0..num_classes-1; see the module docstring."""
    if kind not in NOISE_KINDS:
        raise DataError(f"data.noise.kind: {kind!r} is not a label-noise kind; choose one of {', '.join(NOISE_KINDS)}")
    valid_rate = isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0.0 <= rate < 1.0
    if not valid_rate:
        raise DataError(f"data.noise.rate: must be in [0, 1), got {rate!r}")
    labels = clean.detach().to("cpu", torch.int64)  # [N]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"clean labels must lie in 0..{num_classes - 1}")
    generator = torch.Generator().manual_seed(seed)
    if kind == "symmetric":
        noisy = _symmetric(labels, num_classes, rate, generator)
    elif kind == "uniform":
        noisy = _uniform(labels, num_classes, rate, generator)
    elif kind == "uniform_incorrect":
        noisy = _uniform_incorrect(labels, num_classes, rate, generator)
    else:
        noisy = _asymmetric(labels, _check_pairs(pairs, num_classes), rate, generator)
    noisy = noisy.to(clean.device)
    clean = clean.detach().to(torch.int64)
    return NoisyLabels(noisy=noisy, clean=clean, changed=noisy != clean)


def symmetric_counts(class_sizes: torch.Tensor, rate: float) -> torch.Tensor:
    """[C] number of labels changed per class by `symmetric` noise (largest-remainder rule)."""
    sizes = class_sizes.to(torch.float64)
    total = _round_half_up(rate * sizes.sum().item())
    quota = total * sizes / sizes.sum().clamp(min=1.0)  # [C]
    counts = quota.floor().to(torch.int64)
    remainder = quota - counts
    # stable sort: among equal remainders the lower class index comes first
    order = torch.sort(-remainder, stable=True).indices
    counts[order[: total - counts.sum().item()]] += 1
    return counts


def _symmetric(labels: torch.Tensor, num_classes: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    counts = symmetric_counts(torch.bincount(labels, minlength=num_classes), rate)  # [C]
    if counts.sum() > 0 and num_classes < 2:
        raise DataError("data.noise.kind: symmetric noise needs at least 2 classes")
    noisy = labels.clone()
    for c in range(num_classes):
        members = torch.nonzero(labels == c).squeeze(1)  # [n_c]
        chosen = members[torch.randperm(len(members), generator=generator)[: counts[c]]]
        # c + U{1..C-1} mod C is uniform over the other classes
        shift = torch.randint(1, num_classes, (len(chosen),), generator=generator) if num_classes > 1 else 0
        noisy[chosen] = (c + shift) % num_classes
    return noisy


def _uniform(labels: torch.Tensor, num_classes: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    replace = torch.rand(labels.shape, generator=generator) < rate  # [N]
    drawn = torch.randint(0, num_classes, labels.shape, generator=generator)  # [N]
    return torch.where(replace, drawn, labels)


def _uniform_incorrect(labels: torch.Tensor, num_classes: int, rate: float,
                       generator: torch.Generator) -> torch.Tensor:
    if rate > 0 and num_classes < 2:
        raise DataError("data.noise.kind: uniform_incorrect noise needs at least 2 classes")
    replace = torch.rand(labels.shape, generator=generator) < rate  # [N] Bernoulli(rate)
    # y + U{1..C-1} mod C is uniform over the C - 1 classes other than y
    shift = torch.randint(1, max(num_classes, 2), labels.shape, generator=generator)  # [N]
    return torch.where(replace, (labels + shift) % num_classes, labels)


def _check_pairs(pairs: dict[int, int] | None, num_classes: int) -> dict[int, int]:
    if pairs is None:
        if num_classes != 10:
            raise DataError(
                f"data.noise.pairs: asymmetric noise on {num_classes} classes needs a source->target "
                "class map (the default is the CIFAR-10 map, for 10 classes only)"
            )
        return dict(CIFAR10_ASYMMETRIC_PAIRS)
    checked = {}
    for source, target in pairs.items():
        valid = all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < num_classes for v in (source, target))
        if not valid or source == target:
            raise DataError(
                f"data.noise.pairs: {source!r}->{target!r} is not a flip between two different classes "
                f"in 0..{num_classes - 1}"
            )
        checked[source] = target
    return checked


def _asymmetric(labels: torch.Tensor, pairs: dict[int, int], rate: float, generator: torch.Generator) -> torch.Tensor:
    noisy = labels.clone()
    for source in sorted(pairs):
        members = torch.nonzero(labels == source).squeeze(1)  # from the clean labels: no chains
        count = _round_half_up(rate * len(members))
        chosen = members[torch.randperm(len(members), generator=generator)[:count]]
        noisy[chosen] = pairs[source]
    return noisy
