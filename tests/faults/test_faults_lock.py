"""One writer per run directory: a second `ddsweep train` of a run that is being trained is refused
in one line naming the holder's pid (before it writes or decides anything), and after the holder is
killed with SIGKILL its leftover lock file is taken over by the next run, which finishes with every
epoch once and the metrics of an uninterrupted run. Real processes on one directory."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from faults_helpers import TINY, WRAPPER, alive, assert_same_run, env, sigkill, train, wait_dead, wait_for

from ddsweep.errors import UserError
from ddsweep.pipeline.store.rundir import RunDir


def test_second_process_is_refused_then_a_killed_holder_is_taken_over(interrupted, tmp_path, fault_log):
    reference, _ = interrupted
    out, name = tmp_path / "out", "shared"
    run = out / name
    args = [*TINY, f"--output_dir={out}", f"--run_name={name}", "--quiet"]
    # The holder pauses halfway through its first checkpoint write, so it holds the directory while the
    # second process starts and tries.
    holder = subprocess.Popen([sys.executable, str(WRAPPER), "train", *args], cwd=tmp_path,
                              env=env(FAULTS_SLOW_SAVE_S=600), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (run / "checkpoints" / f".last.ckpt.tmp{holder.pid}").exists(), holder)
        assert (run / ".lock").read_text().split()[0] == str(holder.pid)
        second = subprocess.run([sys.executable, "-m", "ddsweep", "train", *args], cwd=tmp_path, env=env(),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        assert second.returncode == 2, second.stdout + second.stderr
        lines = second.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"ddsweep: error: {run} is in use by pid {holder.pid}"), lines
        assert alive(holder.pid)
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # only the holder's epoch 1
    finally:
        sigkill(holder.pid)
        holder.wait()
        fault_log.kill()
    wait_dead([holder.pid])
    assert (run / ".lock").read_text().split()[0] == str(holder.pid)  # left behind by the dead holder
    code, run = train(out, name)
    assert code == 0
    assert (run / ".lock").read_text().split()[0] == str(os.getpid())
    assert_same_run(run, reference, 3)
    fault_log.case(2)


def test_the_lock_is_exclusive_and_released(tmp_path):
    first, second = RunDir(tmp_path / "run"), RunDir(tmp_path / "run")
    with first.locked():
        with pytest.raises(UserError, match=rf"is in use by pid {os.getpid()} on "):
            second.lock()
    with second.locked():  # released when the holder is done
        assert (tmp_path / "run" / ".lock").read_text().split()[0] == str(os.getpid())
