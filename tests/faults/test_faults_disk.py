"""Disk full (ENOSPC, simulated at the write calls) and unwritable output directories: the run stops
with a clear one-line error naming the path, leaves no partial file that a resume could take for a
complete one, and a resume afterwards ends equal to an uninterrupted run."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from faults_helpers import TINY, assert_same_run, summary, temporaries, train

from ddsweep.pipeline import cli


class FullDisk:
    """A file object that writes the first half of what it is given, then fails with ENOSPC."""

    def __init__(self, fh, path):
        self._fh, self._path = fh, str(path)

    def write(self, data):
        self._fh.write(data[: len(data) // 2])
        self._fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


def fill_disk_on(monkeypatch, module, name: str, nth: int = 1) -> dict:
    """Make the `nth` open() of a file called `name` for writing inside `module` hit a full disk."""
    real_open = open
    seen = {"n": 0, "hit": None}

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if Path(file).name == name and any(m in mode for m in "wa"):
            seen["n"] += 1
            if seen["n"] == nth:
                seen["hit"] = Path(file)
                return FullDisk(fh, file)
        return fh

    monkeypatch.setattr(module, "open", fake_open, raising=False)
    return seen


def rows_complete(run):
    """The rows a resume sees (a torn last line is not one)."""
    from ddsweep.pipeline.store.rundir import RunDir

    return RunDir(run).read_metrics()


def one_line_error(err: str, path) -> str:
    lines = [line for line in err.splitlines() if line.startswith("ddsweep: error:")]
    assert len(lines) == 1 and str(path) in lines[0], err
    assert "Traceback" not in err, err
    return lines[0]


def test_output_dir_under_a_file_is_refused_before_any_work(tmp_path, capsys, fault_log):
    """Root can write anywhere chmod forbids; nobody can create a directory inside a regular file."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = blocker / "runs"
    code = cli.main(["train", *TINY, f"--output_dir={out}", "--run_name=r"])
    err = capsys.readouterr().err
    fault_log.fault("unwritable output_dir")
    assert code == 2
    line = one_line_error(err, out / "r")
    assert "Not a directory" in line and err.count("\n") == 1
    assert blocker.read_text() == "not a directory"
    fault_log.case()


def test_run_directory_part_that_is_a_file_is_named(tmp_path, capsys, fault_log):
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "checkpoints").write_text("in the way")
    code = cli.main(["train", *TINY, f"--output_dir={tmp_path / 'runs'}", "--run_name=r"])
    err = capsys.readouterr().err
    fault_log.fault("unwritable output_dir")
    assert code == 2 and err.count("\n") == 1
    one_line_error(err, run / "checkpoints")
    assert not (run / "metrics.jsonl").exists()
    fault_log.case()


def test_disk_full_while_appending_metrics(interrupted, tmp_path, capsys, monkeypatch, fault_log):
    import ddsweep.pipeline.store.rundir

    reference, _ = interrupted
    seen = fill_disk_on(monkeypatch, ddsweep.pipeline.store.rundir, "metrics.jsonl", nth=2)  # epoch 2's row
    code, run = train(tmp_path, "full")
    err = capsys.readouterr().err
    fault_log.fault("disk full: metrics.jsonl")
    assert seen["hit"] == run / "metrics.jsonl"
    assert code == 1
    line = one_line_error(err, run / "metrics.jsonl")
    assert "No space left on device" in line
    s = summary(run)
    assert s["status"] == "failed" and str(run / "metrics.jsonl") in s["error"] and s["epochs_completed"] == 1
    text = (run / "metrics.jsonl").read_text()
    assert not text.endswith("\n")  # the torn half row is there...
    assert [r["epoch"] for r in rows_complete(run)] == [1]  # ...and never read as a row
    assert not temporaries(tmp_path)
    monkeypatch.undo()
    code, run = train(tmp_path, "full")
    assert code == 0
    assert_same_run(run, reference, 3)
    fault_log.case()


def test_disk_full_while_writing_a_checkpoint(interrupted, tmp_path, capsys, monkeypatch, fault_log):
    """The half-written temporary file is removed, last.ckpt keeps the previous epoch and still
    matches its recorded digest, and the resume continues from it."""
    import lightning.fabric.plugins.io.torch_io as torch_io

    from ddsweep.pipeline.store.rundir import RunDir, file_digest

    reference, _ = interrupted
    real_save = torch_io._atomic_save
    calls = {"n": 0}

    def save(checkpoint, filepath):
        calls["n"] += 1
        if calls["n"] < 2:
            return real_save(checkpoint, filepath)
        with open(filepath, "wb") as fh:
            fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(torch_io, "_atomic_save", save)
    code, run = train(tmp_path, "full")
    err = capsys.readouterr().err
    fault_log.fault("disk full: checkpoint")
    last = run / "checkpoints" / "last.ckpt"
    assert code == 1
    line = one_line_error(err, last)
    assert "No space left on device" in line
    s = summary(run)
    assert s["status"] == "failed" and str(last) in s["error"]
    assert not temporaries(tmp_path)
    assert not (run / "checkpoints" / "prev.ckpt").exists()
    assert torch.load(last, weights_only=True)["ddsweep"]["epochs_completed"] == 1
    assert file_digest(last) in RunDir(run).checkpoint_digests()
    monkeypatch.undo()
    code, run = train(tmp_path, "full")
    assert code == 0 and "resuming after epoch 1 from last.ckpt" in capsys.readouterr().out
    assert_same_run(run, reference, 3)
    fault_log.case()


@pytest.mark.parametrize("name", ["summary.json", "digests.json", "metrics.jsonl"])
def test_disk_full_in_an_atomic_write_keeps_the_old_file(tmp_path, capsys, monkeypatch, name, fault_log):
    """summary.json (each status change), digests.json (each checkpoint) and metrics.jsonl (cut back
    at resume) are replaced atomically: a full disk leaves the old version whole and no temporary."""
    import ddsweep.pipeline.store.rundir

    from ddsweep.pipeline.store.rundir import RunDir

    run = RunDir(tmp_path / "r")
    run.create()
    run.write_summary(status="running")
    run.remember_checkpoint("a" * 64, 1)
    run.append_metrics({"epoch": 1, "x": 1.0})
    run.append_metrics({"epoch": 2, "x": 2.0})
    before = {p.name: p.read_bytes() for p in (run.summary_path, run.digests_path, run.metrics_path)}
    fill_disk_on(monkeypatch, ddsweep.pipeline.store.rundir, f".{name}.tmp{os.getpid()}")
    action = {"summary.json": lambda: run.write_summary(status="finished"),
              "digests.json": lambda: run.remember_checkpoint("b" * 64, 2),
              "metrics.jsonl": lambda: run.truncate_metrics(1)}[name]
    with pytest.raises(ddsweep.pipeline.store.rundir.UserError) as info:
        action()
    fault_log.fault(f"disk full: {name}")
    path = run.digests_path if name == "digests.json" else tmp_path / "r" / name
    assert f"cannot write {path}: No space left on device" == str(info.value)
    after = {p.name: p.read_bytes() for p in (run.summary_path, run.digests_path, run.metrics_path)}
    assert after == before
    assert not temporaries(tmp_path)
    fault_log.case()


def test_disk_full_while_drawing_a_picture(tmp_path, capsys, monkeypatch, fault_log):
    """A plane picture that cannot be written: one line naming it, no traceback, no temporary."""
    from PIL import Image

    def save(self, fp, *args, **kwargs):  # training-time pictures are Pillow images (ddsweep.pipeline.viz.quicklook)
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(fp))

    monkeypatch.setattr(Image.Image, "save", save)
    code, run = train(tmp_path, "pictures", ["--planes.draw=1", "--planes.draw_resolution=8",
                                             "--train.epochs=1"])
    err = capsys.readouterr().err
    fault_log.fault("disk full: picture")
    assert code == 1
    line = one_line_error(err, run / "planes")
    assert "No space left on device" in line
    s = summary(run)
    assert s["status"] == "failed" and str(run / "planes") in s["error"]
    assert not temporaries(tmp_path)
    fault_log.case()
