"""bench/gpu_check.py (`make gpu-check`): refuses without CUDA in one line, writes real CIFAR-format
files, picks each CIFAR preset's first and last width, and (shrunk, on a CPU) ends with one JSON
object of every step's figures."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import gpu_check as G
from ddsweep.data.sources import load_source

REPO = Path(__file__).resolve().parents[2]


def test_refuses_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert G.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("gpu_check: no CUDA device")


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_files_load(tmp_path, name, classes):
    G.write_cifar_files(tmp_path, name, n_train=203, n_test=100, seed=3)
    d = load_source(name, root=tmp_path)
    assert d.x_train.shape == (203, 3, 32, 32) and d.x_test.shape == (100, 3, 32, 32) and d.num_classes == classes
    assert torch.bincount(d.y_test, minlength=classes).tolist() == [100 // classes] * classes


def test_preset_points():
    points = {f"{name}/k{p['model.width']}": p for name, p in G.preset_points(tiny=False)}
    assert {"nakkiran2019_resnet18k/k1", "nakkiran2019_resnet18k/k64", "nakkiran2019_cnn5k/k1",
            "nakkiran2019_cnn5k/k64", "somepalli2022_resnet18k/k1", "somepalli2022_resnet18k/k64",
            "li2025_regions_lr_bs/k64", "li2025_regions_lr_bs_vgg19/k64"} <= set(points)
    p = points["nakkiran2019_resnet18k/k64"]
    assert p["data.noise.rate"] == 0.1 and p["planes.n_planes"] == 100 and p["data.name"] == "cifar10"
    assert {p["data.name"] for p in points.values()} <= {"cifar10", "cifar100"}


def test_tiny_smoke_step(capsys):
    assert G.main(["--allow-cpu", "--tiny", "--steps", "smoke,pytest"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["pass"] and result["steps_passed"] == {"smoke": True, "pytest": True}
    runs = result["smoke"]["runs"]
    assert "nakkiran2019_resnet18k/k1" in runs and all(r["pass"] and len(r["epoch_s"]) >= 2 for r in runs.values())  # + epoch 0 with planes.at_init
    assert {"total_s", "within_budget", "device"} <= set(result)


@pytest.mark.slow
def test_tiny_every_step(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--allow-cpu", "--tiny"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=1200)
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0, res.stderr[-2000:]
    assert result["steps_passed"] == {"pytest": True, "bench": True, "measure": True, "smoke": True}
    assert result["bench"]["figures"]["sweep_epoch_ratio"] > 0 and result["measure"]["figures"]["overhead_ratio"] > 0
