"""Cost of measurement: the demo's training epochs with its measurement schedule vs without.

For every width of the grid (on a CPU the demo sweep, sweeps/demo.yaml; on a CUDA GPU the
ResNet18-k CIFAR-shaped recipe of bench_sweep.py with the preset's schedule: planes every 50
epochs), one value of the other lists, the same run through `train_run` with measurement off
(`planes.every_n_epochs=0`), with the decision planes of the point's schedule (regions, 1-D counts,
seed agreement) and with its pictures too. Measurement that happens more rarely than the timed
window is timed once per window and counted at its real rate (see `bench_point`), so the result
is the per-epoch cost of the real schedule without timing a whole run.

Issue 3 asks for at most 10% (ratio <= 1.10) at the default schedule.

    python bench/bench_measure.py [--quick] [--widths 4,64] [--train-size N] [--repeats 5]

The last line is one JSON object: device, overhead_ratio (time with / without, summed over the
points), epoch_s_with, epoch_s_without and per-point details (planes and pictures apart).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/bench_measure.py` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness as H  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    H.add_grid_arguments(p)
    p.add_argument("--all-points", action="store_true",
                   help="every point (default: one value of the lists other than model.width)")
    p.add_argument("--epochs", type=int, help="epochs per timed window (default: 1 on GPU, 10 on CPU), rounded up "
                                              "to a multiple of the evaluation and checkpoint periods")
    H.add_repeat_argument(p)
    p.add_argument("--quick", action="store_true", help="two widths, small data, a shortened schedule")
    return p.parse_args(argv)


QUICK_SCHEDULE = {  # small enough for a smoke run; pictures rarer than planes, as in the demo
    "planes.every_n_epochs": 2, "planes.draw": 1, "planes.draw_every_n_epochs": 4, "planes.n_planes": 2,
    "planes.resolution": 8, "planes.draw_resolution": 16, "planes.agreement_triplets": 2,
    "regions1d.pairs": 2, "regions1d.points": 10, "train.eval_every": 1, "train.checkpoint_every": 1,
}


def timed_window(cfg, at_least: int | None) -> int:
    """Epochs per timed window: a multiple of the evaluation and checkpoint periods, and of every
    measurement period shorter than it; longer ones are compressed to it (see bench_point)."""
    w = H.window(H.schedule_period(cfg), at_least, 1 if H.on_gpu() else 10)
    p = cfg.planes
    for period in (p.every_n_epochs, p.draw_every_n_epochs if p.draw else 0):
        if period and period < w:
            w = math.lcm(w, period)
    return w


def bench_point(point: dict, *, epochs: int | None, repeats: int, train_size: int | None, quick: bool) -> dict:
    """Seconds per epoch with the point's measurement schedule and without it.

    Three runs of W timed epochs after W epochs of warm-up, each the fastest of `repeats`:
    measurement off; decision planes on; planes and pictures on. A kind of work whose period P
    exceeds W runs once per window instead, and its cost is counted at its real rate (x W / P),
    so the demo's pictures at epoch 1000 are costed without timing 1000 epochs:
        with = off + (planes - off) * min(P_planes, W) / P_planes
                   + (pictures - planes) * min(P_pictures, W) / P_pictures
    """
    extra = H.size_overrides(point, train_size)
    if quick:
        extra.update(QUICK_SCHEDULE)
    cfg = H.make_config(point, **extra)
    p = cfg.planes
    if not p.every_n_epochs:
        raise SystemExit(f"bench_measure: {point} has no measurement schedule (planes.every_n_epochs=0)")
    w = timed_window(cfg, epochs)
    every, draw_every = min(p.every_n_epochs, w), min(p.draw_every_n_epochs, w)

    def run(**keys):  # one run's seconds per timed epoch
        return lambda: sum(H.time_ddsweep(point, warmup=w, epochs=w, **{**extra, **keys})) / w

    measures = {"off": run(**{"planes.every_n_epochs": 0}),
                "planes": run(**{"planes.every_n_epochs": every, "planes.draw": 0})}
    if p.draw:
        measures["both"] = run(**{"planes.every_n_epochs": every, "planes.draw_every_n_epochs": draw_every})
    best = H.fastest(measures, repeats)
    off, planes = best["off"], best["planes"]
    out = {"width": point["model.width"], "params": {k: v for k, v in point.items() if k != "model.width"},
           "schedule": {"every_n_epochs": p.every_n_epochs, "draw": p.draw,
                        "draw_every_n_epochs": p.draw_every_n_epochs, "n_planes": p.n_planes,
                        "resolution": p.resolution, "families": list(p.families),
                        "agreement_triplets": p.agreement_triplets, "regions1d_pairs": cfg.regions1d.pairs},
           "epochs_timed": w, "repeats": repeats, "epoch_s_without": off,
           "epoch_s_planes": (planes - off) * every / p.every_n_epochs, "epoch_s_pictures": 0.0}
    if p.draw:
        out["epoch_s_pictures"] = (best["both"] - planes) * draw_every / p.draw_every_n_epochs
    out["epoch_s_with"] = off + out["epoch_s_planes"] + out["epoch_s_pictures"]
    out["ratio"] = out["epoch_s_with"] / off
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    grid, widths, train_size, epochs, reps = H.selection(args, quick_epochs=4)
    grid = grid.restricted(widths, first_only=not args.all_points)
    points = grid.points()
    device = H.device_name()
    print(f"bench_measure: {device}; grid {grid.source}: {len(points)} points; "
          f"fastest of {reps} run(s)" + (f"; train size {train_size}" if train_size else ""),
          flush=True)
    start = time.perf_counter()
    results = []
    for i, point in enumerate(points, 1):
        r = bench_point(point, epochs=epochs, repeats=reps, train_size=train_size, quick=args.quick)
        results.append(r)
        varying = ", ".join(f"{k}={point[k]}" for k in grid.varying)
        print(f"  [{i}/{len(points)}] {varying}: {r['epochs_timed']} epochs, with {r['epoch_s_with']:.4f} s, "
              f"without {r['epoch_s_without']:.4f} s per epoch ({r['ratio']:.3f})", flush=True)
    print()
    H.print_table(["width", "s/epoch without", "+ planes", "+ pictures", "s/epoch with", "ratio"],
                  [[r["width"], f"{r['epoch_s_without']:.4f}", f"{r['epoch_s_planes']:.4f}",
                    f"{r['epoch_s_pictures']:.4f}", f"{r['epoch_s_with']:.4f}", f"{r['ratio']:.3f}"]
                   for r in results],
                  title="Training epochs with the measurement schedule / without (target <= 1.10):")
    with_s = sum(r["epoch_s_with"] for r in results)
    without_s = sum(r["epoch_s_without"] for r in results)
    median = statistics.median(r["ratio"] for r in results)
    print(f"\nall points: with {with_s:.3f} s, without {without_s:.3f} s per epoch, overhead ratio "
          f"{with_s / without_s:.3f} (median point {median:.3f})  "
          f"(benchmark wall time {time.perf_counter() - start:.0f} s)")
    H.emit_json({"benchmark": "measure", "device": device, "grid": grid.source, "points": len(points),
                 "train_size": train_size, "epoch_s_with": with_s, "epoch_s_without": without_s,
                 "overhead_ratio": with_s / without_s,
                 "median_point_ratio": median, "per_point": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
