"""Assemble the Lightning job of one run: network, data module, callbacks, trainer, resume point."""
from __future__ import annotations

import logging
import signal
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch

from data import DDDataModule
from models import count_params
from pipeline.train.epoch import EpochCheckpoint, EpochLog, EpochRecorder
from pipeline.train.module import DDModule
from pipeline.train.network import seed_streams
from pipeline.store.rundir import RunDir, file_digest
from pipeline.store.tracking import Tracker, wandb_mode


@dataclass
class Job:
    trainer: L.Trainer
    module: DDModule
    datamodule: DDDataModule
    tracker: Tracker
    ckpt_path: str | None
    static_summary: dict = field(default_factory=dict)

    def fit(self) -> None:
        handler = signal.getsignal(signal.SIGINT)
        try:
            self.trainer.fit(self.module, datamodule=self.datamodule, ckpt_path=self.ckpt_path, weights_only=True)
        except SystemExit as exit_:  # Lightning turns Ctrl-C into sys.exit(1) after its own teardown
            raise KeyboardInterrupt from exit_
        finally:
            signal.signal(signal.SIGINT, handler)  # Lightning leaves SIGINT ignored after an interrupt

    def interrupted(self) -> bool:
        return bool(self.trainer.interrupted)


def quiet_lightning() -> None:
    """Lightning's banners and tips are noise in a sweep's logs; warnings and errors stay."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


def precision_for(precision: str, accelerator: str) -> str:
    if precision == "auto":
        return "bf16-mixed" if accelerator == "gpu" else "32-true"
    return "32-true" if precision == "32" else precision


def build_trainer(cfg, cfg_dict: dict, run_dir: RunDir, net, dataset, labels, augment, accelerator: str,
                  wandb_id: str, verbose: bool) -> Job:
    from pipeline.train.run import Targets

    quiet_lightning()
    seeds = list(cfg.seeds)
    _, order_seeds = seed_streams(seeds, cfg.repro.vary)
    if accelerator == "gpu" and len(dataset.in_shape) == 3:
        net = net.to(memory_format=torch.channels_last)
    device = torch.device("cuda", 0) if accelerator == "gpu" else torch.device("cpu")
    datamodule = DDDataModule(dataset, labels, batch_size=cfg.train.batch_size,
                              eval_batch_size=cfg.train.eval_batch_size, order_seeds=order_seeds,
                              window=cfg.repro.shuffle_window, augment=augment, device=device)
    steps_per_epoch = -(-len(dataset.y_train) // cfg.train.batch_size)
    module = DDModule(net, seeds=seeds, train=cfg.train, steps_per_epoch=steps_per_epoch)
    if cfg.train.compile:
        module.net.compile(mode=cfg.train.compile_mode)  # in place: checkpoint keys stay those of the plain net

    params = count_params(net) if cfg.train.fuse_seeds else count_params(net.nets[0])
    static = {"model/params": params, "model/width": cfg.model.width}
    tracker = Tracker(wandb_mode(cfg.wandb.mode), project=cfg.wandb.project, entity=cfg.wandb.entity,
                      group=cfg.wandb.group, tags=cfg.wandb.tags, run_dir=run_dir.path, run_id=wandb_id,
                      name=run_dir.path.name, config=cfg_dict)
    targets = Targets(noisy=labels.noisy, clean=labels.clean, changed=labels.changed, test=dataset.y_test)
    log = EpochLog()
    callbacks = measurement_callbacks(cfg, run_dir, dataset, labels, log, seeds)
    callbacks += [EpochRecorder(run_dir, tracker, log, seeds=seeds, labels=targets, static=static, verbose=verbose),
                  EpochCheckpoint(run_dir, cfg.train.checkpoint_every)]
    trainer = L.Trainer(
        max_epochs=cfg.train.epochs, accelerator=accelerator, devices=cfg.train.devices,
        strategy=cfg.train.strategy, precision=precision_for(cfg.train.precision, accelerator),
        callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=cfg.train.eval_every,
        deterministic=accelerator == "cpu", default_root_dir=str(run_dir.path),
    )
    ckpt = resume_checkpoint(run_dir)
    return Job(trainer, module, datamodule, tracker, ckpt,
               static_summary={"model/params": params, "model/width": cfg.model.width})


def measurement_callbacks(cfg, run_dir, dataset, labels, log, seeds) -> list:
    """Decision planes, region counts and seed agreement (pipeline.train.measurement)."""
    try:
        from pipeline.train.measurement import measurement_callbacks as build
    except ImportError:
        return []
    return build(cfg, run_dir, dataset, labels, log, seeds)


def resume_checkpoint(run_dir: RunDir) -> str | None:
    """The newest intact, loadable checkpoint, or None (start from scratch); metrics.jsonl is cut
    back to it. Intact: its sha256 is one the run recorded when writing it (torch.load does not
    notice damaged tensor bytes); loadable: weights only, never arbitrary pickled objects."""
    digests = run_dir.checkpoint_digests()
    skipped = False
    for name in ("last.ckpt", "prev.ckpt"):
        path = run_dir.checkpoints / name
        if not path.exists():
            continue
        reason = None
        try:
            if digests is not None and file_digest(path) not in digests:
                reason = "corrupt: its sha256 is not that of a checkpoint this run wrote"
            else:
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
                done = int(ckpt["ddsweep"]["epochs_completed"])
        except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is skipped, and said so
            reason = type(err).__name__
        if reason:
            print(f"ddsweep: warning: checkpoint {path} is unreadable ({reason}); trying an older one",
                  file=sys.stderr)
            skipped = True
            continue
        run_dir.truncate_metrics(done)
        print(f"{run_dir.path}: resuming after epoch {done} from {path.name}", flush=True)
        return str(path)
    if skipped or run_dir.read_metrics():
        print(f"{run_dir.path}: no usable checkpoint; starting from scratch", file=sys.stderr)
        run_dir.truncate_metrics(0)
    return None
