"""One epoch's record, on one path: evaluate → measure → row → run directory → W&B → checkpoint.

`EpochEnd` is a run's only Lightning callback. At the end of every training epoch (and, with
`planes.at_init`, once before any training, as epoch 0) it calls, in this order and nowhere else:
  1. `evaluate` on evaluation epochs (`train.eval_every`, measurement epochs and the last epoch):
     train and test logits in eval mode, fp32, turned into the bookkeeping metrics by `bookkeeping`;
  2. the run's `Measurement` (decision planes, regions, agreement, margins, pictures) on its schedule;
  3. `EpochCommit.record`: the row to metrics.jsonl, then to W&B;
  4. `EpochCommit.checkpoint` when one is due (by wall time, every n epochs, at the end, or when a
     stop signal arrived: then the run stops after it, see ddsweep.pipeline.train.trainer).
`EpochCommit` owns the rule "each epoch exactly once": every row a checkpoint covers is fsynced
before the checkpoint is written, and `resume_point` picks the newest intact checkpoint whose epochs
metrics.jsonl still holds and cuts metrics.jsonl back to its epoch (the epoch-0 row included), so
the resumed run writes the epochs after it once more; a run that starts from scratch keeps no row.
"""
from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass

import lightning as L
import torch

from ddsweep.errors import UserError
from ddsweep.pipeline.measure.evaluate import as_logits_fn, batched_logits, eval_rows, split_metrics, split_outputs
from ddsweep.pipeline.measure.repro import label_disagreement_matrix, mean_over_pairs, prob_l1_matrix, probabilities
from ddsweep.pipeline.store.rundir import RunDir, file_digest
from ddsweep.pipeline.store.tracking import Tracker
from ddsweep.pipeline.train.trainer import Interrupted, StopRequest


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
    whatever the training precision (hooks run outside the trainer's autocast); `batch_size`
    inputs per call, fewer for an MLP on a CPU (measure.evaluate.eval_rows)."""
    fn = as_logits_fn(net, affine_stem=False)
    rows = eval_rows(net, tensors["x_train"], batch_size)
    return {"train": batched_logits(fn, tensors["x_train"], rows),
            "test": batched_logits(fn, tensors["x_test"], rows)}


def bookkeeping(logits: dict[str, torch.Tensor], targets: Targets) -> dict:
    """The double-descent metrics of one evaluation, per seed [S]: train/loss, train/error (labels
    trained on), train/error_clean, train/memorized (when labels were changed), test/loss,
    test/error; with two or more seeds also repro/test_disagreement and repro/pd_l1 (METHODS)."""
    out: dict = {}
    m = split_metrics(logits["train"], targets.noisy, targets.clean, targets.changed)
    out.update({"train/loss": m["loss"], "train/error": m["error"], "train/error_clean": m["clean_error"]})
    if m.get("memorized") is not None:
        out["train/memorized"] = m["memorized"]
    test = split_outputs(logits["test"])  # one log-softmax and one argmax for every test metric
    m = split_metrics(test, targets.test)
    out.update({"test/loss": m["loss"], "test/error": m["error"]})
    if test.labels.shape[0] > 1:
        out["repro/test_disagreement"] = mean_over_pairs(label_disagreement_matrix(test.labels))
        out["repro/pd_l1"] = mean_over_pairs(prob_l1_matrix(probabilities(test.log_probs)))
    return out


def state_digest(checkpoint: dict) -> str:
    """sha256 over everything a checkpoint holds but its own `ddsweep` entry: the names, dtypes,
    shapes and bytes of every tensor (weights, optimizer state, ...) and every plain value, in
    order. Computed when the checkpoint is saved and again when it is loaded, it finds a damaged
    tensor byte (which torch.load reads without complaint) with no other record."""
    digest = hashlib.sha256()

    def walk(value) -> None:
        if torch.is_tensor(value):
            t = value.detach().cpu().contiguous().reshape(-1)  # [numel]
            digest.update(f"T{t.dtype}{tuple(value.shape)}".encode())
            digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            digest.update(b"{")
            for key, item in value.items():
                digest.update(repr(key).encode())
                walk(item)
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            digest.update(b"[")
            for item in value:
                walk(item)
            digest.update(b"]")
        else:
            digest.update(repr(value).encode())

    walk({k: v for k, v in checkpoint.items() if k != "ddsweep"})
    return digest.hexdigest()


def fit_problem(state: dict, expected: dict) -> str | None:
    """Why a checkpoint's `state_dict` does not load into a network whose state dict has the
    shapes `expected` ({key: shape}), or None when it does."""
    if not isinstance(state, dict):
        return "it holds no state_dict"
    missing, extra = [k for k in expected if k not in state], [k for k in state if k not in expected]
    if missing or extra:
        return f"its weights do not fit this network ({len(missing)} missing keys, {len(extra)} unexpected)"
    for key, shape in expected.items():
        got = tuple(getattr(state[key], "shape", ()))
        if got != tuple(shape):
            return f"its weights do not fit this network ({key}: {list(got)} here {list(shape)})"
    return None


class EpochCommit:
    """The run directory's epochs: rows, checkpoints, their digests, and the resume point.

    checkpoints/last.ckpt is written atomically at the end of an epoch once `minutes` of wall time
    (`clock`, seconds) passed since the last checkpoint or since the run began, every `every` epochs
    when set, at the last epoch, and when a stop signal arrived (`stop`, read by EpochEnd). The one
    before it is kept as prev.ckpt so a corrupt last checkpoint still leaves a good one. Each file's
    sha256 goes to checkpoints/digests.json before the file takes its name, and each checkpoint carries
    its own record in its `ddsweep` entry (`stamp`): the epochs it covers, the run's config hash and
    `state_digest`, so it is verified even when digests.json is gone."""

    def __init__(self, run_dir: RunDir, tracker: Tracker, *, every: int | None, minutes: float,
                 config_hash: str, at_init: bool = False, stop: StopRequest | None = None,
                 clock=time.monotonic):
        self.run_dir = run_dir
        self.tracker = tracker
        self.every = every
        self.minutes = minutes
        self.config_hash = config_hash
        self.at_init = at_init  # the run logs an epoch-0 row before training
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

    def stamp(self, checkpoint: dict, epochs_completed: int) -> None:
        """The checkpoint's own record (called as Lightning assembles it, after every other entry)."""
        checkpoint["ddsweep"] = {"epochs_completed": epochs_completed, "config": self.config_hash,
                                 "state_digest": state_digest(checkpoint)}

    def checkpoint(self, trainer: L.Trainer, epoch: int, write=None) -> None:
        """Write checkpoints/last.ckpt: the trainer's full state (optimizer, loops, callbacks), or
        what `write(path)` saves there (a fused group's slice of it for this run)."""
        directory = self.run_dir.checkpoints
        last, prev = directory / "last.ckpt", directory / "prev.ckpt"
        tmp = directory / f".last.ckpt.tmp{os.getpid()}"
        try:
            self.run_dir.sync_metrics()  # every row the checkpoint covers is on disk first
            if write is None:
                trainer.save_checkpoint(tmp, weights_only=False)
            else:
                write(tmp)
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

    def resume_point(self, expected: dict) -> str | None:
        """The newest usable checkpoint, or None (start from scratch); metrics.jsonl is cut back to
        its epoch. Usable: intact (its sha256 is one the run recorded, when digests.json is there;
        its stored config hash is this run's and its stored `state_digest` matches its tensors),
        loadable (weights only, never arbitrary pickled objects; its weights fit `expected`, the
        network's {key: shape}) and covered: metrics.jsonl holds each epoch it completed exactly
        once (rows lost after the checkpoint was written are redone from an older one)."""
        run_dir = self.run_dir
        digests = run_dir.checkpoint_digests()
        epochs = [r.get("epoch", 0) for r in run_dir.read_metrics()]
        skipped = False
        for name in ("last.ckpt", "prev.ckpt"):
            path = run_dir.checkpoints / name
            if not path.exists():
                continue
            done, reason = self._check(path, digests, expected)
            first = 0 if self.at_init else 1  # the epoch-0 row (planes.at_init) is covered like the others
            if reason is None and [e for e in epochs if e <= done] != list(range(first, done + 1)):
                reason = (f"metrics.jsonl does not hold each of its epochs {first}..{done} exactly once "
                          f"({sum(1 for e in epochs if e <= done)} rows)")
            if reason:
                print(f"ddsweep: warning: checkpoint {path} is unusable ({reason}); trying an older one",
                      file=sys.stderr)
                skipped = True
                continue
            run_dir.truncate_metrics(done)
            print(f"{run_dir.path}: resuming after epoch {done} from {path.name}", flush=True)
            return str(path)
        if skipped or epochs:
            print(f"{run_dir.path}: no usable checkpoint; starting from scratch", file=sys.stderr)
            run_dir.truncate_metrics(-1)
        return None

    def _check(self, path, digests: dict | None, expected: dict) -> tuple[int, str | None]:
        """(epochs the checkpoint completed, why it is unusable or None)."""
        if digests is not None and file_digest(path) not in digests:
            return 0, "corrupt: its sha256 is not that of a checkpoint this run wrote"
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            meta = ckpt["ddsweep"]
            done = int(meta["epochs_completed"])
        except Exception as err:  # noqa: BLE001 - any unreadable checkpoint is skipped, and said so
            return 0, f"unreadable: {type(err).__name__}"
        if meta.get("config", self.config_hash) != self.config_hash:
            return done, "written by a run of another config"
        stored = meta.get("state_digest")
        if stored is None and digests is None:
            return done, "unverifiable: it carries no digest and checkpoints/digests.json is gone"
        if stored is not None and stored != state_digest(ckpt):
            return done, "corrupt: its tensors do not match the digest stored in it"
        return done, fit_problem(ckpt.get("state_dict"), expected)


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
                 verbose: bool = True, view=None):
        self.commit = commit
        self.view = view  # None: the whole network; a fused group's member: its SlotView
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
        self.commit.stamp(checkpoint, trainer.current_epoch + 1)

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.commit.stop.install()  # back from Lightning, which took SIGTERM when fit began
        self.start(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        bad = self.end_epoch(trainer, pl_module)
        if bad:
            raise Diverged(epoch, bad)
        stop = self.commit.stop.name  # read once: a signal arriving after this waits for the next epoch
        if stop or self.commit.due(epoch, last):
            self.commit.checkpoint(trainer, epoch)
        if stop and not last:
            raise Interrupted(stop, epoch)

    def start(self, trainer: L.Trainer, pl_module) -> None:
        """The epoch-0 row (planes.at_init) of a run that starts from scratch."""
        if self.at_init and trainer.current_epoch == 0:  # > 0: resumed from a checkpoint
            self._record(trainer, pl_module, epoch=0, last=False, step_loss=None)

    def end_epoch(self, trainer: L.Trainer, pl_module) -> list[int]:
        """Record the epoch that just ended; the seeds whose training loss is not finite."""
        epoch = trainer.current_epoch + 1
        step_loss = pl_module.step_loss()
        if self.view is not None:
            step_loss = step_loss[self.view.slots]
        self._record(trainer, pl_module, epoch, epoch == trainer.max_epochs, step_loss)
        return [s for s, v in zip(self.seeds, step_loss.tolist()) if not math.isfinite(v)]

    def _record(self, trainer: L.Trainer, pl_module, epoch: int, last: bool, step_loss) -> None:
        seeds = self.seeds
        row: dict = {"epoch": epoch, "step": trainer.global_step}
        if step_loss is not None:
            row.update(name_per_seed("train/loss_steps", step_loss, seeds))
        measuring = self.measurement is not None and (epoch == 0 or self.measurement.due(epoch, last))
        evaluating = epoch == 0 or last or epoch % self.eval_every == 0 or measuring
        drawing = self.measurement is not None and self.measurement.draw_due(epoch, last)
        net = pl_module.net
        if self.view is not None and (evaluating or drawing):  # a group's run: its slots, copied once
            net = self.view.network()
        if evaluating:
            logits = evaluate(net, trainer.datamodule.tensors, self.eval_batch_size)
            row.update(named(bookkeeping(logits, self.targets), seeds))
        images: dict = {}
        if measuring:
            row.update(named(self.measurement.measure(net, pl_module.device), seeds))
        if drawing:
            images = self.measurement.draw(net, pl_module.device, epoch)
        row.update(self.static)
        row["time"] = round(time.perf_counter() - self._start, 3)
        self.commit.record(row, images)
        if self.verbose:
            label = f"{self.view.label}: " if self.view is not None else ""
            print(label + _line(row, trainer.max_epochs), flush=True)


def _line(row: dict, max_epochs: int) -> str:
    keys = ("train/loss", "train/error", "test/error", "regions/train/mean", "repro/test_disagreement")
    parts = [f"epoch {row['epoch']}/{max_epochs}"]
    parts += [f"{k} {row[k]:.4g}" for k in keys if k in row]
    return "  ".join(parts) + f"  ({row['time']:.1f}s)"
