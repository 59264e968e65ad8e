"""planes.at_init: a row for epoch 0 (evaluated and measured before any step), once, whatever
the interruptions; planes.schedule: log measures on log-spaced epochs."""
from __future__ import annotations

import pytest
from train_helpers import checkpoint_epoch, rows, summary, train

from ddsweep.pipeline.train.epoch import EpochCommit
from ddsweep.pipeline.train.measurement import log_epochs

AT_INIT = ["--planes.at_init=true", "--train.checkpoint_every=1"]


def crash_after(monkeypatch, epoch: int) -> None:
    record = EpochCommit.record

    def crashing(self, row, images):
        record(self, row, images)
        if row["epoch"] == epoch:
            raise RuntimeError(f"simulated crash after the epoch-{epoch} row")

    monkeypatch.setattr(EpochCommit, "record", crashing)


def test_epoch_zero_is_the_untrained_network_measured(tmp_path):
    code, run = train(tmp_path, "r", AT_INIT)
    assert code == 0
    got = rows(run)
    assert [r["epoch"] for r in got] == [0, 1, 2, 3]
    init = got[0]
    assert init["step"] == 0 and "train/loss_steps" not in init
    for key in ("train/loss", "test/error", "regions/train/mean", "regions1d/mean", "repro/plane_agreement"):
        assert key in init, key
    assert summary(run)["metric_epochs"]["test/error"] == 3


@pytest.mark.parametrize("crash_epoch", [2, 0])
def test_epoch_zero_row_exists_once_after_a_crash_and_resume(tmp_path, monkeypatch, crash_epoch):
    """Crash after epoch 2 (resumed from its checkpoint: epoch 0 kept) or right after the epoch-0 row
    (no checkpoint: started from scratch, epoch 0 written again)."""
    _, full = train(tmp_path, "full", AT_INIT)
    crash_after(monkeypatch, crash_epoch)
    code, part = train(tmp_path, "part", AT_INIT)
    assert code == 1 and [r["epoch"] for r in rows(part)] == list(range(crash_epoch + 1))
    monkeypatch.undo()
    code, part = train(tmp_path, "part", AT_INIT)
    assert code == 0 and [r["epoch"] for r in rows(part)] == [0, 1, 2, 3]
    assert rows(part) == rows(full)
    assert checkpoint_epoch(part) == 3


def test_log_schedule_epochs():
    assert log_epochs(100, 5) == [1, 3, 10, 32, 100]
    assert log_epochs(10, 4) == [1, 2, 5, 10]
    assert log_epochs(10, 50) == list(range(1, 11))  # more points than epochs: every epoch
    assert log_epochs(1, 5) == [1]
    got = log_epochs(4000, 40)
    assert len(got) == 36 and got[:6] == [1, 2, 3, 4, 5, 7] and got[-3:] == [2614, 3234, 4000]
    assert got == sorted(set(got))


def test_log_schedule_measures_on_its_epochs_and_the_last(tmp_path):
    code, run = train(tmp_path, "r", ["--train.epochs=10", "--planes.schedule=log", "--planes.log_points=4"])
    assert code == 0
    measured = [r["epoch"] for r in rows(run) if "regions/train/mean" in r]
    assert measured == [1, 2, 5, 10]
