"""Fused S-seed training vs S separate models vs S separate runs, per width.

For every width of the grid (on a CPU the demo sweep, sweeps/demo.yaml; on a CUDA GPU the
ResNet18-k grid of bench_sweep.py), one value of the other lists, three ways through `train_run`:

- fused:    one run, `train.fuse_seeds=true`: the S copies as one grouped computation;
- seedlist: one run, `train.fuse_seeds=false`: S separate models behind the same interface
            (ddsweep.pipeline.train.network.SeedList), sharing the run's data pipeline and loop;
- runs:     S runs with one seed each (`seeds=[s]`), as a sweep without seed fusion would do.

Each is timed per epoch after a warm-up epoch (same window rule as bench_sweep.py), the fastest of
--repeats runs; measurement is off. Ratios > 1 mean fused is faster: seedlist / fused and runs / fused.

    python bench/bench_fused.py [--quick] [--widths 4,64] [--seeds 0,1,2,3] [--train-size N]

The last line is one JSON object: device, seeds, epoch_s_fused, epoch_s_seedlist, epoch_s_runs
(summed over widths), ratio_runs_vs_fused, ratio_seedlist_vs_fused and per-width details.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/bench_fused.py` from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness as H  # noqa: E402

MODES = ("fused", "seedlist", "runs")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    H.add_grid_arguments(p)
    p.add_argument("--seeds", help="comma-separated seeds (default: the grid's)")
    p.add_argument("--epochs", type=int, help="timed epochs (default: 1 on GPU, 10 on CPU), rounded up to a "
                                              "multiple of the evaluation and checkpoint periods")
    p.add_argument("--quick", action="store_true", help="two widths, small data")
    H.add_repeat_argument(p)
    return p.parse_args(argv)


def bench_width(point: dict, *, epochs: int, train_size: int | None, repeats: int) -> dict:
    extra = {**H.size_overrides(point, train_size), "planes.every_n_epochs": 0}

    def per_epoch(**keys):  # one run's seconds per timed epoch
        return lambda: sum(H.time_ddsweep(point, warmup=1, epochs=epochs, **{**extra, **keys})) / epochs

    measures = {"fused": per_epoch(**{"train.fuse_seeds": True}),
                "seedlist": per_epoch(**{"train.fuse_seeds": False})}
    measures.update({f"run{s}": per_epoch(seeds=[s]) for s in point["seeds"]})
    best = H.fastest(measures, repeats)
    fused, seedlist = best["fused"], best["seedlist"]
    runs = sum(best[f"run{s}"] for s in point["seeds"])
    return {"width": point["model.width"], "epoch_s_fused": fused, "epoch_s_seedlist": seedlist,
            "epoch_s_runs": runs, "ratio_seedlist_vs_fused": seedlist / fused, "ratio_runs_vs_fused": runs / fused}


def main(argv=None) -> int:
    args = parse_args(argv)
    grid, widths, train_size, epochs, reps = H.selection(args, quick_epochs=1)
    grid = grid.restricted(widths, first_only=True)
    if args.seeds:
        grid.fixed["seeds"] = [int(s) for s in args.seeds.split(",")]
    grid.fixed.setdefault("seeds", [0, 1])
    points = grid.points()
    epochs = H.window(H.schedule_period(H.make_config(points[0])), epochs, 1 if H.on_gpu() else 10)
    device = H.device_name()
    seeds = grid.fixed["seeds"]
    print(f"bench_fused: {device}; grid {grid.source}: {len(points)} widths, S={len(seeds)} seeds; "
          f"1 warm-up + {epochs} timed epoch(s), fastest of {reps} run(s)"
          + (f"; train size {train_size}" if train_size else ""), flush=True)
    start = time.perf_counter()
    results = []
    for i, point in enumerate(points, 1):
        r = bench_width(point, epochs=epochs, train_size=train_size, repeats=reps)
        results.append(r)
        print(f"  [{i}/{len(points)}] width {r['width']}: fused {r['epoch_s_fused']:.4f} s, seedlist "
              f"{r['epoch_s_seedlist']:.4f} s, {len(seeds)} runs {r['epoch_s_runs']:.4f} s per epoch", flush=True)
    print()
    H.print_table(["width", "fused s", "seedlist s", f"{len(seeds)} runs s", "seedlist/fused", "runs/fused"],
                  [[r["width"], f"{r['epoch_s_fused']:.4f}", f"{r['epoch_s_seedlist']:.4f}", f"{r['epoch_s_runs']:.4f}",
                    f"{r['ratio_seedlist_vs_fused']:.2f}x", f"{r['ratio_runs_vs_fused']:.2f}x"] for r in results],
                  title=f"Seconds per epoch of S={len(seeds)} seeds (ratios > 1: fused is faster):")
    total = {m: sum(r[f"epoch_s_{m}"] for r in results) for m in MODES}
    median = {k: statistics.median(r[k] for r in results)
              for k in ("ratio_runs_vs_fused", "ratio_seedlist_vs_fused")}
    print(f"\nall widths: fused {total['fused']:.3f} s, seedlist {total['seedlist']:.3f} s, "
          f"runs {total['runs']:.3f} s per epoch; runs/fused {total['runs'] / total['fused']:.2f}x, "
          f"seedlist/fused {total['seedlist'] / total['fused']:.2f}x (median width: "
          f"{median['ratio_runs_vs_fused']:.2f}x, {median['ratio_seedlist_vs_fused']:.2f}x)  "
          f"(benchmark wall time {time.perf_counter() - start:.0f} s)")
    H.emit_json({"benchmark": "fused", "device": device, "grid": grid.source, "seeds": seeds,
                 "epochs_timed": epochs, "repeats": reps, "train_size": train_size,
                 **{f"epoch_s_{m}": total[m] for m in MODES},
                 "ratio_runs_vs_fused": total["runs"] / total["fused"],
                 "ratio_seedlist_vs_fused": total["seedlist"] / total["fused"],
                 **{f"median_{k}": v for k, v in median.items()}, "per_width": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
