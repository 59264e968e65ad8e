"""One epoch's record, on one path: evaluate → measure → row → run directory → W&B → checkpoint.

`EpochEnd` is a run's only Lightning callback. At the end of every training epoch (and, with
`planes.at_init`, once before any training, as epoch 0) it calls, in this order and nowhere else:
  1. `evaluate` on evaluation epochs (`train.eval_every`, measurement epochs and the last epoch):
     train and test logits in eval mode, fp32, turned into the bookkeeping metrics by `bookkeeping`;
  2. the run's `Measurement` (decision planes, regions, agreement, margins, pictures) on its schedule;
  3. `EpochCommit.record`: the row to metrics.jsonl, then to W&B;
  4. `EpochCommit.checkpoint` when one is due (by wall time, every n epochs, at the end, or when a
     stop signal arrived: then the run stops after it, see pipeline.train.trainer).
`EpochCommit` owns the rule "each epoch exactly once": every row a checkpoint covers is fsynced
before the checkpoint is written, and `resume_point` picks the newest intact checkpoint and cuts
metrics.jsonl back to its epoch (the epoch-0 row included), so the resumed run writes the epochs
after it once more; a run that starts from scratch keeps no row.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

import lightning as L
import torch

from ddsweep.errors import UserError
from pipeline.measure.evaluate import as_logits_fn, batched_logits, split_metrics
from pipeline.measure.repro import pd_l1, test_disagreement
from pipeline.store.rundir import RunDir, file_digest
from pipeline.store.tracking import Tracker
from pipeline.train.trainer import Interrupted, StopRequest


class Diverged(Exception):
    """Training loss became NaN or infinite."""

    def __init__(self, epoch: int, seeds: list[int]):
        super().__init__(f"loss is not finite at epoch {epoch} (seeds {seeds})")
        self.epoch = epoch


@dataclass
class Targets:
    """Labels the bookkeeping metrics compare against."""
    noisy: torch.Tensor    # [N] labels trained on
    clean: torch.Tensor    # [N]
    changed: torch.Tensor  # [N] bool
    test: torch.Tensor     # [M]


def name_per_seed(name: str, values: torch.Tensor, seeds: list[int]) -> dict:
    """A per-seed tensor [S] → {name/seed<N>: v, ..., name: mean over seeds}."""
    values = values.detach().double().cpu()
    out = {f"{name}/seed{s}": float(v) for s, v in zip(seeds, values)}
    out[name] = float(values.mean())
    return out


def named(metrics: dict, seeds: list[int]) -> dict:
    """Per-seed tensors [S] named per seed (and their mean); plain numbers kept as they are."""
    out: dict = {}
    for key, value in metrics.items():
        per_seed = torch.is_tensor(value) and value.ndim
        out.update(name_per_seed(key, value, seeds) if per_seed else {key: value})
    return out


def evaluate(net: torch.nn.Module, tensors: dict, batch_size: int) -> dict[str, torch.Tensor]:
    """Logits [S, N, C] of the un-augmented train and test sets: eval mode, no autograd, fp32
    whatever the training precision (hooks run outside the trainer's autocast)."""
    fn = as_logits_fn(net, affine_stem=False)
    return {"train": batched_logits(fn, tensors["x_train"], batch_size),
            "test": batched_logits(fn, tensors["x_test"], batch_size)}


def bookkeeping(logits: dict[str, torch.Tensor], targets: Targets) -> dict:
    """The double-descent metrics of one evaluation, per seed [S]: train/loss, train/error (labels
    trained on), train/error_clean, train/memorized (when labels were changed), test/loss,
    test/error; with two or more seeds also repro/test_disagreement and repro/pd_l1 (METHODS)."""
    out: dict = {}
    m = split_metrics(logits["train"], targets.noisy, targets.clean, targets.changed)
    out.update({"train/loss": m["loss"], "train/error": m["error"], "train/error_clean": m["clean_error"]})
    if m.get("memorized") is not None:
        out["train/memorized"] = m["memorized"]
    m = split_metrics(logits["test"], targets.test)
    out.update({"test/loss": m["loss"], "test/error": m["error"]})
    if logits["test"].shape[0] > 1:
        out["repro/test_disagreement"] = test_disagreement(logits["test"])
        out["repro/pd_l1"] = pd_l1(logits["test"])
    return out


class EpochCommit:
    """The run directory's epochs: rows, checkpoints, their digests, and the resume point.

    checkpoints/last.ckpt is written atomically at the end of an epoch once `minutes` of wall time
    (`clock`, seconds) passed since the last checkpoint or since the run began, every `every` epochs
    when set, at the last epoch, and when a stop signal arrived (`stop`, read by EpochEnd). The one
    before it is kept as prev.ckpt so a corrupt last checkpoint still leaves a good one. Each file's
    sha256 goes to checkpoints/digests.json before the file takes its name."""

    def __init__(self, run_dir: RunDir, tracker: Tracker, *, every: int | None, minutes: float,
                 stop: StopRequest | None = None, clock=time.monotonic):
        self.run_dir = run_dir
        self.tracker = tracker
        self.every = every
        self.minutes = minutes
        self.stop = stop or StopRequest()
        self.clock = clock
        self._since = clock()  # wall time of the last checkpoint (or of the start)

    def record(self, row: dict, images: dict) -> None:
        """The run directory first (it is the record), then W&B (fail-safe)."""
        self.run_dir.append_metrics(row)
        self.tracker.log({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"], images=images)

    def due(self, epoch: int, last: bool) -> bool:
        """A checkpoint at the end of `epoch` (stop signals aside): at the last epoch, every `every`
        epochs, and once `minutes` passed since the last checkpoint."""
        if last or (self.every and epoch % self.every == 0):
            return True
        return self.minutes > 0 and self.clock() - self._since >= 60.0 * self.minutes

    def checkpoint(self, trainer: L.Trainer, epoch: int) -> None:
        directory = self.run_dir.checkpoints
        last, prev = directory / "last.ckpt", directory / "prev.ckpt"
        tmp = directory / f".last.ckpt.tmp{os.getpid()}"
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
        self._since = self.clock()

    def resume_point(self) -> str | None:
        """The newest intact, loadable checkpoint, or None (start from scratch); metrics.jsonl is cut
        back to it. Intact: its sha256 is one the run recorded when writing it (torch.load does not
        notice damaged tensor bytes); loadable: weights only, never arbitrary pickled objects."""
        run_dir = self.run_dir
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
            run_dir.truncate_metrics(-1)
        return None


class EpochEnd(L.Callback):
    """The run's per-epoch record (see the module docstring). Logs every epoch
    train/loss_steps (mean mini-batch loss, augmented data, train mode), on evaluation epochs the
    `bookkeeping` metrics, model/params and model/width, the `Measurement`'s metrics on its
    schedule, and `time` (seconds since the process started training). Per-seed values as
    name/seed<N>, the bare name the seed mean. With `at_init`, a row for epoch 0 (step 0, no
    train/loss_steps) is evaluated and measured before the first step of a run that starts from
    scratch (a resumed run has it already). Raises Diverged when any seed's loss is not finite, and
    Interrupted after the checkpoint of the epoch during which a stop signal arrived.
    Keeps the measurement's triplets in its state, so a resumed run measures the same planes."""

    def __init__(self, commit: EpochCommit, measurement, *, targets: Targets, seeds: list[int],
                 static: dict, eval_every: int, eval_batch_size: int, at_init: bool = False,
                 verbose: bool = True):
        self.commit = commit
        self.measurement = measurement  # None when planes, 1-D regions and margins are off
        self.targets = targets
        self.seeds = list(seeds)
        self.static = dict(static)
        self.eval_every = eval_every
        self.eval_batch_size = eval_batch_size
        self.at_init = at_init
        self.verbose = verbose
        self._start = time.perf_counter()

    def state_dict(self) -> dict:
        return self.measurement.state_dict() if self.measurement is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if self.measurement is not None:
            self.measurement.load_state_dict(state_dict)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["ddsweep"] = {"epochs_completed": trainer.current_epoch + 1}

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.commit.stop.install()  # back from Lightning, which took SIGTERM when fit began
        if self.at_init and trainer.current_epoch == 0:  # > 0: resumed from a checkpoint
            self._record(trainer, pl_module, epoch=0, last=False, step_loss=None)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        step_loss = pl_module.step_loss()
        self._record(trainer, pl_module, epoch, last, step_loss)
        bad = [s for s, v in zip(self.seeds, step_loss.tolist()) if not math.isfinite(v)]
        if bad:
            raise Diverged(epoch, bad)
        stop = self.commit.stop.name  # read once: a signal arriving after this waits for the next epoch
        if stop or self.commit.due(epoch, last):
            self.commit.checkpoint(trainer, epoch)
        if stop and not last:
            raise Interrupted(stop, epoch)

    def _record(self, trainer: L.Trainer, pl_module, epoch: int, last: bool, step_loss) -> None:
        net, seeds = pl_module.net, self.seeds
        row: dict = {"epoch": epoch, "step": trainer.global_step}
        if step_loss is not None:
            row.update(name_per_seed("train/loss_steps", step_loss, seeds))
        measuring = self.measurement is not None and (epoch == 0 or self.measurement.due(epoch, last))
        if epoch == 0 or last or epoch % self.eval_every == 0 or measuring:
            logits = evaluate(net, trainer.datamodule.tensors, self.eval_batch_size)
            row.update(named(bookkeeping(logits, self.targets), seeds))
        images: dict = {}
        if measuring:
            row.update(named(self.measurement.measure(net, pl_module.device), seeds))
        if self.measurement is not None and self.measurement.draw_due(epoch, last):
            images = self.measurement.draw(net, pl_module.device, epoch)
        row.update(self.static)
        row["time"] = round(time.perf_counter() - self._start, 3)
        self.commit.record(row, images)
        if self.verbose:
            print(_line(row, trainer.max_epochs), flush=True)


def _line(row: dict, max_epochs: int) -> str:
    keys = ("train/loss", "train/error", "test/error", "regions/train/mean", "repro/test_disagreement")
    parts = [f"epoch {row['epoch']}/{max_epochs}"]
    parts += [f"{k} {row[k]:.4g}" for k in keys if k in row]
    return "  ".join(parts) + f"  ({row['time']:.1f}s)"
