"""W&B online path with W&B and the agent launcher replaced by fakes (no network)."""
from __future__ import annotations

import json
import sys

import pytest
import wandb
from sweep_helpers import GRID

from ddsweep.pipeline.sweep import main, online


class FakePopen:
    calls: list = []

    def __init__(self, argv, env=None, **kwargs):
        FakePopen.calls.append((argv, env))

    def wait(self):
        return 0


@pytest.fixture
def logged_in(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    created = []

    def fake_sweep(config, entity=None, project=None):
        created.append({"config": config, "entity": entity, "project": project})
        return "abc123"

    monkeypatch.setattr(wandb, "sweep", fake_sweep)
    monkeypatch.setattr(online, "default_entity", lambda: "me")
    monkeypatch.setattr(online, "publish_dashboard", lambda sweep_dir: None)  # tested in test_dashboard.py
    FakePopen.calls = []
    monkeypatch.setattr(online, "Popen", FakePopen)
    return created


def test_online_creates_the_sweep_starts_agents_and_prints_the_agent_line(tmp_path, write_sweep, logged_in, capsys):
    out = tmp_path / "out"
    assert online.is_online()
    assert main([str(write_sweep(GRID)), "--agents", "2", "--output", str(out), "--max-points", "4",
                 "--train.epochs=1"]) == 0
    assert "wandb agent me/ddsweep/abc123" in capsys.readouterr().out
    [created] = logged_in
    assert created["project"] == "ddsweep" and created["entity"] is None
    assert created["config"]["run_cap"] == 4
    assert created["config"]["command"][-2:] == ["--train.epochs=1", f"--output_dir={out / 'runs'}"]
    assert [argv for argv, _ in FakePopen.calls] == [[sys.executable, "-m", "wandb", "agent", "me/ddsweep/abc123"]] * 2
    env = FakePopen.calls[0][1]
    assert env["PATH"].split(":")[0] == str(__import__("pathlib").Path(sys.executable).parent)
    assert json.loads((out / "wandb_sweep.json").read_text())["sweep"] == "me/ddsweep/abc123"
    # the same command again joins the same W&B sweep
    assert main([str(write_sweep(GRID)), "--output", str(out), "--train.epochs=1"]) == 0
    assert len(logged_in) == 1 and len(FakePopen.calls) == 3


def test_project_and_entity_come_from_the_file(tmp_path, write_sweep, logged_in, capsys):
    path = write_sweep(GRID, project="dd", entity="lab")
    assert main([str(path), "--output", str(tmp_path / "out")]) == 0
    assert logged_in[0]["project"] == "dd" and logged_in[0]["entity"] == "lab"
    assert "wandb agent lab/dd/abc123" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["--local", "offline", "no key", "--dry-run"])
def test_local_engine_when_not_online(tmp_path, write_sweep, logged_in, monkeypatch, how):
    monkeypatch.setattr("ddsweep.pipeline.config.validate", lambda cfg: None)
    argv = [str(write_sweep({"model.width": {"values": [1]}})), "--output", str(tmp_path / "out")]
    if how.startswith("--"):
        argv.append(how)
    elif how == "offline":
        monkeypatch.setenv("WANDB_MODE", "offline")
    else:
        monkeypatch.delenv("WANDB_API_KEY")
        monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(argv) == 0
    assert logged_in == [] and FakePopen.calls == []
