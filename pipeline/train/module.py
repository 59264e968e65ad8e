"""The LightningModule: S seeds of one network trained together. Loss, optimizer, one shared step.

The network is injected (models.create_model with copies=S, or a SeedList of S separate models);
it maps x [S, B, *in_shape] → logits [S, B, C]. The summed per-seed loss gives every seed exactly
the gradient it would get alone, and Adam/SGD act elementwise, so S seeds trained together follow
the same trajectories as S separate runs.

The module logs nothing, writes nothing and evaluates nothing: the run's epoch record
(ddsweep.pipeline.train.epoch) evaluates the network and measures it at the end of each epoch.

Steps per Lightning call. Lightning's per-batch machinery (hooks, closures, progress counters)
costs about as much as a whole step of a small network on a CPU, so the data module hands
`training_step` a chunk of consecutive mini-batches (data.module.STEPS_PER_CALL at most) and the
module takes one optimizer step per mini-batch itself (manual optimization): the same steps on the
same batches in the same order as one step per call, with the learning-rate schedule stepped after
every optimizer step (`step`) or set from the epoch at the start of each epoch (`epoch`).
"""
from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from ddsweep.pipeline.config import TrainConfig


class DDModule(L.LightningModule):
    def __init__(self, net: nn.Module, *, seeds: list[int], train: TrainConfig, steps_per_epoch: int):
        super().__init__()
        self.net = net
        self.seeds = list(seeds)
        self.hp = train
        self.steps_per_epoch = steps_per_epoch
        self.register_buffer("_step_loss_sum", torch.zeros(len(seeds)), persistent=False)
        self._step_count = 0
        self.automatic_optimization = False  # several optimizer steps per Lightning call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def model_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [S, B, ...], y [S, B] → per-seed mean loss [S], logits [S, B, C]."""
        logits = self.net(x)
        S, B, C = logits.shape
        loss = F.cross_entropy(logits.reshape(S * B, C).float(), y.reshape(S * B), reduction="none")
        return loss.view(S, B).mean(dim=1), logits

    # ---------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        self._step_loss_sum.zero_()
        self._step_count = 0
        scheduler = self._scheduler("epoch")
        if scheduler is not None:  # the rate of epoch e is factor(e), also right after a resume
            while scheduler.last_epoch < self.trainer.current_epoch:
                scheduler.step()

    def training_step(self, batch, batch_idx):
        """One optimizer step per mini-batch of `batch`: a list of (x, y) pairs, or one pair."""
        optimizer = self.optimizers()
        scheduler = self._scheduler("step")
        for x, y in batch if isinstance(batch, list) else [batch]:
            loss, _ = self.model_step(x, y)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss.sum())
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            self._step_loss_sum += loss.detach()  # stays on the device: no host sync per step
            self._step_count += 1

    def _scheduler(self, interval: str):
        """The learning-rate schedule when it is stepped at `interval`, else None."""
        if self.hp.schedule_interval != interval or not self.trainer.lr_scheduler_configs:
            return None
        return self.trainer.lr_scheduler_configs[0].scheduler

    def step_loss(self) -> torch.Tensor:
        """Mean mini-batch training loss of this epoch per seed [S] (augmented data, train mode)."""
        return self._step_loss_sum / max(self._step_count, 1)

    # ---------------------------------------------------------------- optimization
    def configure_optimizers(self):
        hp = self.hp
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        # `epoch`: Lightning steps the scheduler after each epoch, so the rate is constant within one
        # and t counts epochs (torch's schedulers stepped per epoch, as Li et al.'s cosine)
        per_epoch = hp.schedule_interval == "epoch"
        factor = lr_factor(hp, total_steps=hp.epochs * (1 if per_epoch else self.steps_per_epoch))
        if factor is None:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": hp.schedule_interval}}


def lr_factor(hp: TrainConfig, total_steps: int):
    """Multiplier of the base learning rate at t, or None for a constant rate; t (and total_steps,
    schedule_step) count gradient steps, or epochs with `train.schedule_interval: epoch`."""
    if hp.schedule == "cosine":
        return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / max(total_steps, 1)))
    if hp.schedule == "inv_sqrt":  # Nakkiran et al.: lr0 / sqrt(1 + floor(t / 512))
        return lambda t: 1.0 / math.sqrt(1.0 + t // hp.schedule_step)
    return None
