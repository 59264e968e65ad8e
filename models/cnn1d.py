"""`cnn1dk`: Greydanus's MNIST-1D CNN for sequences, in_shape (L,) (one channel) or (C, L):
conv k5 s2, conv k3 s2, conv k3 s2 (k channels each, padding 1), activation after each, flatten,
linear -> classes. For L=40 the lengths are 19, 10, 5. A sequence shorter than a kernel gets just
enough extra padding to keep its length >= 1."""

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from ddsweep.models.base import FusedModel, run_from
from ddsweep.models.layers import PConv1d, PLinear, from_grouped, make_activation, to_grouped
from ddsweep.models.registry import register_model
from ddsweep.errors import ConfigError


class CNN1d(FusedModel):
    def __init__(self, width, in_shape, num_classes, copies, act: Callable[[], nn.Module]):
        super().__init__(width, in_shape, num_classes, copies)
        self.channels, length = in_shape if len(in_shape) == 2 else (1, in_shape[0])
        layers, cin = [], self.channels
        for kernel in (5, 3, 3):
            pad = max(1, -((length - kernel) // 2))  # ceil((kernel - length) / 2)
            layers += [PConv1d(copies, cin, width, kernel, 2, pad), act()]
            length, cin = (length + 2 * pad - kernel) // 2 + 1, width
        self.features = nn.Sequential(*layers)
        self.head = PLinear(copies, width * length, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(*x.shape[:2], self.channels, x.shape[-1])  # [S or 1, B, C, L]
        return self.features[0](to_grouped(x, self.copies))  # first conv: [B, S*k, L1]

    def forward_body(self, h: torch.Tensor) -> torch.Tensor:
        x = run_from(self.features, 1, h)  # [B, S*k, L']
        return from_grouped(x, self.copies).flatten(2)  # [S, B, k*L']


@register_model
def cnn1dk(width, in_shape, num_classes, activation, copies, smelu_beta: float = 1.0):
    if len(in_shape) not in (1, 2):
        raise ConfigError(f"model.name: cnn1dk takes sequences (L,) or (C, L), but the data's inputs have shape "
                          f"{in_shape}; choose sequence data such as data.name=mnist1d, or another model")
    return CNN1d(width, in_shape, num_classes, copies, partial(make_activation, activation, smelu_beta))
