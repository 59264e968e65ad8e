"""`--wandb`: a summary run logged offline (no account, no network), and the mode decision."""
import pytest
from report_fixtures import write_sweep

from ddsweep.pipeline.report import main
from ddsweep.pipeline.report.wandb_summary import wandb_mode


def test_wandb_offline_summary_run(tmp_path, monkeypatch, capsys):
    wandb_dir = tmp_path / "wandb_home"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SILENT", "true")
    root = write_sweep(tmp_path / "s", widths=(2, 4, 8), rates=(0.0, 0.2))
    assert main([str(root), "--wandb", "--format", "png"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].endswith("index.html")
    runs = list((wandb_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("run-*.wandb")), "the offline run's data file is missing"
    assert any(str(runs[0]) in line for line in out if line.startswith("W&B summary run:"))
    logged = list((runs[0] / "files" / "media").rglob("*"))
    assert any(p.suffix == ".png" for p in logged), "figures were not logged as images"
    assert any("runs" in p.name and p.suffix == ".json" for p in logged), "run table missing"


@pytest.mark.parametrize("env, expected", [
    ({"WANDB_MODE": "offline"}, "offline"),
    ({"WANDB_MODE": "dryrun"}, "offline"),
    ({"WANDB_MODE": "disabled", "WANDB_API_KEY": "x" * 40}, "disabled"),
    ({"WANDB_MODE": "online"}, "online"),
    ({"WANDB_DISABLED": "true"}, "disabled"),
    ({"WANDB_API_KEY": "x" * 40}, "online"),
    ({}, "offline"),
])
def test_wandb_mode(env, expected, tmp_path):
    env = {"NETRC": str(tmp_path / "no-netrc"), **env}
    assert wandb_mode(env) == expected


def test_wandb_mode_reads_netrc_login(tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc.chmod(0o600)
    assert wandb_mode({"NETRC": str(netrc)}) == "online"
    assert wandb_mode({"NETRC": str(netrc), "WANDB_BASE_URL": "https://wandb.example.com"}) == "offline"
