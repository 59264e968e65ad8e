"""Sweep files: checks with one-line errors, W&B's schema, grid/random/bayes points, and commands
built exactly as W&B's agent builds them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from sweep_helpers import GRID

from ddsweep.errors import UserError
from ddsweep.pipeline.sweep.spec import (DEFAULT_COMMAND, Point, SweepSpec, build_command, config_args, expand,
                                 load_spec, make_point, propose, validate_points)

REPO = Path(__file__).resolve().parents[3]
CMD = ["${env}", "ddsweep", "train", "${args}"]


def spec_of(tmp_path, text: str, overrides=()) -> SweepSpec:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    return load_spec(path, overrides)


def rejects(tmp_path, config: dict | str, *fragments: str, overrides=()) -> str:
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    with pytest.raises(UserError) as info:
        spec = spec_of(tmp_path, text, overrides)
        validate_points(spec, expand(spec))
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ----------------------------------------------------------------------------- rejected files

@pytest.mark.parametrize("config, fragments", [
    ({"method": "foo", "parameters": {"model.width": {"values": [1]}}, "command": CMD},
     ["method: 'foo' is not a sweep method; choose one of grid, random, bayes"]),
    ({"parameters": {"model.width": {"values": [1]}}, "command": CMD}, ["method: missing"]),
    ({"method": "grid", "command": CMD}, ["parameters: needs"]),
    ({"method": "grid", "parameters": {"model.width": {}}, "command": CMD},
     ["parameters.model.width: needs 'values', 'value' or a distribution"]),
    ({"method": "grid", "parameters": {"model.width": {"values": []}}, "command": CMD},
     ["parameters.model.width.values: must be a non-empty list"]),
    ({"method": "grid", "parameters": {"model.width": 4}, "command": CMD},
     ["parameters.model.width: must be a mapping"]),
    ({"method": "grid", "parameters": {"model.widht": {"values": [1, 2]}}, "command": CMD},
     ["parameters.model.widht: unknown key"]),
    ({"method": "grid", "parameters": {"trian.epochs": {"values": [1, 2]}}, "command": CMD},
     ["parameters.trian.epochs", "unknown key"]),
    ({"method": "grid", "parameters": {"model.width": {"values": [4, 0]}}, "command": CMD},
     ["parameters.model.width: must be >= 1, got 0"]),
    ({"method": "grid", "parameters": {"model.width": {"values": [4]}}, "command": CMD, "bogus": 1},
     ["Additional properties are not allowed ('bogus' was unexpected)", "W&B sweep schema"]),
    ({"method": "grid", "parameters": {"model.width": {"min": 5, "max": 1}}, "command": CMD},
     ["model.width: min 5 is not less than max 1", "W&B sweep schema"]),
    ({"method": "grid", "parameters": {"train.lr": {"distribution": "uniform", "min": 0.1, "max": 0.2}},
      "command": CMD}, ["parameters.train.lr: grid search needs"]),
    ({"method": "random", "parameters": {"model.width": {"values": [1, 2]}}, "command": CMD},
     ["run_cap: method random draws points forever"]),
    ({"method": "bayes", "parameters": {"model.width": {"values": [1, 2]}}, "command": CMD},
     ["metric: method bayes needs metric"]),
    ({"method": "grid", "parameters": {"model.width": {"values": [1, 2]}}},
     ["program: missing, and the command uses ${program}"]),
    ({"method": "grid", "program": "ddsweep", "parameters": {"model.width": {"values": [1, 2]}}},
     ["command: '${interpreter} ${program}' runs 'python ddsweep'"]),
    ({"method": "grid", "parameters": {"model.width": {"values": [1, 2]}}, "command": ["ddsweep", "train"]},
     ["command: has no ${args}"]),
    ({"method": "grid", "parameters": {"model.width": {"values": [1, 2]}}, "command": ["ddsweep", "${arg}"]},
     ["command: '${arg}': W&B's agent expands only whole items"]),
    ({"method": "grid", "parameters": {"model.width": {"values": [1, 2]}}, "command": ["ddsweep", "--x=${args}"]},
     ["command: '--x=${args}'"]),
    ({"method": "grid", "parameters": {"output_dir": {"values": ["a", "b"]}}, "command": CMD},
     ["parameters.output_dir: is set by ddsweep sweep"]),
    ({"method": "grid", "parameters": {"model": {"parameters": {"width": {"values": [1]}}}}, "command": CMD},
     ["parameters.model: nested parameters are not supported"]),
])
def test_malformed_sweep_is_rejected_with_file_key_and_reason(tmp_path, config, fragments):
    message = rejects(tmp_path, config, *fragments)
    assert message.startswith(str(tmp_path / "x.yaml") + ": ")


@pytest.mark.parametrize("text, fragment", [
    ("method: grid\nparameters: [1\n", "not valid YAML (line 3)"),
    ("- just\n- a list\n", "a sweep file is a YAML mapping"),
    ("", "a sweep file is a YAML mapping"),
    ("method: grid\nparameters:\n  model.width: {values: [1, 2]}\ncommand: [${env}, ddsweep, ${args}]\n",
     "a macro must be quoted"),
])
def test_bad_yaml_is_rejected(tmp_path, text, fragment):
    rejects(tmp_path, text, fragment)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such sweep file"):
        load_spec(tmp_path / "nope.yaml")


def test_bad_override_is_blamed_on_the_override(tmp_path):
    config = {"method": "grid", "parameters": {"model.width": {"values": [1, 2]}}, "command": CMD}
    rejects(tmp_path, config, "override --trian.epochs=1: trian: unknown key", overrides=["--trian.epochs=1"])
    rejects(tmp_path, config, "train.epochs: must be >= 1", overrides=["--train.epochs=0"])
    rejects(tmp_path, config, "--run_name=x: run_name is set by ddsweep sweep", overrides=["--run_name=x"])


# ----------------------------------------------------------------------------- points

def test_grid_order_and_count_follow_wandbs_engine(tmp_path, write_sweep):
    spec = load_spec(write_sweep(dict(GRID, **{"train.lr": {"value": 0.01}})))
    points = expand(spec)
    assert len(points) == 6
    # W&B's grid: parameters sorted by name, the last one varying fastest; constants in every point
    assert [(p.params["data.noise.rate"], p.params["model.width"]) for p in points] == [
        (0.0, 1), (0.0, 2), (0.0, 4), (0.2, 1), (0.2, 2), (0.2, 4)]
    assert all(p.params["train.lr"] == 0.01 for p in points)
    assert [p.index for p in points] == list(range(6))
    assert points[4].id == "p004-model.width=2-data.noise.rate=0.2"
    assert expand(spec) == points  # deterministic


def test_grid_cap_from_max_points_and_run_cap(tmp_path, write_sweep):
    spec = load_spec(write_sweep(GRID, run_cap=4))
    assert len(expand(spec)) == 4
    assert [p.id for p in expand(spec, max_points=2)] == [p.id for p in expand(spec)[:2]]


def test_grid_int_uniform_range(tmp_path, write_sweep):
    spec = load_spec(write_sweep({"model.width": {"distribution": "int_uniform", "min": 2, "max": 5}}))
    assert [p.params["model.width"] for p in expand(spec)] == [2, 3, 4, 5]


def test_random_is_deterministic_for_a_seed(tmp_path, write_sweep):
    spec = load_spec(write_sweep({"train.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                                  "model.width": {"values": [1, 2, 4, 8]},
                                  "data.noise.rate": {"distribution": "uniform", "min": 0.0, "max": 0.5}},
                                 method="random"))
    a, b, c = expand(spec, seed=3, max_points=8), expand(spec, seed=3, max_points=8), expand(spec, seed=4, max_points=8)
    assert a == b and a != c
    assert expand(spec, seed=3, max_points=3) == a[:3]  # a larger cap extends, never reshuffles
    for p in a:
        assert 1e-4 <= p.params["train.lr"] <= 1e-1 and type(p.params["train.lr"]) is float
        assert p.params["model.width"] in (1, 2, 4, 8) and type(p.params["model.width"]) is int
        assert 0.0 <= p.params["data.noise.rate"] <= 0.5
    validate_points(spec, a)


def test_bayes_proposes_from_results_offline(tmp_path, write_sweep):
    spec = load_spec(write_sweep({"model.width": {"values": [1, 2, 4, 8]},
                                  "train.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}},
                                 method="bayes", run_cap=5))
    with pytest.raises(UserError, match="cannot be listed in advance"):
        expand(spec)
    history = []
    for i in range(4):
        point = propose(spec, i, history, seed=1)
        assert point.index == i and set(point.params) == {"model.width", "train.lr"}
        history.append((point.params, "finished", {"test/error": 1.0 / point.params["model.width"]}))
    assert propose(spec, 4, history, seed=1) == propose(spec, 4, history, seed=1)


def test_point_ids_are_readable_stable_and_bounded(tmp_path, write_sweep):
    spec = load_spec(write_sweep({"model.width": {"values": [1, 2]}, "train.optimizer": {"values": ["adam", "sgd"]},
                                  "seeds": {"values": [[0, 1], [2, 3]]}, "train.lr": {"value": 0.1}}))
    ids = [p.id for p in expand(spec)]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "p000-model.width=1-train.optimizer=adam-seeds=_0__1_"  # constants are left out
    long = make_point(spec, 7, {"model.width": 1, "train.optimizer": "x" * 200, "seeds": [0]})
    assert len(long.id) <= 80 and long.id.startswith("p007-model.width=1-")
    assert make_point(spec, 7, {"model.width": 1, "train.optimizer": "x" * 200, "seeds": [0]}) == long
    assert make_point(spec, 7, {"model.width": 1, "train.optimizer": "x" * 201, "seeds": [0]}).id != long.id


# ----------------------------------------------------------------------------- commands

def wandb_agent_command(spec: SweepSpec, point: Point) -> list[str]:
    """What wandb/wandb_agent.py's Agent._command_run runs for a point (non-Windows)."""
    from wandb.sdk.launch.sweeps import utils as sweep_utils

    sweep_command = sweep_utils.create_sweep_command(list(spec.command))
    sweep_vars = sweep_utils.create_sweep_command_args({"args": {k: {"value": v} for k, v in point.params.items()}})
    sweep_vars["interpreter"] = ["python"]
    sweep_vars["program"] = [spec.config.get("program")]
    sweep_vars["args_json_file"] = ["CONFIG.json"]
    sweep_vars["env"] = ["/usr/bin/env"]
    out = []
    for c in sweep_command:
        c = str(c)
        out += (sweep_vars.get(c[2:-1]) or []) if c.startswith("${") and c.endswith("}") else [c]
    return out


def test_args_formatted_like_wandbs_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_FLAG", "--quiet")
    spec = spec_of(tmp_path, yaml.safe_dump({
        "method": "grid", "program": "train.py",
        "parameters": {"train.lr": {"value": 0.0001}, "data.noise.rate": {"value": 0.25},
                       "train.compile": {"value": False}, "train.fuse_seeds": {"value": True},
                       "seeds": {"value": [0, 1, 2]}, "model.name": {"value": "mlpk"},
                       "repro.shuffle_window": {"value": None}},
        "command": ["${env}", "${interpreter}", "${program}", "${envvar:MY_FLAG}", "${args}", "${args_no_hyphens}",
                    "${args_no_boolean_flags}", "${args_json}", "${args_json_file}"]}))
    point = expand(spec)[0]
    argv = build_command(spec, point, args_json_file="CONFIG.json")
    expected = wandb_agent_command(spec, point)
    expected[1] = sys.executable  # ${interpreter}: this Python rather than `python` from PATH
    assert argv == expected
    assert "--train.lr=0.0001" in argv and "--train.compile=False" in argv and "--seeds=[0, 1, 2]" in argv
    assert "--repro.shuffle_window=None" in argv and "--quiet" in argv
    assert "train.lr=0.0001" in argv  # ${args_no_hyphens}
    assert "--train.fuse_seeds" in argv and not any(a.startswith("--train.compile") and "=" not in a for a in argv)
    assert json.loads(argv[argv.index("CONFIG.json") - 1])["seeds"] == [0, 1, 2]  # ${args_json}


def test_default_command_is_wandbs(tmp_path):
    spec = spec_of(tmp_path, yaml.safe_dump({"method": "grid", "program": "train.py",
                                             "parameters": {"model.width": {"values": [3]}}}))
    assert spec.command == DEFAULT_COMMAND
    assert build_command(spec, expand(spec)[0]) == ["/usr/bin/env", sys.executable, "train.py", "--model.width=3"]


def test_ddsweep_resolves_to_this_python_and_overrides_come_last(tmp_path):
    text = yaml.safe_dump({"method": "grid", "program": "ddsweep",
                           "parameters": {"model.width": {"values": [2, 4]}, "train.epochs": {"value": 5}},
                           "command": ["${env}", "${program}", "train", "${args}"]})
    spec = spec_of(tmp_path, text, overrides=["--train.epochs=1"])
    argv = build_command(spec, expand(spec)[1], ["--output_dir=o", "--run_name=r"])
    assert argv == ["/usr/bin/env", sys.executable, "-m", "ddsweep", "train", "--model.width=4",
                    "--train.epochs=5", "--train.epochs=1", "--output_dir=o", "--run_name=r"]
    # the override wins in the training config, and sweep.yaml carries it in the command
    from ddsweep.pipeline.config import load_config
    assert load_config(None, config_args(spec, expand(spec)[1])[1]).train.epochs == 1
    assert spec.effective()["command"][-1] == "--train.epochs=1"


def test_config_file_in_command_is_used_for_validation(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  name: mlpk\ntrain:\n  epochs: 0\n")
    text = yaml.safe_dump({"method": "grid", "parameters": {"model.width": {"values": [2]}},
                           "command": ["ddsweep", "train", "--config", str(tmp_path / "base.yaml"), "${args}"]})
    with pytest.raises(UserError, match="train.epochs: must be >= 1"):
        spec = spec_of(tmp_path, text)
        validate_points(spec, expand(spec))


# ----------------------------------------------------------------------------- the project's sweep files

SWEEP_FILES = sorted((REPO / "sweeps").glob("*.yaml")) + sorted((REPO / "sweeps").glob("*.yml"))


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_every_sweep_file_is_valid_and_expands(path, tmp_path, capsys):
    from ddsweep.pipeline.sweep import main

    spec = load_spec(path)
    if spec.method != "bayes":
        points = expand(spec, max_points=None if spec.method == "grid" else 5)
        assert points
        validate_points(spec, points)
    assert main([str(path), "--dry-run", "--max-points", "3", "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "ddsweep train" in out or spec.config.get("program") not in (None, "ddsweep")
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
