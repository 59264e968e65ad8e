"""Reproducibility between S models trained alike (METHODS.md, "Reproducibility between two
models trained alike").

Each metric has a pairwise form, a float64 ``[S, S]`` matrix (symmetric; diagonal = the value of a
model against itself), and a summary: the mean over all pairs i < j, or None when S = 1 (there is
no pair to compare, which is not the same as perfect agreement).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ddsweep.pipeline.measure.evaluate import log_softmax_classes


def mean_over_pairs(matrix: Tensor) -> float | None:
    """Mean of the entries i < j of a pairwise matrix ``[S, S]``; None when S = 1."""
    S = matrix.shape[0]
    if S < 2:
        return None
    i, j = torch.triu_indices(S, S, offset=1)
    return float(matrix[i, j].double().mean())


def _pairwise(x: Tensor, fn: Callable[[Tensor, Tensor], Tensor], diagonal: float) -> Tensor:
    """[S, S] of fn(x[i], x[j]), symmetric; the diagonal (a model against itself) is `diagonal`
    by definition, not computed."""
    S = x.shape[0]
    out = torch.full((S, S), diagonal, dtype=torch.float64)
    for i in range(S):
        for j in range(i + 1, S):
            out[i, j] = out[j, i] = fn(x[i], x[j])
    return out


def plane_agreement_matrix(labels: Tensor) -> Tensor:
    """``[S, S]``: fraction of all grid points of ``labels [S, T, R, R]`` (any trailing shape)
    where models i and j predict the same class."""
    flat = labels.reshape(labels.shape[0], -1)
    return _pairwise(flat, lambda a, b: (a == b).double().mean(), diagonal=1.0)


def plane_agreement(labels: Tensor) -> float | None:
    """Plane agreement of ``labels [S, T, R, R]``, mean over pairs (1.0 for identical models)."""
    return mean_over_pairs(plane_agreement_matrix(labels))


def label_disagreement_matrix(labels: Tensor) -> Tensor:
    """``[S, S]``: ΔH = mean over x of 1[label_i(x) ≠ label_j(x)] from argmax labels ``[S, N]``."""
    return _pairwise(labels, lambda a, b: (a != b).double().mean(), diagonal=0.0)


def disagreement_matrix(logits: Tensor) -> Tensor:
    """``[S, S]``: ΔH = mean over x of 1[argmax p_i(x) ≠ argmax p_j(x)] from ``logits [S, N, C]``."""
    return label_disagreement_matrix(logits.argmax(dim=-1))


def test_disagreement(logits: Tensor) -> float | None:
    """Top-1 disagreement ΔH of ``logits [S, N, C]``, mean over pairs."""
    return mean_over_pairs(disagreement_matrix(logits))


# Probabilities below exp(LOG_PROB_FLOOR) = 1.8e-35 count as that: far below what a float32 sum of
# probabilities resolves (6e-8), and it keeps the exponential out of subnormal floats (exp(-88) and
# less), which cost x86 cores about ten times as much per element in every op that touches them.
LOG_PROB_FLOOR = -80.0


def probabilities(log_probs: Tensor) -> Tensor:
    """Softmax probabilities (fp32) from log-softmax probabilities (any shape), floored at
    exp(LOG_PROB_FLOOR)."""
    return log_probs.float().clamp_min(LOG_PROB_FLOOR).exp()


def prob_l1_matrix(probs: Tensor) -> Tensor:
    """``[S, S]``: Δ1 = mean over x of ½ Σ_k |p_i(k|x) − p_j(k|x)| from probabilities ``[S, N, C]``
    (each point's sum and the mean over points in float64)."""
    return _pairwise(probs, lambda a, b: 0.5 * (a - b).abs().sum(dim=-1, dtype=torch.float64).mean(), diagonal=0.0)


def pd_l1_matrix(logits: Tensor) -> Tensor:
    """``[S, S]``: Δ1 (``prob_l1_matrix``) of the softmax probabilities of ``logits [S, N, C]``."""
    return prob_l1_matrix(probabilities(log_softmax_classes(logits)))


def pd_l1(logits: Tensor) -> float | None:
    """L1 prediction difference Δ1 of ``logits [S, N, C]``, mean over pairs."""
    return mean_over_pairs(pd_l1_matrix(logits))
