"""Nothing lost, nothing doubled: a point is finished only when its run directory's summary.json says
so (checked when it ends and at every resume), a point whose engine was killed is interrupted and
run again (never one a live engine still runs, here or on another machine), and one sweep directory
has one shard count."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
from sweep_helpers import GRID, read_state, statuses

from ddsweep.pipeline.sweep import main
from ddsweep.pipeline.sweep import state as st


def run(path, out_dir, *extra) -> int:
    return main([str(path), "--local", "--output", str(out_dir), *extra])


def events(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def listing(out, capsys) -> dict:
    """{point id: status} as `--resume DIR --dry-run` prints it."""
    capsys.readouterr()
    assert main(["--resume", str(out), "--dry-run"]) == 0
    return dict(re.findall(r"^(\S+) \[(\w+)\]: ", capsys.readouterr().out, re.M))


def as_killed(out, point_ids, shard=None, pid=None) -> None:
    """Rewrite the records of `point_ids` as a SIGKILLed engine leaves them: running, under a pid
    that is gone, with a summary.json that says running."""
    path = st.state_path(out, shard)
    state = json.loads(path.read_text())
    for rec in state["points"]:
        if rec["id"] in point_ids:
            rec.update(status="running", pid=pid or dead_pid(), host=socket.gethostname(),
                       started=st.now(), shard=st.shard_name(shard) or None)
            (out / rec["run_dir"] / "summary.json").write_text(json.dumps({"status": "running", "metrics": {}}))
    st.write_state(path, state)


# ----------------------------------------------------------------------------- 1. finished = summary.json

def test_point_whose_run_dir_or_summary_is_gone_is_run_again(tmp_path, write_sweep, monkeypatch, capsys):
    log = tmp_path / "events.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    out, path = tmp_path / "out", write_sweep(GRID)
    assert run(path, out) == 0
    a, b = read_state(out)["points"][:2]
    shutil.rmtree(out / a["run_dir"])
    (out / b["run_dir"] / "summary.json").unlink()
    capsys.readouterr()
    assert main(["--resume", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"{a['id']} [pending]: " in text and f"{b['id']}: was recorded finished, but " in text
    assert main(["--resume", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"{a['id']}: was recorded finished, but {out / a['run_dir'] / 'summary.json'} is gone" in text
    rerun = events(log)[12:]  # the two points again, one after the other (costliest first)
    assert sorted([rerun[:2], rerun[2:]]) == [[f"start {a['id']}", f"finish {a['id']}"],
                                             [f"start {b['id']}", f"finish {b['id']}"]]
    attempts = {p["id"]: p["attempts"] for p in read_state(out)["points"]}
    assert attempts[a["id"]] == attempts[b["id"]] == 2 and sum(attempts.values()) == 8
    assert set(statuses(out).values()) == {"finished"}
    # the same command again, after another loss
    (out / a["run_dir"] / "summary.json").unlink()
    assert run(path, out) == 0
    assert events(log)[-2:] == [f"start {a['id']}", f"finish {a['id']}"]


def test_command_that_exits_0_without_a_summary_is_a_failed_point(tmp_path, write_sweep, capsys):
    """A sweep file whose command ends in --help: `ddsweep train --help` exits 0 and trains nothing."""
    path = write_sweep({"model.width": {"values": [1, 2]}}, command=["${env}", "ddsweep", "train", "${args}", "--help"])
    out = tmp_path / "out"
    assert run(path, out, "--max-points", "1") == 1
    [rec] = read_state(out)["points"]
    assert rec["status"] == "failed" and rec["returncode"] == 0
    assert rec["error"] == f"exited 0 but wrote no finished summary.json in {out / rec['run_dir']}"
    assert "1 failed" in capsys.readouterr().out.splitlines()[-1]
    assert run(path, out, "--max-points", "1") == 1  # and stays failed: not finished on a rerun


# ----------------------------------------------------------------------------- 2. killed engines

def test_running_point_of_a_dead_engine_is_interrupted_and_rerun(tmp_path, write_sweep, monkeypatch, capsys):
    log = tmp_path / "events.log"
    out, path = tmp_path / "out", write_sweep(GRID)
    assert run(path, out) == 0
    a = read_state(out)["points"][0]
    as_killed(out, [a["id"]])
    # no engine holds the directory: the listings call it interrupted, not running
    assert listing(out, capsys)[a["id"]] == "interrupted"
    from ddsweep.pipeline.report.collect import load_sweep
    from ddsweep.pipeline.report.cli import _mark_interrupted
    sweep = load_sweep(out)
    _mark_interrupted(sweep)
    [listed] = [r for r in sweep.runs if r.name.endswith(a["id"])]
    assert listed.status == "interrupted" and "its sweep engine died" in listed.error
    # while an engine holds the lock, the point is running: not listed as interrupted, not taken over
    lock = st.Lock(out / ".lock")
    lock.acquire("test")
    try:
        assert listing(out, capsys)[a["id"]] == "running"
        assert run(path, out) == 2
    finally:
        lock.release()
    monkeypatch.setenv("FAKE_LOG", str(log))
    assert main(["--resume", str(out)]) == 0
    assert events(log) == [f"start {a['id']}", f"finish {a['id']}"]
    rec = {p["id"]: p for p in read_state(out)["points"]}[a["id"]]
    assert rec["status"] == "finished" and rec["attempts"] == 2


def test_point_whose_process_outlived_its_engine_is_not_run_twice(tmp_path, write_sweep, monkeypatch, capsys):
    """Where a point survives its engine (no PR_SET_PDEATHSIG, e.g. macOS), the next engine leaves
    it alone until it ends; a pid that now runs something else does not count."""
    log = tmp_path / "events.log"
    out, path = tmp_path / "out", write_sweep(GRID)
    assert run(path, out) == 0
    a, b = read_state(out)["points"][:2]
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", f"--run_name={a['id']}"])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "--run_name=other"])
    try:
        as_killed(out, [a["id"]], pid=orphan.pid)
        as_killed(out, [b["id"]], pid=stranger.pid)
        monkeypatch.setenv("FAKE_LOG", str(log))
        capsys.readouterr()
        assert main(["--resume", str(out)]) == 1
        text = capsys.readouterr().out
        assert f"{a['id']}: its engine died but its process {orphan.pid} still runs it" in text
        assert "1 still running" in text.splitlines()[-1]
        assert events(log) == [f"start {b['id']}", f"finish {b['id']}"]
    finally:
        orphan.kill()
        stranger.kill()
        orphan.wait()
        stranger.wait()
    assert main(["--resume", str(out)]) == 0
    assert events(log)[2:] == [f"start {a['id']}", f"finish {a['id']}"]


def test_shard_never_takes_over_a_live_shards_points(tmp_path, write_sweep, monkeypatch, capsys):
    """Shard 1/2 "runs" on another machine (its locks held here); shard 2/2 runs only its own points
    and the listing shows shard 1's point running; once shard 1's engine is gone it is interrupted."""
    log = tmp_path / "events.log"
    out, path = tmp_path / "out", write_sweep(GRID)
    assert run(path, out, "--shard", "1/2") == 0
    mine = [p["id"] for p in json.loads((out / "state.shard-1-of-2.json").read_text())["points"]]
    as_killed(out, mine[:1], shard=(1, 2), pid=12345678)  # a pid of another machine's numbering
    shard1 = [st.Lock(out / ".lock", shared=True), st.Lock(out / ".lock.shard-1-of-2")]
    for lock in shard1:
        lock.acquire("test")
    try:
        monkeypatch.setenv("FAKE_LOG", str(log))
        assert run(path, out, "--shard", "2/2") == 0
        assert {e.split()[1] for e in events(log)}.isdisjoint(mine)
        assert len(events(log)) == 6
        assert listing(out, capsys)[mine[0]] == "running"
    finally:
        for lock in reversed(shard1):
            lock.release()
    assert listing(out, capsys)[mine[0]] == "interrupted"
    assert run(path, out, "--shard", "1/2") == 0
    assert events(log)[6:] == [f"start {mine[0]}", f"finish {mine[0]}"]


# ----------------------------------------------------------------------------- 3. one shard count

def test_another_shard_count_is_refused_until_the_shards_are_merged(tmp_path, write_sweep, capsys):
    out, path = tmp_path / "out", write_sweep(GRID)
    assert run(path, out, "--shard", "1/2") == 0
    assert json.loads((out / st.SHARDS).read_text())["shards"] == 2
    capsys.readouterr()
    for argv in (["--shard", "1/3"], ["--shard", "3/3", "--dry-run"]):
        assert run(path, out, *argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--shard {argv[1]}: {out} is split into 2 shards" in err
        assert "use --shard I/2" in err
    assert run(path, out, "--shard", "2/2") == 0
    assert run(path, out) == 0  # the whole-sweep engine merges the shards into state.json
    assert not (out / st.SHARDS).exists() and not list(out.glob("state.shard-*"))
    assert set(statuses(out).values()) == {"finished"} and len(statuses(out)) == 6
    assert run(path, out, "--shard", "1/3") == 0


def test_shard_files_from_before_shards_json_set_the_count(tmp_path, write_sweep, capsys):
    out, path = tmp_path / "out", write_sweep(GRID)
    assert run(path, out, "--shard", "2/4") == 0
    (out / st.SHARDS).unlink()
    assert run(path, out, "--shard", "1/2") == 2
    assert "split into 4 shards (recorded by its file state.shard-2-of-4.json)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 7. one W&B group per sweep

def test_points_get_the_sweep_as_their_wandb_group(tmp_path, write_sweep, monkeypatch):
    from ddsweep.pipeline.sweep.local import LocalSweep
    from ddsweep.pipeline.sweep.spec import load_spec

    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    engine = LocalSweep(load_spec(write_sweep(GRID)), tmp_path / "mystudy", workers=1)
    engine.prepare()
    assert engine._env(0)["WANDB_RUN_GROUP"] == "mystudy"
    path = write_sweep(GRID, name="named.yaml")
    path.write_text(path.read_text() + "name: dd-cifar\n")  # the sweep file's own name
    named = LocalSweep(load_spec(path), tmp_path / "x", workers=1)
    named.prepare()
    assert named._env(0)["WANDB_RUN_GROUP"] == "dd-cifar"
    monkeypatch.setenv("WANDB_RUN_GROUP", "mine")  # the user's own group wins
    assert named._env(0)["WANDB_RUN_GROUP"] == "mine"


def test_group_reaches_the_point_process(tmp_path, write_sweep, monkeypatch):
    monkeypatch.delenv("WANDB_RUN_GROUP", raising=False)
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\n"
                     "args = dict(a[2:].split('=', 1) for a in sys.argv[1:])\n"
                     "d = os.path.join(args['output_dir'], args['run_name']); os.makedirs(d)\n"
                     "json.dump({'status': 'finished', 'group': os.environ.get('WANDB_RUN_GROUP')},"
                     " open(os.path.join(d, 'summary.json'), 'w'))\n")
    path = write_sweep({"model.width": {"values": [1]}}, command=["${env}", "${interpreter}", str(probe), "${args}"])
    out = tmp_path / "study"
    assert run(path, out) == 0
    [rec] = read_state(out)["points"]
    assert json.loads((out / rec["run_dir"] / "summary.json").read_text())["group"] == "study"
    assert os.environ.get("WANDB_RUN_GROUP") is None
