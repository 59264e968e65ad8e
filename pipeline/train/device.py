"""Every device-conditional choice of a run, in one place: accelerator, precision, memory format,
compile. Each is decided from the config once (`DevicePlan.for_config`) and can be forced on a CPU
(e.g. `train.precision=bf16-mixed`), so every path a GPU takes also runs in the CPU tests.

Measurement never follows the training precision: the epoch record evaluates and measures outside
the trainer's autocast, in fp32 (pipeline.train.epoch).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ddsweep.errors import ConfigError


def resolve_accelerator(accelerator: str) -> str:
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.accelerator: {accelerator} requested but no CUDA device is visible")
    return "gpu" if accelerator == "cuda" else accelerator


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision string: `auto` is bf16 autocast on a GPU and fp32 elsewhere."""
    if precision == "auto":
        return "bf16-mixed" if accelerator == "gpu" else "32-true"
    return "32-true" if precision == "32" else precision


@dataclass(frozen=True)
class DevicePlan:
    accelerator: str   # Lightning accelerator: cpu, gpu, mps
    precision: str     # Lightning precision: 32-true, bf16-mixed, 16-mixed
    channels_last: bool
    compile: bool
    compile_mode: str

    @classmethod
    def for_config(cls, train, image_inputs: bool) -> "DevicePlan":
        accelerator = resolve_accelerator(train.accelerator)
        return cls(accelerator=accelerator, precision=resolve_precision(train.precision, accelerator),
                   channels_last=accelerator == "gpu" and image_inputs,
                   compile=train.compile, compile_mode=train.compile_mode)

    @property
    def device(self) -> torch.device:
        if self.accelerator == "gpu":
            return torch.device("cuda", 0)
        return torch.device("mps") if self.accelerator == "mps" else torch.device("cpu")

    def prepare(self, net: nn.Module) -> nn.Module:
        """The network as this device trains it: memory format, then (in place) compile, so the
        checkpoint keys stay those of the plain network."""
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if self.compile:
            net.compile(mode=self.compile_mode)
        return net

    def describe(self) -> dict:
        """What the run recorded about its device choices (summary.json)."""
        return {"accelerator": self.accelerator, "precision": self.precision,
                "channels_last": self.channels_last, "compile": self.compile and self.compile_mode}
