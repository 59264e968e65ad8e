"""End to end with the real `ddsweep train` (slow): one point of every sweep file in sweeps/ with a
few steps, and a tiny sweep killed hard mid-training, resumed, and compared with an uninterrupted
one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ddsweep.pipeline.sweep import main

REPO = Path(__file__).resolve().parents[3]
SWEEP_FILES = sorted((REPO / "sweeps").glob("*.y*ml"))
# small enough for a CPU in seconds, whatever the preset
QUICK = ["--train.epochs=1", "--data.n_train=256", "--seeds=[0]", "--planes.n_planes=1", "--planes.resolution=8",
         "--planes.draw=0", "--planes.agreement_triplets=2", "--regions1d.pairs=2", "--regions1d.points=8",
         "--wandb=disabled"]
TINY = {"method": "grid", "metric": {"name": "test/error", "goal": "minimize"}, "program": "ddsweep",
        "parameters": {"model.width": {"values": [2, 8]}, "data.noise.rate": {"value": 0.1},
                       "train.epochs": {"value": 6}, "seeds": {"value": [0]},
                       "planes.every_n_epochs": {"value": 0}, "regions1d.pairs": {"value": 0}},
        "command": ["${env}", "${program}", "train", "${args}"]}


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_one_point_of_every_sweep_file_trains(path, tmp_path):
    out = tmp_path / "out"
    rc = main([str(path), "--local", "--max-points", "1", "--workers", "1", "--output", str(out), *QUICK])
    state = json.loads((out / "state.json").read_text())
    [point] = state["points"]
    if rc != 0 and "download" in (point["error"] or "").lower():
        pytest.skip(f"{path.name}: dataset not available offline: {point['error']}")
    assert rc == 0, point["error"]
    assert point["status"] == "finished"


def metrics(sweep_dir: Path) -> dict:
    out = {}
    for run in sorted((sweep_dir / "runs").iterdir()):
        summary = json.loads((run / "summary.json").read_text())
        out[run.name] = {k: v for k, v in summary["metrics"].items() if k.startswith(("test/", "train/"))}
    return out


@pytest.mark.slow
def test_real_sweep_killed_and_resumed_matches_uninterrupted(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    env = dict(os.environ, WANDB_MODE="disabled", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    cli = [sys.executable, "-m", "ddsweep", "sweep", str(path), "--local", "--workers", "2"]

    reference = tmp_path / "reference"
    assert subprocess.run([*cli, "--output", str(reference)], cwd=REPO, env=env).returncode == 0

    out = tmp_path / "out"
    engine = subprocess.Popen([*cli, "--output", str(out)], cwd=REPO, env=env)
    deadline = time.monotonic() + 300
    while not list(out.glob("runs/*/checkpoints/*.ckpt")):  # killed once a point has saved a checkpoint
        assert engine.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    engine.send_signal(signal.SIGKILL)
    engine.wait()
    assert subprocess.run([*cli, "--output", str(out)], cwd=REPO, env=env).returncode == 0

    state = json.loads((out / "state.json").read_text())
    assert {p["status"] for p in state["points"]} == {"finished"}
    for point in state["points"]:
        rows = (out / point["run_dir"] / "metrics.jsonl").read_text().splitlines()
        epochs = [json.loads(line)["epoch"] for line in rows]
        assert epochs == sorted(set(epochs))  # every epoch exactly once
    resumed, uninterrupted = metrics(out), metrics(reference)
    assert resumed.keys() == uninterrupted.keys()
    for run in uninterrupted:
        assert resumed[run] == pytest.approx(uninterrupted[run], rel=1e-5, abs=1e-6)
