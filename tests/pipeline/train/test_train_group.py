"""Fused runs (pipeline/train/group.py): runs that differ only in noise rate and seeds, trained as
one fused network, give what each gives alone (fp32 CPU): the same metrics.jsonl, summary.json
metrics and checkpoint; they resume together or alone; a diverged run leaves the others going."""
from __future__ import annotations

import signal

import pytest
import torch

from ddsweep.errors import ConfigError, UserError
from ddsweep.pipeline.cli import main as cli_main
from ddsweep.pipeline.config import load_config
from ddsweep.pipeline.train.group import (GroupEnd, group_checkpoint, group_configs, group_problem,
                                          member_checkpoint, train_group)
from train_helpers import TINY, rows, summary, train

# Two runs: no noise with seeds 0,1 and 30% noise with seeds 2,3 (different seeds: slots must not mix)
MEMBERS = [("clean", ["--data.noise.rate=0.0", "--seeds=[0,1]"]),
           ("noisy", ["--data.noise.rate=0.3", "--seeds=[2,3]"])]


def configs(out, extra=()):
    return [load_config(overrides=[*TINY, *m, *extra, f"--output_dir={out}", f"--run_name={name}"])
            for name, m in MEMBERS]


def alone(out, extra=()):
    for name, m in MEMBERS:
        code, _ = train(out, name, [*m, *extra])
        assert code == 0


def ckpt(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def assert_same_tensors(a, b, where):
    if torch.is_tensor(a):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")


@pytest.fixture(scope="module")
def separate(tmp_path_factory):
    out = tmp_path_factory.mktemp("separate")
    alone(out)
    return out


def test_a_group_logs_and_saves_what_each_run_gives_alone(tmp_path, separate):
    assert train_group(configs(tmp_path), verbose=False) == 0
    for name, _ in MEMBERS:
        fused, solo = tmp_path / name, separate / name
        assert [r["epoch"] for r in rows(fused)] == [1, 2, 3]
        assert rows(fused) == rows(solo), name
        assert summary(fused)["metrics"] == summary(solo)["metrics"]
        assert summary(fused)["status"] == "finished" and summary(fused)["fused_with"] == ["clean", "noisy"]
        a, b = ckpt(fused), ckpt(solo)
        assert_same_tensors(a["state_dict"], b["state_dict"], "state_dict")
        assert_same_tensors(a["optimizer_states"], b["optimizer_states"], "optimizer")
        assert a["callbacks"].keys() == b["callbacks"].keys() == {"EpochEnd"}
        assert_same_tensors(a["callbacks"], b["callbacks"], "callbacks")  # the measured triplets
    # the two runs' labels really differ: the noisy one trained on 30% changed labels
    assert rows(tmp_path / "noisy")[-1]["train/error_clean"] != rows(tmp_path / "noisy")[-1]["train/error"]


def stop_after_epoch(monkeypatch, epoch):
    original = GroupEnd.on_train_epoch_end

    def patched(self, trainer, pl_module):
        if trainer.current_epoch + 1 == epoch:
            self.stop.signum = signal.SIGTERM  # what the handler records when SLURM preempts
        return original(self, trainer, pl_module)

    monkeypatch.setattr(GroupEnd, "on_train_epoch_end", patched)


def test_an_interrupted_group_resumes_together_or_alone(tmp_path, monkeypatch, separate):
    with monkeypatch.context() as m:
        stop_after_epoch(m, 1)
        assert train_group(configs(tmp_path), verbose=False) == 75
    for name, _ in MEMBERS:
        assert summary(tmp_path / name)["status"] == "interrupted"
        assert [r["epoch"] for r in rows(tmp_path / name)] == [1]
    # "noisy" resumes alone from its slice of the group's checkpoint; then the group resumes "clean"
    code, _ = train(tmp_path, "noisy", MEMBERS[1][1])
    assert code == 0
    assert train_group(configs(tmp_path), verbose=False) == 0
    for name, _ in MEMBERS:
        assert rows(tmp_path / name) == rows(separate / name), name
        assert_same_tensors(ckpt(tmp_path / name)["state_dict"], ckpt(separate / name)["state_dict"], name)


def test_a_diverged_run_is_dropped_and_the_others_go_on(tmp_path, monkeypatch, separate):
    from ddsweep.pipeline.train.module import DDModule

    original = DDModule.step_loss

    def nan_in_slot_3(self):  # the "noisy" run's second seed
        loss = original(self).clone()
        if self.current_epoch == 1 and len(loss) == 4:
            loss[3] = float("nan")
        return loss

    monkeypatch.setattr(DDModule, "step_loss", nan_in_slot_3)
    assert train_group(configs(tmp_path), verbose=False) == 3
    noisy = summary(tmp_path / "noisy")
    assert noisy["status"] == "diverged" and "epoch 2" in noisy["error"] and "seeds [3]" in noisy["error"]
    assert summary(tmp_path / "clean")["status"] == "finished"
    assert rows(tmp_path / "clean") == rows(separate / "clean")


def test_what_may_not_fuse_is_refused_before_any_work(tmp_path):
    cfgs = configs(tmp_path)
    assert group_problem(cfgs) is None
    wider = load_config(overrides=[*TINY, "--model.width=9", f"--output_dir={tmp_path}", "--run_name=w"])
    assert "model.width" in group_problem([cfgs[0], wider])
    assert "fuse_seeds" in group_problem(configs(tmp_path, ["--train.fuse_seeds=false"]))
    assert "16-mixed" in group_problem(configs(tmp_path, ["--train.precision=16-mixed"]))
    assert "run_name" in group_problem([cfgs[0], cfgs[0]])
    with pytest.raises(UserError, match="cannot fuse"):
        train_group([cfgs[0], wider])
    assert not any(tmp_path.iterdir())


def test_checkpoint_slices_and_their_fusion_are_inverse():
    total = 5
    full = {"epoch": 2, "global_step": 8, "loops": {"x": 1},
            "state_dict": {"net.w": torch.randn(total, 3, 2), "net.n": torch.tensor(7)},
            "optimizer_states": [{"state": {0: {"step": torch.tensor(8.0), "exp_avg": torch.randn(total, 3, 2)}},
                                  "param_groups": [{"lr": 0.1, "params": [0]}]}],
            "lr_schedulers": [], "callbacks": {"GroupEnd": {"members": [{"a": 1}, {"a": 2}]}}}
    parts = [member_checkpoint(full, slice(0, 2), total, 0), member_checkpoint(full, slice(2, 5), total, 1)]
    assert parts[1]["state_dict"]["net.w"].shape == (3, 3, 2) and parts[1]["callbacks"] == {"EpochEnd": {"a": 2}}
    assert parts[0]["state_dict"]["net.w"].untyped_storage().nbytes() == 2 * 3 * 2 * 4  # saved alone, not the whole
    back = group_checkpoint(parts)
    assert_same_tensors(back["state_dict"], full["state_dict"], "state_dict")
    assert_same_tensors(back["optimizer_states"], full["optimizer_states"], "optimizer")
    assert back["callbacks"] == full["callbacks"] and back["loops"] == full["loops"]
    with pytest.raises(ValueError, match="leading copy dimension"):
        member_checkpoint({**full, "state_dict": {"net.w": torch.zeros(4, 2)}}, slice(0, 2), total, 0)


def test_the_command_line_names_fused_runs_by_list_or_file(tmp_path):
    cfgs = group_configs(None, [*TINY, "--data.noise.rate=[0.0,0.25]", "--run_name=r"], None)
    assert [(c.run_name, c.data.noise.rate) for c in cfgs] == [("r-noise0", 0.0), ("r-noise0.25", 0.25)]
    unnamed = group_configs(None, [*TINY, "--data.noise.rate=[0.1,0.2]"], None)
    assert len({c.run_name for c in unnamed}) == 2
    group = tmp_path / "g.yaml"
    group.write_text("- {run_name: a, data.noise.rate: 0.1}\n- {run_name: b, seeds: [4, 5]}\n")
    cfgs = group_configs(None, [*TINY, "--data.noise.rate=0.2"], str(group))
    assert [(c.run_name, c.data.noise.rate, c.seeds) for c in cfgs] == [("a", 0.1, [0, 1]), ("b", 0.2, [4, 5])]
    assert group_configs(None, TINY, None) is None
    for text, message in (("{a: 1}", "non-empty list"), ("- {model.width: 4}", "not allowed"), ("[", "cannot read")):
        group.write_text(text)
        with pytest.raises(ConfigError, match=message):
            group_configs(None, TINY, str(group))
    with pytest.raises(ConfigError, match="distinct"):
        group_configs(None, [*TINY, "--data.noise.rate=[0.1,0.1]"], None)


@pytest.mark.parametrize("args, message", [
    (["--group", "NOWHERE"], "--group NOWHERE: cannot read it"),
    (["--data.noise.rate=[0.1,x]"], "must be numbers"),
    (["--data.noise.rate=[x]"], "must be numbers"),
    (["--data.noise.rate=[0.1,0.2]", "--model.width=0"], "model.width"),
    (["--data.noise.rate=[0.1,0.2]", "--train.fuse_seeds=false"], "cannot fuse these runs"),
])
def test_bad_fused_command_lines_end_in_one_line(tmp_path, capsys, args, message):
    code = cli_main(["train", *TINY, f"--output_dir={tmp_path}", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not any(tmp_path.iterdir())
