"""--slurm through submitit: offline shards run by submitit's local executor to completion, and
online agent jobs (with a fake executor and no W&B)."""
from __future__ import annotations

import pytest
from sweep_helpers import GRID, read_state

from ddsweep.pipeline.sweep import main, online, slurm
from ddsweep.pipeline.sweep.spec import load_spec


@pytest.mark.slow
def test_local_executor_runs_disjoint_shards_to_completion(tmp_path, write_sweep, monkeypatch, capsys):
    log = tmp_path / "events.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    out = tmp_path / "out"
    opts = slurm.SlurmOptions(jobs=2, gpus_per_job=0, timeout_min=5, cluster="local", wait=True)
    rc = slurm.submit(load_spec(write_sweep(GRID), ["--train.epochs=1"]), out, opts, use_wandb=False,
                      workers=1)
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "submitted 2 job(s)" in text and f"sweep {out}: all 6 points finished" in text
    assert {p["status"] for p in read_state(out)["points"]} == {"finished"}
    events = log.read_text().splitlines()
    assert len(events) == 12 and len(set(events)) == 12  # each point started and finished once
    # the shards' files were merged into state.json, and their count forgotten
    assert not list(out.glob("state.shard-*")) and not (out / "shards.json").exists()
    assert list((out / "slurm").iterdir())  # submitit's job files


class FakeJob:
    def __init__(self, n, value=None):
        self.job_id = str(n)
        self.value = value

    def result(self):
        return self.value


class FakeExecutor:
    instances: list = []

    def __init__(self, folder, cluster=None):
        self.folder, self.cluster, self.params, self.submitted = folder, cluster, {}, []
        FakeExecutor.instances.append(self)

    def update_parameters(self, **params):
        self.params.update(params)

    def batch(self):
        import contextlib
        return contextlib.nullcontext()

    def submit(self, fn, *args):
        self.submitted.append((fn, args))
        value = fn(*args) if self.cluster == "inline" else None
        return FakeJob(len(self.submitted), value)


def test_offline_jobs_run_the_shards_of_one_sweep_directory(tmp_path, write_sweep, monkeypatch, capsys):
    import submitit

    FakeExecutor.instances = []
    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    out = tmp_path / "out"
    opts = slurm.SlurmOptions(jobs=3, cluster="inline", wait=True)
    assert slurm.submit(load_spec(write_sweep(GRID)), out, opts, use_wandb=False) == 0
    [ex] = FakeExecutor.instances
    assert [args[1] for _, args in ex.submitted] == [(1, 3), (2, 3), (3, 3)]
    assert {p["status"] for p in read_state(out)["points"]} == {"finished"}
    assert "all 6 points finished" in capsys.readouterr().out


def test_online_jobs_each_run_a_wandb_agent(tmp_path, write_sweep, monkeypatch, capsys):
    import submitit

    FakeExecutor.instances = []
    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    monkeypatch.setattr(online, "is_online", lambda: True)
    monkeypatch.setattr(online, "create_sweep", lambda spec, d, m=None, fuse=True: "me/dd/xyz")
    argv = [str(write_sweep(GRID)), "--slurm", "--agents", "3", "--partition", "gpu", "--gpus-per-job", "4",
            "--timeout-min", "90", "--slurm-param", "account=lab", "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    [ex] = FakeExecutor.instances
    assert ex.submitted == [(online.run_agent, ("me/dd/xyz",))] * 3
    assert ex.params["slurm_partition"] == "gpu" and ex.params["gpus_per_node"] == 4
    assert ex.params["timeout_min"] == 90 and ex.params["slurm_account"] == "lab"
    assert "wandb agent me/dd/xyz" in capsys.readouterr().out


def test_bayes_needs_wandb_on_slurm(tmp_path, write_sweep, capsys):
    path = write_sweep(GRID, method="bayes", run_cap=3)
    assert main([str(path), "--slurm", "--output", str(tmp_path / "out")]) == 2
    assert "bayes needs W&B online to run across SLURM jobs" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--slurm", "--shard", "1/2"], "SLURM jobs are sharded for you"),
    (["--slurm", "--slurm-param", "account"], "--slurm-param 'account': write KEY=VALUE"),
])
def test_slurm_argument_errors(tmp_path, write_sweep, capsys, argv, message):
    assert main([str(write_sweep(GRID)), "--output", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
