"""bench/bench_mnist1d.py: the grid it times is the MNIST-1D MLP preset (shortened, planes off), and
the lean reference loop trains; the whole benchmark runs in a slow test (no timing assertions)."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import bench_mnist1d as B
from bench import harness as H
from bench.reference import train_tensor_loop

REPO = Path(__file__).resolve().parents[2]


def test_the_grid_is_the_preset_shortened_with_planes_off():
    preset = yaml.safe_load((REPO / "sweeps" / "mnist1d_mlp.yaml").read_text())["parameters"]
    params = B.sweep_parameters(B.parse_args([]))
    assert params["model.width"] == preset["model.width"] and len(preset["model.width"]["values"]) == 19
    assert params["train.epochs"] == {"value": 20} and params["planes.every_n_epochs"] == {"value": 0}
    assert {k: v for k, v in params.items() if k not in B.BENCH_OVERRIDES and k != "train.epochs"} == \
        {k: v for k, v in preset.items() if k not in B.BENCH_OVERRIDES and k != "train.epochs"}
    pts = B.points(params)
    assert len(pts) == 19 and {p["data.noise.rate"] for p in pts} == {0.15} and pts[0]["seeds"] == [0, 1]
    some = B.points(B.sweep_parameters(B.parse_args(["--widths", "2,300", "--noise", "0,0.15", "--epochs", "3"])))
    assert [(p["model.width"], p["data.noise.rate"]) for p in some] == [(2, 0.0), (2, 0.15), (300, 0.0), (300, 0.15)]
    with pytest.raises(SystemExit):
        B.sweep_parameters(B.parse_args(["--widths", "5"]))  # not a width of the preset


def test_per_width_seconds_count_each_job_once_and_divide_by_models_and_workers():
    group = ["p000", "p001"]  # one fused job of width 2 (two noise levels), its seconds in both records
    state = {"points": [
        {"id": "p000", "params": {"model.width": 2}, "seconds": 10.0, "fused_with": group},
        {"id": "p001", "params": {"model.width": 2}, "seconds": 10.0, "fused_with": group},
        {"id": "p002", "params": {"model.width": 300}, "seconds": 7.0, "fused_with": None},
        {"id": "p003", "params": {"model.width": 300}, "seconds": 5.0, "fused_with": None}]}
    assert B.job_seconds(state) == {2: 10.0, 300: 12.0}
    pts = [{"model.width": 2, "seeds": [0, 1]}, {"model.width": 2, "seeds": [0, 1]},
           {"model.width": 300, "seeds": [0, 1]}, {"model.width": 300, "seeds": [0, 1]}]
    table = B.per_width_table(pts, 2, {"ddsweep": {2: 10.0, 300: 12.0}, "tensor": {2: 8.0, 300: 20.0}})
    assert table == {2: {"ddsweep": 10.0 / 4 / 2, "tensor": 8.0 / 4}, 300: {"ddsweep": 12.0 / 4 / 2, "tensor": 20.0 / 4}}


def test_the_tensor_loop_trains_the_same_network():
    from ddsweep.pipeline.train.run import prepare_data

    cfg = H.make_config({"data.name": "digits", "model.name": "mlpk", "model.width": 16, "train.batch_size": 64,
                         "train.lr": 3e-3, "train.epochs": 5, "seeds": [0]})
    dataset, labels, _ = prepare_data(cfg)
    results = train_tensor_loop(cfg, dataset, labels.noisy, 0, 5, eval_train=True)
    assert len(results) == 5 and results[-1].train_loss < results[0].train_loss and results[-1].train_acc > 0.5
    assert results[-1].test_acc > 0.5 and all(math.isfinite(r.test_loss) and r.seconds > 0 for r in results)


@pytest.mark.slow
def test_quick_benchmark_ends_with_a_json_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, str(REPO / "bench" / "bench_mnist1d.py"), "--quick", "--widths", "2,36"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["models"] == 4 and set(out["ratio_per_model"]) == set(B.SIDES)
    assert all(v > 0 and math.isfinite(v) for v in out["seconds"].values())
    assert set(out["per_width"]) == {"2", "36"}
    assert all(set(row) == {"ddsweep", *B.SIDES} and all(v > 0 and math.isfinite(v) for v in row.values())
               for row in out["per_width"].values())
