"""The fast path changes no result: on CPU in fp32, S seeds fused into one network
(train.fuse_seeds=true) give the same metrics.jsonl values as S separate models
(train.fuse_seeds=false) trained on the same batches."""
import json
import math

import pytest

from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.run import train_run

# Two epochs of the demo's family on digits, several steps per epoch, label noise, and a small
# measurement schedule so region counts and seed agreement are compared too.
SMALL = {"data.name": "digits", "model.name": "mlpk", "model.width": 16, "model.depth": 1,
         "data.n_train": 600, "data.noise.rate": 0.2, "train.epochs": 2, "train.batch_size": 128,
         "train.lr": 3e-3, "train.accelerator": "cpu", "train.precision": "32", "seeds": [0, 1],
         "planes.every_n_epochs": 1, "planes.families": ["train", "test"], "planes.n_planes": 3,
         "planes.resolution": 12, "planes.agreement_triplets": 4, "planes.draw": 0,
         "regions1d.pairs": 5, "regions1d.points": 20, "wandb.mode": "disabled"}
# Counts and fractions of argmax decisions: a float difference of 1e-7 does not flip them here.
EXACT = ("error", "memorized", "regions", "agreement", "disagreement", "model/")


def rows(tmp_path, fuse: bool) -> list[dict]:
    name = f"fuse_{fuse}"
    cfg = load_config(None, {**SMALL, "train.fuse_seeds": fuse, "output_dir": str(tmp_path), "run_name": name})
    assert train_run(cfg, verbose=False) == 0
    lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def test_fused_and_separate_models_log_the_same_metrics(tmp_path):
    fused, separate = rows(tmp_path, True), rows(tmp_path, False)
    assert [r["epoch"] for r in fused] == [1, 2]
    assert "test/error/seed1" in fused[-1] and "regions/train/mean" in fused[-1]
    for a, b in zip(fused, separate, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if any(part in key for part in EXACT):
                assert value == b[key], key
            else:
                assert math.isfinite(value) and value == pytest.approx(b[key], rel=1e-5, abs=1e-5), key
