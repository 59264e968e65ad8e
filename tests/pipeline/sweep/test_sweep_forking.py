"""Points forked from the engine (pipeline/sweep/forking.py): only this interpreter's `ddsweep
train`; the child writes to its log, takes the point's environment and exits with the command's code."""
from __future__ import annotations

import os
import sys

from ddsweep.pipeline.sweep.forking import ForkedPoint, forkable
from ddsweep.pipeline.sweep.local import _child_setup
from ddsweep.pipeline.sweep.spec import ENV_PROGRAM


def test_only_this_interpreters_ddsweep_train_is_forked():
    assert forkable([sys.executable, "-m", "ddsweep", "train", "--a=1"]) == ["train", "--a=1"]
    assert forkable([ENV_PROGRAM, sys.executable, "-m", "ddsweep", "train"]) == ["train"]
    assert forkable(["/other/python", "-m", "ddsweep", "train"]) is None
    assert forkable([sys.executable, "-m", "ddsweep", "report", "x"]) is None
    assert forkable([sys.executable, "train.py", "--a=1"]) is None


def run(tmp_path, args, env=None):
    log = tmp_path / "point.log"
    with open(log, "ab") as fh:
        proc = ForkedPoint(args, fh.fileno(), env or dict(os.environ), 1, _child_setup())
    assert proc.wait() == proc.poll()
    return proc.returncode, log.read_text()


def test_a_forked_point_writes_its_log_and_exits_with_the_commands_code(tmp_path):
    code, text = run(tmp_path, ["train", "--help"])
    assert code == 0 and "usage: ddsweep train" in text
    code, text = run(tmp_path, ["train", "--model.width=0", "--wandb.mode=disabled", f"--output_dir={tmp_path}"],
                     env={**os.environ, "DDSWEEP_TEST_MARK": "1"})
    lines = text.splitlines()
    assert code == 2 and lines[-1].startswith("ddsweep: error: model.width") and "Traceback" not in text
    assert os.environ.get("DDSWEEP_TEST_MARK") is None  # the engine's own environment is untouched


def test_preload_generates_each_cached_dataset_once_and_reads_no_files(tmp_path, monkeypatch):
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.sweep.forking import preload

    cache = tmp_path / "cache"
    monkeypatch.setenv("DDSWEEP_CACHE", str(cache))
    small = ["--data.name=mnist1d", "--data.num_samples=100", "--data.train_split=0.5"]
    configs = [load_config(None, small + [f"--model.width={w}"]) for w in (2, 3)]
    configs.append(load_config(None, small[:2] + ["--data.train_split=0.8"]))
    # files on disk are not the engine's to read: a missing CIFAR-10 is the point's error, not preload's
    configs.append(load_config(None, ["--data.name=cifar10", f"--data.root={tmp_path / 'nothing'}"]))
    preload(configs)
    assert len(list((cache / "datasets").glob("mnist1d-*.pt"))) == 2  # two data configs, each once


def test_preload_generates_the_datasets_in_a_child_not_in_the_engine(tmp_path, monkeypatch):
    """The engine runs no torch op before it forks points (a thread pool would not survive the fork)."""
    from ddsweep.data import sources
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.sweep.forking import preload

    pids = tmp_path / "pids"
    monkeypatch.setattr(sources, "cache_source", lambda name, **options: pids.open("a").write(f"{os.getpid()}\n"))
    preload([load_config(None, ["--data.name=mnist1d", "--data.num_samples=100"])])
    written = pids.read_text().split()
    assert len(written) == 1 and int(written[0]) != os.getpid()


def test_preload_starts_the_dataset_child_before_importing(tmp_path, monkeypatch):
    """The generation overlaps the engine's imports (another core) instead of following them."""
    from ddsweep.data import sources
    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.sweep import forking

    configs = [load_config(None, ["--data.name=mnist1d", "--data.num_samples=100"])]
    order = []
    start_child = forking._start_child
    monkeypatch.setattr(forking, "_start_child", lambda *a: order.append("child") or start_child(*a))
    monkeypatch.setattr(forking.importlib, "import_module", lambda name: order.append(name))
    monkeypatch.setattr(sources, "cache_source", lambda name, **options: None)
    forking.preload(configs)
    assert order == ["child", *forking.PRELOAD]
    order.clear()
    forking.preload([])  # nothing to generate: no child
    assert order == list(forking.PRELOAD)
