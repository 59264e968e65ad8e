"""Sizes that cannot fit: the estimates on cases with a known answer, the refusal naming the key,
and `ddsweep train` refusing an impossible width in one line before it writes or allocates anything."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ddsweep.errors import ConfigError
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.budget import (Need, blame, check_data_size, check_run_size, data_need, label_map_need,
                                   logits_need, parameter_need, per_sample_activations, segment_need, total)

REPO = Path(__file__).resolve().parents[3]
GAUSSIANS = {"dim": 2, "classes": 3, "train_size": 1000, "test_size": 1000, "separation": 3.0, "seed": 0}


def test_parameter_need_counts_weights_gradients_and_optimizer_state():
    assert parameter_need(1000, 2, "adam", 0.9).bytes == 1000 * 2 * 4 * 4  # weights, grads, two moments
    assert parameter_need(1000, 2, "sgd", 0.9).bytes == 1000 * 2 * 4 * 3  # + momentum buffer
    assert parameter_need(1000, 2, "sgd", 0.0).bytes == 1000 * 2 * 4 * 2
    assert parameter_need(1000, 2, "adam", 0.9).key == "model.width"


def test_label_maps_segments_and_logits():
    need = label_map_need(2, 20, 50, "planes.n_planes", 20)
    assert need.bytes == 2 * 20 * 50 * 50 * 8 + 50 * 50 * 2 * 4
    assert label_map_need(2, 20, 100_000, "planes.n_planes", 20).key == "planes.resolution"
    assert label_map_need(2, 10**9, 50, "planes.n_planes", 20).key == "planes.n_planes"
    assert label_map_need(5000, 20, 50, "planes.n_planes", 20).key == "seeds"
    assert segment_need(2, 100, 200).bytes == 2 * 100 * 200 * 8 + 100 * 200 * 4
    assert segment_need(2, 100, 10**9).key == "regions1d.points"
    assert logits_need(3, 1000, 10).bytes == 3 * 1000 * 10 * 4


def test_data_need_of_synthetic_sources_only():
    need = data_need("gaussians", {"dim": 10}, GAUSSIANS)
    assert need.bytes == 2000 * 10 * (8 + 4) and need.key == "data.dim"
    assert data_need("gaussians", {"train_size": 10**9}, GAUSSIANS).key == "data.train_size"
    assert data_need("gaussians", {"dim": "x"}, GAUSSIANS) is None  # the source rejects it itself
    assert data_need("digits", {}, {"test_fraction": 0.3, "split_seed": 0}) is None
    moons = {"train_size": 1000, "test_size": 500, "noise": 0.1, "seed": 0}
    assert data_need("moons", {}, moons).bytes == 1500 * 2 * 12


def test_blame_and_total():
    assert blame({"a": (10, 10), "b": (30, 10), "c": (5, 1)}) == "c"
    a, b, c, d = Need("a", 10, ""), Need("b", 5, ""), Need("c", 3, ""), Need("d", 7, "")
    assert total([a, b], [c, d]) == (22, a)  # held parts + the largest transient one
    assert total([b], [Need("e", 50, ""), c]) == (55, Need("e", 50, ""))


def test_per_sample_activations_on_the_meta_device():
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    assert per_sample_activations(net, (4,)) == (6 + 6 + 3, 6)


def test_default_run_fits_and_huge_sizes_are_refused_naming_the_key():
    from ddsweep.pipeline.train.run import prepare_data

    cfg = load_config(overrides=["--wandb=disabled"])
    dataset, _, _ = prepare_data(cfg)
    check_run_size(cfg, dataset, torch.device("cpu"), limit=2**30)  # the demo run fits in 1 GiB
    for override, key in [("--model.width=100000", "model.width"), ("--planes.resolution=20000", "planes.resolution"),
                          ("--planes.n_planes=100000000", "planes.n_planes"),
                          ("--regions1d.points=10000000000", "regions1d.points"),
                          ("--planes.agreement_triplets=100000000", "planes.agreement_triplets")]:
        big = load_config(overrides=["--wandb=disabled", override])
        with pytest.raises(ConfigError) as err:
            check_run_size(big, dataset, torch.device("cpu"), limit=2**30)
        message = str(err.value)
        assert message.startswith(f"{key}: ") and "\n" not in message, message
        assert "1.0 GiB available" in message and "needs at least" in message


def test_huge_data_is_refused_before_it_is_generated():
    cfg = load_config(overrides=["--data.name=gaussians", "--data.dim=100000000000", "--data.classes=2"])
    with pytest.raises(ConfigError, match=r"^data\.dim: 100000000000 needs at least 2,235,174\.2 GiB"):
        check_data_size(cfg, limit=2**30)
    check_data_size(load_config(overrides=["--data.name=gaussians"]), limit=2**30)


def test_a_million_seeds_are_refused_before_anything_is_written(tmp_path):
    from ddsweep.pipeline.train.run import train_run

    cfg = load_config(overrides={"seeds": list(range(10**6)), "output_dir": str(tmp_path / "runs"),
                                 "wandb": "disabled"})
    with pytest.raises(ConfigError, match=r"^seeds: 1000000 seeds needs at least") as err:
        train_run(cfg)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()


def test_train_refuses_an_impossible_width_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "ddsweep", "train", "--model.width=10000000",
                           f"--output_dir={out}", "--wandb=disabled"], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
                               "WANDB_MODE": "disabled", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
                          timeout=600)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddsweep: error: model.width: 10000000 needs at least"), lines
    assert not out.exists()
