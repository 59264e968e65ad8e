"""One run, top to bottom: config → data + label noise → S-seed network → module → trainer → fit →
summary. Every other file of pipeline/train is one step of `train_run`.

Exit codes (the sweep engine reads them, and summary.json): 0 finished (or already finished),
1 failed, 3 diverged, 75 interrupted (EX_TEMPFAIL: Ctrl-C, or a stop signal after the epoch's
checkpoint; the same command resumes). User errors raise UserError before any training starts.
"""
from __future__ import annotations

import errno
import hashlib
import json
import secrets
import sys
import traceback
from pathlib import Path

from ddsweep.errors import ConfigError, UserError
from ddsweep.pipeline.config import Config, from_dict
from ddsweep.pipeline.store.rundir import RunDir, default_run_name, final_metrics, provenance
from ddsweep.pipeline.train.budget import check_data_size, check_run_size
from ddsweep.pipeline.train.device import DevicePlan
from ddsweep.pipeline.train.network import build_network, seed_streams

EXIT_FINISHED, EXIT_FAILED, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 3, 75
# Write failures that are the storage's (full, over quota, read-only, permissions): one line, no traceback.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
# Keys whose change does not change the science: a run directory may be resumed with other values.
_RESUMABLE_KEYS = ("wandb", "output_dir", "run_name", "provenance")
_RESUMABLE_TRAIN_KEYS = ("checkpoint_every", "checkpoint_minutes")  # when to checkpoint, not what is trained


def prepare_data(cfg: Config):
    """Dataset, label noise and augmentation, with every data-dependent check done up front."""
    dataset, augment = load_dataset(cfg)
    return dataset, noisy_labels(cfg, dataset), augment


def load_dataset(cfg: Config):
    """The dataset (from its source or the cache) and its augmentation."""
    from ddsweep.data import Augment, load_source

    d = cfg.data
    dataset = load_source(d.name, root=d.root, download=d.download, n_train=d.n_train,
                          subset_seed=d.subset_seed, **d.options)
    augment = None
    if d.augment.crop or d.augment.flip:
        if not dataset.is_image:
            raise ConfigError(f"data.augment: crop/flip need image data; data.name={d.name} is not images")
        augment = Augment.for_dataset(dataset, crop=d.augment.crop, flip=d.augment.flip, pad=d.augment.pad)
    return dataset, augment


def noisy_labels(cfg: Config, dataset):
    """The run's train labels after label noise, checked against the measured plane families."""
    from ddsweep.data import apply_label_noise
    from ddsweep.pipeline.train.measurement import check_families

    d = cfg.data
    labels = apply_label_noise(dataset.y_train, dataset.num_classes, kind=d.noise.kind,
                               rate=d.noise.rate, seed=d.noise.seed)
    check_families(cfg, dataset, labels)
    return labels


def open_run_dir(cfg: Config) -> tuple[RunDir, dict] | None:
    """The run's directory and resolved config, or None when a run of this config finished there
    already; a directory holding a run of another config is refused."""
    cfg_dict = cfg.to_dict()
    run_dir = RunDir(Path(cfg.output_dir) / (cfg.run_name or default_run_name(cfg_dict)))
    _check_same_science(run_dir, cfg_dict)
    if (run_dir.read_summary() or {}).get("status") == "finished":
        print(f"{run_dir.path}: already finished; nothing to do")
        return None
    return run_dir, cfg_dict


def start_run_dir(run_dir: RunDir, cfg_dict: dict, argv) -> dict | None:
    """Under the run directory's lock: its previous summary, or None when another process finished
    it meanwhile; creates the directory and its config.yaml."""
    previous = run_dir.read_summary() or {}  # again: another process may have finished it meanwhile
    if previous.get("status") == "finished":
        print(f"{run_dir.path}: already finished; nothing to do")
        return None
    run_dir.create()
    if run_dir.saved_config() is None:
        run_dir.write_config(cfg_dict, provenance(argv))
    return previous


def open_tracker(cfg: Config, cfg_dict: dict, run_dir: RunDir, previous: dict, concurrent: bool = False,
                 agent_run: bool = True):
    from ddsweep.pipeline.store.tracking import Tracker, wandb_mode

    wandb_id = (previous.get("wandb") or {}).get("id") or secrets.token_hex(4)
    return Tracker(wandb_mode(cfg.wandb.mode), project=cfg.wandb.project, entity=cfg.wandb.entity,
                   group=cfg.wandb.group, tags=cfg.wandb.tags, run_dir=run_dir.path, run_id=wandb_id,
                   name=run_dir.path.name, config=cfg_dict, concurrent=concurrent, agent_run=agent_run)


def epoch_record(cfg: Config, cfg_dict: dict, run_dir: RunDir, tracker, dataset, labels, static: dict,
                 stop, verbose: bool, view=None):
    """The run's EpochCommit and EpochEnd (`view`: the slots of a fused group's network it reads)."""
    from ddsweep.pipeline.train.epoch import EpochEnd, Targets
    from ddsweep.pipeline.train.measurement import build_measurement

    seeds = list(cfg.seeds)
    commit = epoch_commit(cfg, cfg_dict, run_dir, tracker, stop)
    epoch_end = EpochEnd(commit, build_measurement(cfg, run_dir, dataset, labels, seeds),
                         targets=Targets(labels.noisy, labels.clean, labels.changed, dataset.y_test),
                         seeds=seeds, static=static, eval_every=cfg.train.eval_every,
                         eval_batch_size=cfg.train.eval_batch_size, at_init=cfg.planes.at_init,
                         verbose=verbose, view=view)
    return commit, epoch_end


def epoch_commit(cfg: Config, cfg_dict: dict, run_dir: RunDir, tracker, stop):
    """The run directory's epochs: rows, checkpoints and the resume point (EpochCommit)."""
    from ddsweep.pipeline.train.epoch import EpochCommit

    return EpochCommit(run_dir, tracker, every=cfg.train.checkpoint_every, minutes=cfg.train.checkpoint_minutes,
                       stop=stop, config_hash=science_hash(cfg_dict), at_init=cfg.planes.at_init)


def finish_run(run_dir: RunDir, tracker, status: str, error: str | None, code: int) -> int:
    """summary.json: status, error and the final value of every metric with its epoch; then W&B's
    summary and finish. Returns the exit code (failed when the summary cannot be written)."""
    final, epochs = final_metrics(run_dir.read_metrics())
    summary = dict(status=status, error=error, epochs_completed=final.get("epoch", 0),
                   metrics={k: v for k, v in final.items() if k not in ("epoch", "step")},
                   metric_epochs={k: v for k, v in epochs.items() if k not in ("epoch", "step")},
                   wandb=tracker.info())
    try:
        run_dir.write_summary(**summary)
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        code = EXIT_FAILED
    tracker.summary({"status": status, **summary["metrics"]})
    tracker.finish(exit_code=0 if code == EXIT_FINISHED else 1)
    print(f"{run_dir.path}: {status}" + (f" ({error})" if error else ""))
    return code


def train_run(cfg: Config, argv: list[str] | None = None, verbose: bool = True) -> int:
    from ddsweep.data import DDDataModule
    from ddsweep.models import count_params
    from ddsweep.pipeline.train.module import DDModule
    from ddsweep.pipeline.train.trainer import StopRequest, build_trainer

    # 1. The run directory: a finished run of this config is done; one of another config is refused.
    opened = open_run_dir(cfg)
    if opened is None:
        return EXIT_FINISHED
    run_dir, cfg_dict = opened

    # 2. Data, device and network: everything here may still reject the config (sizes that cannot
    # fit included, before they are allocated), so nothing is written yet.
    check_data_size(cfg)
    dataset, labels, augment = prepare_data(cfg)
    plan = DevicePlan.for_config(cfg.train, in_shape=dataset.in_shape)
    check_run_size(cfg, dataset, plan.device, plan.precision)
    init_seeds, order_seeds = seed_streams(cfg.seeds, cfg.repro.vary)
    net = build_network(cfg.model, in_shape=dataset.in_shape, num_classes=dataset.num_classes,
                        init_seeds=init_seeds, fuse=cfg.train.fuse_seeds)

    # 3. From here on this process is the run directory's only writer, until it returns; resume
    # decisions are taken under the lock.
    with run_dir.locked():
        previous = start_run_dir(run_dir, cfg_dict, argv)
        if previous is None:
            return EXIT_FINISHED

        # 4. Module, data on the device, W&B, the epoch record and the trainer.
        seeds = list(cfg.seeds)
        steps_per_epoch = -(-len(dataset.y_train) // cfg.train.batch_size)
        module = DDModule(plan.prepare(net), seeds=seeds, train=cfg.train, steps_per_epoch=steps_per_epoch)
        datamodule = DDDataModule(dataset, labels, batch_size=cfg.train.batch_size, order_seeds=order_seeds,
                                  window=cfg.repro.shuffle_window, augment=augment, device=plan.device)
        tracker = open_tracker(cfg, cfg_dict, run_dir, previous)
        params = count_params(net) if cfg.train.fuse_seeds else count_params(net.nets[0])
        static = {"model/params": params, "model/width": cfg.model.width}
        stop = StopRequest()
        commit, epoch_end = epoch_record(cfg, cfg_dict, run_dir, tracker, dataset, labels, static, stop, verbose)
        trainer = build_trainer(cfg.train, plan, [epoch_end], root_dir=str(run_dir.path))
        ckpt = commit.resume_point({k: v.shape for k, v in module.state_dict().items()})

        # 5. Fit, then the summary: status, error and the final value of every metric with its epoch.
        run_dir.write_summary(status="running", error=None, run_name=run_dir.path.name, wandb=tracker.info(),
                              seeds=seeds, device=plan.describe(), **static)
        status, error, code = _fit(trainer, module, datamodule, ckpt, stop)
        return finish_run(run_dir, tracker, status, error, code)


def _fit(trainer, module, datamodule, ckpt: str | None, stop, reraise: tuple = ()) -> tuple[str, str | None, int]:
    """(status, error, exit code) of trainer.fit; every failure is recorded, none escapes (but
    the exception types `reraise`, which the caller handles)."""
    from ddsweep.pipeline.train.epoch import Diverged
    from ddsweep.pipeline.train.trainer import Interrupted, fit

    try:
        fit(trainer, module, datamodule, ckpt, stop)
    except reraise:
        raise
    except Interrupted as err:
        return "interrupted", str(err), EXIT_INTERRUPTED
    except KeyboardInterrupt:
        return "interrupted", "interrupted; run the same command to resume", EXIT_INTERRUPTED
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        return "failed", str(err), EXIT_FAILED
    except Diverged as err:
        return "diverged", str(err), EXIT_DIVERGED
    except OSError as err:
        if err.errno not in _STORAGE_ERRNOS:
            traceback.print_exc()
            return "failed", f"{type(err).__name__}: {err}", EXIT_FAILED
        error = f"cannot write {err.filename or 'a file'}: {err.strerror}"  # the disk's fault, not the code's
        print(f"ddsweep: error: {error}", file=sys.stderr)
        return "failed", error, EXIT_FAILED
    except Exception as err:  # noqa: BLE001 - recorded, then the exit code says failed
        traceback.print_exc()
        return "failed", f"{type(err).__name__}: {err}", EXIT_FAILED
    return "finished", None, EXIT_FINISHED


def _check_same_science(run_dir: RunDir, cfg_dict: dict) -> None:
    saved = run_dir.saved_config()
    if saved is None:
        return
    try:  # fill keys added since the run was written with their defaults
        saved = from_dict({k: v for k, v in saved.items() if k != "provenance"}).to_dict()
    except ConfigError:
        pass  # compared as written: it differs, and the message below says where
    saved, current = _science(saved), _science(cfg_dict)
    if saved != current:
        diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        raise UserError(f"{run_dir.path} holds a run with a different config (sections {', '.join(diff)} differ); "
                        "set another run_name or output_dir")


def _science(cfg_dict: dict) -> dict:
    """The config without the keys a resumed run may change."""
    out = {k: v for k, v in cfg_dict.items() if k not in _RESUMABLE_KEYS}
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k not in _RESUMABLE_TRAIN_KEYS}
    return out


def science_hash(cfg_dict: dict) -> str:
    """sha256 of the config minus the resumable keys: stored in every checkpoint, so a checkpoint
    of another run (another width, say) is recognized at resume without any other record."""
    return hashlib.sha256(json.dumps(_science(cfg_dict), sort_keys=True, default=str).encode()).hexdigest()
