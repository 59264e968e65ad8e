"""`vitk`: a small Vision Transformer whose embedding dim scales with k at a fixed head dim.

Sizing rule: embedding dim D = head_dim * k and heads = k, so every head has `head_dim` channels
(default 8: k=1 is one 8-dim head, k=24 gives D=192, k=64 gives D=512 with 64 heads).
Patch embedding: conv with kernel = stride = p, where p = min(patch_size, H, W) (default 4; an
image smaller than a patch uses one patch of its own size; a remainder of H or W is dropped).
Then a learnable position embedding, `depth` pre-norm blocks (LayerNorm -> multi-head attention,
LayerNorm -> MLP D -> mlp_ratio*D -> D with the chosen activation), a final LayerNorm, mean
pooling over the tokens and a linear head. Options: depth 4, patch_size 4, head_dim 8, mlp_ratio 2.
"""

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ddsweep.models.base import FusedModel, check_min, image_shape
from ddsweep.models.layers import (PConv2d, PLayerNorm, PLinear, from_grouped, make_activation,
                           round_channels, to_grouped)
from ddsweep.models.registry import register_model


class Attention(nn.Module):
    def __init__(self, copies: int, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = PLinear(copies, dim, 3 * dim)
        self.proj = PLinear(copies, dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, B, T, D = x.shape
        qkv = self.qkv(x).reshape(S * B, T, 3, self.heads, D // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [S*B, heads, T, head_dim]
        y = F.scaled_dot_product_attention(q, k, v)  # [S*B, heads, T, head_dim]
        return self.proj(y.transpose(1, 2).reshape(S, B, T, D))


class Block(nn.Module):
    def __init__(self, copies: int, dim: int, heads: int, hidden: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.norm1, self.attn = PLayerNorm(copies, dim), Attention(copies, dim, heads)
        self.norm2 = PLayerNorm(copies, dim)
        self.mlp = nn.Sequential(PLinear(copies, dim, hidden), act(), PLinear(copies, hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [S, B, T, D]
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(FusedModel):
    def __init__(self, width, in_shape, num_classes, copies, depth: int, patch_size: int,
                 head_dim: int, mlp_ratio: float, act: Callable[[], nn.Module]):
        super().__init__(width, in_shape, num_classes, copies)
        channels, height, wide = in_shape
        patch = min(patch_size, height, wide)
        dim, tokens = head_dim * width, (height // patch) * (wide // patch)
        self.patch_embed = PConv2d(copies, channels, dim, patch, patch)
        self.pos_embed = nn.Parameter(torch.empty(copies, 1, tokens, dim))
        hidden = round_channels(mlp_ratio * dim)
        self.blocks = nn.Sequential(*[Block(copies, dim, width, hidden, act) for _ in range(depth)])
        self.norm = PLayerNorm(copies, dim)
        self.head = PLinear(copies, dim, num_classes)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(to_grouped(x, self.copies))  # [B, S*D, H/p, W/p]

    def forward_body(self, h: torch.Tensor) -> torch.Tensor:
        x = from_grouped(h, self.copies).flatten(3).transpose(2, 3)  # [S, B, T, D]
        x = self.blocks(x + self.pos_embed)
        return self.norm(x).mean(2)  # [S, B, D]

    @torch.no_grad()
    def init_copy_(self, s: int, g: torch.Generator) -> None:
        pos = torch.empty(self.pos_embed.shape[1:], device=g.device)
        self.pos_embed[s] = nn.init.trunc_normal_(pos, std=0.02, generator=g)


@register_model
def vitk(width, in_shape, num_classes, activation, copies, depth: int = 4, patch_size: int = 4,
         head_dim: int = 8, mlp_ratio: float = 2.0, smelu_beta: float = 1.0):
    for key, value in (("depth", depth), ("patch_size", patch_size), ("head_dim", head_dim)):
        check_min(key, value, 1)
    check_min("mlp_ratio", mlp_ratio, 0, strict=True)
    return ViT(width, image_shape("vitk", in_shape), num_classes, copies, depth, patch_size,
               head_dim, mlp_ratio, partial(make_activation, activation, smelu_beta))
