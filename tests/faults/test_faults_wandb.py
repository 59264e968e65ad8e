"""W&B unavailable (init failure, failures mid-run, no network for an online key): training goes on,
the run directory keeps every metric, the summary is written, and the user is told how to upload the
run later (`wandb sync`). W&B itself is replaced by fakes here: no test reaches the network."""
from __future__ import annotations

import time

import pytest
import wandb
from faults_helpers import TINY, rows, summary, train

NO_WANDB_MODE = [a for a in TINY if not a.startswith("--wandb")]


class FakeRun:
    """A W&B run whose `fail_at` method ("log", "summary" or "finish") raises from call `after` on."""

    def __init__(self, fail_at: str | None = None, after: int = 2):
        self.id, self.url = "fake0001", None
        self.fail_at, self.after = fail_at, after
        self.calls = {"log": 0, "summary": 0, "finish": 0}
        self.logged: list[dict] = []
        self.summary = self

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        if self.fail_at == name and self.calls[name] >= self.after:
            raise ConnectionError(f"wandb {name}: connection reset by peer")

    def log(self, payload, step=None):
        self._call("log")
        self.logged.append(dict(payload, _step=step))

    def update(self, values):
        self._call("summary")

    def finish(self, exit_code=0):
        self._call("finish")


def fake_init(monkeypatch, run_for_mode) -> list[str]:
    """Replace wandb.init; `run_for_mode(mode)` returns a run or raises. Returns the modes asked for."""
    modes: list[str] = []

    def init(mode=None, **kwargs):
        modes.append(mode)
        return run_for_mode(mode)

    monkeypatch.setattr(wandb, "init", init)
    return modes


def check_complete(run) -> None:
    assert [r["epoch"] for r in rows(run)] == [1, 2, 3]
    s = summary(run)
    assert s["status"] == "finished" and s["epochs_completed"] == 3
    assert s["metrics"]["test/error"] == rows(run)[-1]["test/error"]


def test_offline_init_failure_trains_on_without_wandb(tmp_path, capsys, monkeypatch, fault_log):
    def broken(mode):
        raise OSError("wandb service could not start")

    modes = fake_init(monkeypatch, broken)
    code, run = train(tmp_path, "r", ["--wandb.mode=offline"])
    err = capsys.readouterr().err
    fault_log.fault("wandb init failure (offline)")
    assert code == 0 and modes == ["offline"]
    check_complete(run)
    # nothing reached W&B, so there is nothing to sync: the run directory is the record, and it says so
    assert "W&B could not start (OSError: wandb service could not start); metrics go to the run directory only" in err
    assert summary(run)["wandb"]["mode"] == "disabled"
    assert "Traceback" not in err
    fault_log.case()


@pytest.mark.parametrize("fail_at", ["log", "summary", "finish"])
def test_wandb_failing_mid_run_keeps_training_and_says_how_to_sync(tmp_path, capsys, monkeypatch, fail_at,
                                                                   fault_log):
    fake = FakeRun(fail_at=fail_at, after=2 if fail_at == "log" else 1)
    fake_init(monkeypatch, lambda mode: fake)
    code, run = train(tmp_path, "r", ["--wandb.mode=offline"])
    err = capsys.readouterr().err
    fault_log.fault(f"wandb {fail_at} failure mid-run")
    assert code == 0, err
    check_complete(run)
    if fail_at == "log":
        assert len(fake.logged) == 1  # epoch 1 reached W&B, then it broke; the run directory has all three
        assert f"W&B stopped working (ConnectionError: wandb log: connection reset by peer); training goes on, " \
               f"every metric is in {run}" in err
    sync = [line for line in err.splitlines() if "wandb sync" in line]
    assert len(sync) == 1 and str(run / "wandb") in sync[0], err
    assert "wandb sync" in summary(run)["wandb"]["sync"]
    assert "Traceback" not in err
    fault_log.case()


def test_online_key_without_network_falls_back_to_offline_without_hanging(tmp_path, capsys, monkeypatch,
                                                                         fault_log):
    """WANDB_API_KEY set, no mode anywhere: online is chosen; its init fails (as with no network)
    and the run logs offline instead, promptly, then says how to sync."""
    monkeypatch.setenv("WANDB_API_KEY", "dummy" * 8)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # in case anything did try the network

    def online_fails(mode):
        if mode == "online":
            raise wandb.errors.CommError("Network error (ConnectTimeout), entering retry loop")
        return FakeRun()

    modes = fake_init(monkeypatch, online_fails)
    start = time.monotonic()
    code, run = train(tmp_path, "r", base=NO_WANDB_MODE)
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    fault_log.fault("wandb online init failure")
    assert code == 0 and modes == ["online", "offline"]
    assert elapsed < 25
    check_complete(run)
    assert "W&B online init failed (CommError); logging offline instead" in err
    assert summary(run)["wandb"]["mode"] == "offline"
    assert sum("wandb sync" in line for line in err.splitlines()) == 1
    fault_log.case()


REAL_WANDB_LOG_FAILS = """\
import sys, wandb
from wandb.sdk.wandb_run import Run
real_log, calls = Run.log, []
def log(self, *args, **kwargs):
    calls.append(1)
    if len(calls) >= 2:
        raise ConnectionError("simulated network failure")
    return real_log(self, *args, **kwargs)
Run.log = log
from ddsweep.pipeline.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_real_offline_wandb_failing_mid_run_leaves_a_run_to_sync(tmp_path, fault_log):
    """The real W&B library, offline, its `run.log` failing from epoch 2: the printed `wandb sync`
    command names the offline run W&B left on disk."""
    import glob
    import subprocess
    import sys

    from faults_helpers import REPO, env

    out = tmp_path / "runs"
    res = subprocess.run([sys.executable, "-c", REAL_WANDB_LOG_FAILS, "train", *NO_WANDB_MODE,
                          "--wandb.mode=offline", f"--output_dir={out}", "--run_name=r", "--quiet"],
                         cwd=REPO, env=env(HOME=tmp_path, WANDB_DIR=tmp_path, WANDB_MODE="offline"),
                         capture_output=True, text=True, timeout=300)
    fault_log.fault("wandb log failure mid-run (real library)")
    assert res.returncode == 0, res.stderr
    run = out / "r"
    check_complete(run)
    assert "W&B stopped working (ConnectionError: simulated network failure)" in res.stderr
    [line] = [line for line in res.stderr.splitlines() if "wandb sync" in line]
    pattern = line.split("wandb sync ", 1)[1]
    assert glob.glob(pattern), f"{pattern} matches nothing"
    fault_log.case()
