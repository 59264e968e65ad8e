"""Every device-conditional choice of a run, in one place: accelerator, precision, memory format,
compile, deterministic algorithms, and the sweep engine's GPU per worker slot. Each is decided from
the config once (`DevicePlan.for_config`) and can be forced on a CPU (`train.precision=bf16-mixed`,
`train.channels_last=true`, `train.compile=true`, `train.deterministic=false`), so every path a GPU
takes also runs in the CPU tests (tests/pipeline/train).

Measurement never follows the training precision: the epoch record evaluates and measures outside
the trainer's autocast, in fp32 unless `planes.precision=bf16` (`measure_amp_dtype`). On a CUDA
GPU torch's own default still runs fp32 convolutions in TF32 (torch.backends.cudnn.allow_tf32);
that is left as torch sets it until a GPU measurement weighs its cost (bench/gpu_check.py records it).

Host-to-device transfers: the run's data moves to the device once, whole (data.DDDataModule), and
batches are cut there, so there is no per-batch copy to pin or overlap and no such choice here.

torch is imported inside the functions that need it: the sweep engine takes its GPU assignment
from here (`detect_gpus`, `gpu_for_slot`) without loading torch when CUDA_VISIBLE_DEVICES is empty.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ddsweep.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

# train.precision as written → Lightning's precision string.
_LIGHTNING_PRECISION = {"32": "32-true", "bf16-mixed": "bf16-mixed", "16-mixed": "16-mixed"}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_accelerator(accelerator: str) -> str:
    if accelerator == "auto":
        return "gpu" if _cuda_available() else "cpu"
    if accelerator in ("gpu", "cuda") and not _cuda_available():
        raise ConfigError(f"train.accelerator: {accelerator} requested but no CUDA device is visible")
    return "gpu" if accelerator == "cuda" else accelerator


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision string: `auto` is bf16 autocast on a GPU and fp32 elsewhere. fp16
    autocast is a GPU's only: Lightning would quietly run bf16 on a CPU and the run would record
    the wrong precision."""
    if precision == "auto":
        return "bf16-mixed" if accelerator == "gpu" else "32-true"
    if precision == "16-mixed" and accelerator != "gpu":
        raise ConfigError(f"train.precision: 16-mixed (fp16 autocast) needs a GPU; on {accelerator} "
                          "choose bf16-mixed or 32")
    return _LIGHTNING_PRECISION[precision]


def resolve_channels_last(value, accelerator: str, in_shape: tuple[int, ...]) -> bool:
    """2-D convolutions in channels-last layout: `auto` on a GPU for image inputs [C, H, W] (cuDNN's
    NHWC kernels use the tensor cores under bf16); forced `true` needs image inputs."""
    image = len(in_shape) == 3
    if value == "auto":
        return accelerator == "gpu" and image
    if value and not image:
        raise ConfigError(f"train.channels_last: true needs image inputs [C, H, W]; these inputs are "
                          f"{list(in_shape)}; set it to auto or false")
    return bool(value)


def resolve_deterministic(value, accelerator: str) -> bool:
    """torch.use_deterministic_algorithms (through Lightning): `auto` on everywhere but a GPU, where
    some backward kernels have no deterministic version and would raise (adaptive_avg_pool2d's, in
    every ResNet18-k step)."""
    return accelerator != "gpu" if value == "auto" else bool(value)


def measure_amp_dtype(precision: str):
    """`planes.precision` → the pure measurement functions' `amp_dtype`: None (fp32) for 32, bf16
    autocast for bf16."""
    import torch

    return None if precision == "32" else torch.bfloat16


@dataclass(frozen=True)
class DevicePlan:
    accelerator: str     # Lightning accelerator: cpu, gpu, mps
    precision: str       # Lightning precision: 32-true, bf16-mixed, 16-mixed
    channels_last: bool  # 2-D convolution weights (hence activations) in channels-last layout
    compile: bool
    compile_mode: str
    deterministic: bool  # torch.use_deterministic_algorithms

    @classmethod
    def for_config(cls, train, in_shape: tuple[int, ...]) -> "DevicePlan":
        accelerator = resolve_accelerator(train.accelerator)
        return cls(accelerator=accelerator, precision=resolve_precision(train.precision, accelerator),
                   channels_last=resolve_channels_last(train.channels_last, accelerator, tuple(in_shape)),
                   compile=train.compile, compile_mode=train.compile_mode,
                   deterministic=resolve_deterministic(train.deterministic, accelerator))

    @property
    def device(self) -> "torch.device":
        import torch

        if self.accelerator == "gpu":
            return torch.device("cuda", 0)
        return torch.device("mps") if self.accelerator == "mps" else torch.device("cpu")

    def prepare(self, net: "nn.Module") -> "nn.Module":
        """The network as this device trains it: memory format, then (in place) compile, so the
        checkpoint keys stay those of the plain network.

        Not `net.to(memory_format=torch.channels_last)`: a fused network's conv weights are 5-D
        [S, Cout, Cin, k, k] (it raises), and its 4-D tensors (1-D conv weights, ViT position
        embeddings) are not NCHW images, so restriding them would only cost copies. Each fused 2-D
        convolution lays out its own weight instead (models.layers.channels_last_)."""
        if self.channels_last:
            from ddsweep.models.layers import channels_last_

            channels_last_(net)
        if self.compile:
            net.compile(mode=self.compile_mode)
        return net

    def describe(self) -> dict:
        """What the run recorded about its device choices (summary.json)."""
        return {"accelerator": self.accelerator, "precision": self.precision,
                "channels_last": self.channels_last, "compile": self.compile and self.compile_mode,
                "deterministic": self.deterministic}


# ----------------------------------------------------------------------------- sweep engine

def _hidden(cuda_visible_devices: str | None) -> bool:
    """CUDA_VISIBLE_DEVICES hides every device (empty, or -1)."""
    return cuda_visible_devices is not None and cuda_visible_devices.strip() in ("", "-1")


def visible_gpus(cuda_visible_devices: str | None, device_count: int) -> list[str]:
    """The CUDA device ids a sweep's workers may use: CUDA_VISIBLE_DEVICES's list (at most
    `device_count` of them), or 0..count-1 when it is unset; [] when it hides every device."""
    if device_count <= 0 or _hidden(cuda_visible_devices):
        return []
    if cuda_visible_devices is None:
        return [str(i) for i in range(device_count)]
    return [d.strip() for d in cuda_visible_devices.split(",") if d.strip()][:device_count]


def detect_gpus() -> list[str]:
    """CUDA device ids this process may use (honouring CUDA_VISIBLE_DEVICES); [] without CUDA."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if _hidden(visible):
        return []  # decided without loading torch
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no torch, or a broken driver: run on CPU
        count = 0
    return visible_gpus(visible, count)


def gpu_for_slot(gpus: list[str], slot: int) -> str:
    """The GPU of worker slot `slot`: round robin, so `--workers 2N` packs two runs on each of N GPUs."""
    return gpus[slot % len(gpus)]
