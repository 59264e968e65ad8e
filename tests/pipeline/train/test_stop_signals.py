"""SIGTERM / SIGUSR1 (a preempted or timed-out SLURM job): the run finishes the current epoch,
writes a checkpoint, exits 75 with status interrupted, and the same command resumes it to what an
uninterrupted run gives."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from train_helpers import REPO, TINY, checkpoint_epoch, rows, summary, train, weights

from ddsweep.pipeline.train.run import EXIT_INTERRUPTED

# The real `ddsweep train`, made to wait after recording epoch 2 until a stop signal has arrived
# (and to say so in a file), so the test signals it mid-run without any timing assumption.
WAIT_AT_EPOCH_2 = """
import sys, time
from pathlib import Path
from ddsweep.pipeline.train.epoch import EpochCommit
record = EpochCommit.record
def waiting_record(self, row, images):
    record(self, row, images)
    if row["epoch"] == 2:
        Path(sys.argv[1]).write_text("epoch 2 recorded")
        while self.stop.signum is None:
            time.sleep(0.02)
EpochCommit.record = waiting_record
from ddsweep.pipeline.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_sigusr1_checkpoints_the_epoch_and_the_resume_equals_an_uninterrupted_run(tmp_path):
    epochs = ["--train.epochs=4"]
    ready = tmp_path / "ready"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WAIT_AT_EPOCH_2, str(ready), "train", *TINY, *epochs,
                             f"--output_dir={tmp_path}", "--run_name=part", "--quiet"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), proc.communicate()[0] if proc.poll() is not None else "no epoch 2 in 300 s"
        proc.send_signal(signal.SIGUSR1)
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    part = tmp_path / "part"
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert summary(part)["status"] == "interrupted" and "SIGUSR1" in summary(part)["error"]
    assert checkpoint_epoch(part) == 2 and [r["epoch"] for r in rows(part)] == [1, 2]

    code, resumed = train(tmp_path, "part", epochs)  # the same command again
    _, full = train(tmp_path, "full", epochs)
    assert code == 0 and summary(resumed)["status"] == "finished"
    assert rows(resumed) == rows(full)
    assert all((weights(resumed)[k] == weights(full)[k]).all() for k in weights(full))


def test_sigterm_during_a_step_stops_after_that_epoch_with_its_checkpoint(tmp_path, monkeypatch):
    """Lightning's own SIGTERM handling would stop after the current batch, losing the epoch: the
    run takes SIGTERM back when training starts."""
    from ddsweep.pipeline.train.module import DDModule

    step = DDModule.training_step

    def training_step(self, batch, batch_idx):
        if self.trainer.current_epoch == 1:  # epoch 2's steps (one call takes several, module.py)
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, batch, batch_idx)

    monkeypatch.setattr(DDModule, "training_step", training_step)
    code, run = train(tmp_path, "part", ["--train.epochs=4"])
    assert code == EXIT_INTERRUPTED and summary(run)["status"] == "interrupted"
    assert "SIGTERM" in summary(run)["error"]
    assert checkpoint_epoch(run) == 2 and [r["epoch"] for r in rows(run)] == [1, 2]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back after the run
