"""Output paths that cannot be written, found before any work: `ddsweep sweep --output`, `ddsweep
report --out` and `ddsweep plane --out` given a file, a place under a file, a read-only directory,
or a directory where a file is to be written end in one line (exit code 2) and leave nothing
behind; `ddsweep plane --resolution` too large for memory is refused the same way. Also: the
printed `wandb sync` hint is safe to paste into a shell."""
from __future__ import annotations

import contextlib
import io
import os
import shlex
from pathlib import Path

import pytest
import yaml

from ddsweep.pipeline import cli
from ddsweep.pipeline.store import outputs

SWEEP = {"method": "grid", "parameters": {"model.width": {"values": [1, 2]}},
         "command": ["${env}", "ddsweep", "train", "${args}"]}


def ddsweep(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
    return code, err.getvalue()


def one_line(code: int, err: str, *parts: str) -> None:
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("ddsweep") and all(p in err for p in parts), err


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A file, a read-only directory (read-only for root too: `writable` is told so) and a sweep file."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.geteuid() == 0:  # root writes through permission bits
        real = outputs.writable
        monkeypatch.setattr(outputs, "writable", lambda p: real(p) and Path(p).resolve() != read_only.resolve())
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(SWEEP))
    yield {"file": a_file, "ro": read_only, "sweep": sweep}
    read_only.chmod(0o755)


def test_sweep_output_paths(places, tmp_path, fault_log):
    f, ro, sweep = places["file"], places["ro"], places["sweep"]
    cases = [
        (["--output", f], [f"--output {f}: is a file; give a directory"]),
        (["--output", f / "sub"], [f"--output {f / 'sub'}: {f} is a file, so no directory can be made"]),
        (["--output", ro], [f"--output {ro}: is not writable"]),
        (["--output", ro / "new" / "dir"], [f"--output {ro / 'new' / 'dir'}: is not writable ({ro}, where"]),
    ]
    for extra, parts in cases:
        fault_log.case()
        one_line(*ddsweep("sweep", sweep, "--local", *extra), *parts)
    out = tmp_path / "out"
    (out / "state.json").mkdir(parents=True)
    one_line(*ddsweep("sweep", sweep, "--local", "--output", out),
             f"{out / 'state.json'} is a directory where a file was expected")
    (out / "state.json").rmdir()
    (out / "runs").write_text("")
    one_line(*ddsweep("sweep", sweep, "--local", "--output", out), f"--output {out}: {out / 'runs'}: is a file")
    one_line(*ddsweep("sweep", "--resume", f), f"--resume {f}: is a file")
    assert sorted(p.name for p in out.iterdir()) == ["runs"] and not (tmp_path / "runs").exists()
    # a dry run writes nothing, so a read-only directory is fine for it
    assert ddsweep("sweep", sweep, "--dry-run", "--output", ro / "x")[0] == 0
    fault_log.case(3)


def test_report_out_paths(places, tmp_path, fault_log):
    f, ro = places["file"], places["ro"]
    runs = tmp_path / "runs"
    runs.mkdir()
    one_line(*ddsweep("report", runs, "--out", f), f"--out {f}: is a file")
    one_line(*ddsweep("report", runs, "--out", ro), f"--out {ro}: is not writable")
    one_line(*ddsweep("report", ro), f"--out (default RUNS_DIR/report) {ro / 'report'}: is not writable")
    out = tmp_path / "report"
    (out / "errors.png").mkdir(parents=True)
    one_line(*ddsweep("report", runs, "--out", out), f"{out / 'errors.png'} is a directory where a file was expected")
    fault_log.case(4)


@pytest.fixture
def saved_run(tmp_path) -> Path:
    """What `ddsweep plane` reads before loading anything: a run directory's config.yaml (3 seeds)
    and a checkpoint file (never loaded here)."""
    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not loaded")
    (run / "config.yaml").write_text(yaml.safe_dump({"seeds": [0, 1, 2], "planes": {"families": ["train"]}}))
    return run


def test_plane_out_paths_and_resolution(places, saved_run, tmp_path, monkeypatch, fault_log):
    f, ro = places["file"], places["ro"]
    one_line(*ddsweep("plane", saved_run, "--out", f), f"--out {f}: is a file")
    one_line(*ddsweep("plane", saved_run, "--out", ro), f"--out {ro}: is not writable")
    out = tmp_path / "planes"
    (out / "r1_train_0_final.npz").mkdir(parents=True)
    one_line(*ddsweep("plane", saved_run, "--out", out),
             f"{out / 'r1_train_0_final.npz'} is a directory where a file was expected")
    # 3 seeds x 2 planes x 20000² pixels x 16 bytes = 38.4e9 bytes: over 2 GiB
    one_line(*ddsweep("plane", saved_run, "--resolution", 20000, "--index", 0, 1, "--out", tmp_path / "p2"),
             "--resolution 20000: the label maps of", "(2 plane(s) x 3 seed(s)) need about 35.8 GiB",
             "over the limit of 2 GiB", "use --resolution 4729 or less")
    # the limit is the available memory when that is less
    monkeypatch.setattr(outputs, "available_memory", lambda: 1 << 28)
    one_line(*ddsweep("plane", saved_run, "--resolution", 3000, "--out", tmp_path / "p2"),
             "need about 0.402 GiB, over the limit of 0.25 GiB (the memory available now)",
             "use --resolution 2364 or less")
    assert not (tmp_path / "p2").exists()
    fault_log.case(5)


def test_wandb_sync_hint_is_shell_quoted(tmp_path):
    from ddsweep.pipeline.store.tracking import Tracker

    run_dir = tmp_path / "a run; rm -rf x" / "it's"
    tracker = Tracker("disabled", project="p", entity=None, group=None, tags=[], run_dir=run_dir, run_id="i",
                      name="n", config={})
    command = tracker.sync_command()
    assert command == f"wandb sync {shlex.quote(str(run_dir / 'wandb'))}/offline-run-*"
    assert shlex.split(command) == ["wandb", "sync", f"{run_dir / 'wandb'}/offline-run-*"]
