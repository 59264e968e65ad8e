"""A reference training loop, written the way reference research code trains.

What ddsweep is measured against (bench_sweep.py). It trains the same network (models.create_model
with copies=1, so the layers and FLOPs are ddsweep's), on the same data, noisy labels, batch size,
optimizer, learning rate and schedule, but in the usual style:

- images: uint8 arrays turned into PIL images in `__getitem__`, then torchvision transforms
  (RandomCrop(pad) and RandomHorizontalFlip when the recipe augments, ToTensor, Normalize), as
  torchvision's CIFAR10 dataset serves them; data without augmentation (vectors such as MNIST-1D,
  or un-augmented 8x8 digits) comes from a TensorDataset of the normalized tensors;
- a DataLoader with shuffle=True: num_workers=2 and pin_memory=True on a GPU, num_workers=0 on a
  CPU (worker processes would only compete with training for the cores); workers are not
  persistent, so they start again every epoch as in most research code;
- fp32, one model per seed trained on its own (a plain nn.Module), `loss.item()` and accuracy
  `.item()` every batch, and the test set evaluated the same way on ddsweep's evaluation epochs
  (`train.eval_every`: every epoch by default, as reference code does).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ddsweep.models import create_model
from ddsweep.pipeline.train.module import lr_factor


class SingleModel(nn.Module):
    """A copies=1 model behind the plain interface [B, *in_shape] -> [B, C]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.unsqueeze(0)).squeeze(0)


class PILImages(torch.utils.data.Dataset):
    """uint8 [N, H, W, C] images served as PIL images through `transform`, with int labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image

        image = self.images[i]
        image = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        return self.transform(image), int(self.labels[i])


def to_uint8_hwc(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Normalized float [N, C, H, W] back to the uint8 [N, H, W, C] pixels reference code reads."""
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    pixels = (x * s + m).clamp(0, 1).mul(255).round().to(torch.uint8)  # [N, C, H, W]
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


def make_datasets(dataset, noisy_labels: torch.Tensor, augment_cfg):
    """(train, test) torch datasets in the reference style for `dataset` (a data.Dataset)."""
    augments = bool(augment_cfg.crop or augment_cfg.flip)
    if not augments:
        return (TensorDataset(dataset.x_train, noisy_labels), TensorDataset(dataset.x_test, dataset.y_test))
    from torchvision import transforms

    tail = [transforms.ToTensor(), transforms.Normalize(dataset.mean, dataset.std)]
    head = [transforms.RandomCrop(tuple(dataset.in_shape[1:]), padding=augment_cfg.pad)] if augment_cfg.crop else []
    head += [transforms.RandomHorizontalFlip()] if augment_cfg.flip else []
    train = PILImages(to_uint8_hwc(dataset.x_train, dataset.mean, dataset.std), noisy_labels.numpy(),
                      transforms.Compose(head + tail))
    test = PILImages(to_uint8_hwc(dataset.x_test, dataset.mean, dataset.std), dataset.y_test.numpy(),
                     transforms.Compose(tail))
    return train, test


def build_model(cfg, dataset, seed: int) -> nn.Module:
    """The same network ddsweep trains for this seed (copies=1, initialized from `seed`)."""
    m = cfg.model
    kwargs = dict(m.options)
    if m.activation == "smelu":
        kwargs["smelu_beta"] = m.smelu_beta
    net = create_model(m.name, width=m.width, in_shape=tuple(dataset.in_shape), num_classes=dataset.num_classes,
                       activation=m.activation, copies=1, generators=[torch.Generator().manual_seed(seed)],
                       **kwargs)
    return SingleModel(net)


def build_optimizer(cfg, model: nn.Module, steps_per_epoch: int):
    t = cfg.train
    if t.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    factor = lr_factor(t, total_steps=t.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor) if factor is not None else None
    return opt, sched


@dataclass
class EpochResult:
    seconds: float  # wall time of the epoch: training plus test evaluation (NaN metrics: none this epoch)
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float


def train_epoch(model, loader, opt, sched, device) -> tuple[float, float]:
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total_loss += loss.item() * y.shape[0]
        correct += (out.argmax(dim=1) == y).sum().item()
        seen += y.shape[0]
    return total_loss / seen, correct / seen


@torch.no_grad()
def evaluate(model, loader, device) -> tuple[float, float]:
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        total_loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(dim=1) == y).sum().item()
        seen += y.shape[0]
    return total_loss / seen, correct / seen


def loaders(cfg, dataset, noisy_labels: torch.Tensor, seed: int, device: torch.device):
    gpu = device.type == "cuda"
    train_set, test_set = make_datasets(dataset, noisy_labels, cfg.data.augment)
    common = dict(num_workers=2 if gpu else 0, pin_memory=gpu)
    train = DataLoader(train_set, batch_size=cfg.train.batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(seed), **common)
    test = DataLoader(test_set, batch_size=cfg.train.eval_batch_size, shuffle=False, **common)
    return train, test


def train_reference(cfg, dataset, noisy_labels: torch.Tensor, seed: int, epochs: int,
                    device: str | torch.device = "cpu") -> list[EpochResult]:
    """Train one seed's model for `epochs` epochs; one EpochResult per epoch."""
    device = torch.device(device)
    torch.manual_seed(seed)  # reference code seeds the global RNG once; the transforms draw from it
    model = build_model(cfg, dataset, seed).to(device)
    train_loader, test_loader = loaders(cfg, dataset, noisy_labels, seed, device)
    opt, sched = build_optimizer(cfg, model, len(train_loader))
    results = []
    for epoch in range(epochs):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, train_loader, opt, sched, device)
        test_loss = test_acc = math.nan
        if (epoch + 1) % cfg.train.eval_every == 0:  # Lightning's check_val_every_n_epoch rule
            test_loss, test_acc = evaluate(model, test_loader, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        results.append(EpochResult(time.perf_counter() - start, train_loss, train_acc, test_loss, test_acc))
    return results


def train_tensor_loop(cfg, dataset, noisy_labels: torch.Tensor, seed: int, epochs: int,
                      device: str | torch.device = "cpu", eval_train: bool = False) -> list[EpochResult]:
    """A lean plain loop: the data as tensors on the device, a randperm and slices per epoch, no
    per-batch host sync (the loss is summed on the device), the test set evaluated every
    `train.eval_every` epochs in eval_batch_size chunks (`eval_train`: the train set too, in eval
    mode, as ddsweep measures train error on the labels trained on). What a careful researcher
    writes for data that fits in memory (MNIST-1D, digits); no augmentation."""
    if cfg.data.augment.crop or cfg.data.augment.flip:
        raise ValueError("train_tensor_loop: no augmentation; use train_reference")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    model = build_model(cfg, dataset, seed).to(device)
    x, y = dataset.x_train.to(device), noisy_labels.to(device)
    x_test, y_test = dataset.x_test.to(device), dataset.y_test.to(device)
    batch = cfg.train.batch_size
    steps = math.ceil(len(y) / batch)
    opt, sched = build_optimizer(cfg, model, steps)
    results = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=generator).to(device)
        total = torch.zeros((), device=device)
        for i in range(steps):
            idx = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += loss.detach()
        test_loss = test_acc = train_acc = math.nan
        if (epoch + 1) % cfg.train.eval_every == 0:
            model.eval()
            with torch.no_grad():
                chunk = cfg.train.eval_batch_size
                out = torch.cat([model(x_test[i:i + chunk]) for i in range(0, len(y_test), chunk)])
                test_loss = F.cross_entropy(out, y_test).item()
                test_acc = (out.argmax(dim=1) == y_test).float().mean().item()
                if eval_train:
                    out = torch.cat([model(x[i:i + chunk]) for i in range(0, len(y), chunk)])
                    train_acc = (out.argmax(dim=1) == y).float().mean().item()
        results.append(EpochResult(time.perf_counter() - start, total.item() / steps, train_acc, test_loss, test_acc))
    return results
