"""Fused sweep points: runs that differ only in their label-noise rate (and seeds), trained as the
copies of one fused network in one process, each still its own run.

A group of G runs with S_1..S_G seeds trains one network of S = S_1 + ... + S_G copies: run g owns
the slots [a_g, a_g + S_g), initialized from its own seeds, reading batches in its own data order
(DeviceBatches with per-slot labels: slot s trains on its run's noisy labels). The summed per-slot
loss gives every slot the gradient it gets alone, and Adam/SGD (and weight decay) act elementwise,
so each run's slots follow the trajectory they follow when the run trains alone (fp32 CPU: the same
metrics, tests/pipeline/train/test_train_group.py).

Everything a run keeps is still its own: run directory, config.yaml, metrics.jsonl, summary.json, W&B
run, and checkpoints. A run's checkpoint is the slice of the group's state that a run trained alone
would have written (weights, optimizer state, loops, its epoch record), so a run can resume alone or
in any other group. A group resumes when every run's checkpoint is at the same epoch; runs at other
epochs (or finished) train in groups of their own, one group after the other. A run whose loss
becomes NaN or inf is recorded diverged; the others are checkpointed at that epoch and go on without it.

Not fused (refused here, run apart by the sweep engine): runs that differ in anything else, runs
with `train.fuse_seeds: false`, and `16-mixed` precision (its loss scaler is shared by every copy, so
one run's overflow would skip the others' steps).
"""
from __future__ import annotations

import collections
import copy
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass

import lightning as L
import torch

from ddsweep.errors import UserError
from ddsweep.pipeline.config import Config, dotted
from ddsweep.pipeline.store.rundir import RunDir
from ddsweep.pipeline.train.epoch import Diverged, EpochEnd
from ddsweep.pipeline.train.trainer import Interrupted, StopRequest

# What the runs of one group may differ in; everything else is one config.
GROUP_KEYS = ("data.noise.rate", "seeds", "run_name")


def group_problem(cfgs: list[Config]) -> str | None:
    """Why these runs cannot train as one fused group, or None when they can."""
    if not cfgs:
        return "a group needs at least one run"
    first = {k: v for k, v in dotted(cfgs[0].to_dict()).items() if k not in GROUP_KEYS}
    for cfg in cfgs[1:]:
        other = {k: v for k, v in dotted(cfg.to_dict()).items() if k not in GROUP_KEYS}
        diff = sorted(k for k in set(first) | set(other) if first.get(k) != other.get(k))
        if diff:
            return f"its runs differ in {', '.join(diff[:5])}; fused runs may differ only in {', '.join(GROUP_KEYS)}"
    if not cfgs[0].train.fuse_seeds:
        return "train.fuse_seeds is false; fused runs share one fused network"
    if cfgs[0].train.precision == "16-mixed":
        return "train.precision 16-mixed shares one loss scaler between all copies; use 32 or bf16-mixed"
    dirs = [(str(c.output_dir), c.run_name) for c in cfgs]
    if any(n is None for _, n in dirs) or len(set(dirs)) != len(dirs):
        return "every run of a group needs its own run_name"
    return None


# ----------------------------------------------------------------------------- state slicing

def _slice(value, slots: slice, total: int):
    """Slots [a, b) of one fused tensor (cloned, so it saves alone); scalars are shared."""
    if not torch.is_tensor(value) or value.dim() == 0:
        return copy.deepcopy(value)
    if value.shape[0] != total:
        raise ValueError(f"a fused tensor of shape {list(value.shape)} has no leading copy dimension {total}")
    return value[slots].clone()


def _cat(values: list):
    """The fused tensor of the runs' tensors (slots in run order); scalars from the first run."""
    if not torch.is_tensor(values[0]) or values[0].dim() == 0:
        return copy.deepcopy(values[0])
    return torch.cat(values)


def _map_optimizer(states: list[dict], fn) -> dict:
    """One optimizer state dict from the same entry of each of `states`: `fn(list of tensors)`."""
    first = states[0]
    state = {pid: {k: fn([s["state"][pid][k] for s in states]) for k in entry}
             for pid, entry in first["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(first["param_groups"])}


def member_checkpoint(full: dict, slots: slice, total: int, index: int) -> dict:
    """The checkpoint run `index` (slots [a, b) of `total`) writes when it trains alone, from the
    group's full Lightning checkpoint: sliced weights and optimizer state, its own epoch record."""
    out = {k: copy.deepcopy(v) for k, v in full.items()
           if k not in ("state_dict", "optimizer_states", "callbacks", "ddsweep")}
    out["state_dict"] = {k: _slice(v, slots, total) for k, v in full["state_dict"].items()}
    out["optimizer_states"] = [_map_optimizer([o], lambda vs: _slice(vs[0], slots, total))
                               for o in full["optimizer_states"]]
    out["callbacks"] = {"EpochEnd": copy.deepcopy(full["callbacks"]["GroupEnd"]["members"][index])}
    return out


def group_checkpoint(members: list[dict]) -> dict:
    """The group's Lightning checkpoint from its runs' checkpoints (all at one epoch)."""
    first = members[0]
    out = {k: copy.deepcopy(v) for k, v in first.items()
           if k not in ("state_dict", "optimizer_states", "callbacks", "ddsweep")}
    out["state_dict"] = {k: _cat([m["state_dict"][k] for m in members]) for k in first["state_dict"]}
    out["optimizer_states"] = [_map_optimizer([m["optimizer_states"][i] for m in members], _cat)
                               for i in range(len(first["optimizer_states"]))]
    out["callbacks"] = {"GroupEnd": {"members": [m.get("callbacks", {}).get("EpochEnd", {}) for m in members]}}
    return out


class SlotView:
    """A run's slots of the group's fused network, as the run's own network: `network()` copies
    the slots' current weights (and norm statistics) into `sub`, a network of the run's copies."""

    def __init__(self, source: torch.nn.Module, slots: slice, sub: torch.nn.Module, label: str):
        self.source, self.slots, self.sub, self.label = source, slots, sub, label
        self.total = getattr(source, "copies", None)

    def network(self) -> torch.nn.Module:
        with torch.no_grad():
            state = self.source.state_dict()
            self.sub.load_state_dict({k: _slice(v, self.slots, self.total) for k, v in state.items()})
        return self.sub


class GroupDiverged(Exception):
    """Some runs' losses became NaN or inf; the others were checkpointed at this epoch."""

    def __init__(self, diverged: dict[int, list[int]], epoch: int):
        super().__init__(f"runs {sorted(diverged)} diverged at epoch {epoch}")
        self.diverged, self.epoch = diverged, epoch


class GroupEnd(L.Callback):
    """A group's only Lightning callback: each run's EpochEnd records its epoch, then one decision
    for all: checkpoint every run (its own slice) when any run's checkpoint is due, a stop signal
    arrived or a run diverged; then drop the diverged runs, or stop."""

    def __init__(self, members: list[EpochEnd], stop: StopRequest, total: int):
        self.members, self.stop, self.total = members, stop, total

    def state_dict(self) -> dict:
        return {"members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state_dict: dict) -> None:
        for member, state in zip(self.members, state_dict["members"]):
            member.load_state_dict(state)

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.stop.install()  # back from Lightning, which took SIGTERM when fit began
        for member in self.members:
            member.start(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch == trainer.max_epochs
        diverged = {}
        for i, member in enumerate(self.members):
            bad = member.end_epoch(trainer, pl_module)
            if bad:
                diverged[i] = bad
        stop = self.stop.name
        if stop or diverged or any(m.commit.due(epoch, last) for m in self.members):
            full = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            for i, member in enumerate(self.members):
                if i in diverged:
                    continue
                ckpt = member_checkpoint(full, member.view.slots, self.total, i)
                member.commit.stamp(ckpt, epoch)
                member.commit.checkpoint(trainer, epoch, write=lambda path, c=ckpt: torch.save(c, path))
        if diverged:
            raise GroupDiverged(diverged, epoch)
        if stop and not last:
            raise Interrupted(stop, epoch)


# ----------------------------------------------------------------------------- the group run

@dataclass
class _Run:
    """One run of the group and what lasts across its partitions."""
    cfg: Config
    cfg_dict: dict
    run_dir: RunDir
    labels: object = None
    tracker: object = None
    result: tuple | None = None  # (status, error, code) once it is decided


def train_group(cfgs: list[Config], argv: list[str] | None = None, verbose: bool = True) -> int:
    """Train the runs `cfgs` (which differ only in GROUP_KEYS) as one fused network; every run gets
    its own run directory and W&B run. Exit code: 75 if any run was interrupted, else 1 if any
    failed, else 3 if any diverged, else 0."""
    from ddsweep.pipeline.train.budget import check_data_size, check_run_size
    from ddsweep.pipeline.train.device import DevicePlan
    from ddsweep.pipeline.train.run import (EXIT_DIVERGED, EXIT_FAILED, EXIT_FINISHED, EXIT_INTERRUPTED,
                                            load_dataset, noisy_labels, open_run_dir, open_tracker,
                                            start_run_dir)

    problem = group_problem(cfgs)
    if problem:
        raise UserError(f"cannot fuse these runs: {problem}")
    runs = []
    for cfg in cfgs:  # a finished run is done; one of another config is refused, before any work
        opened = open_run_dir(cfg)
        if opened is not None:
            runs.append(_Run(cfg, opened[1], opened[0]))
    if not runs:
        return EXIT_FINISHED
    cfg0 = runs[0].cfg
    check_data_size(cfg0)
    dataset, augment = load_dataset(cfg0)
    for run in runs:
        run.labels = noisy_labels(run.cfg, dataset)
    plan = DevicePlan.for_config(cfg0.train, in_shape=dataset.in_shape)
    all_seeds = [s for run in runs for s in run.cfg.seeds]
    check_run_size(cfg0.model_copy(update={"seeds": all_seeds}), dataset, plan.device, plan.precision)

    with ExitStack() as locks:
        for run in sorted(runs, key=lambda r: str(r.run_dir.path)):
            locks.enter_context(run.run_dir.locked())
        for i, run in enumerate(runs):
            previous = start_run_dir(run.run_dir, run.cfg_dict, argv)
            if previous is None:
                run.result = ("finished", None, EXIT_FINISHED)
                continue
            run.tracker = open_tracker(run.cfg, run.cfg_dict, run.run_dir, previous, concurrent=True,
                                       agent_run=i == 0)
        pending = [r for r in runs if r.result is None]
        while pending:
            _train_partition(pending, dataset, augment, plan, verbose)
            pending = [r for r in pending if r.result is None]
            if any(r.result[0] == "interrupted" for r in runs if r.result):
                break  # a stop signal or Ctrl-C: the rest waits for the same command again
    for run in runs:  # stopped before their turn: their W&B runs close, their records stay as they were
        if run.result is None and run.tracker is not None:
            run.tracker.finish(exit_code=1)
    codes = [r.result[2] if r.result else EXIT_INTERRUPTED for r in runs]  # not run yet: interrupted
    return next((code for code in (EXIT_INTERRUPTED, EXIT_FAILED, EXIT_DIVERGED) if code in codes), EXIT_FINISHED)


def _train_partition(pending: list[_Run], dataset, augment, plan, verbose: bool) -> None:
    """Train the pending runs whose checkpoints are at the most common epoch, as one group;
    decide (and write) the result of every run that ends."""
    from ddsweep.data import DDDataModule
    from ddsweep.models import count_params
    from ddsweep.pipeline.train.module import DDModule
    from ddsweep.pipeline.train.network import build_network, seed_streams
    from ddsweep.pipeline.train.run import EXIT_DIVERGED, _fit, epoch_commit, epoch_record, finish_run
    from ddsweep.pipeline.train.trainer import build_trainer

    cfg0 = pending[0].cfg
    model_args = dict(in_shape=dataset.in_shape, num_classes=dataset.num_classes, fuse=True)
    streams = {id(r): seed_streams(r.cfg.seeds, r.cfg.repro.vary) for r in pending}
    subs = {id(r): build_network(r.cfg.model, init_seeds=streams[id(r)][0], **model_args).to(plan.device)
            for r in pending}
    resume = {}
    for run in pending:  # each run's own resume point, with the checks of a run trained alone
        commit = epoch_commit(run.cfg, run.cfg_dict, run.run_dir, run.tracker, StopRequest())
        expected = {f"net.{k}": v.shape for k, v in subs[id(run)].state_dict().items()}
        path = commit.resume_point(expected)
        ckpt = torch.load(path, map_location="cpu", weights_only=True) if path else None
        resume[id(run)] = (ckpt["ddsweep"]["epochs_completed"] if ckpt else 0, ckpt)
    epoch = collections.Counter(resume[id(r)][0] for r in pending).most_common(1)[0][0]
    batch = [r for r in pending if resume[id(r)][0] == epoch]

    init_seeds = [s for r in batch for s in streams[id(r)][0]]
    order_seeds = [s for r in batch for s in streams[id(r)][1]]
    net = build_network(cfg0.model, init_seeds=init_seeds, **model_args)
    total = len(init_seeds)
    steps_per_epoch = -(-len(dataset.y_train) // cfg0.train.batch_size)
    module = DDModule(plan.prepare(net), seeds=init_seeds, train=cfg0.train, steps_per_epoch=steps_per_epoch)
    slot_labels = torch.stack([r.labels.noisy for r in batch for _ in r.cfg.seeds])  # [S, N]
    datamodule = DDDataModule(dataset, batch[0].labels, batch_size=cfg0.train.batch_size, order_seeds=order_seeds,
                              window=cfg0.repro.shuffle_window, augment=augment, device=plan.device,
                              slot_labels=slot_labels)
    static = {"model/params": count_params(net), "model/width": cfg0.model.width}
    stop, members, start = StopRequest(), [], 0
    for run in batch:
        slots = slice(start, start + len(run.cfg.seeds))
        start = slots.stop
        view = SlotView(net, slots, subs[id(run)], label=run.run_dir.path.name)
        _, member = epoch_record(run.cfg, run.cfg_dict, run.run_dir, run.tracker, dataset, run.labels, static,
                                 stop, verbose, view=view)
        members.append(member)
        run.run_dir.write_summary(status="running", error=None, run_name=run.run_dir.path.name,
                                  wandb=run.tracker.info(), seeds=list(run.cfg.seeds), device=plan.describe(),
                                  fused_with=[r.run_dir.path.name for r in batch], **static)
    names = ", ".join(r.run_dir.path.name for r in batch)
    print(f"fused group: {len(batch)} runs, {total} copies of {cfg0.model.name} width {cfg0.model.width} "
          f"({names})" + (f", resuming after epoch {epoch}" if epoch else ""), flush=True)
    trainer = build_trainer(cfg0.train, plan, [GroupEnd(members, stop, total)], root_dir=str(batch[0].run_dir.path))
    ckpt_path = None
    if epoch:
        ckpt_path = batch[0].run_dir.checkpoints / f".group-resume.ckpt.tmp{os.getpid()}"
        torch.save(group_checkpoint([resume[id(r)][1] for r in batch]), ckpt_path)
    try:
        status, error, code = _fit(trainer, module, datamodule, str(ckpt_path) if ckpt_path else None, stop,
                                   reraise=(GroupDiverged,))
    except GroupDiverged as err:
        for i, run in enumerate(batch):
            if i in err.diverged:
                message = str(Diverged(err.epoch, err.diverged[i]))  # what the run alone says
                run.result = ("diverged", message, finish_run(run.run_dir, run.tracker, "diverged", message,
                                                                EXIT_DIVERGED))
        return  # the others go on from the checkpoint written at this epoch
    finally:
        if ckpt_path is not None:
            ckpt_path.unlink(missing_ok=True)
    for run in batch:
        run.result = (status, error, finish_run(run.run_dir, run.tracker, status, error, code))
    if status != "finished":
        print(f"ddsweep: fused group {names}: {status}", file=sys.stderr)


# ----------------------------------------------------------------------------- the command line

def group_configs(config_file: str | None, overrides: list[str], group_file: str | None) -> list[Config] | None:
    """The configs of `ddsweep train`'s fused runs, or None for one plain run: one run per entry of
    `--group FILE` (a YAML/JSON list of mappings of GROUP_KEYS, what `ddsweep sweep` writes), or per
    value of a list-valued `--data.noise.rate=[r1, r2, ...]` (run names get a `-noise<r>` suffix)."""
    from ddsweep.errors import ConfigError
    from ddsweep.pipeline.config import load_config, parse_override
    from ddsweep.pipeline.store.rundir import default_run_name

    given = dict(parse_override(arg) for arg in overrides)
    rates = given.get("data.noise.rate")
    if group_file is None and not isinstance(rates, list):
        return None
    if group_file is not None:
        if isinstance(rates, list):
            raise ConfigError("--data.noise.rate: a list of rates and --group both name the runs; give one")
        members = _read_group_file(group_file)
    else:
        if not rates or len(set(map(str, rates))) != len(rates):
            raise ConfigError(f"--data.noise.rate: a list of fused noise rates needs distinct values, got {rates!r}")
        base = given.get("run_name")
        members = [{"data.noise.rate": r, **({"run_name": f"{base}-noise{r:g}"} if base else {})}
                   for r in rates if isinstance(r, (int, float)) and not isinstance(r, bool)]
        if len(members) != len(rates):
            raise ConfigError(f"--data.noise.rate: must be numbers in [0, 1), got {rates!r}")
    cfgs = []
    for member in members:
        cfg = load_config(config_file, {**given, **member})
        if cfg.run_name is None:
            cfg = cfg.model_copy(update={"run_name": default_run_name(cfg.to_dict())})
        cfgs.append(cfg)
    return cfgs


def _read_group_file(path: str) -> list[dict]:
    import yaml

    from ddsweep.errors import ConfigError

    try:
        members = yaml.safe_load(open(path, encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"--group {path}: cannot read it ({type(err).__name__}: {getattr(err, 'strerror', None) or err})"
                          .splitlines()[0]) from None
    allowed = ", ".join(GROUP_KEYS)
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
        raise ConfigError(f"--group {path}: must be a non-empty list of mappings of {allowed}")
    for m in members:
        bad = sorted(str(k) for k in m if k not in GROUP_KEYS)
        if bad:
            raise ConfigError(f"--group {path}: key {bad[0]!r} is not allowed; a run of a group sets only {allowed}")
    return members
