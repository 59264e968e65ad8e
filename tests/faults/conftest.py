"""Fixtures of the fault-injection suite: a quiet, offline environment for every test, a real run
interrupted after its second checkpoint (with its uninterrupted twin), and the session-wide tally of
what was tried (cases, kills, faults) that test_zz_faults_summary.py prints."""
from __future__ import annotations

import collections

import pytest
from faults_helpers import rows, summary, train


class FaultLog:
    """What the suite tried: `cases` (inputs or scenarios checked), `kills` (SIGKILLs sent),
    `faults` by kind (corrupt checkpoints, disk full, NaN loss, W&B failures, ...) and `outcomes`
    (how generated inputs ended: accepted or rejected)."""

    def __init__(self):
        self.cases = 0
        self.kills = 0
        self.faults: collections.Counter = collections.Counter()
        self.outcomes: collections.Counter = collections.Counter()
        self.tests: list[str] = []

    def case(self, n: int = 1) -> None:
        self.cases += n

    def kill(self, n: int = 1) -> None:
        self.kills += n

    def fault(self, kind: str, n: int = 1) -> None:
        self.faults[kind] += n

    def outcome(self, what: str) -> None:
        self.outcomes[what] += 1


@pytest.fixture(scope="session")
def fault_log() -> FaultLog:
    return FaultLog()


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch, tmp_path, request, fault_log):
    """No network, no W&B account, no CUDA lookups, one thread; HOME and WANDB_DIR in tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    for var in ("WANDB_API_KEY", "WANDB_SWEEP_ID", "WANDB_DISABLED", "FAULTS_SLOW_SAVE_S"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "home").mkdir(exist_ok=True)
    fault_log.tests.append(request.node.nodeid)


@pytest.fixture(scope="session")
def interrupted(tmp_path_factory):
    """(uninterrupted reference, a run that crashed right after its epoch-2 checkpoint: last.ckpt
    holds epoch 2, prev.ckpt epoch 1, metrics.jsonl two rows)."""
    from ddsweep.pipeline.train.epoch import EpochCommit

    root = tmp_path_factory.mktemp("interrupted")
    code, reference = train(root, "reference")
    assert code == 0
    original = EpochCommit.checkpoint

    def crash_after_two(self, trainer, epoch):
        original(self, trainer, epoch)
        if epoch == 2:
            raise RuntimeError("simulated crash after the epoch-2 checkpoint")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(EpochCommit, "checkpoint", crash_after_two)
        code, part = train(root, "part")
    assert code == 1 and summary(part)["status"] == "failed" and len(rows(part)) == 2
    return reference, part
