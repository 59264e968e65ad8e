"""Plain conv nets (conv3x3-BN-act blocks and 2x2 max-pools, then a global pool and a linear head):

- `cnn5k`: the 5-layer "standard CNN" of the deep-double-descent paper (Nakkiran et al. 2019):
  blocks of widths k, 2k, 4k, 8k, max-pool after the 2nd, 3rd and 4th, global max-pool, linear.
- `vggk`: the CIFAR VGG with batch norm (option `depth` 11, 13, 16 or 19) with every conv width
  scaled by k/64 (k=64 is the usual 64..512).

Pools use ceil mode, so small inputs (8x8 digits) never shrink below 1x1.
"""

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ddsweep.models.base import FusedModel, check_choice, image_shape, run_from
from ddsweep.models.layers import (PBatchNorm2d, PConv2d, PLinear, from_grouped, make_activation,
                           max_pool2x, round_channels, to_grouped)
from ddsweep.models.registry import register_model

_VGG = {  # conv widths at k=64; "M" is a 2x2 max-pool
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class PlainConvNet(FusedModel):
    """`cfg` lists conv widths and "M" (max-pool); `global_pool` maps [B, S*C, H, W] to [B, S*C, 1, 1]."""

    def __init__(self, width, in_shape, num_classes, copies, cfg: list, act: Callable[[], nn.Module],
                 global_pool: Callable[[torch.Tensor, int], torch.Tensor]):
        super().__init__(width, in_shape, num_classes, copies)
        layers, cin = [], in_shape[0]
        for c in cfg:
            if c == "M":
                layers.append(max_pool2x())
            else:
                layers += [PConv2d(copies, cin, c, 3, 1, 1), PBatchNorm2d(copies, c), act()]
                cin = c
        self.features = nn.Sequential(*layers)
        self.global_pool = global_pool
        self.head = PLinear(copies, cin, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.features[0](to_grouped(x, self.copies))  # first conv: [B, S*k, H, W]

    def forward_body(self, h: torch.Tensor) -> torch.Tensor:
        x = run_from(self.features, 1, h)  # [B, S*C, H', W']
        x = self.global_pool(x, 1).flatten(1)  # [B, S*C]
        return from_grouped(x, self.copies)  # [S, B, C]


@register_model
def cnn5k(width, in_shape, num_classes, activation, copies, smelu_beta: float = 1.0):
    cfg = [width, 2 * width, "M", 4 * width, "M", 8 * width, "M"]
    return PlainConvNet(width, image_shape("cnn5k", in_shape), num_classes, copies, cfg,
                        partial(make_activation, activation, smelu_beta), F.adaptive_max_pool2d)


@register_model
def vggk(width, in_shape, num_classes, activation, copies, depth: int = 11, smelu_beta: float = 1.0):
    check_choice("depth", depth, tuple(_VGG))
    cfg = [c if c == "M" else round_channels(c * width / 64) for c in _VGG[depth]]
    return PlainConvNet(width, image_shape("vggk", in_shape), num_classes, copies, cfg,
                        partial(make_activation, activation, smelu_beta), F.adaptive_avg_pool2d)
