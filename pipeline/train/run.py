"""One run end to end: config → data + label noise → S-seed network → Lightning → run directory + W&B.

Exit codes (the sweep engine reads them, and summary.json): 0 finished (or already finished),
1 failed, 3 diverged. User errors raise UserError before any training starts.
"""
from __future__ import annotations

import errno
import secrets
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.config import Config, from_dict
from ddsweep.errors import ConfigError, UserError
from pipeline.train.network import build_network, seed_streams
from pipeline.store.rundir import RunDir, default_run_name, final_metrics, provenance

EXIT_FINISHED, EXIT_FAILED, EXIT_DIVERGED = 0, 1, 3
# Write failures that are the storage's (full, over quota, read-only, permissions): one line, no traceback.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
# Keys whose change does not change the science: a run directory may be resumed with other values.
_RESUMABLE_KEYS = ("wandb", "output_dir", "run_name", "provenance")


@dataclass
class Targets:
    """Labels the bookkeeping metrics compare against."""
    noisy: torch.Tensor    # [N] labels trained on
    clean: torch.Tensor    # [N]
    changed: torch.Tensor  # [N] bool
    test: torch.Tensor     # [M]


def prepare_data(cfg: Config):
    """Dataset, label noise and augmentation, with every data-dependent check done up front."""
    from data import Augment, apply_label_noise, load_source

    d = cfg.data
    dataset = load_source(d.name, root=d.root, download=d.download, n_train=d.n_train,
                          subset_seed=d.subset_seed, **d.options)
    labels = apply_label_noise(dataset.y_train, dataset.num_classes, kind=d.noise.kind,
                               rate=d.noise.rate, seed=d.noise.seed)
    augment = None
    if d.augment.crop or d.augment.flip:
        if not dataset.is_image:
            raise ConfigError(f"data.augment: crop/flip need image data; data.name={d.name} is not images")
        augment = Augment.for_dataset(dataset, crop=d.augment.crop, flip=d.augment.flip, pad=d.augment.pad)
    from pipeline.train.measurement import check_families

    check_families(cfg, dataset, labels)
    return dataset, labels, augment


def resolve_device(accelerator: str) -> str:
    if accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.accelerator: {accelerator} requested but no CUDA device is visible")
    return "gpu" if accelerator == "cuda" else accelerator


def train_run(cfg: Config, argv: list[str] | None = None, verbose: bool = True) -> int:
    cfg_dict = cfg.to_dict()
    run_dir = RunDir(Path(cfg.output_dir) / (cfg.run_name or default_run_name(cfg_dict)))
    _check_same_science(run_dir, cfg_dict)  # a finished run of another config is not "done"
    previous = run_dir.read_summary() or {}
    if previous.get("status") == "finished":
        print(f"{run_dir.path}: already finished; nothing to do")
        return EXIT_FINISHED

    dataset, labels, augment = prepare_data(cfg)
    accelerator = resolve_device(cfg.train.accelerator)
    net = build_network(cfg.model, in_shape=dataset.in_shape, num_classes=dataset.num_classes,
                        init_seeds=seed_streams(cfg.seeds, cfg.repro.vary)[0], fuse=cfg.train.fuse_seeds)
    run_dir.create()  # everything above may still reject the config; nothing is written before here
    if run_dir.saved_config() is None:
        run_dir.write_config(cfg_dict, provenance(argv))

    from pipeline.train.trainer import build_trainer  # imports Lightning and the models

    wandb_id = (previous.get("wandb") or {}).get("id") or secrets.token_hex(4)
    job = build_trainer(cfg, cfg_dict, run_dir, net, dataset, labels, augment, accelerator, wandb_id, verbose)
    run_dir.write_summary(status="running", error=None, run_name=run_dir.path.name, wandb=job.tracker.info(),
                          seeds=cfg.seeds, **job.static_summary)
    status, error, code = "finished", None, EXIT_FINISHED
    try:
        job.fit()
    except KeyboardInterrupt:
        status, error, code = "interrupted", "interrupted by the user; run the same command to resume", EXIT_FAILED
    except UserError as err:
        status, error, code = "failed", str(err), EXIT_FAILED
        print(f"ddsweep: error: {err}", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - recorded, then the exit code says failed
        from pipeline.train.epoch import Diverged

        if isinstance(err, Diverged):
            status, error, code = "diverged", str(err), EXIT_DIVERGED
        elif isinstance(err, OSError) and err.errno in _STORAGE_ERRNOS:  # the disk's fault, not the code's
            status, error, code = "failed", f"cannot write {err.filename or 'a file'}: {err.strerror}", EXIT_FAILED
            print(f"ddsweep: error: {error}", file=sys.stderr)
        else:
            status, error, code = "failed", f"{type(err).__name__}: {err}", EXIT_FAILED
            traceback.print_exc()
    if status == "finished" and job.interrupted():  # Lightning swallows Ctrl-C and returns
        status, error, code = "interrupted", "interrupted; run the same command to resume", EXIT_FAILED
    rows = run_dir.read_metrics()
    final = final_metrics(rows)
    summary = dict(status=status, error=error, epochs_completed=final.get("epoch", 0),
                   metrics={k: v for k, v in final.items() if k not in ("epoch", "step")},
                   wandb=job.tracker.info())
    try:
        run_dir.write_summary(**summary)
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        code = EXIT_FAILED
    job.tracker.summary({"status": status, **summary["metrics"]})
    job.tracker.finish(exit_code=0 if code == EXIT_FINISHED else 1)
    print(f"{run_dir.path}: {status}" + (f" ({error})" if error else ""))
    return code


def _check_same_science(run_dir: RunDir, cfg_dict: dict) -> None:
    saved = run_dir.saved_config()
    if saved is None:
        return
    try:  # fill keys added since the run was written with their defaults
        saved = from_dict({k: v for k, v in saved.items() if k != "provenance"}).to_dict()
    except ConfigError:
        pass  # compared as written: it differs, and the message below says where
    strip = lambda d: {k: v for k, v in d.items() if k not in _RESUMABLE_KEYS}  # noqa: E731
    if strip(saved) != strip(cfg_dict):
        diff = sorted(k for k in set(strip(saved)) | set(strip(cfg_dict)) if saved.get(k) != cfg_dict.get(k))
        raise UserError(f"{run_dir.path} holds a run with a different config (sections {', '.join(diff)} differ); "
                        "set another run_name or output_dir")
