"""Parallel ("fused") layers: one module holds S independent copies of a layer.

Every parameter and buffer carries a leading copy dimension `[S, ...]`, so copy s of a model is
the slice `[s]` of each tensor. Two activation layouts are used:

- batch-major grouped `[B, S*C, *spatial]` for convolutions, batch norm and pooling (a grouped
  convolution with `groups=S` keeps the copies apart; per-channel ops need nothing special);
- copy-major `[S, B, *features]` for linear layers and layer norm (a batched matmul per copy).

`to_grouped` / `from_grouped` convert between them. Each layer initializes copy s from its own
generator in `init_copy_(s, generator)` (PyTorch's default schemes), so a fused model and S
single models built from the same generators hold bitwise the same parameters.
"""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ddsweep.errors import ConfigError


def round_channels(value: float) -> int:
    """Channel count for a scaled width: nearest integer (halves round up), at least 1."""
    return max(1, int(value + 0.5))


def to_grouped(x: torch.Tensor, copies: int) -> torch.Tensor:
    """[S or 1, B, C, *sp] -> [B, S*C, *sp]; a single input copy is broadcast to all S."""
    x = x.expand(copies, *x.shape[1:])  # [S, B, C, *sp]
    return x.transpose(0, 1).reshape(x.shape[1], -1, *x.shape[3:])


def from_grouped(x: torch.Tensor, copies: int) -> torch.Tensor:
    """[B, S*C, *sp] -> [S, B, C, *sp]."""
    return x.reshape(x.shape[0], copies, -1, *x.shape[2:]).transpose(0, 1)


def max_pool2x() -> nn.Module:
    """2x2 max-pool that never goes below 1x1 (ceil mode): [B, S*C, H, W] -> [B, S*C, ⌈H/2⌉, ⌈W/2⌉].
    Same as the usual floor-mode pool on even sizes (CIFAR's 32 -> 16 -> 8 -> ...)."""
    return nn.MaxPool2d(2, ceil_mode=True)


def _uniform_(dst: torch.Tensor, bound: float, g: torch.Generator) -> None:
    """Fill `dst` with U(-bound, bound) drawn on the generator's device (the model may live elsewhere)."""
    dst.copy_(torch.empty(dst.shape, device=g.device).uniform_(-bound, bound, generator=g))


class _PConvNd(nn.Module):
    """S convolutions on the grouped layout [B, S*Cin, *sp] -> [B, S*Cout, *sp']."""

    _conv: Callable  # F.conv1d or F.conv2d
    _dims: int  # spatial dims of the kernel

    def __init__(self, copies: int, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.copies, self.in_channels, self.out_channels = copies, in_channels, out_channels
        self.stride, self.padding = stride, padding
        kernel = (kernel_size,) * self._dims
        self.weight = nn.Parameter(torch.empty(copies, out_channels, in_channels, *kernel))
        self.bias = nn.Parameter(torch.empty(copies, out_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(-1, *self.weight.shape[2:])  # [S*Cout, Cin, *k]
        b = None if self.bias is None else self.bias.reshape(-1)  # [S*Cout]
        return self._conv(x, w, b, self.stride, self.padding, 1, self.copies)

    @torch.no_grad()
    def init_copy_(self, s: int, g: torch.Generator) -> None:
        # PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)), same bound for bias.
        bound = 1 / math.sqrt(self.weight[s].numel() / self.out_channels)
        _uniform_(self.weight[s], bound, g)
        if self.bias is not None:
            _uniform_(self.bias[s], bound, g)

    def extra_repr(self) -> str:
        return (f"copies={self.copies}, {self.in_channels}, {self.out_channels}, "
                f"kernel_size={self.weight.shape[3]}, stride={self.stride}, padding={self.padding}, "
                f"bias={self.bias is not None}")


class PConv2d(_PConvNd):
    """weight [S, Cout, Cin, k, k], bias [S, Cout]; [B, S*Cin, H, W] -> [B, S*Cout, H', W']."""

    _conv, _dims = staticmethod(F.conv2d), 2


def channels_last_(net: nn.Module) -> int:
    """Put every fused 2-D convolution of `net` in channels-last layout, in place; returns how many.

    What a convolution kernel sees is `PConv2d`'s per-call view of its weight, [S*Cout, Cin, k, k].
    Storing the 5-D parameter [S, Cout, Cin, k, k] with Cin innermost (memory order S, Cout, k, k,
    Cin) makes that view a free reshape with channels-last strides: cuDNN and oneDNN then pick
    NHWC kernels (a convolution follows its input's or its weight's memory format) and return
    channels-last activations, which batch norm, activations, pooling and residual sums keep.
    Shapes, values and state-dict keys are unchanged (only strides differ), so checkpoints load
    into either layout; gradients and optimizer state take the parameter's strides. Call it
    before the optimizer is built."""
    convs = [m for m in net.modules() if isinstance(m, PConv2d)]
    for conv in convs:
        w = conv.weight.detach()
        conv.weight.data = w.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # [S, Cout, Cin, k, k]
    return len(convs)


class PConv1d(_PConvNd):
    """weight [S, Cout, Cin, k], bias [S, Cout]; [B, S*Cin, L] -> [B, S*Cout, L']."""

    _conv, _dims = staticmethod(F.conv1d), 1


class PBatchNorm(nn.Module):
    """S batch norms on the grouped layout [B, S*C, *sp]: per-copy, per-channel statistics.

    Parameters and running statistics are [S, C]; `F.batch_norm` gets `.view(-1)` views of them, so
    the running statistics update in place.
    """

    def __init__(self, copies: int, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.copies, self.channels, self.eps, self.momentum = copies, channels, eps, momentum
        self.weight = nn.Parameter(torch.empty(copies, channels))
        self.bias = nn.Parameter(torch.empty(copies, channels))
        self.register_buffer("running_mean", torch.zeros(copies, channels))
        self.register_buffer("running_var", torch.ones(copies, channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, self.running_mean.view(-1), self.running_var.view(-1),
                            self.weight.view(-1), self.bias.view(-1), self.training,
                            self.momentum, self.eps)

    @torch.no_grad()
    def init_copy_(self, s: int, g: torch.Generator) -> None:
        self.weight[s] = 1.0
        self.bias[s] = 0.0
        self.running_mean[s] = 0.0
        self.running_var[s] = 1.0
        self.num_batches_tracked.zero_()

    def extra_repr(self) -> str:
        return f"copies={self.copies}, {self.channels}, eps={self.eps}, momentum={self.momentum}"


# F.batch_norm takes [B, S*C] and [B, S*C, *sp] alike: one class serves 1-D and 2-D.
PBatchNorm1d = PBatchNorm2d = PBatchNorm


class PLinear(nn.Module):
    """weight [S, out, in], bias [S, out]; [S or 1, *, in] -> [S, *, out] (one matmul per copy)."""

    def __init__(self, copies: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.copies, self.in_features, self.out_features = copies, in_features, out_features
        self.weight = nn.Parameter(torch.empty(copies, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(copies, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # [S or 1, N, in], the MLPs' layout: no reshapes (each one an autograd node)
            return self._matmul(x.expand(self.copies, -1, -1) if x.shape[0] != self.copies else x)
        middle = x.shape[1:-1]
        x = x.reshape(x.shape[0], -1, self.in_features).expand(self.copies, -1, -1)  # [S, N, in]
        return self._matmul(x).reshape(self.copies, *middle, self.out_features)  # [S, *, out]

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        """[S, N, in] -> [S, N, out]: x @ W_s^T + b_s per copy, one batched matmul."""
        wt = self.weight.transpose(1, 2)  # [S, in, out]
        return torch.bmm(x, wt) if self.bias is None else torch.baddbmm(self.bias.unsqueeze(1), x, wt)

    @torch.no_grad()
    def init_copy_(self, s: int, g: torch.Generator) -> None:
        bound = 1 / math.sqrt(self.in_features)  # PyTorch's default, as for convolutions
        _uniform_(self.weight[s], bound, g)
        if self.bias is not None:
            _uniform_(self.bias[s], bound, g)

    def extra_repr(self) -> str:
        return (f"copies={self.copies}, in_features={self.in_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class PLayerNorm(nn.Module):
    """S layer norms over the last dim: weight/bias [S, D]; [S, *, D] -> [S, *, D]."""

    def __init__(self, copies: int, dim: int, eps: float = 1e-5):
        super().__init__()
        self.copies, self.dim, self.eps = copies, dim, eps
        self.weight = nn.Parameter(torch.empty(copies, dim))
        self.bias = nn.Parameter(torch.empty(copies, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self.copies,) + (1,) * (x.dim() - 2) + (self.dim,)  # broadcast over the middle dims
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * self.weight.view(shape) + self.bias.view(shape)

    @torch.no_grad()
    def init_copy_(self, s: int, g: torch.Generator) -> None:
        self.weight[s] = 1.0
        self.bias[s] = 0.0

    def extra_repr(self) -> str:
        return f"copies={self.copies}, {self.dim}, eps={self.eps}"


class SmeLU(nn.Module):
    """Smooth ReLU with half-width beta: 0 for x <= -beta, (x+beta)^2/(4 beta) for |x| < beta,
    x for x >= beta (continuous with a continuous first derivative)."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.clamp(-self.beta, self.beta)  # the clamp makes the x <= -beta branch exactly 0
        return torch.where(x >= self.beta, x, (c + self.beta) ** 2 / (4 * self.beta))

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


_ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    "relu": lambda beta: nn.ReLU(),
    "gelu": lambda beta: nn.GELU(),
    "silu": lambda beta: nn.SiLU(),
    "softplus": lambda beta: nn.Softplus(),
    "smelu": lambda beta: SmeLU(beta),
}
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)


def check_activation(name: str, smelu_beta: float) -> None:
    if name not in _ACTIVATIONS:
        raise ConfigError(f"model.activation: {name!r} is not allowed; "
                          f"choose one of {', '.join(ACTIVATIONS)}")
    if not smelu_beta > 0:
        raise ConfigError(f"model.smelu_beta: must be a number > 0, got {smelu_beta!r}")


def make_activation(name: str, smelu_beta: float = 1.0) -> nn.Module:
    """A fresh activation module by name (one of ACTIVATIONS); elementwise, so layout-agnostic."""
    check_activation(name, smelu_beta)
    return _ACTIVATIONS[name](smelu_beta)
