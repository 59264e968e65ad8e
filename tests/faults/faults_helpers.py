"""Shared pieces of the fault-injection suite: the tiny real training config, in-process runs,
metric comparison, and process helpers for the SIGKILL tests."""
from __future__ import annotations

import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from run_files import rows, summary  # noqa: F401 - re-exported to the tests here

import torch

REPO = Path(__file__).resolve().parents[2]
WRAPPER = Path(__file__).resolve().parent / "faults_train.py"
# Real training in a fraction of a second once imported: digits, a width-8 MLP, small measurements,
# no pictures. Every epoch is checkpointed (checkpoint_every defaults to 1).
TINY = ["--data.name=digits", "--model.name=mlpk", "--model.width=8", "--train.epochs=3",
        "--train.batch_size=256", "--planes.n_planes=3", "--planes.resolution=10",
        "--planes.agreement_triplets=4", "--planes.draw=0", "--regions1d.pairs=4", "--regions1d.points=10",
        "--train.checkpoint_every=1", "--wandb.mode=disabled"]
TMP_NAME = re.compile(r"\.tmp\d*$")


def train(out: Path, name: str, extra=(), verbose: bool = False, base=TINY) -> tuple[int, Path]:
    """One real run in this process, on one thread as every sweep point here runs:
    (exit code, run directory)."""
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.train.run import train_run

    cfg = load_config(overrides=[*base, *extra, f"--output_dir={out}", f"--run_name={name}"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_run(cfg, verbose=verbose), Path(out) / name
    finally:
        torch.set_num_threads(threads)


def copy_run(run_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of a run directory under tmp_path/out: (output_dir, run directory)."""
    out = tmp_path / "out"
    shutil.copytree(run_dir, out / run_dir.name)
    return out, out / run_dir.name


def close(a, b, tol: float = 1e-6) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(a), abs(b))
        return False
    return a == b


def assert_same_run(run_dir: Path, reference: Path, epochs: int) -> None:
    """Each epoch exactly once, in order, and every metric (per epoch and final) equal to the
    uninterrupted reference run to 1e-6."""
    got, want = rows(run_dir), rows(reference)
    assert [r["epoch"] for r in got] == list(range(1, epochs + 1))
    for a, b in zip(got, want):
        assert close(a, b), f"epoch {a['epoch']}: {diff(a, b)}"
    s, r = summary(run_dir), summary(reference)
    assert s["status"] == "finished" and s["epochs_completed"] == epochs
    assert close(s["metrics"], r["metrics"]), diff(s["metrics"], r["metrics"])


def diff(a: dict, b: dict) -> dict:
    keys = set(a) | set(b)
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if not close(a.get(k), b.get(k))}


def temporaries(root: Path) -> list[Path]:
    """Files of interrupted atomic writes (`.name.tmp<pid>`, `name.tmp`) under root, W&B's own
    directory excepted."""
    return [p for p in Path(root).rglob("*") if TMP_NAME.search(p.name) and "wandb" not in p.parts]


# ----------------------------------------------------------------------------- processes

def env(**extra) -> dict:
    out = dict(os.environ, WANDB_MODE="disabled", CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    out.update({k: str(v) for k, v in extra.items()})
    return out


def cli(*args: str, env_vars: dict, log: Path, prelude: str | None = None) -> subprocess.Popen:
    """`ddsweep ARGS` in its own process, its output appended to `log`; `prelude`: Python run first."""
    command = [sys.executable, "-m", "ddsweep", *args] if prelude is None else \
        [sys.executable, "-c", f"{prelude}; import sys; from ddsweep.pipeline.cli import main; sys.exit(main(sys.argv[1:]))",
         *args]
    with open(log, "ab") as fh:
        return subprocess.Popen(command, cwd=REPO, env=env_vars, stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 240.0, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before the moment to kill it")
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(poll)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except OSError:
        return False


def sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_dead(pids, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while alive(pid):
            assert time.monotonic() < deadline, f"process {pid} outlived the kill"
            time.sleep(0.02)


def cli_in_process(argv: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of `ddsweep ARGV` run in this process, stdout discarded; argparse's
    SystemExit counts as its exit code."""
    import contextlib
    import io

    from ddsweep.pipeline import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code
    return code, err.getvalue()
