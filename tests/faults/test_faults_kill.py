"""SIGKILL at random moments: a local sweep of the real trainer is killed hard during training,
during a checkpoint write (its `.last.ckpt.tmp<pid>` half on disk) and during `ddsweep report`, and
resumed each time. At the end every point finished exactly once, the sweep holds no duplicated or
half-written run directory and no temporary file, metrics.jsonl has each epoch once, and every metric
equals an uninterrupted run of the same point (in-process, 1e-6; CPU runs are deterministic)."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
import yaml
from faults_helpers import (TINY, WRAPPER, assert_same_run, cli, env, sigkill, temporaries, train, wait_dead,
                            wait_for)

SWEEP_ARGS = [a for a in TINY if not a.startswith(("--model.width", "--train.epochs"))]
NO_VALIDATION = "import ddsweep.pipeline.config as c; c.validate = lambda cfg: None"


def write_sweep(tmp_path: Path, widths: list, noise: list, epochs: int) -> Path:
    """Grid over width x noise; each point runs faults_train.py, the real `ddsweep train` whose
    checkpoint writes pause halfway when FAULTS_SLOW_SAVE_S is set."""
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "method": "grid", "metric": {"name": "test/error", "goal": "minimize"},
        "parameters": {"model.width": {"values": widths}, "data.noise.rate": {"values": noise}},
        "command": ["${env}", "${interpreter}", str(WRAPPER), "train", "${args}", f"--train.epochs={epochs}",
                    *SWEEP_ARGS, "--quiet"],
    }, sort_keys=False))
    return path


class Sweep:
    """A sweep directory and the engine processes run on it."""

    def __init__(self, tmp_path: Path, spec: Path):
        self.tmp, self.spec, self.dir = tmp_path, spec, tmp_path / "out"
        self.proc = None
        self.writes_seen: set = set()

    def start(self, slow_save: float = 0.0, resume: bool = False, quick: bool = False):
        """`ddsweep sweep` in its own process; `quick`: without checking the points against the
        training config first (which imports the trainer: seconds the fast tier saves)."""
        args = ["sweep", "--resume", str(self.dir)] if resume else \
            ["sweep", str(self.spec), "--local", "--workers", "2", "--output", str(self.dir)]
        self.proc = cli(*args, env_vars=env(FAULTS_SLOW_SAVE_S=slow_save), log=self.tmp / "engine.log",
                        prelude=NO_VALIDATION if quick else None)
        return self.proc

    def finish(self, timeout: float = 400) -> None:
        assert self.start(resume=True).wait(timeout=timeout) == 0, (self.tmp / "engine.log").read_text()

    def finish_here(self) -> None:
        """Resume in this process (its imports are done already), as `ddsweep sweep --resume DIR`."""
        from ddsweep.pipeline.sweep import main as sweep_main

        assert sweep_main(["--resume", str(self.dir)]) == 0

    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    def kill(self, fault_log) -> None:
        """SIGKILL the engine and, at the same moment, every point process it runs."""
        pids = [rec["pid"] for rec in self.state()["points"] if rec.get("pid")]
        sigkill(self.proc.pid)
        for pid in pids:
            sigkill(pid)
        self.proc.wait()
        wait_dead(pids)
        fault_log.kill(1 + len(pids))
        assert len(self.state()["points"]) > 0  # state.json is whole after every kill

    # moments --------------------------------------------------------------------------
    def rows_written(self) -> int:
        total = 0
        for metrics in self.dir.glob("runs/*/metrics.jsonl"):
            total += metrics.read_text().count("\n")
        return total

    def last_epochs(self) -> dict:
        """{run directory: the last epoch in its metrics.jsonl}."""
        from ddsweep.pipeline.store.rundir import RunDir

        out = {}
        for run in self.dir.glob("runs/*"):
            rows = RunDir(run).read_metrics()
            out[run.name] = rows[-1]["epoch"] if rows else 0
        return out

    def runs_past(self, before: dict) -> list[str]:
        """Runs that have recorded an epoch beyond where they stood in `before` (so they train)."""
        return [run for run, epoch in self.last_epochs().items() if epoch > before.get(run, 0)]

    def checkpoint_writes(self) -> list[Path]:
        """Checkpoint files being written right now that will replace an existing last.ckpt (each
        write is counted once, however often it is seen)."""
        found = []
        for tmp in self.dir.glob("runs/*/checkpoints/.last.ckpt.tmp*"):
            last = tmp.parent / "last.ckpt"
            try:
                if tmp.stat().st_size and last.exists():
                    self.writes_seen.add((tmp, last.stat().st_mtime_ns))
                    found.append(tmp)
            except FileNotFoundError:  # the write finished between the glob and the stat
                pass
        return found


def point_args(rec: dict) -> list[str]:
    """A point's training overrides as the engine ran them, without where its run directory goes."""
    args = rec["args"][rec["args"].index("train") + 1:]
    return [a for a in args if a != "--quiet" and not a.startswith(("--output_dir=", "--run_name="))]


def check_sweep(sweep: Sweep, epochs: int, n_points: int) -> None:
    state = sweep.state()
    ids = sorted(rec["id"] for rec in state["points"])
    assert len(ids) == n_points and {rec["status"] for rec in state["points"]} == {"finished"}
    assert sorted(p.name for p in (sweep.dir / "runs").iterdir()) == ids  # no stray or duplicate runs
    reference = sweep.tmp / "reference"
    for rec in state["points"]:
        log = (sweep.dir / rec["log"]).read_text()
        assert log.count(": finished\n") == 1 and "already finished" not in log, log  # trained to the end once
        assert log.rindex(": finished\n") > log.rindex("# ddsweep sweep: attempt")  # never started after
        code, ref = train(reference, rec["id"], point_args(rec), base=[])
        assert code == 0
        assert_same_run(sweep.dir / rec["run_dir"], ref, epochs)
    assert not temporaries(sweep.dir), temporaries(sweep.dir)


def test_sweep_killed_mid_checkpoint_write_resumes_to_the_uninterrupted_result(tmp_path, fault_log):
    """Fast variant: two points, one SIGKILL while a checkpoint replacing last.ckpt is half written
    (plus a half-written state.json temporary, as an engine killed mid-write leaves)."""
    sweep = Sweep(tmp_path, write_sweep(tmp_path, [4, 8], [0.2], epochs=3))
    engine = sweep.start(slow_save=0.4, quick=True)
    wait_for(lambda: sweep.checkpoint_writes(), engine)
    writing = sweep.checkpoint_writes()
    sweep.kill(fault_log)
    fault_log.fault("SIGKILL during a checkpoint write")
    assert any(tmp.exists() for tmp in writing)  # the kill landed mid-write
    (sweep.dir / ".state.json.tmp4242").write_text('{"version": 1, "points": [')
    fault_log.fault("half-written state.json temporary")
    sweep.finish_here()
    check_sweep(sweep, epochs=3, n_points=2)
    fault_log.case()


def test_report_killed_then_rerun(tmp_path, fault_log):
    """`ddsweep report` SIGKILLed while writing its files, then run again: a whole report."""
    runs = tmp_path / "sweep" / "runs"
    for width in (4, 8):
        assert train(runs, f"w{width}", [f"--model.width={width}"])[0] == 0
    report = tmp_path / "sweep" / "report"
    proc = cli("report", str(tmp_path / "sweep"), "--format", "png", env_vars=env(), log=tmp_path / "report.log")
    wait_for(lambda: report.is_dir() and any(report.iterdir()), proc, poll=0.005)
    sigkill(proc.pid)
    proc.wait()
    fault_log.kill()
    fault_log.fault("SIGKILL during ddsweep report")
    assert cli("report", str(tmp_path / "sweep"), "--format", "png", env_vars=env(),
               log=tmp_path / "report.log").wait(timeout=300) == 0, (tmp_path / "report.log").read_text()
    check_report(report, ["w4", "w8"])
    fault_log.case()


def check_report(report: Path, ids: list[str]) -> None:
    page = (report / "index.html").read_text()
    assert page.rstrip().endswith("</html>")
    for point in ids:
        assert point in page
    assert len((report / "runs.csv").read_text().strip().splitlines()) == len(ids) + 1
    assert not temporaries(report)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_sweep_killed_at_random_moments(tmp_path, fault_log, seed):
    """Six points; SIGKILL at seeded random moments during training, during a checkpoint write and
    again during training, resuming after each; then during the report, run again."""
    rng = random.Random(seed)
    epochs = 4
    sweep = Sweep(tmp_path, write_sweep(tmp_path, [4, 8, 12], [0.0, 0.2], epochs=epochs))

    # 1: during training, after a random number of epoch rows and a random pause
    rows, pause = rng.randint(1, 8), rng.uniform(0.0, 0.6)
    engine = sweep.start(slow_save=0.3)
    wait_for(lambda: sweep.rows_written() >= rows, engine)
    time.sleep(pause)
    sweep.kill(fault_log)
    fault_log.fault("SIGKILL during training")

    # 2: during a checkpoint write, the m-th one seen after the resume
    m = rng.randint(1, 4)
    sweep.writes_seen.clear()
    engine = sweep.start(slow_save=0.3, resume=True)
    wait_for(lambda: sweep.checkpoint_writes() and len(sweep.writes_seen) >= m, engine)
    writing = sweep.checkpoint_writes()
    sweep.kill(fault_log)
    fault_log.fault("SIGKILL during a checkpoint write")
    assert any(tmp.exists() for tmp in writing)

    # 3: during training again, a random pause after a point wrote its first row since the resume
    pause = rng.uniform(0.0, 1.5)
    before = sweep.last_epochs()
    engine = sweep.start(slow_save=0.3, resume=True)
    wait_for(lambda: sweep.runs_past(before), engine)
    time.sleep(pause)
    sweep.kill(fault_log)
    fault_log.fault("SIGKILL during training")

    sweep.finish()
    check_sweep(sweep, epochs=epochs, n_points=6)

    # 4: during the report, once it has written a random number of its files
    report = sweep.dir / "report"
    files = rng.randint(0, 3)
    proc = cli("report", str(sweep.dir), env_vars=env(), log=tmp_path / "report.log")
    wait_for(lambda: report.is_dir() and len(list(report.iterdir())) > files, proc, poll=0.005)
    sigkill(proc.pid)
    proc.wait()
    fault_log.kill()
    fault_log.fault("SIGKILL during ddsweep report")
    assert cli("report", str(sweep.dir), env_vars=env(), log=tmp_path / "report.log").wait(timeout=300) == 0
    check_report(report, [rec["id"] for rec in sweep.state()["points"]])
    fault_log.case()
