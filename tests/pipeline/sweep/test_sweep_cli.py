"""`ddsweep sweep` arguments: help, one-line errors with exit code 2."""
from __future__ import annotations

import pytest
from sweep_helpers import GRID

from ddsweep.pipeline.sweep import main


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: ddsweep sweep")
    for flag in ("--local", "--agents", "--workers", "--max-points", "--output", "--resume", "--slurm",
                 "--partition", "--gpus-per-job", "--timeout-min", "--dry-run", "--seed", "--shard"):
        assert flag in text
    assert "The sweep file's command is executed as given, for every point: run only sweep files you trust." in text


@pytest.mark.parametrize("argv, message", [
    ([], "give a sweep FILE, or --resume DIR"),
    (["nope.yaml"], "nope.yaml: no such sweep file"),
    (["--resume", "nowhere"], "--resume nowhere: not a sweep directory"),
])
def test_user_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"ddsweep: error: {message}\n" or (err.startswith("ddsweep: error: ") and message in err
                                                     and err.count("\n") == 1)


@pytest.mark.parametrize("extra", [["--train.epochs", "1"], ["--workers", "0"], ["--bogus"]])
def test_bad_arguments_exit_2(tmp_path, write_sweep, extra, capsys):
    with pytest.raises(SystemExit) as info:
        main([str(write_sweep(GRID)), *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ddsweep: error: ") and err.count("\n") == 1 and "ddsweep sweep --help" in err


def test_through_the_ddsweep_cli(tmp_path, write_sweep, capsys, monkeypatch):
    monkeypatch.setattr("ddsweep.pipeline.config.validate", lambda cfg: None)
    from ddsweep.pipeline.cli import main as ddsweep

    assert ddsweep(["sweep", str(write_sweep(GRID)), "--dry-run", "--output", str(tmp_path / "o")]) == 0
    assert "6 point(s)" in capsys.readouterr().out
