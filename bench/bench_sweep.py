"""Speed of one epoch of a whole width sweep: the reference loop vs ddsweep (what `make bench` runs).

The grid: on a CUDA GPU the ResNet18-k grid (k = 1..20, 30, 40, 50, 60, 64 x 2 noise levels x 2
seeds, batch 128, Adam 1e-4, crop+flip, synthetic CIFAR-shaped data, 50,000 / 10,000 images); on a
CPU the demo sweep read from sweeps/demo.yaml (every point of its grid), so the two stay in sync.

For every point, both paths train warm-up epochs and then `--epochs` timed epochs: the reference
loop (bench/reference.py) one seed after the other, ddsweep through `train_run` with all seeds of the
point in one run. An epoch is training plus evaluation, as each path does it every epoch (the
reference: the test set; ddsweep: the train and test sets, and its checkpoint); decision-plane
measurement is off here (bench_measure.py measures it). Images per epoch = train images x seeds.

    python bench/bench_sweep.py                 # the full grid of this machine
    python bench/bench_sweep.py --quick         # two widths, small data: a smoke run
    python bench/bench_sweep.py --widths 1,8,64 --train-size 10000

The last line is one JSON object: device, sweep_epoch_s_reference, sweep_epoch_s_ddsweep,
sweep_epoch_ratio, and per-width and per-point details.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/bench_sweep.py` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness as H  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    H.add_grid_arguments(p)
    p.add_argument("--epochs", type=int,
                   help="timed epochs per point (default: 1 on GPU, 10 on CPU), rounded up to a multiple of the "
                        "recipe's evaluation and checkpoint periods")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs before them (default 1)")
    p.add_argument("--quick", action="store_true", help="two widths, one value of the other lists, small data")
    H.add_repeat_argument(p)
    args = p.parse_args(argv)
    if args.warmup < 1:
        p.error("--warmup must be >= 1")
    return args


def setup(args) -> tuple[H.Grid, int, int | None, int]:
    grid, widths, train_size, epochs, reps = H.selection(args, quick_epochs=1)
    grid = grid.restricted(widths, first_only=args.quick)
    period = H.schedule_period(H.make_config(grid.points()[0]))
    return grid, H.window(period, epochs, 1 if H.on_gpu() else 10), train_size, reps


def bench_point(point: dict, *, warmup: int, epochs: int, train_size: int | None, repeats: int) -> dict:
    """Seconds of one epoch of all seeds, each path the fastest of `repeats` runs taken in turns."""
    extra = {**H.size_overrides(point, train_size), "planes.every_n_epochs": 0}
    timed = dict(warmup=warmup, epochs=epochs)
    seen = {}

    def reference() -> float:
        per_seed, seen["n_train"] = H.time_reference(point, **timed, **extra)  # [seed][epoch]
        seen["seeds"] = len(per_seed)
        return sum(sum(s) for s in per_seed) / epochs  # all seeds, one epoch

    def ddsweep() -> float:
        return sum(H.time_ddsweep(point, **timed, **extra)) / epochs

    best = H.fastest({"reference": reference, "ddsweep": ddsweep}, repeats)
    ref_s, dd_s = best["reference"], best["ddsweep"]
    images = seen["n_train"] * seen["seeds"]
    return {"width": point["model.width"], "params": {k: v for k, v in point.items() if k != "model.width"},
            "images_per_epoch": images, "epoch_s_reference": ref_s, "epoch_s_ddsweep": dd_s,
            "images_per_s_reference": images / ref_s, "images_per_s_ddsweep": images / dd_s,
            "ratio": ref_s / dd_s}


def per_width(points: list[dict]) -> list[dict]:
    """Points of one width summed over the other varying keys (noise levels)."""
    out = []
    for w in dict.fromkeys(p["width"] for p in points):
        ps = [p for p in points if p["width"] == w]
        images = sum(p["images_per_epoch"] for p in ps)
        ref, dd = sum(p["epoch_s_reference"] for p in ps), sum(p["epoch_s_ddsweep"] for p in ps)
        out.append({"width": w, "points": len(ps), "epoch_s_reference": ref, "epoch_s_ddsweep": dd,
                    "images_per_s_reference": images / ref, "images_per_s_ddsweep": images / dd,
                    "ratio": ref / dd})
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    grid, epochs, train_size, repeats = setup(args)
    points = grid.points()
    device = H.device_name()
    print(f"bench_sweep: {device}; grid {grid.source}: {len(points)} points "
          f"({', '.join(f'{k} x{len(v)}' for k, v in grid.varying.items())}); "
          f"{args.warmup} warm-up + {epochs} timed epoch(s) per point, fastest of {repeats} run(s)"
          + (f"; train size {train_size}" if train_size else ""), flush=True)
    start = time.perf_counter()
    results = []
    for i, point in enumerate(points, 1):
        r = bench_point(point, warmup=args.warmup, epochs=epochs, train_size=train_size, repeats=repeats)
        results.append(r)
        varying = ", ".join(f"{k}={point[k]}" for k in grid.varying)
        print(f"  [{i}/{len(points)}] {varying}: reference {r['epoch_s_reference']:.4f} s, "
              f"ddsweep {r['epoch_s_ddsweep']:.4f} s per epoch ({r['ratio']:.2f}x)", flush=True)
    widths = per_width(results)
    print()
    H.print_table(["width", "points", "img/s reference", "img/s ddsweep", "ratio"],
                  [[w["width"], w["points"], H.fmt_rate(w["images_per_s_reference"]),
                    H.fmt_rate(w["images_per_s_ddsweep"]), f"{w['ratio']:.2f}x"] for w in widths],
                  title="Images per second (train images x seeds per epoch), one epoch incl. evaluation:")
    ref = sum(r["epoch_s_reference"] for r in results)
    dd = sum(r["epoch_s_ddsweep"] for r in results)
    median = statistics.median(r["ratio"] for r in results)
    print(f"\nsweep epoch ({len(points)} points): reference {ref:.3f} s, ddsweep {dd:.3f} s, "
          f"ratio {ref / dd:.2f}x (median point {median:.2f}x)  "
          f"(benchmark wall time {time.perf_counter() - start:.0f} s)")
    H.emit_json({"benchmark": "sweep", "device": device, "grid": grid.source, "points": len(points),
                 "epochs_timed": epochs, "warmup": args.warmup, "repeats": repeats, "train_size": train_size,
                 "sweep_epoch_s_reference": ref, "sweep_epoch_s_ddsweep": dd, "sweep_epoch_ratio": ref / dd,
                 "median_point_ratio": median,
                 "widths": widths, "per_point": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
