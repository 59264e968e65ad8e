"""Training batches that live on the device, for S models (seed slots) trained at once.

Every random choice for seed slot s at epoch e (the data order and the augmentation) comes from
generators seeded by a hash of (order_seeds[s], e) alone, so a resumed run that calls
`set_epoch(e)` sees exactly the batches an uninterrupted run saw, and slots that share an order
seed get bitwise-identical batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from ddsweep.errors import DataError

_ORDER_STREAM, _AUGMENT_STREAM = 0, 1


def epoch_seed(order_seed: int, epoch: int, stream: int) -> int:
    """A 64-bit seed from (order_seed, epoch, stream) via numpy's SeedSequence hash, so nearby
    seeds and epochs give unrelated generator states."""
    words = [order_seed % 2**64, epoch % 2**64, stream]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0])


def shuffle_order(n: int, window: int | None, generator: torch.Generator) -> Tensor:
    """[n] permutation of 0..n-1 from a streaming shuffle buffer of size `window`: fill the
    buffer with the first `window` indices, then repeatedly emit a uniformly drawn buffer entry
    and put the next index in its place; finally emit what is left in random order.
    window=1: the identity (fixed order); window=None or >= n: a uniform permutation.
    An index i can leave the buffer no earlier than position i - window + 1."""
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
        raise DataError(f"data.window: must be a positive integer or null (full shuffle), got {window!r}")
    if window is None or window >= n:
        return torch.randperm(n, generator=generator)
    if window == 1:
        return torch.arange(n)
    picks = torch.randint(0, window, (n - window,), generator=generator).tolist()  # drawn up front
    tail = torch.randperm(window, generator=generator).tolist()
    buffer = list(range(window))
    order = []
    for step, slot in enumerate(picks):
        order.append(buffer[slot])
        buffer[slot] = window + step
    order.extend(buffer[i] for i in tail)
    return torch.tensor(order, dtype=torch.int64)


class Augment:
    """Random crop with zero padding `pad` (a shift of up to `pad` pixels each way, uncovered
    pixels set to `fill`) followed by a random horizontal flip, for a batch on its own device.

    `fill` is one value per channel in the (normalized) input space; None means 0, the mean
    colour. `Augment.for_dataset` pads with black, what torchvision's RandomCrop(padding=4)
    before Normalize does."""

    def __init__(self, crop: bool, flip: bool, pad: int = 4, fill: tuple[float, ...] | None = None):
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0 or (crop and pad == 0):
            raise DataError(f"data.augment.pad: must be a positive integer when cropping, got {pad!r}")
        self.crop, self.flip, self.pad = bool(crop), bool(flip), pad
        self.fill = None if fill is None else tuple(float(v) for v in fill)

    @classmethod
    def for_dataset(cls, dataset, crop: bool, flip: bool, pad: int = 4) -> Augment:
        """Pad with the normalized value of a black pixel, (0 - mean) / std per channel."""
        fill = None
        if dataset.mean is not None and dataset.std is not None:
            fill = tuple(-m / s for m, s in zip(dataset.mean, dataset.std))
        return cls(crop, flip, pad, fill)

    def __repr__(self) -> str:
        return f"Augment(crop={self.crop}, flip={self.flip}, pad={self.pad}, fill={self.fill})"

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """x [B, C, H, W] -> [B, C, H, W]; draws from `generator`, which lives on x's device."""
        if x.dim() != 4:
            raise ValueError(f"Augment needs [B, C, H, W] images, got shape {tuple(x.shape)}")
        if self.crop:
            x = self._crop(x, generator)
        if self.flip:
            flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5  # [B]
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        return x

    def _crop(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b, c, h, w = x.shape
        p = self.pad
        padded = x.new_zeros(b, c, h + 2 * p, w + 2 * p)  # [B, C, H+2p, W+2p]
        if self.fill is not None:
            if len(self.fill) != c:
                raise ValueError(f"Augment fill has {len(self.fill)} values for {c} channels")
            for channel, value in enumerate(self.fill):  # python scalars: no host-to-device copy
                padded[:, channel].fill_(value)
        padded[:, :, p : p + h, p : p + w] = x
        dy = torch.randint(0, 2 * p + 1, (b,), device=x.device, generator=generator)  # [B]
        dx = torch.randint(0, 2 * p + 1, (b,), device=x.device, generator=generator)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # [B, H, 1]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # [B, 1, W]
        batch = torch.arange(b, device=x.device)[:, None, None]  # [B, 1, 1]
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # [B, C, H, W]


class DeviceBatches:
    """Iterable over one epoch of training batches: yields (x [S, B, *in_shape], y [S, B]).

    `y` is [N] (every slot trains on the same labels) or [S, N] (slot s on its own labels y[s]:
    the seeds of fused sweep points with different label noise, ddsweep.pipeline.train.group).

    Slot s reads the data in the order `shuffle_order(N, window, g)` with g seeded by
    (order_seeds[s], epoch); `augment` (if any) draws from a generator on x's device seeded the
    same way. Orders are computed once per epoch and moved to x's device; iteration itself does
    no host synchronization. Slots with equal order seeds share one computed batch (expanded
    when all seeds are equal, so the S copies cost nothing)."""

    def __init__(self, x: Tensor, y: Tensor, *, batch_size: int, order_seeds: list[int], window: int | None,
                 augment: Augment | None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"data.batch_size: must be a positive integer, got {batch_size!r}")
        if len(order_seeds) == 0:
            raise ValueError("order_seeds must name at least one seed slot")
        if x.shape[0] != y.shape[-1] or y.dim() not in (1, 2) or x.device != y.device:
            raise ValueError(f"x {tuple(x.shape)} on {x.device} and y {tuple(y.shape)} on {y.device} do not match")
        if y.dim() == 2 and y.shape[0] != len(order_seeds):
            raise ValueError(f"labels for {y.shape[0]} slots, order seeds for {len(order_seeds)}")
        shuffle_order(1, window, torch.Generator())  # validates window
        self.x, self.y = x, y
        self.batch_size, self.window, self.augment = batch_size, window, augment
        self.order_seeds = [int(s) for s in order_seeds]
        self.unique_seeds = sorted(set(self.order_seeds))
        # slot s takes computed batch slot_source[s]
        self.slot_source = torch.tensor([self.unique_seeds.index(s) for s in self.order_seeds], device=x.device)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.x.shape[0] / self.batch_size)

    def orders(self, epoch: int) -> Tensor:
        """[U, N] data order of each distinct order seed at `epoch`, on x's device."""
        n = self.x.shape[0]
        orders = [
            shuffle_order(n, self.window, torch.Generator().manual_seed(epoch_seed(s, epoch, _ORDER_STREAM)))
            for s in self.unique_seeds
        ]
        return torch.stack(orders).to(self.x.device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self._epoch(self.epoch)  # the epoch is fixed when iteration starts

    def _epoch(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        orders = self.orders(epoch)  # [U, N]
        generators = None
        if self.augment is not None:
            generators = [
                torch.Generator(device=self.x.device).manual_seed(epoch_seed(s, epoch, _AUGMENT_STREAM))
                for s in self.unique_seeds
            ]
        num_slots, num_unique = len(self.order_seeds), len(self.unique_seeds)
        per_slot = self.y.dim() == 2
        slots = torch.arange(num_slots, device=self.x.device)[:, None]  # [S, 1]
        for start in range(0, self.x.shape[0], self.batch_size):
            idx = orders[:, start : start + self.batch_size]  # [U, B]
            xs = self.x[idx]  # [U, B, *in_shape]
            if generators is not None:
                xs = torch.stack([self.augment(xs[u], generators[u]) for u in range(num_unique)])
            if per_slot:  # slot s: its own labels at its own order
                ys = self.y[slots, idx[self.slot_source]]  # [S, B]
            else:
                ys = self.y[idx]  # [U, B]
            if num_unique == 1:
                xs = xs.expand(num_slots, *xs.shape[1:])
                yield xs, ys if per_slot else ys.expand(num_slots, -1)
            elif num_unique == num_slots and self.unique_seeds == self.order_seeds:
                yield xs, ys
            else:
                yield xs[self.slot_source], ys if per_slot else ys[self.slot_source]
