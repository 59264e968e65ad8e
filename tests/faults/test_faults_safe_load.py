"""Safe loading: a checkpoint carrying a pickled object that would run code is refused (weights only)
and the run falls back, saying so; YAML with Python tags is rejected in one line (safe loading); the
sweep engine passes parameter values as arguments, never through a shell. In every case the planted
payload (it creates a directory) must not run."""
from __future__ import annotations

import json
import os
import sys

import pytest
import torch
import yaml
from faults_helpers import TINY, assert_same_run, copy_run, train

from ddsweep.pipeline import cli


class Payload:
    """Unpickling this calls os.mkdir(marker): the stand-in for arbitrary code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def plant_checkpoint(path, marker) -> None:
    torch.save({"ddsweep": {"epochs_completed": 2}, "state_dict": {}, "payload": Payload(marker)}, path)


def test_payload_really_runs_when_unpickled(tmp_path):
    """The test's own check that the planted file is dangerous: a full unpickling runs it."""
    path, marker = tmp_path / "evil.ckpt", tmp_path / "ran"
    plant_checkpoint(path, marker)
    torch.load(path, weights_only=False)
    assert marker.is_dir()


@pytest.mark.parametrize("recorded", [False, True], ids=["digest-mismatch", "digest-recorded"])
def test_checkpoint_with_code_is_refused_and_run_falls_back(interrupted, tmp_path, capsys, recorded, fault_log):
    """recorded=True adds the planted file's sha256 to digests.json (an attacker who rewrote both),
    so weights-only loading is what stops it."""
    reference, part = interrupted
    out, run = copy_run(part, tmp_path)
    last, marker = run / "checkpoints" / "last.ckpt", tmp_path / "pwned"
    plant_checkpoint(last, marker)
    if recorded:
        from ddsweep.pipeline.store.rundir import RunDir, file_digest

        RunDir(run).remember_checkpoint(file_digest(last), 2, keep=10)
    fault_log.fault("pickle payload in checkpoint")
    code, run = train(out, run.name)
    captured = capsys.readouterr()
    assert not marker.exists()
    assert code == 0, captured.err
    warning = [line for line in captured.err.splitlines() if str(last) in line]
    assert len(warning) == 1 and "trying an older one" in warning[0]
    assert ("UnpicklingError" in warning[0]) == recorded
    assert f"{run}: resuming after epoch 1 from prev.ckpt" in captured.out
    assert_same_run(run, reference, 3)
    fault_log.case()


def test_plane_command_refuses_a_checkpoint_with_code(interrupted, tmp_path, capsys, fault_log):
    _, part = interrupted
    out, run = copy_run(part, tmp_path)
    marker = tmp_path / "pwned"
    plant_checkpoint(run / "checkpoints" / "last.ckpt", marker)
    fault_log.fault("pickle payload in checkpoint")
    code = cli.main(["plane", str(run), "--out", str(tmp_path / "planes"), "--resolution", "8"])
    err = capsys.readouterr().err
    assert not marker.exists()
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "last.ckpt" in lines[0], err
    fault_log.case()


TAGS = ["!!python/object/apply:os.mkdir [{m}]", "!!python/object/new:os.mkdir [{m}]",
        "!!python/name:os.system", "!!python/object:ddsweep.pipeline.config.Config {{}}"]


@pytest.mark.parametrize("tag", TAGS)
def test_config_yaml_with_python_tags_is_rejected(tmp_path, capsys, tag, fault_log):
    marker = tmp_path / "pwned"
    text = tag.format(m=json.dumps(str(marker)))
    config = tmp_path / "config.yaml"
    config.write_text(f"model:\n  width: {text}\n")
    as_file = cli.main(["train", "--config", str(config), *TINY, f"--output_dir={tmp_path / 'runs'}"])
    err_file = capsys.readouterr().err
    as_override = cli.main(["train", *TINY, f"--model.width={text}", f"--output_dir={tmp_path / 'runs'}"])
    err_override = capsys.readouterr().err
    fault_log.fault("python tag in YAML", 2)
    assert not marker.exists() and not (tmp_path / "runs").exists()
    for code, err, name in ((as_file, err_file, "config.yaml"), (as_override, err_override, "model.width")):
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and name in lines[0] and "Traceback" not in err, err
    fault_log.case(2)


def test_run_directory_config_with_python_tag_is_refused(interrupted, tmp_path, capsys, fault_log):
    """A tampered config.yaml in a run directory: the resume refuses it in one line, runs nothing."""
    _, part = interrupted
    out, run = copy_run(part, tmp_path)
    marker = tmp_path / "pwned"
    saved = run / "config.yaml"
    saved.write_text(f"model: !!python/object/apply:os.mkdir [{json.dumps(str(marker))}]\n" + saved.read_text())
    fault_log.fault("python tag in YAML")
    code = cli.main(["train", *TINY, f"--output_dir={out}", f"--run_name={run.name}"])
    err = capsys.readouterr().err
    assert not marker.exists()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and str(saved) in lines[0] and "Traceback" not in err, err
    fault_log.case()


FAKE_PROGRAM = """\
import json, os, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run = os.path.join(args["output_dir"], args["run_name"])
os.makedirs(run, exist_ok=True)
json.dump(sys.argv[1:], open(os.path.join(run, "argv.json"), "w"))
json.dump({"status": "finished", "metrics": {}}, open(os.path.join(run, "summary.json"), "w"))
"""


def test_sweep_values_reach_the_program_verbatim_never_a_shell(tmp_path, capsys, fault_log):
    from ddsweep.pipeline.sweep import main as sweep_main

    markers = [tmp_path / f"m{i}" for i in range(7)]
    payloads = [f"$(mkdir {markers[0]})", f"; mkdir {markers[1]}", f"`mkdir {markers[2]}`",
                f"x' && mkdir {markers[3]} && echo '", f"| mkdir {markers[4]}", f"\nmkdir {markers[5]}",
                f"\" ; mkdir {markers[6]} ; \""]
    program = tmp_path / "program.py"
    program.write_text(FAKE_PROGRAM)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"method": "grid", "parameters": {"wandb.group": {"values": payloads}},
                                     "command": ["${env}", "${interpreter}", str(program), "${args}"]}))
    fault_log.fault("shell payload in a sweep value", len(payloads))
    out = tmp_path / "out"
    assert sweep_main([str(sweep), "--local", "--workers", "1", "--output", str(out)]) == 0, capsys.readouterr()
    assert not [m for m in markers if m.exists()]
    state = json.loads((out / "state.json").read_text())
    got = {}
    for rec in state["points"]:
        argv = json.loads((out / rec["run_dir"] / "argv.json").read_text())
        assert argv == rec["args"][rec["args"].index(str(program)) + 1:]  # what the engine ran, as given
        got[rec["params"]["wandb.group"]] = [a for a in argv if a.startswith("--wandb.group=")]
    assert got == {p: [f"--wandb.group={p}"] for p in payloads}
    assert sys.executable in state["points"][0]["args"]
    fault_log.case(len(payloads))
