"""ResNet18-k families with stage widths [k, 2k, 4k, 8k], strides [1, 2, 2, 2], two blocks per
stage, the CIFAR stem (3x3 stride-1 conv, no stem pooling), global average pool and a linear head.

- `resnet18k`: PreAct-ResNet18 (He et al. 2016, identity mappings), the network of the
  double-descent papers. As in the reference implementation they used (kuangliu/pytorch-cifar's
  PreActResNet18, which Nakkiran et al.'s `make_resnet18k` widens), the last block's output goes
  straight to the global average pool: no final BN-act. k=64 with 3x32x32 inputs and 10 classes is
  then the standard PreAct ResNet18 with 11,171,146 parameters.
- `resnet18k_basic`: the standard post-activation ResNet18 (He et al. 2015, BasicBlock:
  conv-BN-act-conv-BN plus the shortcut, act after the add; a projection shortcut is a 1x1 conv +
  BN; stem conv-BN-act), as kuangliu/pytorch-cifar's ResNet18 that Li et al. 2025 train. k=64 with
  3x32x32 inputs and 10 classes has 11,173,962 parameters.

Any (C, H, W) works: the pool is adaptive. The stem (the first layer, an affine map of the input)
is the stem conv alone; the basic variant's stem BN-act starts the body.
"""

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ddsweep.models.base import FusedModel, image_shape
from ddsweep.models.layers import PBatchNorm2d, PConv2d, PLinear, from_grouped, make_activation, to_grouped
from ddsweep.models.registry import register_model


class PreActBlock(nn.Module):
    """BN-act-conv3x3, BN-act-conv3x3, plus the input (or a 1x1 conv of BN-act(input) when the
    shape changes). [B, S*Cin, H, W] -> [B, S*Cout, H/stride, W/stride]."""

    def __init__(self, copies: int, cin: int, cout: int, stride: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.bn1, self.act1 = PBatchNorm2d(copies, cin), act()
        self.conv1 = PConv2d(copies, cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.act2 = PBatchNorm2d(copies, cout), act()
        self.conv2 = PConv2d(copies, cout, cout, 3, 1, 1, bias=False)
        reshape = stride != 1 or cin != cout
        self.shortcut = PConv2d(copies, cin, cout, 1, stride, bias=False) if reshape else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        return self.conv2(self.act2(self.bn2(out))) + skip


class BasicBlock(nn.Module):
    """conv3x3-BN-act, conv3x3-BN, plus the input (or 1x1 conv + BN of it when the shape changes),
    then act. [B, S*Cin, H, W] -> [B, S*Cout, H/stride, W/stride]."""

    def __init__(self, copies: int, cin: int, cout: int, stride: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.conv1 = PConv2d(copies, cin, cout, 3, stride, 1, bias=False)
        self.bn1, self.act1 = PBatchNorm2d(copies, cout), act()
        self.conv2 = PConv2d(copies, cout, cout, 3, 1, 1, bias=False)
        self.bn2, self.act2 = PBatchNorm2d(copies, cout), act()
        reshape = stride != 1 or cin != cout
        self.shortcut = nn.Sequential(PConv2d(copies, cin, cout, 1, stride, bias=False),
                                      PBatchNorm2d(copies, cout)) if reshape else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet18(FusedModel):
    """Stem conv, (for post-activation blocks) stem BN-act, 4 stages of 2 blocks, pool, linear."""

    def __init__(self, width, in_shape, num_classes, copies, act: Callable[[], nn.Module],
                 block: type[nn.Module], stem_norm: bool):
        super().__init__(width, in_shape, num_classes, copies)
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = PConv2d(copies, in_shape[0], width, 3, 1, 1, bias=False)
        # registered only when used, so the PreAct state dict keeps its keys
        self.stem_norm = nn.Sequential(PBatchNorm2d(copies, width), act()) if stem_norm else None
        blocks, cin = [], width
        for cout, stride in zip(widths, [1, 2, 2, 2]):
            blocks += [block(copies, cin, cout, stride, act), block(copies, cout, cout, 1, act)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = PLinear(copies, cin, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(to_grouped(x, self.copies))  # [B, S*k, H, W]

    def forward_body(self, h: torch.Tensor) -> torch.Tensor:
        if self.stem_norm is not None:
            h = self.stem_norm(h)
        x = self.blocks(h)  # [B, S*8k, H', W']
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)  # [B, S*8k]
        return from_grouped(x, self.copies)  # [S, B, 8k]


@register_model
def resnet18k(width, in_shape, num_classes, activation, copies, smelu_beta: float = 1.0):
    return ResNet18(width, image_shape("resnet18k", in_shape), num_classes, copies,
                    partial(make_activation, activation, smelu_beta), PreActBlock, stem_norm=False)


@register_model
def resnet18k_basic(width, in_shape, num_classes, activation, copies, smelu_beta: float = 1.0):
    return ResNet18(width, image_shape("resnet18k_basic", in_shape), num_classes, copies,
                    partial(make_activation, activation, smelu_beta), BasicBlock, stem_norm=True)
