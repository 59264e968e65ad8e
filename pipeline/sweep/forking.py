"""Points started by fork from an engine that imported the trainer once.

A point's process spends most of its start-up importing torch, Lightning (and torchmetrics, scipy,
matplotlib through it): about 8 s of a 2-core CPU, more than a short MNIST-1D point trains. When a
point's command is this interpreter's `python -m ddsweep train ...` (what `command: [ddsweep,
train, "${args}"]` resolves to), the local engine imports the trainer once and forks each point
from itself: the child takes its own process group, dies with the engine (PR_SET_PDEATHSIG), writes
to its point's log, gets the point's environment and thread count, and runs `ddsweep train` with
the point's arguments, exactly as the new process would, then exits with its exit code. Every other
command, and every point on a machine with CUDA GPUs (a CUDA driver initialized before the fork
would ignore the child's CUDA_VISIBLE_DEVICES), starts as a new process. `ddsweep sweep
--fresh-processes` starts every point as a new process.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback

from ddsweep.pipeline.sweep.spec import ENV_PROGRAM

PRELOAD = ("lightning", "ddsweep.pipeline.train.command", "ddsweep.pipeline.train.run", "ddsweep.pipeline.train.group",
           "ddsweep.pipeline.train.epoch", "ddsweep.pipeline.train.module", "ddsweep.data.module",
           "ddsweep.pipeline.store.tracking", "ddsweep.pipeline.train.measurement", "wandb")


def can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def forkable(argv: list[str]) -> list[str] | None:
    """The `ddsweep` arguments (`train ...`) when `argv` runs this interpreter's ddsweep train, else None."""
    start = 1 if argv[:1] == [ENV_PROGRAM] else 0
    if argv[start:start + 4] == [sys.executable, "-m", "ddsweep", "train"]:
        return argv[start + 3:]
    return None


def preload(configs=()) -> None:
    """Import what every point imports, once, before the first fork (no torch op runs here, so no
    thread pool exists to be lost in the children), and generate the cached datasets of `configs`
    (the points' training configs) once, in a child of this process: the points then read them
    from the cache instead of the first ones each generating them at the same time. The child
    starts first, so the generation runs on another core while this process imports."""
    datasets = {}
    for cfg in configs:
        datasets.setdefault((cfg.data.name, repr(sorted(cfg.data.options.items()))), (cfg.data.name, cfg.data.options))
    child = _start_child(_cache_datasets, list(datasets.values())) if datasets else None
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    finally:
        if child is not None:
            _wait(child)


def _cache_datasets(datasets: list[tuple[str, dict]]) -> None:
    from ddsweep.data.sources import cache_source
    from ddsweep.errors import UserError

    for name, options in datasets:
        try:
            cache_source(name, **options)
        except UserError:
            pass  # the point that needs it says what is wrong, in its own log


def _start_child(fn, *args) -> int:
    """fn(*args) in a forked child (its torch ops and thread pools stay out of the engine); its pid."""
    def body() -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_DFL)  # not the engine's handlers
        fn(*args)
        return 0

    return _fork(body)


def _wait(pid: int) -> int:
    """The exit code of child `pid`, once it ended."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _fork(body) -> int:
    """Fork; the child runs body() and exits with the code it returns (1 if it raises, the code of a
    SystemExit), never returning into the engine. Returns the child's pid."""
    for stream in (sys.stdout, sys.stderr):  # nothing buffered here is written twice
        stream.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        code = body()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must never return into the engine's loop
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()  # the child's streams (a point's: its log)
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


class ForkedPoint:
    """A point run in a forked child; the part of subprocess.Popen the engine uses."""

    def __init__(self, args: list[str], log_fd: int, env: dict, threads: int, setup):
        self.pid = _fork(lambda: _run_point(args, log_fd, env, threads, setup))
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def _run_point(args: list[str], log_fd: int, env: dict, threads: int, setup) -> int:
    """In the child: the point's process group, signals, log, environment and threads, then its command."""
    setup()  # own process group; dies with the engine
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_DFL)  # not the engine's handlers
    signal.signal(signal.SIGINT, signal.default_int_handler)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    # new streams on the log: the engine's may be anything (a test's capture, a pipe)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    os.environ.clear()
    os.environ.update(env)
    import torch

    torch.set_num_threads(threads)
    sys.argv = ["ddsweep", *args]
    from ddsweep.pipeline.train.command import run_train_command

    return run_train_command(args[1:])  # args: ["train", ...]
