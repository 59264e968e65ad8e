"""Every command answers --help, and an unknown command is one line."""
import pytest

from ddsweep.pipeline.cli import main


@pytest.mark.parametrize("command", ["train", "sweep", "report", "plane", "dashboard"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"ddsweep {command}" in capsys.readouterr().out


def test_top_level_help_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert main(["fly"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command" in err
