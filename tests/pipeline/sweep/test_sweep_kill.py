"""A local sweep killed hard (SIGKILL) mid-way and resumed ends with every point finished exactly
once and the same final metrics as an uninterrupted sweep; the state file stays valid JSON."""
from __future__ import annotations

import contextlib
import io
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sweep_helpers import GRID, final_metrics, read_state

from ddsweep.pipeline.sweep import main
from ddsweep.pipeline.sweep import state as st

REPO = Path(__file__).resolve().parents[3]
# The engine in its own process, as `ddsweep sweep` runs it; the training-config check is stubbed
# so the process does not import the trainer (this test is about the engine's records).
ENGINE = ("import sys, ddsweep.pipeline.config as c; c.validate = lambda cfg: None; "
          "from ddsweep.pipeline.sweep import main; sys.exit(main(sys.argv[1:]))")


def start_engine(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", ENGINE, *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, "the engine ended before the kill"
        assert time.monotonic() < deadline, "timed out waiting for the engine"
        time.sleep(0.05)


def events(log: Path) -> list[tuple[str, str]]:
    return [tuple(line.split()) for line in log.read_text().splitlines()] if log.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def kill_and_resume(tmp_path, write_sweep, monkeypatch, kill_whens, interrupts_a_point=True) -> None:
    """Run the sweep in an engine process, SIGKILL it when each of `kill_whens(events)` holds,
    resume, and check the outcome against an uninterrupted sweep."""
    monkeypatch.setattr("ddsweep.pipeline.config.validate", lambda cfg: None)
    path = write_sweep(GRID)
    reference = tmp_path / "reference"
    assert main([str(path), "--local", "--output", str(reference), "--workers", "2"]) == 0

    out, log = tmp_path / "out", tmp_path / "events.log"
    env = dict(os.environ, FAKE_LOG=str(log), FAKE_SLEEP="0.4", CUDA_VISIBLE_DEVICES="", WANDB_MODE="disabled")
    args = [str(path), "--local", "--output", str(out), "--workers", "2"]
    for when in kill_whens:
        engine = start_engine(args, env)
        wait_for(lambda: when(events(log)), engine)
        engine.send_signal(signal.SIGKILL)
        engine.wait()
        state = read_state(out)  # valid JSON after every kill
        assert len(state["points"]) == 6
        for rec in state["points"]:  # the engine's points died with it
            if rec["pid"]:
                deadline = time.monotonic() + 5
                while alive(rec["pid"]) and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert not alive(rec["pid"])
        # with the engine gone, nothing is listed as running: its points are interrupted. (A point
        # killed between fork and exec held the engine's lock until it died: wait for the lock.)
        deadline = time.monotonic() + 10
        while not st.lock_free(out / ".lock", shared=True) and time.monotonic() < deadline:
            time.sleep(0.05)
        listed = listing(out)
        assert set(listed.values()) <= {"pending", "interrupted", "finished"}
        for rec in state["points"]:  # (or finished, if its run ended just before the kill)
            assert listed[rec["id"]] in (("interrupted", "finished") if rec["status"] == "running" else
                                         (rec["status"],) if rec["status"] != "interrupted" else ("interrupted",))

    engine = start_engine(["--resume", str(out)], env)
    assert engine.wait(timeout=120) == 0

    log_events = events(log)
    ids = [rec["id"] for rec in read_state(out)["points"]]
    assert {rec["status"] for rec in read_state(out)["points"]} == {"finished"}
    for point in ids:
        assert log_events.count(("finish", point)) == 1
        last_finish = max(i for i, e in enumerate(log_events) if e == ("finish", point))
        assert ("start", point) not in log_events[last_finish:]  # never started again once finished
    if interrupts_a_point:
        assert sum(e[0] == "start" for e in log_events) > 6  # some points were interrupted and rerun
    assert final_metrics(out) == final_metrics(reference)
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(ids)  # no stray or duplicated run directories
    assert not list(out.rglob("*.tmp*"))


def listing(out: Path) -> dict:
    """{point id: status} as `ddsweep sweep --resume DIR --dry-run` lists them."""
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["--resume", str(out), "--dry-run"]) == 0
    return dict(re.findall(r"^(\S+) \[(\w+)\]: ", text.getvalue(), re.M))


def finishes(log_events) -> int:
    return sum(e[0] == "finish" for e in log_events)


def test_sigkill_mid_sweep_then_resume_finishes_every_point_once(tmp_path, write_sweep, monkeypatch):
    # killed while two points train and two have finished
    kill_and_resume(tmp_path, write_sweep, monkeypatch, [lambda ev: finishes(ev) >= 2 and len(ev) >= 6])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_random_moments(tmp_path, write_sweep, monkeypatch, seed):
    rng = random.Random(seed)
    delays = sorted(rng.uniform(0.0, 1.5) for _ in range(3))

    def after(delay):
        start = []

        def when(log_events):
            start.append(time.monotonic()) if not start else None
            return time.monotonic() - start[0] >= delay and len(log_events) >= 1
        return when

    kill_and_resume(tmp_path, write_sweep, monkeypatch, [after(d) for d in delays], interrupts_a_point=False)


@pytest.mark.slow
def test_sigterm_stops_running_points_and_they_resume(tmp_path, write_sweep):
    path = write_sweep(GRID)
    out, log = tmp_path / "out", tmp_path / "events.log"
    env = dict(os.environ, FAKE_LOG=str(log), FAKE_SLEEP="1.5", CUDA_VISIBLE_DEVICES="", WANDB_MODE="disabled")
    engine = start_engine([str(path), "--local", "--output", str(out), "--workers", "2"], env)
    wait_for(lambda: len(events(log)) >= 2, engine)
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=60) == 128 + signal.SIGTERM
    state = read_state(out)
    assert "running" not in {p["status"] for p in state["points"]}
    assert [p["error"] for p in state["points"] if p["status"] == "interrupted"] == ["stopped by SIGTERM"] * 2
    env["FAKE_SLEEP"] = "0"
    assert start_engine(["--resume", str(out)], env).wait(timeout=120) == 0
    assert sorted(e[1] for e in events(log) if e[0] == "finish") == sorted(p["id"] for p in state["points"])
