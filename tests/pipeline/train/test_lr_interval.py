"""train.schedule_interval: `step` moves the schedule every gradient step; `epoch` holds the rate
constant within an epoch and steps it once per epoch (Li et al.'s cosine)."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from ddsweep.data import DDDataModule, apply_label_noise, load_source
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.device import DevicePlan
from ddsweep.pipeline.train.module import DDModule
from ddsweep.pipeline.train.network import build_network
from ddsweep.pipeline.train.trainer import build_trainer


class LearningRates(L.Callback):
    def __init__(self):
        self.per_step: list[float] = []

    def on_train_start(self, trainer, pl_module):  # the rate each optimizer step uses
        trainer.optimizers[0].register_step_pre_hook(
            lambda opt, args, kwargs: self.per_step.append(opt.param_groups[0]["lr"]))


def learning_rates(interval: str) -> list[float]:
    """The rate of every gradient step of a 4-epoch cosine run, 2 steps per epoch."""
    cfg = load_config(overrides={"data.name": "moons", "data.train_size": 8, "data.test_size": 4,
                                 "model.width": 4, "seeds": [0], "train.epochs": 4, "train.batch_size": 4,
                                 "train.lr": 0.1, "train.schedule": "cosine",
                                 "train.schedule_interval": interval, "wandb.mode": "disabled"})
    dataset = load_source("moons", train_size=8, test_size=4)
    labels = apply_label_noise(dataset.y_train, dataset.num_classes, kind="symmetric", rate=0.0, seed=0)
    net = build_network(cfg.model, in_shape=dataset.in_shape, num_classes=2, init_seeds=[0], fuse=True)
    module = DDModule(net, seeds=[0], train=cfg.train, steps_per_epoch=2)
    data = DDDataModule(dataset, labels, batch_size=4, order_seeds=[0], window=None, augment=None, device="cpu")
    recorder = LearningRates()
    plan = DevicePlan.for_config(cfg.train, in_shape=dataset.in_shape)
    trainer = build_trainer(cfg.train, plan, [recorder], root_dir="unused")
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 8
    return recorder.per_step


def test_per_epoch_cosine_is_constant_within_each_epoch():
    factors = [1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2]
    assert learning_rates("epoch") == pytest.approx([0.1 * f for f in factors for _ in range(2)], abs=1e-12)


def test_per_step_cosine_moves_every_step():
    assert learning_rates("step") == pytest.approx([0.05 * (1 + math.cos(math.pi * t / 8)) for t in range(8)],
                                                   abs=1e-12)


@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_a_resumed_schedule_continues_where_it_stopped(tmp_path, monkeypatch, interval):
    """Stopped after epoch 2 and resumed, a cosine run trains on as one uninterrupted run: the module
    steps the schedule itself (manual optimization), so a checkpoint must carry it right."""
    import signal

    from train_helpers import rows, train, weights

    from ddsweep.pipeline.train.epoch import EpochCommit

    extra = ["--train.epochs=4", "--train.schedule=cosine", f"--train.schedule_interval={interval}",
             "--train.optimizer=sgd", "--train.lr=0.5"]
    record = EpochCommit.record

    def stop_at_2(self, row, images):
        record(self, row, images)
        if row["epoch"] == 2:
            self.stop.signum = signal.SIGTERM

    with monkeypatch.context() as m:
        m.setattr(EpochCommit, "record", stop_at_2)
        assert train(tmp_path, "part", extra)[0] == 75
    code, part = train(tmp_path, "part", extra)
    _, full = train(tmp_path, "full", extra)
    assert code == 0 and rows(part) == rows(full) and [r["epoch"] for r in rows(full)] == [1, 2, 3, 4]
    assert all(torch.equal(weights(part)[k], weights(full)[k]) for k in weights(full))
