"""Checkpoints by wall time (train.checkpoint_minutes, default 10) and optionally every n epochs
(train.checkpoint_every, default null), at the end; rows after the last checkpoint are redone."""
from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import checkpoint_epoch, rows, summary, train, weights

from ddsweep.errors import ConfigError
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.store.rundir import RunDir
from ddsweep.pipeline.train.epoch import EpochCommit


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeTrainer:
    def save_checkpoint(self, path, weights_only=False):
        Path(path).write_bytes(b"state")


def checkpointed_epochs(tmp_path, minutes_at_epoch: dict, *, every, minutes, epochs) -> list[int]:
    """Drive EpochCommit as EpochEnd does; the clock reads minutes_at_epoch[e] at epoch e's end."""
    run_dir = RunDir(tmp_path / "run")
    run_dir.create()
    clock = FakeClock()
    commit = EpochCommit(run_dir, tracker=None, every=every, minutes=minutes, config_hash="test", clock=clock)
    done = []
    for epoch in range(1, epochs + 1):
        clock.now = 60.0 * minutes_at_epoch[epoch]
        if commit.due(epoch, last=epoch == epochs):
            commit.checkpoint(FakeTrainer(), epoch)
            done.append(epoch)
    return done


def test_checkpoint_when_the_minutes_since_the_last_one_have_passed(tmp_path):
    # epochs end at these minutes since the run began; 10-minute checkpoints fall at 10.0 and then
    # 10 minutes after that one (20.0 or later), and at the last epoch
    at = {1: 3, 2: 9.99, 3: 10.0, 4: 15, 5: 19.9, 6: 20.5, 7: 29, 8: 31}
    assert checkpointed_epochs(tmp_path, at, every=None, minutes=10, epochs=8) == [3, 6, 8]


def test_every_n_epochs_adds_to_the_time_rule_and_zero_minutes_turns_it_off(tmp_path):
    at = {e: 4.0 * e for e in range(1, 9)}  # 4 minutes per epoch
    assert checkpointed_epochs(tmp_path / "a", at, every=None, minutes=10, epochs=8) == [3, 6, 8]
    # every 4 epochs as well; any checkpoint restarts the 10 minutes
    assert checkpointed_epochs(tmp_path / "b", at, every=4, minutes=10, epochs=8) == [3, 4, 7, 8]
    assert checkpointed_epochs(tmp_path / "c", at, every=None, minutes=0, epochs=8) == [8]
    assert checkpointed_epochs(tmp_path / "d", at, every=3, minutes=0, epochs=8) == [3, 6, 8]


def test_the_default_run_checkpoints_only_at_the_end(tmp_path):
    code, run = train(tmp_path, "r")
    assert code == 0
    assert RunDir(run).checkpoint_digests() is not None
    assert list(RunDir(run).checkpoint_digests().values()) == [3]  # one checkpoint written: epoch 3
    assert not (run / "checkpoints" / "prev.ckpt").exists() and checkpoint_epoch(run) == 3


def test_rows_after_the_last_checkpoint_are_redone_on_resume(tmp_path, monkeypatch):
    _, full = train(tmp_path, "full", ["--train.epochs=4"])

    def record(self, row, images, _original=EpochCommit.record):
        _original(self, row, images)
        if row["epoch"] == 3:
            raise RuntimeError("simulated crash after the epoch-3 row")

    monkeypatch.setattr(EpochCommit, "record", record)
    code, part = train(tmp_path, "part", ["--train.epochs=4", "--train.checkpoint_every=2"])
    assert code == 1 and [r["epoch"] for r in rows(part)] == [1, 2, 3] and checkpoint_epoch(part) == 2
    monkeypatch.undo()
    # resumed with another checkpoint cadence: when to checkpoint is not part of the science
    code, part = train(tmp_path, "part", ["--train.epochs=4", "--train.checkpoint_minutes=5"])
    assert code == 0 and summary(part)["status"] == "finished"
    assert rows(part) == rows(full)
    assert all((weights(part)[k] == weights(full)[k]).all() for k in weights(full))


@pytest.mark.parametrize("args, key", [
    (["--train.checkpoint_every=0"], "train.checkpoint_every"),
    (["--train.checkpoint_minutes=-1"], "train.checkpoint_minutes"),
    (["--train.schedule_interval=batch"], "train.schedule_interval"),
    (["--planes.schedule=exp"], "planes.schedule"),
    (["--planes.log_points=1"], "planes.log_points"),
    (["--planes.at_init=maybe"], "planes.at_init"),
])
def test_bad_values_name_their_key(args, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=args)


def test_defaults():
    cfg = load_config()
    assert cfg.train.checkpoint_every is None and cfg.train.checkpoint_minutes == 10
    assert cfg.train.schedule_interval == "step"
    assert cfg.planes.schedule == "linear" and cfg.planes.log_points == 50 and cfg.planes.at_init is False
