"""Epoch-end callbacks: record every metric, then checkpoint.

Lightning calls callbacks' `on_train_epoch_end` in list order, after the epoch's validation pass.
run.py orders them: measurement callbacks (they add to the shared EpochLog) → EpochRecorder (writes
the epoch's row to the run directory, then W&B) → EpochCheckpoint. A kill between the row and the
checkpoint is harmless: resume truncates metrics.jsonl to the checkpoint's epoch and redoes it.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch

from pipeline.measure.evaluate import split_metrics
from ddsweep.errors import UserError
from pipeline.store.rundir import RunDir, file_digest
from pipeline.store.tracking import Tracker


class Diverged(Exception):
    """Training loss became NaN or infinite."""

    def __init__(self, epoch: int, seeds: list[int]):
        super().__init__(f"loss is not finite at epoch {epoch} (seeds {seeds})")
        self.epoch = epoch


@dataclass
class EpochLog:
    """What the measurement callbacks contribute to the current epoch's row."""
    metrics: dict = field(default_factory=dict)   # name → float, or per-seed tensor [S]
    images: dict = field(default_factory=dict)    # W&B key → PNG path

    def clear(self) -> None:
        self.metrics.clear()
        self.images.clear()


def name_per_seed(name: str, values: torch.Tensor, seeds: list[int]) -> dict:
    """A per-seed tensor [S] → {name/seed<N>: v, ..., name: mean over seeds}."""
    values = values.detach().double().cpu()
    out = {f"{name}/seed{s}": float(v) for s, v in zip(seeds, values)}
    out[name] = float(values.mean())
    return out


class EpochRecorder(L.Callback):
    """Writes one row per epoch to metrics.jsonl, then to W&B.

    Logs: train/loss_steps (mean mini-batch loss of the epoch), and on evaluation epochs
    train/loss, train/error (labels trained on), train/error_clean, train/memorized (when labels
    were changed), test/loss, test/error; model/params, model/width; plus whatever the measurement
    callbacks put in the EpochLog. Per-seed values as name/seed<N>, the bare name the seed mean.
    Raises Diverged when the training loss of any seed is not finite.
    """

    def __init__(self, run_dir: RunDir, tracker: Tracker, log: EpochLog, *, seeds: list[int],
                 labels, static: dict, verbose: bool = True):
        self.run_dir = run_dir
        self.tracker = tracker
        self.epoch_log = log
        self.seeds = list(seeds)
        self.labels = labels
        self.static = dict(static)
        self.verbose = verbose
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        step_loss = pl_module.step_loss()
        row = {"epoch": epoch, "step": trainer.global_step}
        row.update(name_per_seed("train/loss_steps", step_loss, self.seeds))
        row.update(self._bookkeeping(pl_module.eval_logits))
        for key, value in self.epoch_log.metrics.items():
            row.update(name_per_seed(key, value, self.seeds) if torch.is_tensor(value) and value.ndim else {key: value})
        row.update(self.static)
        row["time"] = round(time.perf_counter() - self._start, 3)
        self.run_dir.append_metrics(row)
        self.tracker.log({k: v for k, v in row.items() if k != "epoch"}, step=epoch, images=self.epoch_log.images)
        self.epoch_log.clear()
        pl_module.eval_logits = {}
        if self.verbose:
            print(_line(row, trainer.max_epochs), flush=True)
        bad = [s for s, v in zip(self.seeds, step_loss.tolist()) if not math.isfinite(v)]
        if bad:
            raise Diverged(epoch, bad)

    def _bookkeeping(self, eval_logits: dict) -> dict:
        out: dict = {}
        if "train" in eval_logits:
            lab = self.labels
            m = split_metrics(eval_logits["train"], lab.noisy, lab.clean, lab.changed)
            out.update(name_per_seed("train/loss", m["loss"], self.seeds))
            out.update(name_per_seed("train/error", m["error"], self.seeds))
            out.update(name_per_seed("train/error_clean", m["clean_error"], self.seeds))
            if m.get("memorized") is not None:
                out.update(name_per_seed("train/memorized", m["memorized"], self.seeds))
        if "test" in eval_logits:
            m = split_metrics(eval_logits["test"], self.labels.test)
            out.update(name_per_seed("test/loss", m["loss"], self.seeds))
            out.update(name_per_seed("test/error", m["error"], self.seeds))
        return out


def _line(row: dict, max_epochs: int) -> str:
    keys = ("train/loss", "train/error", "test/error", "regions/train/mean", "repro/test_disagreement")
    parts = [f"epoch {row['epoch']}/{max_epochs}"]
    parts += [f"{k} {row[k]:.4g}" for k in keys if k in row]
    return "  ".join(parts) + f"  ({row['time']:.1f}s)"


class EpochCheckpoint(L.Callback):
    """checkpoints/last.ckpt every `every` epochs and at the end, written atomically; the one before
    it is kept as prev.ckpt so a corrupt last checkpoint still leaves a good one. Each file's sha256
    goes to checkpoints/digests.json before the file is renamed into place."""

    def __init__(self, run_dir: RunDir, every: int):
        self.run_dir = run_dir
        self.directory = run_dir.checkpoints
        self.every = every

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        last, prev = self.directory / "last.ckpt", self.directory / "prev.ckpt"
        tmp = self.directory / f".last.ckpt.tmp{os.getpid()}"
        try:
            self.run_dir.sync_metrics()  # every row the checkpoint covers is on disk first
            trainer.save_checkpoint(tmp, weights_only=False)  # full state: optimizer, loops, callbacks
            digest = file_digest(tmp, sync=True)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise UserError(f"cannot write checkpoint {last}: {err.strerror or err}") from None
        try:
            self.run_dir.remember_checkpoint(digest, epoch)  # resume checks the file against it
        except UserError:
            tmp.unlink(missing_ok=True)
            raise
        if last.exists():
            os.replace(last, prev)
        os.replace(tmp, last)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["ddsweep"] = {"epochs_completed": trainer.current_epoch + 1}
