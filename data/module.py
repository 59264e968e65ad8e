"""The LightningDataModule: a Dataset and its noisy labels, resident on one device."""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch

from ddsweep.data.loader import Augment, DeviceBatches
from ddsweep.data.noise import NoisyLabels
from ddsweep.data.sources import Dataset
from ddsweep.errors import DataError


# Mini-batches per Lightning training_step call (see ddsweep.pipeline.train.module), and the most
# bytes of inputs one call's chunk may hold
STEPS_PER_CALL = 16
CHUNK_BYTES = 64 << 20


class _TrainerEpochBatches(DeviceBatches):
    """DeviceBatches that take the epoch from the trainer each time iteration starts, so every
    epoch reshuffles and a resumed run replays the epochs it resumes at. (Lightning calls
    `set_epoch` only on a DataLoader's sampler, never on a plain iterable.)"""

    def __init__(self, datamodule: DDDataModule, **kwargs):
        super().__init__(**kwargs)
        self._datamodule = datamodule

    def __iter__(self) -> Iterator:
        # Read the epoch when the first batch is drawn, not when iter() is called: on resume from an
        # end-of-epoch checkpoint Lightning creates the iterator while its epoch counter still
        # points at the finished epoch.
        trainer = self._datamodule.trainer
        if trainer is not None:
            self.set_epoch(trainer.current_epoch)
        chunk: list = []
        for pair in self._epoch(self.epoch):
            chunk.append(pair)
            if len(chunk) == self.steps_per_call:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    @property
    def steps_per_call(self) -> int:
        """Consecutive mini-batches per chunk: STEPS_PER_CALL, fewer when their inputs would pass CHUNK_BYTES."""
        per_batch = len(self.order_seeds) * self.batch_size * self.x[0].numel() * self.x.element_size()
        return max(1, min(STEPS_PER_CALL, CHUNK_BYTES // max(per_batch, 1)))

    def __len__(self) -> int:
        return -(-super().__len__() // self.steps_per_call)


class DDDataModule(L.LightningDataModule):
    """Train batches: chunks of consecutive mini-batches (x [S, B, *in_shape], y_noisy [S, B]),
    S = len(order_seeds), one chunk per Lightning training_step (STEPS_PER_CALL). Every tensor
    (train and test sets, noisy and clean labels) is resident on the device (`tensors`), where the
    run's epoch record evaluates them."""

    def __init__(self, dataset: Dataset, labels: NoisyLabels, *, batch_size: int,
                 order_seeds: list[int], window: int | None, augment: Augment | None,
                 device: torch.device | str | None = "cpu", slot_labels: torch.Tensor | None = None):
        super().__init__()
        if labels.noisy.shape[0] != dataset.x_train.shape[0]:
            raise ValueError(f"{labels.noisy.shape[0]} labels for {dataset.x_train.shape[0]} train points")
        if augment is not None and (augment.crop or augment.flip) and not dataset.is_image:
            raise DataError(
                f"data.augment: crop and flip need image inputs [C, H, W]; {dataset.name} inputs are "
                f"{list(dataset.in_shape)}; turn them off"
            )
        if slot_labels is not None and tuple(slot_labels.shape) != (len(order_seeds), dataset.x_train.shape[0]):
            raise ValueError(f"slot_labels {tuple(slot_labels.shape)}: need one row of labels per order seed")
        self.dataset, self.labels = dataset, labels
        self.slot_labels = slot_labels  # [S, N]: slot s trains on slot_labels[s] (fused sweep points)
        self.batch_size = batch_size
        self.order_seeds, self.window, self.augment = list(order_seeds), window, augment
        self.device = None if device is None else torch.device(device)  # None: the trainer's device
        self._tensors: dict[str, torch.Tensor] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._tensors is not None:
            return  # already resident: one copy for fit, validate and test
        device = self.device
        if device is None:
            device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        to = lambda t: t.to(device)  # noqa: E731
        self._tensors = {
            "x_train": to(self.dataset.x_train), "y_noisy": to(self.labels.noisy),
            "y_clean": to(self.labels.clean), "changed": to(self.labels.changed),
            "x_test": to(self.dataset.x_test), "y_test": to(self.dataset.y_test),
        }
        if self.slot_labels is not None:
            self._tensors["y_slots"] = to(self.slot_labels)

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        if self._tensors is None:
            self.setup()
        return self._tensors

    def train_dataloader(self) -> DeviceBatches:
        t = self.tensors
        return _TrainerEpochBatches(
            self, x=t["x_train"], y=t.get("y_slots", t["y_noisy"]), batch_size=self.batch_size, order_seeds=self.order_seeds,
            window=self.window, augment=self.augment,
        )
