"""`mlpk`: input flattened, `depth` hidden layers of width k (linear + activation), linear head.
No normalization. MNIST-1D's double-descent MLP is 40 -> k -> k -> 10 (depth 2)."""

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from ddsweep.models.base import FusedModel, check_min, run_from
from ddsweep.models.layers import PLinear, make_activation
from ddsweep.models.registry import register_model


class MLP(FusedModel):
    def __init__(self, width, in_shape, num_classes, copies, depth: int, act: Callable[[], nn.Module]):
        super().__init__(width, in_shape, num_classes, copies)
        dims = [math.prod(in_shape)] + [width] * depth
        self.features = nn.Sequential(*[m for din, dout in zip(dims, dims[1:])
                                        for m in (PLinear(copies, din, dout), act())])
        self.head = PLinear(copies, width, num_classes)

    stem_batch_dim = 1

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.features[0](x.flatten(2))  # [S or 1, B, F] -> [S, B, k], before the activation

    def forward_body(self, h: torch.Tensor) -> torch.Tensor:
        return run_from(self.features, 1, h)  # [S, B, k]


@register_model
def mlpk(width, in_shape, num_classes, activation, copies, depth: int = 2, smelu_beta: float = 1.0):
    check_min("depth", depth, 1)
    return MLP(width, in_shape, num_classes, copies, depth, partial(make_activation, activation, smelu_beta))
