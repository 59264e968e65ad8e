"""Fixtures for the sweep tests: a fake training program that behaves like `ddsweep train` (run
directory, summary.json, exit codes, "already finished" on a rerun) in milliseconds, and a writer of
sweep files that run it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sweep_helpers import FAKE_TRAIN


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    """Never reach W&B; no CUDA lookups; one thread per fake point."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for var in ("FAKE_LOG", "FAKE_SLEEP", "FAKE_FAIL_WIDTH", "FAKE_DIVERGE_WIDTH"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake_train(tmp_path) -> Path:
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_TRAIN)
    return path


@pytest.fixture
def write_sweep(tmp_path, fake_train):
    """write_sweep(parameters, name=..., **top-level keys) -> path of a sweep file running the fake."""

    def write(parameters: dict, name: str = "sweep.yaml", **top) -> Path:
        config = {"method": "grid", "metric": {"name": "test/error", "goal": "minimize"},
                  "parameters": parameters,
                  "command": ["${env}", "${interpreter}", str(fake_train), "${args}"]}
        config.update(top)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write
