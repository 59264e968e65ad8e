"""What the benchmarks share: the grids, timing ddsweep's real pipeline, the output format.

ddsweep is timed through `ddsweep.pipeline.train.run.train_run`, the path users run: each run writes one
metrics.jsonl row per epoch whose `time` is the seconds since training started, so the difference
of two consecutive rows is one whole epoch as run (training, evaluation, measurement when
scheduled, the row itself and the previous epoch's checkpoint).
"""
from __future__ import annotations

import contextlib
import functools
import gc
import io
import itertools
import json
import math
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO_SWEEP = ROOT / "sweeps" / "demo.yaml"

# The GPU grid (issue 7): PreAct-ResNet18-k on CIFAR-shaped data, batch 128, Adam 1e-4, crop+flip.
RESNET_WIDTHS = list(range(1, 21)) + [30, 40, 50, 60, 64]
RESNET_GRID = {
    "model.name": {"value": "resnet18k"},
    "model.width": {"values": RESNET_WIDTHS},
    "data.name": {"value": "bench_cifar"},
    "data.noise.kind": {"value": "uniform"},
    "data.noise.rate": {"values": [0.1, 0.2]},
    "data.augment.crop": {"value": True},
    "data.augment.flip": {"value": True},
    "data.augment.pad": {"value": 4},
    "train.batch_size": {"value": 128},
    "train.optimizer": {"value": "adam"},
    "train.lr": {"value": 1.0e-4},
    "train.schedule": {"value": "constant"},
    "seeds": {"value": [0, 1]},
    # The preset's measurement schedule (sweeps/nakkiran2019_resnet18k.yaml), for bench_measure.
    "planes.every_n_epochs": {"value": 50},
    "planes.families": {"value": ["train", "test", "mislabeled"]},
    "planes.n_planes": {"value": 100},
}
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000

# Engine keys of a sweep that a benchmark sets itself.
_IGNORED = ("output_dir", "run_name", "wandb.mode")


# ----------------------------------------------------------------------------- device and grids

def on_gpu() -> bool:
    return torch.cuda.is_available()


def device_name() -> str:
    if on_gpu():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    return f"cpu ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


@dataclass
class Grid:
    """A grid sweep as data: fixed values plus the lists a point takes one value of each."""
    source: str
    fixed: dict
    varying: dict  # key -> list of values, in file order

    def points(self) -> list[dict]:
        """Every point: the cartesian product of the `values` lists, the fixed values applied."""
        keys = list(self.varying)
        return [{**self.fixed, **dict(zip(keys, combo))}
                for combo in itertools.product(*(self.varying[k] for k in keys))]

    @property
    def widths(self) -> list[int]:
        return list(self.varying.get("model.width", [self.fixed.get("model.width")]))

    def restricted(self, widths: list[int] | None = None, first_only: bool = False) -> Grid:
        """The grid at `widths` (default: its own); first_only keeps one value of every other list."""
        varying = {k: (v[:1] if first_only and k != "model.width" else list(v)) for k, v in self.varying.items()}
        fixed = dict(self.fixed)
        if widths is not None:
            fixed.pop("model.width", None)
            varying["model.width"] = list(widths)
        return Grid(self.source, fixed, varying)


def grid_from_parameters(parameters: dict, source: str) -> Grid:
    fixed, varying = {}, {}
    for key, spec in parameters.items():
        if key in _IGNORED:
            continue
        if not isinstance(spec, dict) or not ("value" in spec or "values" in spec):
            raise ValueError(f"{source}: parameters.{key}: the benchmarks read grid sweeps "
                             "(every parameter a 'value' or a list of 'values')")
        if "values" in spec:
            varying[key] = list(spec["values"])
        else:
            fixed[key] = spec["value"]
    return Grid(source, fixed, varying)


def load_grid(path: str | Path | None = None) -> Grid:
    """The CPU grid: the sweep file `path`, by default the demo (sweeps/demo.yaml)."""
    path = Path(path) if path is not None else DEMO_SWEEP
    raw = yaml.safe_load(path.read_text())
    if raw.get("method", "grid") != "grid":
        raise ValueError(f"{path}: method {raw.get('method')!r}; the benchmarks expand grid sweeps only")
    return grid_from_parameters(raw["parameters"], str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path))


def gpu_grid() -> Grid:
    return grid_from_parameters(RESNET_GRID, "ResNet18-k grid (bench/harness.py RESNET_GRID)")


def default_grid(path: str | None = None, name: str = "auto") -> Grid:
    """`name` resnet18k: the GPU grid; demo: the CPU grid (or `path`); auto: by the device."""
    if name == "resnet18k" or (name == "auto" and on_gpu() and path is None):
        return gpu_grid()
    return load_grid(path)


def add_grid_arguments(parser) -> None:
    parser.add_argument("--grid", choices=("auto", "demo", "resnet18k"), default="auto",
                        help="auto (default): the ResNet18-k grid on a GPU, the demo sweep on a CPU")
    parser.add_argument("--sweep", help="the CPU grid's sweep file (default sweeps/demo.yaml)")
    parser.add_argument("--widths", help="comma-separated widths instead of the grid's")
    parser.add_argument("--train-size", type=int, help="train images (synthetic size on GPU, data.n_train on CPU)")


def selection(args, quick_epochs: int) -> tuple[Grid, list[int] | None, int | None, int | None, int]:
    """(grid, widths, train size, epochs, repeats) from a bench script's arguments (the grid ones,
    --epochs, --repeats, --quick); --quick fills what is not given with the first two widths, a
    small train set, `quick_epochs` epochs and one repeat."""
    grid = default_grid(args.sweep, args.grid)
    widths = [int(w) for w in args.widths.split(",")] if args.widths else None
    train_size, epochs = args.train_size, args.epochs
    if args.quick:
        widths = widths or grid.widths[:2]
        train_size = train_size or (1024 if on_gpu() else 256)
        epochs = epochs or quick_epochs
    reps = repeats(args.repeats if args.repeats is not None else (1 if args.quick else None))
    return grid, widths, train_size, epochs, reps


# ----------------------------------------------------------------------------- synthetic CIFAR

@functools.lru_cache(maxsize=1)  # every point of a grid reads the same images: make them once
def _cifar_tensors(train_size: int, test_size: int, seed: int) -> tuple[torch.Tensor, ...]:
    from ddsweep.data import constants

    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(constants.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(constants.CIFAR10_STD).view(1, 3, 1, 1)

    def images(n):  # [n, 3, 32, 32] float32, normalized like real CIFAR-10
        return (torch.randint(0, 256, (n, 3, 32, 32), generator=g).float() / 255 - mean) / std

    x_train, x_test = images(train_size), images(test_size)
    return (x_train, torch.randint(0, 10, (train_size,), generator=g), x_test,
            torch.randint(0, 10, (test_size,), generator=g))


def register_bench_cifar() -> None:
    """Register `bench_cifar`: random CIFAR-shaped uint8 images [3, 32, 32] normalized with the
    CIFAR-10 constants and random labels (speed needs only the shapes). Bench-only; idempotent."""
    from ddsweep.data import constants
    from ddsweep.data.sources import Dataset, list_sources, register_source

    if "bench_cifar" in list_sources():
        return

    def bench_cifar(*, train_size: int = CIFAR_TRAIN, test_size: int = CIFAR_TEST, seed: int = 0) -> Dataset:
        x_train, y_train, x_test, y_test = _cifar_tensors(train_size, test_size, seed)
        return Dataset(name="bench_cifar", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                       num_classes=10, class_names=constants.CIFAR10_CLASSES, in_shape=(3, 32, 32),
                       mean=constants.CIFAR10_MEAN, std=constants.CIFAR10_STD, is_image=True)

    register_source(bench_cifar)


def size_overrides(point: dict, train_size: int | None) -> dict:
    """Keys that shrink the data to `train_size` train images: the synthetic source's sizes (the
    test set a fifth of it, at least 256), else data.n_train (a train subset)."""
    if not train_size:
        return {}
    if point.get("data.name") == "bench_cifar":
        return {"data.train_size": train_size, "data.test_size": min(CIFAR_TEST, max(train_size // 5, 256))}
    return {"data.n_train": train_size}


# ----------------------------------------------------------------------------- configs and timing

def make_config(point: dict, **overrides):
    """A validated Config for a grid point, with `overrides` (dotted keys) on top."""
    from ddsweep.pipeline.config import load_config

    register_bench_cifar()
    return load_config(None, {**point, **overrides, "wandb.mode": "disabled"})


def schedule_period(cfg) -> int:
    """Epochs after which a run's evaluation and checkpoints repeat (the lcm of their periods): a
    timed window that is a multiple of it holds each exactly as often as a long run does (checkpoints
    by wall time only, `checkpoint_every: null`, add no period)."""
    return math.lcm(cfg.train.eval_every, cfg.train.checkpoint_every or 1)


def window(period: int, at_least: int | None, default: int) -> int:
    """Timed epochs: the smallest multiple of `period` that is >= at_least (or `default`)."""
    want = max(1, at_least if at_least is not None else default)
    return period * -(-want // period)


def add_repeat_argument(parser) -> None:
    parser.add_argument("--repeats", type=int,
                        help="measure each time this many times and keep the fastest (default: 1 on GPU, 3 on "
                             "CPU, where other processes share the cores)")


def repeats(value: int | None) -> int:
    return max(1, value if value is not None else (1 if on_gpu() else 3))


def fastest(measures: dict, n: int) -> dict:
    """name -> the smallest of n calls of measures[name]() (interference from other processes only
    ever adds time), the calls taken in turns so a burst of load hits every name alike."""
    runs = {name: [] for name in measures}
    for _ in range(n):
        for name, measure in measures.items():
            runs[name].append(measure())
    return {name: min(values) for name, values in runs.items()}


def release_memory() -> None:
    """Free the finished run's tensors (Lightning keeps reference cycles) before the next one."""
    gc.collect()
    if on_gpu():
        torch.cuda.empty_cache()


def epoch_seconds(rows: list[dict], warmup: int, epochs: int) -> list[float]:
    """Wall time of epochs warmup+1 .. warmup+epochs from metrics.jsonl rows (their `time` column)."""
    if warmup < 1:
        raise ValueError("warmup must be >= 1: the first row's time includes setup")
    times = [row["time"] for row in rows]
    if len(times) < warmup + epochs:
        raise RuntimeError(f"the run wrote {len(times)} epochs, expected {warmup + epochs}")
    return [times[e] - times[e - 1] for e in range(warmup, warmup + epochs)]


def time_ddsweep(point: dict, *, warmup: int, epochs: int, **overrides) -> list[float]:
    """Run the point through train_run for warmup+epochs epochs; the timed epochs' seconds."""
    from ddsweep.pipeline.store.rundir import RunDir
    from ddsweep.pipeline.train.run import train_run

    with tempfile.TemporaryDirectory(prefix="ddsweep-bench-") as out:
        cfg = make_config(point, **overrides, **{"train.epochs": warmup + epochs, "output_dir": out,
                                                 "run_name": "bench"})
        with contextlib.redirect_stdout(io.StringIO()):
            code = train_run(cfg, verbose=False)
        rows = RunDir(Path(out) / "bench").read_metrics()
        release_memory()
        if code != 0:
            raise RuntimeError(f"ddsweep run failed (exit {code}) at {point}")
        return epoch_seconds(rows, warmup, epochs)


def time_reference(point: dict, *, warmup: int, epochs: int, **overrides) -> tuple[list[list[float]], int]:
    """The reference loop on the same point, one model per seed: ([seed][timed epoch] seconds,
    train images of one seed's epoch)."""
    from bench.reference import train_reference
    from ddsweep.pipeline.train.run import prepare_data

    cfg = make_config(point, **overrides, **{"train.epochs": warmup + epochs})
    dataset, labels, _ = prepare_data(cfg)
    device = "cuda" if on_gpu() else "cpu"
    out = []
    for seed in cfg.seeds:
        results = train_reference(cfg, dataset, labels.noisy, seed, warmup + epochs, device)
        out.append([r.seconds for r in results[warmup:]])
        release_memory()
    return out, int(dataset.x_train.shape[0])


# ----------------------------------------------------------------------------- output

def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def print_table(header: list[str], rows: list[list], title: str | None = None) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if title:
        print(title)
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)), flush=True)
        if i == 0:
            print("  ".join("-" * w for w in widths))


def finite_positive(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def emit_json(obj: dict) -> None:
    """The benchmark's last line: one JSON object."""
    print(json.dumps(obj, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)), flush=True)
