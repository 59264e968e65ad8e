"""The Lightning Trainer of one run: one device, no Lightning logging or checkpointing (the run's
epoch record does both), its device choices the run's DevicePlan's; and the signals that ask a run to stop.

Stopping. Ctrl-C (SIGINT) stops at once; the epochs after the last checkpoint are redone on resume.
SIGTERM, SIGUSR1 and SIGUSR2 (what a SLURM job gets before preemption or its time limit: SIGTERM
from the scheduler, SIGUSR1 from `--signal=USR1@N` as Lightning's SLURM recipe uses it, SIGUSR2
from submitit's `--signal=USR2@90`) ask the run to finish the current epoch, write a checkpoint
and exit as interrupted (exit code 75, EX_TEMPFAIL: retry later), so the job can be requeued and
the same command resumes after that epoch.
"""
from __future__ import annotations

import logging
import signal
import threading
import warnings

import lightning as L

from ddsweep.pipeline.train.device import DevicePlan


def quiet_lightning() -> None:
    """Lightning's banners and tips are noise in a sweep's logs; warnings and errors stay."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")


def build_trainer(train, plan: DevicePlan, callbacks: list, root_dir: str) -> L.Trainer:
    quiet_lightning()
    return L.Trainer(
        max_epochs=train.epochs, accelerator=plan.accelerator, devices=1, precision=plan.precision,
        callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        deterministic=plan.deterministic, default_root_dir=root_dir,
    )


class StopRequest:
    """Set by SIGTERM, SIGUSR1 or SIGUSR2 while installed: the run stops after the current epoch's
    checkpoint (the epoch record reads `signum`). The handler only records the signal: a signal
    handler runs between two bytecodes, where nothing else is safe to do."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self):
        self.signum: int | None = None

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def install(self) -> dict:
        """Take over the stop signals (main thread only: elsewhere Python cannot set handlers);
        returns the handlers it replaced. Called again when training starts, because Lightning puts
        its own SIGTERM handler first when fit begins, and that one stops in the middle of an epoch."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, self._handle) for s in self.SIGNALS}

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal.Signals(self.signum).name


class Interrupted(Exception):
    """The run stopped on a stop signal, after the checkpoint of its last complete epoch."""

    def __init__(self, signame: str, epoch: int):
        super().__init__(f"stopped by {signame} after the checkpoint of epoch {epoch}; run the same command to resume")
        self.epoch = epoch


def fit(trainer: L.Trainer, module, datamodule, ckpt_path: str | None, stop: StopRequest) -> None:
    """trainer.fit with the stop signals taken over (and put back after), Ctrl-C raised as
    KeyboardInterrupt (Lightning turns it into sys.exit(1) after its own teardown, or swallows it and
    returns) and SIGINT handling restored."""
    handlers = {signal.SIGINT: signal.getsignal(signal.SIGINT), **stop.install()}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as exit_:  # also Lightning's SIGTERMException, for a SIGTERM before training began
        raise KeyboardInterrupt from exit_
    finally:
        for signum, handler in handlers.items():  # Lightning leaves SIGINT ignored after an interrupt
            signal.signal(signum, handler)
    if trainer.interrupted:
        raise KeyboardInterrupt
