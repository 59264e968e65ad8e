"""What every family shares: the fused-model contract, seeded initialization, per-copy state dicts.

A model built with `copies=S` holds S independent networks whose parameters are the slices `[s]`
of tensors shaped `[S, ...]` (see models/layers.py). That makes per-copy bookkeeping simple:
stacking S single-copy state dicts is a `torch.cat` along dim 0 and taking one copy out is a slice.
"""

import itertools

import torch
from torch import nn

from ddsweep.errors import ConfigError


class FusedModel(nn.Module):
    """Base of every family: S copies of one network, one interface (timm's features / head split).

    forward:          x [S or 1, B, *in_shape] -> logits [S, B, num_classes]; copy s sees only x[s]
                      (a single input copy is fed to every copy).
    forward_features: x [S or 1, B, *in_shape] -> features [S, B, F] (before the classifier),
                      = forward_body(forward_stem(x)).
    forward_head:     features [S, B, F] -> logits [S, B, num_classes] (`self.head`, a PLinear).
    forward_stem:     x -> the output of the network's first layer, an AFFINE map of x (a linear
                      layer or convolution with its bias, nothing after it), in the family's own
                      layout with the batch on dim `stem_batch_dim`.
    forward_body:     stem output -> features (everything between the first layer and the head).

    The stem split lets measurement evaluate many points x = o + Σ c_k d_k (planes, segments)
    through the first layer by linearity: stem(x) = stem(o) + Σ c_k (stem(o + d_k) − stem(o)).
    """

    head: nn.Module
    stem_batch_dim: int = 0

    def __init__(self, width: int, in_shape: tuple[int, ...], num_classes: int, copies: int):
        super().__init__()
        self.width, self.in_shape, self.num_classes, self.copies = width, in_shape, num_classes, copies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() != len(self.in_shape) + 2 or x.shape[0] not in (1, self.copies)
                or tuple(x.shape[2:]) != self.in_shape):
            raise ValueError(f"{type(self).__name__}: expected input [{self.copies} or 1, B, "
                             f"{', '.join(map(str, self.in_shape))}], got {list(x.shape)}")
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_body(self.forward_stem(x))

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_body(self, h: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)


def run_from(layers: nn.Sequential, start: int, x: torch.Tensor) -> torch.Tensor:
    """``layers[start:](x)`` without building a new Sequential on every call."""
    for layer in itertools.islice(layers, start, None):
        x = layer(x)
    return x


def image_shape(name: str, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) for the image families, or a ConfigError naming the family."""
    if len(in_shape) != 3:
        raise ConfigError(f"model.name: {name} takes images (C, H, W), but the data's inputs have shape {in_shape}; "
                          "choose an image dataset (data.name) or a model for vectors such as mlpk")
    return in_shape


def check_choice(key: str, value: object, allowed: tuple) -> None:
    if value not in allowed:
        raise ConfigError(f"model.{key}: {value!r} is not allowed; "
                          f"choose one of {', '.join(map(str, allowed))}")


def check_min(key: str, value: float, low: float, strict: bool = False) -> None:
    if value < low or (strict and value == low):
        raise ConfigError(f"model.{key}: must be {'>' if strict else '>='} {low}, got {value!r}")


@torch.no_grad()
def init_parameters(model: nn.Module, generators: list[torch.Generator]) -> None:
    """(Re)initialize every parameter (and reset norm statistics): copy s from `generators[s]`.

    Modules are visited in `model.modules()` order and each draws copy s of its own tensors from
    generators[s] only, so copy s of a fused model equals a copies=1 model built from a generator
    in the same state. The global RNG is never used.
    """
    copies = getattr(model, "copies", 1)
    if len(generators) != copies:
        raise ValueError(f"init_parameters: {len(generators)} generators for {copies} copies")
    owners = [m for m in model.modules() if hasattr(m, "init_copy_")]
    covered = {id(p) for m in owners for p in m.parameters(recurse=False)}
    missing = [n for n, p in model.named_parameters() if id(p) not in covered]
    if missing:
        raise TypeError(f"init_parameters: no init_copy_ covers {', '.join(missing)}")
    for m in owners:
        for s, g in enumerate(generators):
            m.init_copy_(s, g)


def count_params(model: nn.Module) -> int:
    """Parameters of ONE copy (the number a run logs as its model size)."""
    return sum(p.numel() for p in model.parameters()) // getattr(model, "copies", 1)


def stack_state_dicts(sds: list[dict]) -> dict:
    """S state dicts of copies=1 models -> the state dict of the copies=S model (same keys)."""
    keys = list(sds[0])
    if any(list(sd) != keys for sd in sds):
        raise ValueError("stack_state_dicts: the state dicts have different keys")
    # Scalar buffers (num_batches_tracked) are shared by the copies: keep the first.
    return {k: torch.cat([sd[k] for sd in sds]) if sds[0][k].dim() else sds[0][k].clone()
            for k in keys}


def unstack_state_dict(sd: dict, s: int) -> dict:
    """Copy s of a fused state dict, as the state dict of a copies=1 model (cloned, so it saves small)."""
    return {k: v[s:s + 1].clone() if v.dim() else v.clone() for k, v in sd.items()}
