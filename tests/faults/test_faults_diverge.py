"""NaN or inf loss: the run is marked diverged with the epoch (exit code 3) and keeps the rows up to
it; in a sweep the other points go on and the final line counts the diverged one."""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from faults_helpers import TINY, REPO, env, rows, summary

from ddsweep.pipeline import cli


def test_huge_learning_rate_diverges_with_exit_3(tmp_path, capsys, fault_log):
    out = tmp_path / "runs"
    code = cli.main(["train", *TINY, "--train.lr=1e30", f"--output_dir={out}", "--run_name=hot", "--quiet"])
    captured = capsys.readouterr()
    fault_log.fault("nan loss (lr 1e30)")
    run = out / "hot"
    s = summary(run)
    assert code == 3, captured.err
    assert s["status"] == "diverged" and s["error"].startswith("loss is not finite at epoch ")
    epoch = int(s["error"].split("epoch ")[1].split()[0])
    assert [r["epoch"] for r in rows(run)] == list(range(1, epoch + 1))
    assert not math.isfinite(rows(run)[-1]["train/loss_steps"])
    assert f"{run}: diverged (loss is not finite at epoch {epoch}" in captured.out
    assert "Traceback" not in captured.err
    fault_log.case()


@pytest.mark.parametrize("bad", [math.inf, math.nan], ids=["inf", "nan"])
def test_one_seed_going_bad_at_epoch_2_is_named(tmp_path, capsys, monkeypatch, bad, fault_log):
    """A loss that turns non-finite for seed 1 at epoch 2 only: diverged at epoch 2, seed 1, rows 1-2,
    and the epoch-1 checkpoint (written before the bad epoch) is what remains."""
    from ddsweep.pipeline.train.module import DDModule

    original = DDModule.model_step

    def model_step(self, x, y):
        loss, logits = original(self, x, y)
        if self.training and self.current_epoch == 1:
            loss = loss + torch.tensor([0.0, bad])
        return loss, logits

    monkeypatch.setattr(DDModule, "model_step", model_step)
    out = tmp_path / "runs"
    code = cli.main(["train", *TINY, f"--output_dir={out}", "--run_name=bad", "--quiet"])
    fault_log.fault(f"{bad} loss (patched)")
    run = out / "bad"
    s = summary(run)
    assert code == 3
    assert s["status"] == "diverged" and s["error"] == "loss is not finite at epoch 2 (seeds [1])"
    assert s["epochs_completed"] == 2 and [r["epoch"] for r in rows(run)] == [1, 2]
    assert math.isfinite(rows(run)[-1]["train/loss_steps/seed0"])
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ddsweep"]["epochs_completed"] == 1
    fault_log.case()


@pytest.mark.slow
def test_diverged_point_is_counted_and_the_sweep_goes_on(tmp_path, fault_log):
    """A real sweep (3 points of the real trainer, one with lr 1e30): the others finish."""
    import subprocess
    import sys

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "method": "grid", "metric": {"name": "test/error", "goal": "minimize"},
        "parameters": {"train.lr": {"values": [0.001, 1e30]}, "model.width": {"values": [4, 8]}},
        "command": ["${env}", "ddsweep", "train", "${args}", *[a for a in TINY if not a.startswith("--model.width")]],
    }))
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "ddsweep", "sweep", str(sweep), "--local", "--workers", "2",
                          "--output", str(out)], cwd=REPO, env=env(), capture_output=True, text=True, timeout=400)
    fault_log.fault("nan loss (lr 1e30) in a sweep", 2)
    assert res.returncode == 1, res.stdout + res.stderr
    state = json.loads((out / "state.json").read_text())
    by_lr = {}
    for rec in state["points"]:
        by_lr.setdefault(rec["params"]["train.lr"], []).append(rec)
    assert {r["status"] for r in by_lr[0.001]} == {"finished"}
    assert {r["status"] for r in by_lr[1e30]} == {"diverged"}
    for rec in by_lr[1e30]:
        assert rec["returncode"] == 3 and rec["error"].startswith("loss is not finite at epoch ")
        assert summary(out / rec["run_dir"])["status"] == "diverged"
    last = res.stdout.strip().splitlines()[-1]
    assert "2 finished, 0 failed, 2 diverged of 4 points" in last and "logs:" in last
    fault_log.case()
