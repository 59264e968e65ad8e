"""Fused sweep points (pipeline/sweep/fuse.py): which points train as one group, the group's
command, shards by group, W&B agent runs as groups, and a real local sweep of fused groups."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from sweep_helpers import read_state, statuses

from ddsweep.pipeline.store.tracking import Tracker
from ddsweep.pipeline.sweep import main
from ddsweep.pipeline.sweep.fuse import fused_wandb_config, group_file_text, point_groups
from ddsweep.pipeline.sweep.local import LocalSweep, member_returncode
from ddsweep.pipeline.sweep.spec import expand, load_spec

TINY = {"model.name": {"value": "mlpk"}, "data.name": {"value": "digits"}, "train.epochs": {"value": 1},
        "train.batch_size": {"value": 512}, "seeds": {"value": [0, 1]}, "planes.n_planes": {"value": 2},
        "planes.resolution": {"value": 8}, "planes.agreement_triplets": {"value": 4}, "planes.draw": {"value": 0},
        "regions1d.pairs": {"value": 3}, "regions1d.points": {"value": 8}, "wandb.mode": {"value": "disabled"}}
GRID = {"model.width": {"values": [4, 8]}, "data.noise.rate": {"values": [0.0, 0.2]}}


def sweep_file(tmp_path, parameters, command=("ddsweep", "train", "${args}"), name="s.yaml", **top):
    path = tmp_path / name
    config = {"name": "fuse", "method": "grid", "command": list(command), "parameters": {**TINY, **parameters}, **top}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def groups_of(spec, enabled=True):
    return [[p.params.get("data.noise.rate") for p in g] for g in point_groups(spec, expand(spec), enabled)]


def test_points_that_differ_only_in_noise_and_seeds_fuse(tmp_path):
    spec = load_spec(sweep_file(tmp_path, GRID))
    groups = point_groups(spec, expand(spec))
    assert [[p.index for p in g] for g in groups] == [[0, 2], [1, 3]]  # by width, in point order
    assert {p.params["model.width"] for p in groups[0]} == {4}
    seeds = load_spec(sweep_file(tmp_path, {"model.width": {"values": [4]}, "seeds": {"values": [[0, 1], [2, 3]]},
                                            "data.noise.rate": {"values": [0.0, 0.1]}}, name="seeds.yaml"))
    assert [len(g) for g in point_groups(seeds, expand(seeds))] == [4]
    text = json.loads(group_file_text(seeds, point_groups(seeds, expand(seeds))[0]))
    p1 = expand(seeds)[1]
    assert text[1] == {"run_name": p1.id, "data.noise.rate": p1.params["data.noise.rate"], "seeds": p1.params["seeds"]}
    assert {(t["data.noise.rate"], tuple(t["seeds"])) for t in text} == {(r, s) for r in (0.0, 0.1) for s in ((0, 1), (2, 3))}


def test_what_does_not_fuse_runs_alone(tmp_path):
    alone = [[0.0], [0.0], [0.2], [0.2]]
    assert groups_of(load_spec(sweep_file(tmp_path, GRID)), enabled=False) == alone
    other = sweep_file(tmp_path, GRID, command=("${env}", "${interpreter}", "train.py", "${args}"), name="o.yaml")
    assert groups_of(load_spec(other)) == alone
    seedlist = sweep_file(tmp_path, {**GRID, "train.fuse_seeds": {"value": False}}, name="f.yaml")
    assert groups_of(load_spec(seedlist)) == alone
    # a command-line override fixes the rate: nothing varies that could fuse
    assert groups_of(load_spec(sweep_file(tmp_path, GRID), ["--data.noise.rate=0.1"])) == alone


def test_shards_never_split_a_group(tmp_path):
    path = sweep_file(tmp_path, {"model.width": {"values": [4, 8, 16]}, "data.noise.rate": {"values": [0.0, 0.2]}})
    spec = load_spec(path)
    shards = []
    for i in (1, 2):
        engine = LocalSweep(spec, tmp_path / "sweep", shard=(i, 2))
        engine.prepare()
        shards.append({p.index for p in engine.mine()})
    assert shards[0] | shards[1] == set(range(6)) and not shards[0] & shards[1]
    for group in point_groups(spec, expand(spec)):
        assert sum({p.index for p in group} <= s for s in shards) == 1


def test_wandb_agent_runs_are_groups_of_noise_rates(tmp_path):
    spec = load_spec(sweep_file(tmp_path, GRID))
    config = fused_wandb_config(spec.effective(), spec)
    assert config["parameters"]["data.noise.rate"] == {"value": [0.0, 0.2]}
    assert config["parameters"]["model.width"] == GRID["model.width"] and spec.parameters == {**TINY, **GRID}
    random = load_spec(sweep_file(tmp_path, GRID, name="r.yaml", method="random", run_cap=2))
    assert fused_wandb_config(random.effective(), random) == random.effective()


def test_only_a_groups_first_run_takes_the_agents_run_id(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(Tracker, "_init", lambda self, mode, kwargs: seen.append(kwargs))
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc")
    for agent_run in (True, False):
        Tracker("offline", project="p", entity=None, group=None, tags=[], run_dir=tmp_path, run_id=f"id{agent_run}",
                name="n", config={}, concurrent=True, agent_run=agent_run)
    assert "id" not in seen[0] and seen[1]["id"] == "idFalse"
    assert seen[0]["reinit"] == seen[1]["reinit"] == "create_new"


def test_a_groups_points_get_their_own_exit_codes():
    assert member_returncode(3, {"status": "finished"}) == 0
    assert member_returncode(0, {"status": "diverged"}) == 3
    assert member_returncode(75, {"status": "interrupted"}) == 75
    assert member_returncode(-9, {"status": "running"}) == -9 and member_returncode(1, None) == 1


def test_a_local_sweep_trains_fused_groups_as_one_process_each(tmp_path, capsys):
    path = sweep_file(tmp_path, GRID)
    out = tmp_path / "sweep"
    assert main([str(path), "--local", "--workers", "2", "--output", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "4 points fused into 2 groups" in printed and printed.count("--group=") == 2
    assert main([str(path), "--local", "--workers", "2", "--output", str(out)]) == 0
    assert set(statuses(out).values()) == {"finished"}
    records = {r["id"]: r for r in read_state(out)["points"]}
    first, second = (records[p.id] for p in expand(load_spec(path))[0:3:2])
    assert first["fused_with"] == second["fused_with"] == [first["id"], second["id"]]
    assert first["pid"] is None and first["args"] == second["args"]
    assert "fused with" in (out / second["log"]).read_text()
    for rec in records.values():
        summary = json.loads((out / rec["run_dir"] / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["fused_with"] == rec["fused_with"]
        config = yaml.safe_load((out / rec["run_dir"] / "config.yaml").read_text())
        assert config["data"]["noise"]["rate"] == rec["params"]["data.noise.rate"]
    # the same command again: nothing to run
    assert main([str(path), "--local", "--output", str(out)]) == 0
    assert "0 to run" in capsys.readouterr().out


@pytest.mark.slow
def test_fused_and_separate_sweeps_give_the_same_runs(tmp_path):
    path = sweep_file(tmp_path, {**GRID, "train.epochs": {"value": 3}})
    # fused and forked from the engine, against apart and each point a new process
    for name, extra in (("fused", []), ("apart", ["--no-fuse-points", "--fresh-processes"])):
        subprocess.run([sys.executable, "-m", "ddsweep", "sweep", str(path), "--local", "--workers", "2",
                        "--output", str(tmp_path / name), *extra], check=True, capture_output=True)
    for run in sorted((tmp_path / "fused" / "runs").iterdir()):
        rows = [[{k: v for k, v in json.loads(line).items() if k != "time"}
                 for line in (base / "runs" / run.name / "metrics.jsonl").read_text().splitlines()]
                for base in (tmp_path / "fused", tmp_path / "apart")]
        assert rows[0] == rows[1] and len(rows[0]) == 3, run.name


def test_the_wandb_sweep_is_created_fused_unless_turned_off(tmp_path):
    from ddsweep.pipeline.sweep.online import wandb_config

    spec = load_spec(sweep_file(tmp_path, GRID))
    fused, apart = wandb_config(spec, tmp_path, None), wandb_config(spec, tmp_path, None, fuse=False)
    assert fused["parameters"]["data.noise.rate"] == {"value": [0.0, 0.2]}
    assert apart["parameters"]["data.noise.rate"] == GRID["data.noise.rate"]
