"""The S-seed network of a run and the seed streams behind it.

Which randomness differs between seeds is `repro.vary`:
  init  — each seed its own initialization, one shared data order (and augmentation);
  order — one shared initialization (bitwise identical weights), each seed its own data order;
  both  — both differ.
"""
from __future__ import annotations

import torch
from torch import nn

from ddsweep.models import create_model

# Initialization and data-order generators are separate objects seeded from the run's seeds;
# an offset keeps the two streams from being the same numbers for the same seed.
_ORDER_OFFSET = 1_000_003


def seed_streams(seeds: list[int], vary: str) -> tuple[list[int], list[int]]:
    """Per seed slot: (initialization seed, data-order seed)."""
    init = [s if vary in ("init", "both") else seeds[0] for s in seeds]
    order = [(s if vary in ("order", "both") else seeds[0]) + _ORDER_OFFSET for s in seeds]
    return init, order


class SeedList(nn.Module):
    """S separate copies=1 models behind the fused interface [S, B, ...] → [S, B, C]."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.expand(len(self.nets), *x.shape[1:]) if x.shape[0] == 1 else x
        return torch.cat([net(xs[s:s + 1]) for s, net in enumerate(self.nets)], dim=0)


def build_network(model_cfg, *, in_shape: tuple[int, ...], num_classes: int, init_seeds: list[int],
                  fuse: bool) -> nn.Module:
    kwargs = dict(width=model_cfg.width, in_shape=tuple(in_shape), num_classes=num_classes,
                  activation=model_cfg.activation, **model_cfg.options)
    if model_cfg.activation == "smelu":
        kwargs["smelu_beta"] = model_cfg.smelu_beta
    gens = [torch.Generator().manual_seed(s) for s in init_seeds]
    if fuse:
        return create_model(model_cfg.name, copies=len(gens), generators=gens, **kwargs)
    return SeedList([create_model(model_cfg.name, copies=1, generators=[g], **kwargs) for g in gens])
