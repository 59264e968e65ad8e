"""Model evaluation on fixed inputs: logits in chunks, argmax labels of generated points, and the
per-split metrics of the double-descent bookkeeping (METHODS.md, "Double-descent bookkeeping")."""

from __future__ import annotations

import contextlib
from typing import Callable, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LogitsFn = Callable[[Tensor], Tensor]  # x [N, *in_shape] -> logits [S, N, C]


def as_logits_fn(model: nn.Module) -> LogitsFn:
    """Wrap a seed-stacked model as ``logits_fn(x [N, *in_shape]) -> [S, N, C]``.

    Each call feeds ``x.unsqueeze(0)`` (broadcast to all S copies) in eval mode without autograd
    and restores the model's train/eval mode afterwards. A model that returns ``[N, C]`` (no seed
    axis) is treated as S=1.
    """

    def logits_fn(x: Tensor) -> Tensor:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(x.unsqueeze(0))  # [S, N, C]
        finally:
            model.train(was_training)
        return out.unsqueeze(0) if out.dim() == 2 else out

    return logits_fn


def _to_logits_fn(model_or_fn: Union[nn.Module, LogitsFn]) -> LogitsFn:
    return as_logits_fn(model_or_fn) if isinstance(model_or_fn, nn.Module) else model_or_fn


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def batched_logits(
    model_or_fn: Union[nn.Module, LogitsFn],
    x: Tensor,
    batch_size: int,
    *,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Logits ``[S, N, C]`` (float32) of ``x [N, *in_shape]``, ``batch_size`` inputs per call,
    in eval mode without autograd."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    logits_fn = _to_logits_fn(model_or_fn)
    chunks = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size]
            with _autocast(xb.device, amp_dtype):
                chunks.append(logits_fn(xb).float())  # [S, n, C]
    return torch.cat(chunks, dim=1)


def predict_labels(
    logits_fn: LogitsFn,
    n_points: int,
    make_points: Callable[[int, int], Tensor],
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Argmax labels ``[S, n_points]`` (int64) of points generated on demand.

    ``make_points(start, end)`` returns the points ``[end - start, *in_shape]`` of that slice of a
    virtual list of ``n_points`` inputs, so at most ``max_points_per_call`` of them exist at once.
    """
    if max_points_per_call < 1:
        raise ValueError(f"max_points_per_call must be >= 1, got {max_points_per_call}")
    chunks = []
    with torch.no_grad():
        for start in range(0, n_points, max_points_per_call):
            end = min(start + max_points_per_call, n_points)
            points = make_points(start, end)  # [end - start, *in_shape]
            with _autocast(points.device, amp_dtype):
                logits = logits_fn(points)  # [S, end - start, C]
            chunks.append(logits.argmax(dim=-1))
    return torch.cat(chunks, dim=1)


def split_metrics(
    logits: Tensor,
    y_noisy: Tensor,
    y_clean: Tensor | None = None,
    changed: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-seed metrics ``[S]`` of one split from its logits ``[S, N, C]``.

    Keys: ``loss`` (mean cross-entropy against ``y_noisy``, the labels trained on), ``error``
    (against ``y_noisy``), and, when ``y_clean`` is given, ``clean_error`` (against the clean
    labels) and ``memorized`` (fraction of the mislabeled points predicted as their noisy label).
    ``changed`` is the mask of mislabeled points (default: ``y_noisy != y_clean``); ``memorized``
    is absent when no point is mislabeled. For the test split pass only ``y_noisy`` (its labels).
    """
    S, N, C = logits.shape
    logits = logits.float()
    y_noisy = y_noisy.to(logits.device)
    pred = logits.argmax(dim=-1)  # [S, N]
    loss = F.cross_entropy(logits.reshape(S * N, C), y_noisy.repeat(S), reduction="none")
    out = {
        "loss": loss.view(S, N).mean(dim=1),
        "error": (pred != y_noisy).float().mean(dim=1),
    }
    if y_clean is not None:
        y_clean = y_clean.to(logits.device)
        out["clean_error"] = (pred != y_clean).float().mean(dim=1)
        if changed is None:
            changed = y_noisy != y_clean
    if changed is not None:
        changed = changed.to(logits.device).bool()
        if changed.any():
            out["memorized"] = (pred[:, changed] == y_noisy[changed]).float().mean(dim=1)
    return out
