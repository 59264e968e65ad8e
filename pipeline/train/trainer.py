"""The Lightning Trainer of one run: one device, no Lightning logging or checkpointing (the run's
epoch record does both), deterministic on a CPU."""
from __future__ import annotations

import logging
import signal
import warnings

import lightning as L

from pipeline.train.device import DevicePlan


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
        deterministic=plan.accelerator == "cpu", default_root_dir=root_dir,
    )


def fit(trainer: L.Trainer, module, datamodule, ckpt_path: str | None) -> None:
    """trainer.fit, with Ctrl-C raised as KeyboardInterrupt (Lightning turns it into sys.exit(1)
    after its own teardown, or swallows it and returns) and SIGINT handling restored."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as exit_:
        raise KeyboardInterrupt from exit_
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning leaves SIGINT ignored after an interrupt
    if trainer.interrupted:
        raise KeyboardInterrupt
