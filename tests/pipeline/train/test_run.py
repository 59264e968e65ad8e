"""One run end to end: CLI, run directory contract, determinism, resume, W&B offline by default."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from ddsweep.pipeline.config import load_config
from ddsweep.errors import UserError
from ddsweep.pipeline.train.run import train_run

REPO = Path(__file__).resolve().parents[3]
SMALL = ["--data.name=digits", "--model.name=mlpk", "--model.width=8", "--train.epochs=3",
         "--train.batch_size=256", "--data.noise.rate=0.2", "--planes.n_planes=3", "--planes.resolution=12",
         "--planes.agreement_triplets=4", "--planes.draw=1", "--planes.draw_resolution=24",
         "--planes.families=[train,test,mislabeled]", "--regions1d.pairs=5", "--regions1d.points=20",
         "--wandb.mode=disabled"]


def run_cli(args, tmp_path, env_extra=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(tmp_path), "WANDB_DIR": str(tmp_path)}
    env.pop("WANDB_MODE", None)
    env.pop("WANDB_API_KEY", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "ddsweep", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def rows_without_time(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time")
    return rows


def test_cli_train_writes_the_run_directory(tmp_path):
    out = tmp_path / "runs"
    res = run_cli(["train", *SMALL, f"--output_dir={out}", "--run_name=r1"], tmp_path)
    assert res.returncode == 0, res.stderr
    run = out / "r1"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["width"] == 8 and cfg["provenance"]["versions"]["torch"]
    rows = rows_without_time(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    last = rows[-1]
    for key in ("train/loss", "train/error", "train/error_clean", "train/memorized", "test/loss",
                "test/error", "model/params", "model/width", "regions/train/mean", "regions/test/median",
                "regions/mislabeled/std", "regions1d/mean", "repro/plane_agreement",
                "repro/test_disagreement", "repro/pd_l1", "test/error/seed0", "test/error/seed1"):
        assert key in last, key
    assert last["test/error"] == pytest.approx((last["test/error/seed0"] + last["test/error/seed1"]) / 2)
    assert 0 <= last["repro/plane_agreement"] <= 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == 3
    assert summary["metrics"]["test/error"] == last["test/error"]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (run / "planes").glob("train_0_e*.png")) == ["train_0_e0003.png"]
    assert (run / "planes" / "mislabeled_0_seeds_e0003.png").stat().st_size > 10_000
    picture = Image.open(run / "planes" / "train_0_e0003.png")  # readable without the code:
    title = picture.text["Title"]
    for part in ("mlpk k=8", "noise 0.2", "train plane 0", "epoch 3", "regions"):
        assert part in title, (part, title)
    maps = np.load(run / "planes" / "train_0_e0003.npz")
    assert f"{int(maps['regions'])} regions" in title
    drawn = picture.text["Description"].splitlines()
    assert any(line.startswith("x1: ") for line in drawn)
    names = [str(n) for n in maps["class_names"]]
    assert {names[c] for c in np.unique(maps["labels"][0])} <= set(drawn)
    # a second identical command does nothing
    again = run_cli(["train", *SMALL, f"--output_dir={out}", "--run_name=r1"], tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout


@pytest.mark.parametrize("args, key", [
    (["--model.name=resnet"], "model.name"),
    (["--model.width=0"], "model.width"),
    (["--data.noise.rate=1.5"], "data.noise.rate"),
    (["--nope=1"], "nope"),
    (["--data.name=cifar10", "--data.root=/nonexistent"], "data.root"),
    (["--data.name=gaussians", "--data.augment.crop=true"], "data.augment"),
    (["--model.depth=0"], "model.depth"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, key):
    res = run_cli(["train", *args, f"--output_dir={tmp_path}/o"], tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and key in lines[0] and lines[0].startswith("ddsweep: error:")
    assert not (tmp_path / "o").exists()  # rejected before any work


def test_cli_malformed_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [\n")
    res = run_cli(["train", "--config", str(bad)], tmp_path)
    assert res.returncode == 2 and "bad.yaml" in res.stderr and "Traceback" not in res.stderr


def _train(tmp_path, name, extra=()):
    cfg = load_config(overrides=[*SMALL, f"--output_dir={tmp_path}", f"--run_name={name}", *extra])
    return train_run(cfg, verbose=False), tmp_path / name


def _weights(run):
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return state["state_dict"]


def test_deterministic_on_cpu(tmp_path):
    code_a, a = _train(tmp_path, "a")
    code_b, b = _train(tmp_path, "b")
    assert code_a == code_b == 0
    assert rows_without_time(a) == rows_without_time(b)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_matches_uninterrupted(tmp_path, monkeypatch):
    from ddsweep.pipeline.train.epoch import EpochCommit

    every_epoch = ["--train.checkpoint_every=1"]  # the default checkpoints by wall time: too rare here
    _, full = _train(tmp_path, "full", every_epoch)
    original = EpochCommit.checkpoint

    def stop_after_two(self, trainer, epoch):
        original(self, trainer, epoch)
        if epoch == 2:
            raise RuntimeError("simulated crash after the epoch-2 checkpoint")

    monkeypatch.setattr(EpochCommit, "checkpoint", stop_after_two)
    code, part = _train(tmp_path, "part", every_epoch)
    summary = json.loads((part / "summary.json").read_text())
    assert code != 0 and summary["status"] == "failed" and "simulated crash" in summary["error"]
    assert len(rows_without_time(part)) == 2
    monkeypatch.setattr(EpochCommit, "checkpoint", original)
    code, part = _train(tmp_path, "part", every_epoch)
    assert code == 0
    assert rows_without_time(part) == rows_without_time(full)
    wa, wb = _weights(full), _weights(part)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_wandb_offline_without_login(tmp_path):
    out = tmp_path / "runs"
    args = [a for a in SMALL if not a.startswith("--wandb")] + ["--train.epochs=1", f"--output_dir={out}", "--run_name=w"]
    res = run_cli(["train", *args], tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "w" / "summary.json").read_text())
    assert summary["wandb"]["mode"] == "offline" and "wandb sync" in summary["wandb"]["sync"]
    assert list((out / "w" / "wandb").glob("offline-run-*/run-*.wandb"))


def test_rerun_with_another_config_is_refused(tmp_path):
    code, run = _train(tmp_path, "same")
    assert code == 0
    cfg = load_config(overrides=[*SMALL, f"--output_dir={tmp_path}", "--run_name=same", "--train.epochs=5"])
    with pytest.raises(UserError, match="different config"):
        train_run(cfg, verbose=False)


def test_run_written_before_a_key_existed_is_still_the_same_run(tmp_path, capsys):
    """Keys added to the config later (with defaults) do not make an older run "different"."""
    code, run = _train(tmp_path, "old")
    assert code == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["planes"]["triangles"], saved["train"]["compile_mode"]
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    code, _ = _train(tmp_path, "old")
    assert code == 0 and "already finished" in capsys.readouterr().out


@pytest.mark.slow
def test_compiled_network_gives_the_plain_metrics(tmp_path):
    """train.compile (torch.compile, here Inductor on the CPU) changes no result beyond
    floating-point noise; slow: compiling takes tens of seconds."""
    code_a, a = _train(tmp_path, "plain")
    code_b, b = _train(tmp_path, "compiled", ["--train.compile=true", "--train.compile_mode=reduce-overhead"])
    assert code_a == code_b == 0
    plain, compiled = rows_without_time(a), rows_without_time(b)
    assert [r["epoch"] for r in plain] == [r["epoch"] for r in compiled]
    for key in ("train/loss", "test/loss", "train/error", "test/error"):
        assert compiled[-1][key] == pytest.approx(plain[-1][key], rel=1e-4, abs=1e-4), key
    assert list(_weights(a)) == list(_weights(b))  # checkpoints load into a plain network (ddsweep plane)
