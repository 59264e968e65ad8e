"""The benchmarks run and report: each with --quick on tiny sizes, last line one JSON object with
the keys and positive finite times (no timing assertions). Plus the grid and window rules they
share, which are fast."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import harness as H

REPO = Path(__file__).resolve().parents[2]

CASES = {
    "bench_sweep.py": ("sweep_epoch_s_reference", "sweep_epoch_s_ddsweep", "sweep_epoch_ratio"),
    "bench_measure.py": ("epoch_s_with", "epoch_s_without", "overhead_ratio"),
    "bench_fused.py": ("epoch_s_fused", "epoch_s_seedlist", "epoch_s_runs", "ratio_runs_vs_fused",
                       "ratio_seedlist_vs_fused"),
}

DIFFERENCES = {"epoch_s_planes", "epoch_s_pictures"}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_quick_benchmark_ends_with_a_json_line(script, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(tmp_path), "WANDB_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, str(REPO / "bench" / script), "--quick"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    last = json.loads(res.stdout.strip().splitlines()[-1])
    assert isinstance(last["device"], str) and last["device"]
    for key in CASES[script]:
        assert H.finite_positive(last[key]), (key, last[key])
    details = last.get("per_point") or last.get("per_width")
    times = [(k, v) for d in details or [] for k, v in d.items() if k.startswith("epoch_s")]
    assert times and all(math.isfinite(v) for k, v in times), times
    # a measured epoch takes time; a cost measured as the difference of two timings
    # (bench_measure's planes and pictures) may come out at or below zero at --quick sizes
    assert all(v > 0 for k, v in times if k not in DIFFERENCES), times


def test_the_cpu_grid_is_the_demo_sweep_expanded():
    grid = H.load_grid()
    raw = yaml.safe_load(H.DEMO_SWEEP.read_text())
    lists = {k: v["values"] for k, v in raw["parameters"].items() if "values" in v}
    points = grid.points()
    assert len(points) == math.prod(len(v) for v in lists.values())
    assert {p["model.width"] for p in points} == set(lists["model.width"])
    fixed = {k: v["value"] for k, v in raw["parameters"].items() if "value" in v}
    assert all(p[k] == v for p in points for k, v in fixed.items())


def test_grid_restriction_and_the_gpu_grid():
    grid = H.grid_from_parameters({"model.width": {"values": [1, 2, 3]}, "data.noise.rate": {"values": [0.0, 0.2]},
                                   "seeds": {"value": [0, 1]}, "wandb.mode": {"value": "online"}}, "t")
    assert len(grid.points()) == 6 and "wandb.mode" not in grid.points()[0]
    small = grid.restricted([2], first_only=True)
    assert small.points() == [{"seeds": [0, 1], "data.noise.rate": 0.0, "model.width": 2}]
    gpu = H.gpu_grid()
    assert gpu.widths == list(range(1, 21)) + [30, 40, 50, 60, 64] and len(gpu.points()) == 50


def test_windows_cover_whole_schedule_periods():
    cfg = H.make_config({"train.eval_every": 10, "train.checkpoint_every": 4})
    assert H.schedule_period(cfg) == 20
    assert H.window(20, None, 10) == 20 and H.window(20, 41, 10) == 60 and H.window(1, None, 10) == 10


def test_epoch_seconds_reads_the_time_column():
    rows = [{"time": t} for t in (2.0, 2.5, 3.25, 4.0)]
    assert H.epoch_seconds(rows, warmup=1, epochs=3) == [0.5, 0.75, 0.75]
    assert H.epoch_seconds(rows, warmup=2, epochs=1) == [0.75]
    with pytest.raises(ValueError):
        H.epoch_seconds(rows, warmup=0, epochs=1)


def test_measurement_windows_compress_rare_work():
    from bench.bench_measure import timed_window

    demo = H.make_config({"train.eval_every": 10, "train.checkpoint_every": 100, "planes.every_n_epochs": 200,
                          "planes.draw": 1, "planes.draw_every_n_epochs": 1000})
    assert timed_window(demo, None) == 100  # planes and pictures once per window, counted at 1/2, 1/10
    often = H.make_config({"train.eval_every": 1, "train.checkpoint_every": 1, "planes.every_n_epochs": 2,
                           "planes.draw": 1, "planes.draw_every_n_epochs": 4})
    assert timed_window(often, 3) == 12  # a multiple of every period shorter than the window
