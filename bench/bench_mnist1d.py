"""The MNIST-1D MLP grid, whole: ddsweep's local engine vs a plain loop trained width by width.

The grid is sweeps/mnist1d_mlp.yaml (19 widths, two seeds per width, uniform label noise 15%,
SGD, batch 100), shortened to `--epochs` epochs, with decision planes and 1-D regions off (this
times training; bench_measure.py times measurement). Both sides train the same networks
(models.create_model) on the same data and labels and evaluate the test set every epoch.

- ddsweep: `ddsweep sweep FILE --local --workers W --output DIR` as a user runs it, timed from the
  command's start to its end: every point's process start, imports and data (a fresh dataset cache,
  so the first point generates MNIST-1D), training, evaluation, checkpoints, run directories.
- dataloader: bench/reference.py's loop (a DataLoader over a TensorDataset, `loss.item()` per
  batch), one width and seed after the other in one process, the data generated once.
- tensor: a lean plain loop (bench/reference.py `train_tensor_loop`): tensors, a randperm per epoch,
  slices, no per-batch host sync, the test set evaluated every epoch; one width and seed after the other.
- tensor_train_eval: the same loop also evaluating the train set every epoch (eval mode), so it
  computes the numbers ddsweep logs for the curve (train error on the labels trained on, test error).

Both references get every CPU thread (torch's default); ddsweep gets what its engine gives its
workers. "Per model" is wall time over the models trained (widths x seeds x noise levels).

    python bench/bench_mnist1d.py                 # 19 widths x 2 seeds, 20 epochs (about 9 minutes here)
    python bench/bench_mnist1d.py --epochs 100 --skip dataloader   # closer to the preset's 500 (about 15 minutes)
    python bench/bench_mnist1d.py --epochs 5 --widths 2,36,300 --noise 0.0,0.15
    python bench/bench_mnist1d.py --quick         # 3 widths, 2 epochs: a smoke run

ddsweep pays a fixed cost per sweep that a plain loop in an already running process does not: the
engine's imports (torch, Lightning, W&B: about 10 s here) before its first point; so its ratio
grows with the epoch count towards the ratio per epoch.

Per width, a second table says where each side's time goes: ddsweep's seconds are the worker
seconds of that width's job (the sweep's state.json: its process from fork to exit, a fused group
counted once) over its models and the workers (what a model costs while every worker is busy), the
references' the seconds of that width's models over their count. Where a step is host overhead (small
widths) the fused seeds share it; where it is arithmetic (large widths) both sides do the same
arithmetic per model, and ddsweep's gain is at most its workers' cores over the reference's
multi-threaded speed-up.

Last line: one JSON object with the seconds per model of each side and `ratio_per_model`
(reference seconds per model / ddsweep seconds per model: >1 means ddsweep is faster), and
`per_width` (per width: each side's seconds per model as in the second table).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/bench_mnist1d.py` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from bench import harness as H  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "sweeps" / "mnist1d_mlp.yaml"
TARGET, GOAL = 2.0, 3.0
SIDES = ("dataloader", "tensor", "tensor_train_eval")
# what this benchmark turns off or shortens in the preset
BENCH_OVERRIDES = {"planes.every_n_epochs": 0, "regions1d.pairs": 0, "wandb.mode": "disabled"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=20, help="epochs per model (default 20; the preset trains 500)")
    p.add_argument("--widths", help="comma-separated subset of the preset's widths (default: all 19)")
    p.add_argument("--noise", help="comma-separated label-noise rates (default: the preset's 0.15)")
    p.add_argument("--workers", type=int, default=2, help="local engine workers (default 2, as on this 2-core machine)")
    p.add_argument("--skip", default="", help="comma-separated sides not to run: " + ", ".join(SIDES))
    p.add_argument("--quick", action="store_true", help="3 widths, 2 epochs")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.widths = 2, args.widths or "2,36,300"
    if args.epochs < 1 or args.workers < 1:
        p.error("--epochs and --workers must be >= 1")
    return args


def sweep_parameters(args) -> dict:
    params = yaml.safe_load(PRESET.read_text())["parameters"]
    if args.widths:
        wanted = [int(w) for w in args.widths.split(",")]
        unknown = [w for w in wanted if w not in params["model.width"]["values"]]
        if unknown:
            sys.exit(f"bench_mnist1d: --widths {unknown} are not widths of {PRESET.name}")
        params["model.width"] = {"values": wanted}
    if args.noise:
        params["data.noise.rate"] = {"values": [float(r) for r in args.noise.split(",")]}
    params["train.epochs"] = {"value": args.epochs}
    params.update({k: {"value": v} for k, v in BENCH_OVERRIDES.items()})
    return params


def points(params: dict) -> list[dict]:
    fixed = {k: v["value"] for k, v in params.items() if "value" in v}
    rates = params["data.noise.rate"].get("values", [fixed.get("data.noise.rate")])
    return [{**fixed, "model.width": w, "data.noise.rate": r} for w in params["model.width"]["values"] for r in rates]


def job_seconds(state: dict) -> dict[int, float]:
    """Worker seconds per width from a finished sweep's state.json: each job once (a fused group's
    points all record their group's seconds)."""
    out: dict[int, float] = {}
    seen: set = set()
    for point in state["points"]:
        job = tuple(point.get("fused_with") or [point["id"]])
        if job in seen:
            continue
        seen.add(job)
        width = int(point["params"]["model.width"])
        out[width] = out.get(width, 0.0) + float(point["seconds"])
    return out


def time_ddsweep(params: dict, workers: int) -> tuple[float, dict[int, float]]:
    """(seconds of the whole command, worker seconds per width)."""
    with tempfile.TemporaryDirectory(prefix="ddsweep-bench-mnist1d-") as tmp:
        spec = {"name": "bench-mnist1d", "program": "ddsweep", "command": ["ddsweep", "train", "${args}"],
                "method": "grid", "parameters": params}
        path = Path(tmp) / "sweep.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        env = {**os.environ, "DDSWEEP_CACHE": str(Path(tmp) / "cache"), "WANDB_MODE": "disabled"}
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "ddsweep", "sweep", str(path), "--local", "--workers", str(workers),
                              "--output", str(Path(tmp) / "sweep")], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if res.returncode != 0:
            sys.exit(f"bench_mnist1d: the sweep failed (exit {res.returncode}):\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        return seconds, job_seconds(json.loads((Path(tmp) / "sweep" / "state.json").read_text()))


def time_reference(pts: list[dict], epochs: int, side: str) -> tuple[float, int, dict[int, float]]:
    """(seconds, models, seconds per width) of a plain loop over every point and seed, one after the other."""
    from bench.reference import train_reference, train_tensor_loop
    from ddsweep.pipeline.train.run import prepare_data

    loop = {"dataloader": train_reference, "tensor": train_tensor_loop,
            "tensor_train_eval": lambda *a: train_tensor_loop(*a, eval_train=True)}[side]
    start, models, data, per_width = time.perf_counter(), 0, {}, {}
    for point in pts:
        cfg = H.make_config(point)
        key = cfg.data.noise.rate
        if key not in data:  # the data is generated once per noise level, as a script would
            data[key] = prepare_data(cfg)
        dataset, labels, _ = data[key]
        begin = time.perf_counter()
        for seed in cfg.seeds:
            loop(cfg, dataset, labels.noisy, seed, epochs)
            models += 1
        width = point["model.width"]
        per_width[width] = per_width.get(width, 0.0) + time.perf_counter() - begin
    return time.perf_counter() - start, models, per_width


def per_width_table(pts: list[dict], workers: int, widths: dict[str, dict[int, float]]) -> dict:
    """{width: {side: seconds per model}}: ddsweep's worker seconds over its models and workers,
    each reference's seconds over its models (module docstring)."""
    models = {}
    for point in pts:
        models[point["model.width"]] = models.get(point["model.width"], 0) + len(point["seeds"])
    return {w: {side: seconds[w] / n / (workers if side == "ddsweep" else 1) for side, seconds in widths.items()}
            for w, n in sorted(models.items())}


def main(argv=None) -> int:
    args = parse_args(argv)
    params = sweep_parameters(args)
    pts = points(params)
    seeds = len(params["seeds"]["value"])
    models = len(pts) * seeds
    print(f"bench_mnist1d: {len(pts)} points x {seeds} seeds = {models} models, {args.epochs} epochs each, "
          f"device {H.device_name()}", flush=True)
    widths: dict[str, dict[int, float]] = {}
    seconds = {}
    seconds["ddsweep"], widths["ddsweep"] = time_ddsweep(params, args.workers)
    print(f"  ddsweep sweep --local --workers {args.workers}: {seconds['ddsweep']:.1f} s", flush=True)
    for side in SIDES:
        if side in args.skip.split(","):
            continue
        seconds[side], trained, widths[side] = time_reference(pts, args.epochs, side)
        assert trained == models
        print(f"  plain loop ({side}): {seconds[side]:.1f} s", flush=True)
    per_model = {k: v / models for k, v in seconds.items()}
    ratio = {k: per_model[k] / per_model["ddsweep"] for k in per_model if k != "ddsweep"}
    H.print_table(["side", "seconds", "s per model", "ratio"],
                  [[k, f"{seconds[k]:.1f}", f"{per_model[k]:.2f}", f"{ratio.get(k, 1.0):.2f}x"] for k in seconds])
    table = per_width_table(pts, args.workers, widths)
    refs = [k for k in widths if k != "ddsweep"]
    H.print_table(["width", f"ddsweep s/model (/{args.workers} workers)"] + [f"{k} s/model" for k in refs]
                  + [f"{k} ratio" for k in refs],
                  [[w, f"{row['ddsweep']:.3f}"] + [f"{row[k]:.3f}" for k in refs]
                   + [f"{row[k] / row['ddsweep']:.2f}x" for k in refs] for w, row in table.items()],
                  title="per width (ddsweep: its job's worker seconds over its models and the workers):")
    H.emit_json({"bench": "mnist1d_mlp", "device": H.device_name(), "models": models, "epochs": args.epochs,
                 "widths": params["model.width"]["values"], "noise": sorted({p["data.noise.rate"] for p in pts}),
                 "workers": args.workers, "seconds": seconds, "seconds_per_model": per_model,
                 "ratio_per_model": ratio, "per_width": table, "target": TARGET, "goal": GOAL,
                 "meets_target": {k: r >= TARGET for k, r in ratio.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
