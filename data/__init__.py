"""Datasets by name, label noise, and batches resident on the training device.

    dataset = load_source("digits")
    labels = apply_label_noise(dataset.y_train, dataset.num_classes, kind="symmetric", rate=0.2, seed=0)
"""

from ddsweep.data.loader import Augment, DeviceBatches, shuffle_order
from ddsweep.data.noise import NOISE_KINDS, NoisyLabels, apply_label_noise
from ddsweep.data.sources import Dataset, list_sources, load_source, register_source, source_options



def __getattr__(name: str):
    # The LightningDataModule imports Lightning (seconds); config validation and the sweep engine
    # only need the registries, so it is loaded on first use.
    if name == "DDDataModule":
        from ddsweep.data.module import DDDataModule

        return DDDataModule
    raise AttributeError(f"module 'data' has no attribute {name!r}")


__all__ = [
    "Augment", "DDDataModule", "Dataset", "DeviceBatches", "NOISE_KINDS", "NoisyLabels",
    "apply_label_noise", "list_sources", "load_source", "register_source", "shuffle_order",
    "source_options",
]
