"""The tracker's W&B chart set-up: epoch as every metric's x axis, test/error's min and last
summaries, the epoch in every logged row. W&B's init is replaced by a recording fake (no network),
and one test runs the real library offline."""
from __future__ import annotations

import pytest
import wandb

from ddsweep.pipeline.store.tracking import Tracker


class RecordingRun:
    """The parts of a W&B run the tracker calls, recording every call."""

    def __init__(self, refuse_define_metric: bool = False):
        self.id, self.url = "fake0001", None
        self.refuse = refuse_define_metric
        self.defined: list[tuple[str, dict]] = []
        self.logged: list[tuple[dict, int]] = []
        self.summary = self
        self.summarized: dict = {}

    def define_metric(self, name, **kwargs):
        if self.refuse:
            raise ValueError("define_metric is not supported here")
        self.defined.append((name, kwargs))

    def log(self, payload, step=None):
        self.logged.append((dict(payload), step))

    def update(self, values):
        self.summarized.update(values)

    def finish(self, exit_code=0):
        pass


def tracker(tmp_path, monkeypatch, run) -> Tracker:
    monkeypatch.setattr(wandb, "init", lambda **kwargs: run)
    return Tracker("offline", project="p", entity=None, group=None, tags=[], run_dir=tmp_path, run_id="r1",
                   name="r", config={})


def test_epoch_is_every_metrics_x_axis_and_test_error_keeps_min_and_last(tmp_path, monkeypatch):
    run = RecordingRun()
    tracker(tmp_path, monkeypatch, run)
    assert run.defined == [("epoch", {}), ("*", {"step_metric": "epoch"}),
                           ("test/error", {"summary": "min,last"})]


def test_every_row_carries_its_epoch(tmp_path, monkeypatch):
    run = RecordingRun()
    t = tracker(tmp_path, monkeypatch, run)
    t.log({"test/error": 0.25, "train/loss": 1.5}, step=7)
    assert run.logged == [({"epoch": 7, "test/error": 0.25, "train/loss": 1.5}, 7)]


def test_final_summary_leaves_test_error_to_w_and_b(tmp_path, monkeypatch):
    """W&B derives test/error.min and .last from the history; a plain number would replace both."""
    run = RecordingRun()
    t = tracker(tmp_path, monkeypatch, run)
    t.summary({"status": "finished", "test/error": 0.3, "test/error/seed0": 0.31, "train/error": 0.0})
    assert run.summarized == {"status": "finished", "test/error/seed0": 0.31, "train/error": 0.0}


def test_refused_define_metric_warns_once_and_logging_goes_on(tmp_path, monkeypatch, capsys):
    run = RecordingRun(refuse_define_metric=True)
    t = tracker(tmp_path, monkeypatch, run)
    t.log({"test/error": 0.5}, step=1)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not take the epoch as x axis (ValueError" in err
    assert t.active and run.logged == [({"epoch": 1, "test/error": 0.5}, 1)]


@pytest.mark.slow
def test_real_wandb_offline_accepts_the_definitions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    t = Tracker("offline", project="p", entity=None, group=None, tags=[], run_dir=tmp_path, run_id="real0001",
                name="r", config={"model": {"width": 4}})
    for epoch, error in [(1, 0.5), (2, 0.2), (3, 0.3)]:
        t.log({"test/error": error, "train/loss": error}, step=epoch)
    t.summary({"status": "finished", "test/error": 0.3})
    t.finish()
    err = capsys.readouterr().err
    assert t.mode == "offline" and t.active, err
    assert "warning" not in err, err
