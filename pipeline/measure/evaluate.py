"""Model evaluation on fixed inputs: logits in chunks, argmax labels of generated points, and the
per-split metrics of the double-descent bookkeeping (METHODS.md, "Double-descent bookkeeping")."""

from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple, Union

import torch
from torch import Tensor, nn

LogitsFn = Callable[[Tensor], Tensor]  # x [N, *in_shape] -> logits [S, N, C]

# predict_affine evaluates at most this many bytes of first-layer output per call. On a CPU a
# wide MLP's grid runs 4x faster in 2,048-point calls (8 MB) than in 16,384-point ones; on a GPU
# the cap only bounds memory (a ResNet18-k stem at k=64, 2 seeds, 32x32: 2,048 points per call).
CPU_STEM_CHUNK_BYTES = 8 << 20
GPU_STEM_CHUNK_BYTES = 1 << 30

# On a CPU a model with a linear first layer (stem output [S, rows, F], the MLPs) evaluates fastest
# when one call's first-layer output stays about the size of a core's L2 cache: 2 copies of a width-300
# MLP evaluate 16,000 points in 193 ms in 218-row calls and in 290 ms in 2,048-row ones (1 thread).
CPU_EVAL_CHUNK_BYTES = 512 << 10
CPU_EVAL_MIN_ROWS = 128


class ModelLogits:
    """``logits_fn(x [N, *in_shape]) -> [S, N, C]`` of a seed-stacked model (see ``as_logits_fn``).

    When the model splits off an affine first layer (``forward_stem`` / ``forward_body``, see
    models.base.FusedModel) and ``affine_stem`` is on, ``stem`` and ``body`` evaluate the two parts
    apart, so that ``predict_affine`` can build the first layer's output of many points by
    linearity instead of running the first layer on each of them.
    """

    def __init__(self, model: nn.Module, affine_stem: bool = True):
        self.model = model
        split = affine_stem and callable(getattr(model, "forward_stem", None))
        self.stem_batch_dim: int | None = getattr(model, "stem_batch_dim", 0) if split else None

    def _eval(self, fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return fn(x)
        finally:
            self.model.train(was_training)

    def __call__(self, x: Tensor) -> Tensor:
        out = self._eval(self.model, x.unsqueeze(0))  # [S, N, C]
        return out.unsqueeze(0) if out.dim() == 2 else out

    def stem(self, x: Tensor) -> Tensor:
        """First-layer output of ``x [N, *in_shape]`` (batch on ``stem_batch_dim``)."""
        return self._eval(self.model.forward_stem, x.unsqueeze(0))

    def body(self, h: Tensor) -> Tensor:
        """Logits ``[S, N, C]`` from first-layer outputs ``h``."""
        return self._eval(lambda t: self.model.forward_head(self.model.forward_body(t)), h)


def as_logits_fn(model: nn.Module, affine_stem: bool = True) -> ModelLogits:
    """Wrap a seed-stacked model as ``logits_fn(x [N, *in_shape]) -> [S, N, C]``.

    Each call feeds ``x.unsqueeze(0)`` (broadcast to all S copies) in eval mode without autograd
    and restores the model's train/eval mode afterwards. A model that returns ``[N, C]`` (no seed
    axis) is treated as S=1. ``affine_stem=False`` turns off the first-layer shortcut of
    ``predict_affine`` (every point then goes through the whole model).
    """
    return ModelLogits(model, affine_stem)


def eval_rows(model: nn.Module, x: Tensor, batch_size: int) -> int:
    """Inputs per call to evaluate `model` on `x [N, *in_shape]`: `batch_size`, or on a CPU, for a
    model with a linear first layer, as many as keep that layer's output near CPU_EVAL_CHUNK_BYTES
    (at least CPU_EVAL_MIN_ROWS, at most `batch_size`)."""
    if x.device.type != "cpu" or getattr(model, "stem_batch_dim", 0) != 1 or len(x) == 0:
        return batch_size
    features = ModelLogits(model).stem(x[:1]).numel()  # S x first-layer width
    return max(1, min(batch_size, max(CPU_EVAL_MIN_ROWS, CPU_EVAL_CHUNK_BYTES // (4 * features))))


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


class SplitOutputs(NamedTuple):
    """A split's logits reduced once for all of its metrics: log-softmax probabilities ``[S, N, C]``
    (fp32) and the argmax labels ``[S, N]`` (of the logits themselves, so ties break as argmax does)."""
    log_probs: Tensor
    labels: Tensor


def log_softmax_classes(logits: Tensor) -> Tensor:
    """log-softmax over the classes (last dim) of ``logits [S, N, C]``, fp32, computed on the
    ``[S, C, N]`` view: torch's CPU kernel over a short contiguous last dim (C = 10) is ~14x slower
    than over a strided dim (4 ms against 0.3 ms for 2 x 12,000 MNIST-1D test points). The same
    function, equal to ``log_softmax(dim=-1)`` to float rounding; returned as a ``[S, N, C]`` view."""
    return logits.float().transpose(-1, -2).log_softmax(dim=-2).transpose(-1, -2)


def split_outputs(logits: Tensor) -> SplitOutputs:
    """``SplitOutputs`` of ``logits [S, N, C]``: one log-softmax and one argmax, which the loss,
    the errors, memorization and the reproducibility metrics then share."""
    logits = logits.float()  # once: log_softmax_classes' own .float() is then a no-op
    return SplitOutputs(log_softmax_classes(logits), logits.argmax(dim=-1))


def split_metrics(
    logits: Tensor | SplitOutputs,
    y_noisy: Tensor,
    y_clean: Tensor | None = None,
    changed: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-seed metrics ``[S]`` of one split from its logits ``[S, N, C]`` (or their ``split_outputs``).

    Keys: ``loss`` (mean cross-entropy against ``y_noisy``, the labels trained on), ``error``
    (against ``y_noisy``), and, when ``y_clean`` is given, ``clean_error`` (against the clean
    labels) and ``memorized`` (fraction of the mislabeled points predicted as their noisy label).
    ``changed`` is the mask of mislabeled points (default: ``y_noisy != y_clean``); ``memorized``
    is absent when no point is mislabeled. For the test split pass only ``y_noisy`` (its labels).
    """
    outputs = logits if isinstance(logits, SplitOutputs) else split_outputs(logits)
    S, N, C = outputs.log_probs.shape
    pred = outputs.labels  # [S, N]
    y_noisy = y_noisy.to(pred.device)
    # F.cross_entropy(logits, y, reduction="none") to float rounding: the NLL of the log-softmax
    loss = -outputs.log_probs.gather(2, y_noisy.view(1, N, 1).expand(S, N, 1)).squeeze(2)  # [S, N]
    out = {
        "loss": loss.mean(dim=1),
        "error": (pred != y_noisy).float().mean(dim=1),
    }
    if y_clean is not None:
        y_clean = y_clean.to(pred.device)
        out["clean_error"] = (pred != y_clean).float().mean(dim=1)
        if changed is None:
            changed = y_noisy != y_clean
    if changed is not None:
        changed = changed.to(pred.device).bool()
        if changed.any():
            out["memorized"] = (pred[:, changed] == y_noisy[changed]).float().mean(dim=1)
    return out


def predict_affine(
    logits_fn: LogitsFn,
    origins: Tensor,
    directions: Tensor,
    coefficients: Callable[[int, int], tuple[Tensor, Tensor]],
    n_points: int,
    *,
    max_points_per_call: int = 8192,
    amp_dtype: torch.dtype | None = None,
) -> Tensor:
    """Argmax labels ``[S, n_points]`` of points on affine subspaces: point k is
    ``origins[t_k] + Σ_j c_kj · directions[t_k, j]`` for ``origins [T, *in_shape]``,
    ``directions [T, K, *in_shape]`` and ``coefficients(start, end) -> (t [n] int64, c [n, K])``
    giving the points of the flat slice [start, end).

    With a ``ModelLogits`` whose model has an affine stem, the first layer runs on the T*(K+1)
    points o_t and o_t + d_tj only (at full precision, outside autocast) and each point's first-layer
    output is built as stem(o) + Σ c_j (stem(o + d_j) − stem(o)): the same function up to
    floating-point rounding, at 2K multiply-adds per first-layer output instead of the layer.
    Any other logits function gets the points themselves. Calls are also capped at
    ``CPU_STEM_CHUNK_BYTES`` (GPU: ``GPU_STEM_CHUNK_BYTES``) of first-layer output; chunking never
    changes which points are evaluated, only how many go through one call.
    """
    if max_points_per_call < 1:
        raise ValueError(f"max_points_per_call must be >= 1, got {max_points_per_call}")
    T, K, shape = directions.shape[0], directions.shape[1], origins.shape[1:]
    o = origins.reshape(T, 1, -1)
    d = directions.reshape(T, K, -1).to(origins.dtype)
    batch_dim = getattr(logits_fn, "stem_batch_dim", None)
    if batch_dim is None:
        def make_points(start: int, end: int) -> Tensor:
            t, c = coefficients(start, end)
            pts = o[t, 0]  # [n, D] (a copy)
            for j in range(K):
                pts.add_(d[t, j] * c[:, j:j + 1].to(d.dtype))
            return pts.reshape(end - start, *shape)

        return predict_labels(logits_fn, n_points, make_points,
                              max_points_per_call=max_points_per_call, amp_dtype=amp_dtype)

    ends = torch.cat([o, o + d], 1).reshape(T * (K + 1), *shape)  # [T*(K+1), *in]
    with torch.no_grad():
        h = logits_fn.stem(ends).movedim(batch_dim, 0)  # [T*(K+1), *rest]
    rest = h.shape[1:]
    h = h.reshape(T, K + 1, -1)
    # rows stem(o), stem(o + d_j) − stem(o): a point's stem output is [1, c] @ rows, one product
    rows = torch.cat([h[:, :1], h[:, 1:] - h[:, :1]], 1)  # [T, K+1, F]

    def make_stem(start: int, end: int) -> Tensor:
        t, c = coefficients(start, end)
        c = torch.cat([c.new_ones(end - start, 1), c], 1).to(h.dtype)  # [n, 1+K]
        out = h.new_empty(end - start, h.shape[-1])
        planes, counts = torch.unique_consecutive(t, return_counts=True)
        lo = 0
        for plane, n in zip(planes.tolist(), counts.tolist()):  # one small matmul per run of points
            torch.mm(c[lo:lo + n], rows[plane], out=out[lo:lo + n])
            lo += n
        return out.reshape(end - start, *rest).movedim(0, batch_dim)

    budget = CPU_STEM_CHUNK_BYTES if h.device.type == "cpu" else GPU_STEM_CHUNK_BYTES
    chunk = min(max_points_per_call, max(256, budget // (h.element_size() * h.shape[-1])))
    chunks = []
    with torch.no_grad():
        for start in range(0, n_points, chunk):
            end = min(start + chunk, n_points)
            stem = make_stem(start, end)
            with _autocast(stem.device, amp_dtype):
                chunks.append(logits_fn.body(stem).argmax(dim=-1))  # [S, n]
    return torch.cat(chunks, dim=1)
