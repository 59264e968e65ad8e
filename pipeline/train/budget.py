"""Sizes that cannot fit are refused before anything is allocated, in one line naming the key.

A run's memory is estimated from the config alone (and the dataset's shape): the network's
parameters with their gradients and optimizer state (counted on a meta-device skeleton of the
network, which allocates nothing), the activations of one training step, one evaluation batch and
one measurement call (a meta-device forward pass), the evaluation logits, the decision-plane label
maps [S, T, R, R], the 1-D segment labels and the generated data of synthetic sources. Every term is
a lower bound (activations count module outputs only), so a refused run could not have fit; a run
that passes may still run out of memory later, and then fails as before.

`check_data_size` runs before the dataset is generated, `check_run_size` before the network is
built; both raise a ConfigError that names the key most responsible, the estimate and the limit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ddsweep.errors import ConfigError

FP32, INT64, FP64 = 4, 8, 8


@dataclass(frozen=True)
class Need:
    """Bytes one part of a run needs at once, and the config key that sizes it most."""
    key: str
    bytes: int
    what: str


def blame(factors: dict[str, tuple[float, float]]) -> str:
    """The key whose value is furthest above its default: {key: (value, default)} → key."""
    return max(factors, key=lambda k: factors[k][0] / max(factors[k][1], 1))


# ----------------------------------------------------------------------------- estimates (pure)

def parameter_need(params_per_copy: int, copies: int, optimizer: str, momentum: float) -> Need:
    """Weights, gradients and optimizer state (Adam: two moments; SGD: a momentum buffer if any)
    of `copies` copies, fp32."""
    states = 2 if optimizer == "adam" else int(momentum > 0)
    n = params_per_copy * copies
    return Need("model.width", n * FP32 * (2 + states),
                f"{n:,} parameters ({copies} seeds) with gradients and {optimizer} state")


def activation_need(per_sample: int, batch: int, copies: int, key: str, what: str) -> Need:
    """`per_sample` fp32 activation values of one copy and one input, for `batch` inputs of `copies`."""
    return Need(key, per_sample * batch * copies * FP32, what)


def label_map_need(copies: int, planes: int, resolution: int, key_planes: str, default_planes: int) -> Need:
    """The int64 label maps [S, T, R, R] of one family's decision planes (and their [R*R, 2] grid)."""
    n = copies * planes * resolution * resolution * INT64 + resolution * resolution * 2 * FP32
    key = blame({"seeds": (copies, 2), key_planes: (planes, default_planes),
                 "planes.resolution": (resolution * resolution, 50 * 50)})
    return Need(key, n, f"label maps of {planes:,} planes at resolution {resolution:,} for {copies} seeds")


def segment_need(copies: int, pairs: int, points: int) -> Need:
    """The int64 labels [S, P * points] of the 1-D region counts (and their fp32 coefficients)."""
    key = blame({"seeds": (copies, 2), "regions1d.pairs": (pairs, 100), "regions1d.points": (points, 200)})
    return Need(key, copies * pairs * points * INT64 + pairs * points * FP32,
                f"1-D labels of {pairs:,} segments of {points:,} points for {copies} seeds")


def logits_need(copies: int, n_points: int, num_classes: int) -> Need:
    """The fp32 evaluation logits [S, N_train + N_test, C] (held together for the bookkeeping metrics)."""
    return Need("seeds", copies * n_points * num_classes * FP32,
                f"evaluation logits of {copies} seeds on {n_points:,} points")


# Synthetic sources: the option (or fixed number) that is the input dimension, and the size options.
_SYNTHETIC = {"gaussians": ("dim", ("train_size", "test_size")), "moons": (2, ("train_size", "test_size")),
              "spirals": (2, ("train_size", "test_size")), "mnist1d": (40, ("num_samples",))}


def data_need(source: str, options: dict, defaults: dict) -> Need | None:
    """Generated data of a synthetic source: float64 while drawn, then float32 tensors; None for
    sources read from files (their size is what is on disk) or options of the wrong type (the
    source rejects those itself)."""
    if source not in _SYNTHETIC:
        return None
    dim_spec, size_keys = _SYNTHETIC[source]
    opts = {**defaults, **options}
    values = [opts.get(dim_spec) if isinstance(dim_spec, str) else dim_spec] + [opts.get(k) for k in size_keys]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        return None
    dim, points = values[0], sum(values[1:])
    factors = {f"data.{k}": (opts[k], defaults[k]) for k in size_keys}
    if isinstance(dim_spec, str):
        factors[f"data.{dim_spec}"] = (dim, defaults[dim_spec])
    return Need(blame(factors), points * dim * (FP64 + FP32), f"{points:,} generated points of dimension {dim:,}")


def total(static: list[Need], transient: list[Need]) -> tuple[int, Need]:
    """(bytes needed at the peak, the biggest part): everything held for the whole run plus the
    largest of the parts that come and go (a training step, an evaluation, one measurement)."""
    parts = [n for n in static + transient if n is not None]
    peak = max((n.bytes for n in transient if n is not None), default=0)
    return sum(n.bytes for n in static if n is not None) + peak, max(parts, key=lambda n: n.bytes)


def per_sample_activations(skeleton: torch.nn.Module, in_shape: tuple[int, ...]) -> tuple[int, int]:
    """(sum, max) over the network's leaf modules of the values each outputs for one input of one
    copy: what a training step keeps for backward, and the largest tensor of a no-grad forward.
    Runs on the meta device: shapes only, nothing is computed or allocated."""
    outputs: list[int] = []
    leaves = [m for m in skeleton.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel() if torch.is_tensor(out) else 0))
             for m in leaves]
    try:
        copies = getattr(skeleton, "copies", 1)
        with torch.no_grad():
            skeleton(torch.empty(copies, 1, *in_shape, device="meta"))  # [S, 1, *in_shape]
    finally:
        for h in hooks:
            h.remove()
    copies = getattr(skeleton, "copies", 1)
    return sum(outputs) // copies, max(outputs, default=0) // copies


# ----------------------------------------------------------------------------- the device

def available_bytes(device: torch.device) -> int | None:
    """Memory free for the run now: the GPU's free memory, or the host's available RAM
    (MemAvailable; all physical memory where /proc/meminfo is missing); None where unknown (MPS)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def refuse_if_over(needed: int, biggest: Need, limit: int | None, where: str, value) -> None:
    if limit is None or needed <= limit:
        return
    raise ConfigError(f"{biggest.key}: {value} needs at least {gib(needed)} of memory, most of it for {biggest.what}; "
                      f"{where} has {gib(limit)} available; lower {biggest.key}")


# ----------------------------------------------------------------------------- the checks

def _value(cfg, key: str):
    if key == "seeds":
        return f"{len(cfg.seeds)} seeds"
    section, name = key.split(".", 1)
    node = getattr(cfg, section)
    return getattr(node, name) if hasattr(node, name) else node.options.get(name)


def check_data_size(cfg, limit: int | None = None) -> None:
    """Before the dataset is generated: its synthetic data fits in the host's memory."""
    from ddsweep.data import source_options

    need = data_need(cfg.data.name, cfg.data.options, source_options(cfg.data.name))
    if need is not None:
        limit = available_bytes(torch.device("cpu")) if limit is None else limit
        refuse_if_over(need.bytes, need, limit, "this machine", _value(cfg, need.key))


def run_needs(cfg, dataset, train_bytes: int = FP32) -> tuple[list[Need], list[Need]]:
    """(parts held for the whole run, parts that come and go) of a run on `dataset`; `train_bytes`:
    bytes per activation value of a training step (2 under 16-bit autocast; evaluation and
    measurement are fp32)."""
    from ddsweep.models import model_skeleton

    m, t, p, S = cfg.model, cfg.train, cfg.planes, len(cfg.seeds)
    kwargs = dict(width=m.width, in_shape=tuple(dataset.in_shape), num_classes=dataset.num_classes,
                  activation=m.activation, **m.options)
    if m.activation == "smelu":
        kwargs["smelu_beta"] = m.smelu_beta
    try:
        skeleton = model_skeleton(m.name, copies=S, **kwargs)
        total_act, max_act = per_sample_activations(skeleton, tuple(dataset.in_shape))
    except (RuntimeError, OverflowError) as err:  # a tensor of more than 2**63 bytes: not even its size can be computed
        key = blame({"model.width": (m.width, 16), "seeds": (S, 2)})
        raise ConfigError(f"{key}: {_value(cfg, key)} makes tensors larger than any machine holds "
                          f"({str(err).splitlines()[0][:80]}); lower {key}") from None
    params = sum(q.numel() for q in skeleton.parameters()) // S

    def width_or(key: str, value: int, default: int) -> str:  # activations grow with width and with the batch
        return blame({"model.width": (m.width, 16), key: (value, default)})

    n_points = len(dataset.y_train) + len(dataset.y_test)
    static = [parameter_need(params, S, t.optimizer, t.momentum), logits_need(S, n_points, dataset.num_classes)]
    transient = [
        activation_need(total_act * train_bytes // FP32, min(t.batch_size, len(dataset.y_train)), S,
                        width_or("train.batch_size", t.batch_size, 128), "activations of one training step"),
        activation_need(2 * max_act, min(t.eval_batch_size, n_points), S,
                        width_or("train.eval_batch_size", t.eval_batch_size, 2048), "one evaluation batch"),
    ]
    if p.every_n_epochs:
        call = min(p.max_points_per_call, max(p.resolution ** 2, cfg.regions1d.points))
        transient.append(activation_need(2 * max_act, call, S, width_or("planes.max_points_per_call", call, 16384),
                                         "one measurement call"))
        transient.append(label_map_need(S, p.n_planes, p.resolution, "planes.n_planes", 20))
        static.append(Need("planes.n_planes", len(p.families) * p.n_planes * 3 * INT64, "plane triplet indices"))
        if S > 1 and p.agreement_triplets:
            transient.append(label_map_need(S, p.agreement_triplets, p.resolution, "planes.agreement_triplets", 100))
        if p.draw:
            transient.append(label_map_need(S, p.draw, p.draw_resolution, "planes.draw", 2))
        if cfg.regions1d.pairs:
            transient.append(segment_need(S, cfg.regions1d.pairs, cfg.regions1d.points))
    return static, transient


def check_run_size(cfg, dataset, device: torch.device, precision: str = "32-true",
                   limit: int | None = None) -> None:
    """Before the network is built: the whole run fits on `device`, training at Lightning
    `precision` (`limit`: the bytes available, for tests; else `available_bytes`)."""
    static, transient = run_needs(cfg, dataset, train_bytes=2 if precision.startswith(("bf16", "16")) else FP32)
    if device.type == "cuda":  # the data tensors move to the GPU; on the host they are already counted
        static.append(Need("data.n_train", (dataset.x_train.numel() + dataset.x_test.numel()) * FP32, "the data"))
    needed, biggest = total(static, transient)
    limit = available_bytes(device) if limit is None else limit
    where = f"{device.type}" + (f":{device.index}" if device.index is not None else "")
    refuse_if_over(needed, biggest, limit, where, _value(cfg, biggest.key))

