"""The local engine on a fake training program: workers, failures, resume, state file, shards."""
from __future__ import annotations

import json
import os

import pytest
import yaml
from sweep_helpers import GRID, final_metrics, read_state, statuses

from ddsweep.errors import UserError
from ddsweep.pipeline.sweep import main
from ddsweep.pipeline.sweep import state as st
from ddsweep.pipeline.sweep.local import LocalSweep, classify
from ddsweep.pipeline.sweep.spec import load_spec


def run(path, out_dir, *extra) -> int:
    return main([str(path), "--local", "--output", str(out_dir), *extra])


def test_sweep_runs_every_point_and_records_state(tmp_path, write_sweep, capsys):
    out = tmp_path / "out"
    assert run(write_sweep(GRID), out, "--workers", "2", "--train.epochs=1") == 0
    state = read_state(out)
    assert state["method"] == "grid" and len(state["points"]) == 6
    for rec in state["points"]:
        assert rec["status"] == "finished" and rec["attempts"] == 1 and rec["returncode"] == 0
        assert rec["run_dir"] == f"runs/{rec['id']}" and (out / rec["log"]).is_file()
        assert rec["args"][-3:] == ["--train.epochs=1", f"--output_dir={out.resolve() / 'runs'}",
                                    f"--run_name={rec['id']}"]
    # sweep.yaml is a valid W&B sweep file carrying the override
    swept = yaml.safe_load((out / "sweep.yaml").read_text())
    assert swept["command"][-1] == "--train.epochs=1"
    from ddsweep.vendor import sweeps
    assert sweeps.schema_violations_from_proposed_config(swept) == []
    text = capsys.readouterr().out
    assert text.count(": finished  test/error=") == 6
    assert f"sweep {out}: all 6 points finished" in text.splitlines()[-1]


def test_concurrent_workers_never_share_a_run_dir(tmp_path, write_sweep, monkeypatch):
    log = tmp_path / "events.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_SLEEP", "0.5")
    out = tmp_path / "out"
    assert run(write_sweep({"model.width": {"values": [1, 2, 3, 4]}}), out, "--workers", "2") == 0
    events = log.read_text().split()
    # two points ran at the same time: a second start came before the first finish
    assert events[:4] == ["start", events[1], "start", events[3]] and events[1] != events[3]
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 4
    for run_dir in runs:  # each run directory holds exactly its own point's run
        argv = json.loads((run_dir / "argv.json").read_text())
        assert f"--run_name={run_dir.name}" in argv
        assert f"--model.width={run_dir.name.split('=')[1]}" in argv


def test_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path, write_sweep, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_FAIL_WIDTH", "2")
    monkeypatch.setenv("FAKE_DIVERGE_WIDTH", "4")
    out = tmp_path / "out"
    assert run(write_sweep(GRID), out, "--workers", "1") == 1
    state = {p["id"]: p for p in read_state(out)["points"]}
    failed = [p for p in state.values() if p["status"] == "failed"]
    diverged = [p for p in state.values() if p["status"] == "diverged"]
    assert len(failed) == 2 and len(diverged) == 2
    assert all(p["error"] == "RuntimeError: boom" and p["returncode"] == 1 for p in failed)
    assert all(p["error"] == "loss is nan at epoch 1" and p["returncode"] == 3 for p in diverged)
    assert sum(p["status"] == "finished" for p in state.values()) == 2
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "2 finished, 2 failed, 2 diverged of 6 points" in last
    assert str(out / failed[0]["log"]) in last or str(out / diverged[0]["log"]) in last
    # a rerun leaves failed points alone, --retry-failed runs them again
    assert run(write_sweep(GRID), out) == 1
    assert {p["id"]: p["attempts"] for p in read_state(out)["points"]} == {i: 1 for i in state}
    monkeypatch.delenv("FAKE_FAIL_WIDTH")
    monkeypatch.delenv("FAKE_DIVERGE_WIDTH")
    assert run(write_sweep(GRID), out, "--retry-failed") == 0
    attempts = {p["id"]: p["attempts"] for p in read_state(out)["points"]}
    assert sorted(attempts.values()) == [1, 1, 2, 2, 2, 2]


def test_classify(tmp_path):
    run_dir = tmp_path / "runs" / "p000"
    assert classify(0, {"status": "finished"}, None, run_dir) == ("finished", None)
    # exit code 0 alone is not finished: the summary.json must say so
    assert classify(0, None, None, run_dir) == (
        "failed", f"exited 0 but wrote no finished summary.json in {run_dir}")
    assert classify(0, {"status": "running"}, None, run_dir) == (
        "failed", f"exited 0 but wrote no finished summary.json in {run_dir} (it says 'running')")
    assert classify(3, None, None, run_dir)[0] == "diverged"
    # stopped by SIGTERM/SIGUSR1 after a checkpoint (exit 75): runs again on resume, not a failure
    assert classify(75, {"status": "interrupted", "error": "stopped by SIGUSR1 after epoch 2"}, None, run_dir) == (
        "interrupted", "stopped by SIGUSR1 after epoch 2")
    assert classify(-9, {"status": "running"}, None, run_dir) == (
        "failed", "killed by SIGKILL (out of memory, or killed from outside?)")
    assert classify(1, {"status": "failed", "error": "CUDA out of memory"}, None, run_dir) == (
        "failed", "CUDA out of memory")


def test_program_that_cannot_start_is_a_failed_point(tmp_path, write_sweep):
    path = write_sweep({"model.width": {"values": [1, 2]}}, command=[str(tmp_path / "missing-program"), "${args}"])
    out = tmp_path / "out"
    assert run(path, out) == 1
    assert all(p["status"] == "failed" and "cannot start" in p["error"] for p in read_state(out)["points"])


def test_rerun_skips_finished_points(tmp_path, write_sweep, monkeypatch, capsys):
    log = tmp_path / "events.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    out = tmp_path / "out"
    path = write_sweep(GRID)
    assert run(path, out, "--max-points", "4") == 0
    assert run(path, out) == 0  # the same command without the cap: only the two new points run
    assert run(path, out) == 0
    assert main(["--resume", str(out)]) == 0
    events = log.read_text().splitlines()
    assert len(events) == 12 and len(set(events)) == 12  # every point started and finished once
    assert "0 to run" in capsys.readouterr().out.splitlines()[-2]


def test_interrupted_point_is_rerun_and_summary_decides_finished(tmp_path, write_sweep, monkeypatch):
    out = tmp_path / "out"
    path = write_sweep(GRID)
    assert run(path, out) == 0
    state = read_state(out)
    # as after a SIGKILL: one point recorded running whose summary says running, one recorded running
    # whose run finished before the engine could record it
    a, b = state["points"][0], state["points"][1]
    a["status"] = b["status"] = "running"
    (out / a["run_dir"] / "summary.json").write_text(json.dumps({"status": "running", "metrics": {}}))
    st.write_state(out / "state.json", state)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "events.log"))
    assert main(["--resume", str(out)]) == 0
    assert (tmp_path / "events.log").read_text().split() == ["start", a["id"], "finish", a["id"]]
    attempts = {p["id"]: p["attempts"] for p in read_state(out)["points"]}
    assert attempts[a["id"]] == 2 and attempts[b["id"]] == 1


def test_directory_of_another_sweep_is_refused(tmp_path, write_sweep):
    out = tmp_path / "out"
    assert run(write_sweep(GRID), out, "--max-points", "1") == 0
    with pytest.raises(UserError, match=r"holds another sweep \(its sweep.yaml differs in command\)"):
        LocalSweep(load_spec(write_sweep(GRID), ["--train.epochs=2"]), out).run()
    assert run(write_sweep({"model.width": {"values": [7]}}), out) == 2
    assert run(write_sweep(GRID), out, "--train.epochs=2") == 2


def test_random_sweep_resume_needs_the_same_seed(tmp_path, write_sweep):
    path = write_sweep({"model.width": {"distribution": "int_uniform", "min": 1, "max": 50}}, method="random")
    out = tmp_path / "out"
    assert run(path, out, "--max-points", "3", "--seed", "5") == 0
    first = read_state(out)["points"]
    assert run(path, out, "--max-points", "3", "--seed", "6") == 2
    assert main(["--resume", str(out), "--max-points", "4"]) == 0  # seed comes from the state file
    points = read_state(out)["points"]
    assert points[:3] == first and len(points) == 4


def test_state_file_is_replaced_atomically(tmp_path, write_sweep, monkeypatch):
    out = tmp_path / "out"
    assert run(write_sweep(GRID), out) == 0
    before = (out / "state.json").read_bytes()

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(UserError, match="cannot write .*state.json: No space left on device"):
        st.write_state(out / "state.json", {"points": []})
    assert (out / "state.json").read_bytes() == before
    assert not list(out.glob(".state.json.tmp*"))


def test_max_points_and_dry_run(tmp_path, write_sweep, capsys):
    out = tmp_path / "out"
    assert main([str(write_sweep(GRID)), "--dry-run", "--max-points", "2", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"sweep {tmp_path / 'sweep.yaml'}: grid, 2 of 6 point(s)")
    assert len(lines) == 3 and lines[1].startswith("p000-model.width=1-data.noise.rate=0.0 [pending]: /usr/bin/env ")
    assert not out.exists()
    assert run(write_sweep(GRID), out, "--max-points", "2") == 0
    assert len(list((out / "runs").iterdir())) == 2
    assert main(["--resume", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("[finished]") == 2


def test_shards_split_points_disjointly(tmp_path, write_sweep, monkeypatch):
    log = tmp_path / "events.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    out = tmp_path / "out"
    path = write_sweep(GRID)
    assert run(path, out, "--shard", "1/2") == 0
    assert run(path, out, "--shard", "2/2") == 0
    shard1 = {p["id"] for p in json.loads((out / "state.shard-1-of-2.json").read_text())["points"]}
    shard2 = {p["id"] for p in json.loads((out / "state.shard-2-of-2.json").read_text())["points"]}
    assert len(shard1) == len(shard2) == 3 and not shard1 & shard2
    assert not (out / "state.json").exists()  # shards never write the whole sweep's state
    assert run(path, out) == 0  # merges the shard files, runs nothing
    assert set(statuses(out).values()) == {"finished"}
    assert len(log.read_text().splitlines()) == 12
    assert main([str(path), "--shard", "3/2", "--output", str(out)]) == 2


def test_one_engine_per_sweep_directory(tmp_path, write_sweep):
    out = tmp_path / "out"
    path = write_sweep(GRID)
    lock = st.Lock(out / ".lock")
    lock.acquire("test")
    try:
        assert run(path, out) == 2
        with pytest.raises(UserError, match="already running"):
            LocalSweep(load_spec(path), out).run()
        with pytest.raises(UserError, match="already running"):
            LocalSweep(load_spec(path), out, shard=(1, 2)).run()
    finally:
        lock.release()
    shared = st.Lock(out / ".lock", shared=True)
    shared.acquire("a shard")
    try:  # a running shard blocks a whole-sweep engine, not another shard
        with pytest.raises(UserError, match="already running"):
            LocalSweep(load_spec(path), out).run()
        assert LocalSweep(load_spec(path), out, shard=(2, 2)).run() == 0
    finally:
        shared.release()


def test_bayes_runs_locally_up_to_its_cap(tmp_path, write_sweep):
    path = write_sweep({"model.width": {"values": [1, 2, 4, 8]},
                        "data.noise.rate": {"distribution": "uniform", "min": 0.0, "max": 0.3}},
                       method="bayes")
    out = tmp_path / "out"
    assert run(path, out, "--workers", "2") == 2  # bayes needs a cap
    assert run(path, out, "--workers", "2", "--max-points", "4") == 0
    points = read_state(out)["points"]
    assert [p["index"] for p in points] == [0, 1, 2, 3] and {p["status"] for p in points} == {"finished"}
    assert main(["--resume", str(out), "--max-points", "5"]) == 0
    assert len(read_state(out)["points"]) == 5
    assert len(final_metrics(out)) == 5


def test_worker_environment(tmp_path, write_sweep, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    spec = load_spec(write_sweep(GRID))
    engine = LocalSweep(spec, tmp_path / "out", workers=1)
    engine.prepare()
    env = engine._env(0)
    assert env["WANDB_MODE"] == "offline" and env["OMP_NUM_THREADS"] == "1" and "CUDA_VISIBLE_DEVICES" in env
    engine.gpus = ["3", "5"]
    assert engine._env(0)["CUDA_VISIBLE_DEVICES"] == "3" and engine._env(3)["CUDA_VISIBLE_DEVICES"] == "5"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert engine._env(0)["WANDB_MODE"] == "online"


def test_costliest_points_start_first(tmp_path, write_sweep, monkeypatch):
    """width^2 x epochs x seeds orders the launches; equal costs keep the sweep's order."""
    log = tmp_path / "events.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    params = {"model.width": {"values": [2, 8, 4]}, "train.epochs": {"values": [1, 4]}}
    out = tmp_path / "out"
    assert run(write_sweep(params), out, "--workers", "1") == 0
    starts = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("start")]
    points = {rec["id"]: rec for rec in read_state(out)["points"]}
    keys = [(-points[p]["params"]["model.width"] ** 2 * points[p]["params"]["train.epochs"], points[p]["index"])
            for p in starts]
    assert len(starts) == 6 and keys == sorted(keys)  # costliest first; ties (64, 16) by index
    assert [-k[0] for k in keys] == [256, 64, 64, 16, 16, 4]


def test_costliest_first_sums_a_fused_group():
    from ddsweep.pipeline.sweep.local import costliest_first
    from ddsweep.pipeline.sweep.spec import Point

    a, b, c = (Point(i, f"p{i}", {}) for i in range(3))
    cost = {"p0": 5.0, "p1": 3.0, "p2": 4.0}
    assert costliest_first([[a], [b, c], [c]], lambda p: cost[p.id]) == [[b, c], [a], [c]]


def test_the_engine_preloads_the_data_of_every_point_it_runs(tmp_path, write_sweep, monkeypatch):
    """The first forked point's data included (it is already "running" when the engine preloads),
    another shard's not."""
    import subprocess
    import sys

    from ddsweep.pipeline.sweep import local

    seen = []
    monkeypatch.setattr(local, "preload", lambda configs: seen.extend(c.data.options["num_samples"] for c in configs))
    monkeypatch.setattr(local, "forkable", lambda argv: ["train"])  # every point "forked": a no-op process
    monkeypatch.setattr(local, "ForkedPoint", lambda *a: subprocess.Popen([sys.executable, "-c", ""]))
    params = {"data.name": {"value": "mnist1d"}, "data.num_samples": {"values": [100, 200, 300, 400]}}
    run(write_sweep(params), tmp_path / "out", "--workers", "1", "--shard", "1/2")
    assert sorted(seen) == [100, 300]  # shard 1 of 2: the points of index 0 and 2, each once
