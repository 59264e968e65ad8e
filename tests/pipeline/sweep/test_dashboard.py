"""`ddsweep dashboard`: the workspace spec of a sweep (panels, keys, axes, grouping, sections) and
W&B's objects built from it, offline JSON and the push command, the hook after an online sweep is
created, and one-line errors. The push itself (`dashboard.push`, the only network call) is replaced
wherever a test is online, so no test reaches the network."""
from __future__ import annotations

import json

import pytest
import wandb
import yaml

from ddsweep.pipeline.cli import main
from ddsweep.pipeline.sweep import dashboard as D
from ddsweep.pipeline.sweep import online

WIDTHS = {"model.width": {"values": [2, 4, 8]}, "data.noise.rate": {"values": [0.0, 0.2]}}


def sweep_dir(tmp_path, *overrides, parameters=None, name="s"):
    """A sweep directory as `ddsweep sweep` leaves it: its sweep.yaml (the file with its overrides)."""
    root = tmp_path / name
    root.mkdir()
    config = {"method": "grid", "parameters": parameters or WIDTHS,
              "command": ["${env}", "ddsweep", "train", "${args}", *overrides]}
    (root / "sweep.yaml").write_text(yaml.safe_dump(config))
    return root


def panels(spec) -> dict[str, list[dict]]:
    return {s["name"]: s["panels"] for s in spec["sections"]}


def ys(section_panels) -> list:
    return [p["y"] for p in section_panels]


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)

    def no_network(spec):
        raise AssertionError("offline must not push")

    monkeypatch.setattr(D, "push", no_network)


@pytest.fixture
def pushed(monkeypatch):
    """Online, with the push replaced by a recorder: returns the specs it was given."""
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    specs: list[dict] = []

    def fake_push(spec):
        specs.append(spec)
        return "https://wandb.ai/lab/dd?nw=abc"

    monkeypatch.setattr(D, "push", fake_push)
    return specs


def test_spec_of_a_local_sweep(tmp_path):
    root = sweep_dir(tmp_path, "--planes.families=[train,test,clean_class]", "--planes.draw=1", "--seeds=[0,1,2]")
    spec = D.dashboard_spec(D.resolve_target(str(root)))
    assert spec["group_by"] == ["data.noise.rate"] and spec["x_axis"] == "epoch"
    assert spec["project"] == "ddsweep" and spec["entity"] is None
    assert spec["sweep_id"] is None and spec["runs_dir"] == str(root.resolve() / "runs")
    assert spec["max_runs"] == 10  # 6 points; never fewer than W&B's default
    by = panels(spec)
    assert list(by) == ["Double descent: error against width", "Decision regions and seed agreement against width",
                        "Decision planes", "Training curves"]
    width = [p for name in list(by)[:2] for p in by[name]]
    assert all(p["kind"] == "scatter" and p["x"] == "config:model.width" and p["log_x"] for p in width)
    assert ys(by["Double descent: error against width"]) == [
        "summary:test/error.last", "summary:train/error", "summary:test/error.min"]
    assert ys(by["Decision regions and seed agreement against width"]) == [
        "summary:regions/train/mean", "summary:regions/test/mean", "summary:regions/clean_class/mean",
        "summary:regions1d/mean", "summary:repro/plane_agreement", "summary:repro/test_disagreement"]
    [media] = by["Decision planes"]
    assert media["kind"] == "media" and media["columns"] == 2
    assert media["keys"] == ["planes/train_0", "planes/train_0_seeds", "planes/test_0", "planes/test_0_seeds",
                             "planes/clean_class_0", "planes/clean_class_0_seeds"]
    curves = by["Training curves"]
    assert [(p["kind"], p["x"], p["y"]) for p in curves] == [
        ("line", "epoch", ["test/error"]), ("line", "epoch", ["train/error"]), ("line", "epoch", ["train/loss"])]


def test_one_seed_and_no_measurements_leave_their_panels_out(tmp_path):
    one_seed = D.dashboard_spec(D.resolve_target(str(sweep_dir(tmp_path, "--seeds=[0]", name="a"))))
    regions = ys(panels(one_seed)["Decision regions and seed agreement against width"])
    assert not [y for y in regions if "repro/" in y]
    assert panels(one_seed)["Decision planes"][0]["keys"] == ["planes/train_0", "planes/train_1", "planes/test_0",
                                                               "planes/test_1"]
    off = D.dashboard_spec(D.resolve_target(str(sweep_dir(tmp_path, "--planes.every_n_epochs=0",
                                                          "--regions1d.pairs=0", name="b"))))
    assert list(panels(off)) == ["Double descent: error against width", "Training curves"]


def test_a_parameter_that_varies_the_families_shows_every_family(tmp_path):
    params = dict(WIDTHS, **{"planes.families": {"values": [["train"], ["test"]]}})
    spec = D.dashboard_spec(D.resolve_target(str(sweep_dir(tmp_path, parameters=params))))
    assert ys(panels(spec)["Decision regions and seed agreement against width"])[:2] == [
        "summary:regions/train/mean", "summary:regions/test/mean"]


def test_wandb_objects_of_the_spec(tmp_path):
    """What W&B receives: the view model `Workspace.save()` sends, built here without sending."""
    root = sweep_dir(tmp_path)
    workspace = D.to_workspace(D.dashboard_spec(D.resolve_target(str(root))), "lab")
    assert (workspace.entity, workspace.project) == ("lab", "ddsweep")
    view = workspace._to_model().model_dump(by_alias=True, exclude_none=True)["spec"]["section"]
    runset = view["runSets"][0]
    assert runset["grouping"] == [{"section": "config", "name": "data.value.noise.rate"}]
    [flt] = runset["filters"]["filters"]
    assert (flt["key"], flt["op"], flt["value"]) == ({"section": "config", "name": "output_dir"}, "=",
                                                     str(root.resolve() / "runs"))
    assert view["settings"]["xAxis"] == "epoch" and view["settings"]["maxRuns"] == 10
    sections = view["panelBankConfig"]["sections"]
    first = sections[0]["panels"][0]
    assert first["viewType"] == "Scatter Plot"
    assert first["config"]["xAxis"] == "config:model.value.width"  # the nested config W&B stores
    assert first["config"]["yAxis"] == "summary:test/error.last" and first["config"]["xAxisLogScale"] is True
    media = sections[2]["panels"][0]
    assert media["viewType"] == "Media Browser" and media["config"]["mediaKeys"][0] == "planes/train_0"
    curve = sections[3]["panels"][0]
    assert curve["viewType"] == "Run History Line Plot"
    assert (curve["config"]["xAxis"], curve["config"]["metrics"]) == ("epoch", ["test/error"])


def test_an_online_sweep_filters_on_its_wandb_sweep(tmp_path):
    root = sweep_dir(tmp_path)
    (root / "wandb_sweep.json").write_text(json.dumps({"sweep": "lab/dd/abc123xy", "file": "x.yaml"}))
    spec = D.dashboard_spec(D.resolve_target(str(root)))
    assert (spec["entity"], spec["project"], spec["sweep_id"], spec["runs_dir"]) == ("lab", "dd", "abc123xy", None)
    view = D.to_workspace(spec)._to_model().model_dump(by_alias=True, exclude_none=True)["spec"]["section"]
    [flt] = view["runSets"][0]["filters"]["filters"]
    assert (flt["key"], flt["value"]) == ({"section": "run", "name": "sweep"}, "abc123xy")


def test_offline_writes_the_json_and_says_how_to_push(tmp_path, offline, capsys):
    root = sweep_dir(tmp_path)
    assert main(["dashboard", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"dashboard spec: {root / 'dashboard.json'}",
                   f"W&B is offline; push it later with: ddsweep dashboard {root} --push"]
    assert json.loads((root / "dashboard.json").read_text()) == D.dashboard_spec(D.resolve_target(str(root)))


def test_offline_flag_wins_over_a_login(tmp_path, pushed, capsys):
    root = sweep_dir(tmp_path)
    assert main(["dashboard", str(root), "--offline", "--out", str(tmp_path / "d.json")]) == 0
    assert pushed == [] and (tmp_path / "d.json").is_file()
    assert f"ddsweep dashboard {root} --push --out {tmp_path / 'd.json'}" in capsys.readouterr().out


def test_online_saves_and_prints_the_url(tmp_path, pushed, capsys):
    root = sweep_dir(tmp_path)
    assert main(["dashboard", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "W&B dashboard: https://wandb.ai/lab/dd?nw=abc"
    assert pushed == [json.loads((root / "dashboard.json").read_text())]


def test_push_sends_the_saved_json_unchanged(tmp_path, pushed, capsys):
    root = sweep_dir(tmp_path)
    assert main(["dashboard", str(root), "--offline"]) == 0
    saved = json.loads((root / "dashboard.json").read_text())
    saved["name"] = "edited by hand"
    (root / "dashboard.json").write_text(json.dumps(saved))
    assert main(["dashboard", str(root), "--push"]) == 0
    assert pushed == [saved]


def test_a_failed_push_is_one_line_and_keeps_the_json(tmp_path, monkeypatch, pushed, capsys):
    def refused(spec):
        raise wandb.errors.CommError("permission denied")

    monkeypatch.setattr(D, "push", refused)
    root = sweep_dir(tmp_path)
    assert main(["dashboard", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "W&B did not save the dashboard (CommError: permission denied)" in err
    assert f"try again with: ddsweep dashboard {root} --push" in err and (root / "dashboard.json").is_file()


def test_a_wandb_sweep_path_without_a_directory(tmp_path, offline, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["dashboard", "lab/dd/abc123xy"]) == 0
    spec = json.loads((tmp_path / "dashboard-abc123xy.json").read_text())
    assert (spec["entity"], spec["project"], spec["sweep_id"]) == ("lab", "dd", "abc123xy")
    assert "ddsweep dashboard lab/dd/abc123xy --push" in capsys.readouterr().out


@pytest.mark.parametrize("make, argv, message", [
    (lambda d: None, ["dashboard", "{d}/missing"], "no such sweep directory, and not a W&B sweep"),
    (lambda d: (d / "f.txt").write_text("x"), ["dashboard", "{d}/f.txt"], "not a directory"),
    (lambda d: (d / "empty").mkdir(), ["dashboard", "{d}/empty"], "not a sweep directory (no sweep.yaml)"),
    (lambda d: sweep_dir(d), ["dashboard", "{d}/s", "--push"], "no dashboard spec here"),
    (lambda d: sweep_dir(d), ["dashboard", "{d}/s", "--push", "--offline"], "--push and --offline"),
    (lambda d: (d / "s").mkdir() or (d / "s" / "sweep.yaml").write_text("method: grid\n"),
     ["dashboard", "{d}/s"], "parameters"),
])
def test_bad_input_is_one_line(tmp_path, pushed, capsys, make, argv, message):
    make(tmp_path)
    assert main([a.format(d=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ddsweep: error: ") and message in err, err
    assert pushed == []


def test_push_while_offline_is_one_line(tmp_path, offline, capsys):
    root = sweep_dir(tmp_path)
    assert main(["dashboard", str(root)]) == 0
    capsys.readouterr()
    assert main(["dashboard", str(root), "--push"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "W&B is offline (mode offline, API key missing)" in err


@pytest.fixture
def new_online_sweep(monkeypatch, tmp_path):
    """`online.create_sweep` with W&B's sweep creation faked (no network)."""
    from ddsweep.pipeline.sweep.spec import load_spec

    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr(wandb, "sweep", lambda config, entity=None, project=None: "abc123xy")
    monkeypatch.setattr(online, "default_entity", lambda: "me")
    source = sweep_dir(tmp_path, name="src") / "sweep.yaml"
    return lambda: online.create_sweep(load_spec(source), tmp_path / "out")


def test_creating_an_online_sweep_publishes_its_dashboard(tmp_path, new_online_sweep, pushed, capsys):
    assert new_online_sweep() == "me/ddsweep/abc123xy"
    [spec] = pushed
    assert (spec["entity"], spec["sweep_id"]) == ("me", "abc123xy") and (tmp_path / "out" / "dashboard.json").is_file()
    assert "W&B dashboard: https://wandb.ai/lab/dd?nw=abc" in capsys.readouterr().out


def test_a_dashboard_failure_does_not_fail_the_sweep(tmp_path, new_online_sweep, monkeypatch, capsys):
    def refused(spec):
        raise wandb.errors.CommError("no network")

    monkeypatch.setattr(D, "push", refused)
    assert new_online_sweep() == "me/ddsweep/abc123xy"
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"no W&B dashboard (CommError: no network); try again with: ddsweep dashboard {tmp_path / 'out'}" in err
