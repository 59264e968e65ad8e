"""The sweep directory's own records: state files and the locks that keep one writer per file.

    <sweep dir>/
        sweep.yaml                      the sweep as run (a valid W&B sweep file, overrides folded in)
        state.json                      every point: written by the engine that runs the whole sweep
        state.shard-I-of-N.json         the points of shard I: written only by that shard's engine
        runs/<point id>/                each point's run directory (summary.json is the truth)
        logs/<point id>.log             each point's stdout and stderr, attempts appended
        args/<point id>.json            ${args_json_file}, when the command uses it
        slurm/                          submitit's job files, for --slurm

Every state file is replaced atomically (temporary file, fsync, rename), so a SIGKILL at any moment
leaves the previous or the next version. Reading merges state.json with the shard files, a point's
newest record winning (most attempts, then latest change).

Locks (`flock`, released by the kernel when a process dies, even by SIGKILL): the engine running
the whole sweep holds `.lock` exclusively; a shard holds `.lock` shared and its own
`.lock.shard-I-of-N` exclusively. So shards run side by side, never twice the same shard, and never
together with a whole-sweep engine.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

from ddsweep.errors import UserError
from pipeline.store.rundir import atomic_write_text

STATE = "state.json"
SWEEP_FILE = "sweep.yaml"
VERSION = 1
STATUSES = ("pending", "running", "finished", "failed", "diverged")
DONE = ("finished", "failed", "diverged")


def shard_name(shard: tuple[int, int] | None) -> str:
    return "" if shard is None else f"shard-{shard[0]}-of-{shard[1]}"


def state_path(sweep_dir: Path, shard: tuple[int, int] | None = None) -> Path:
    return sweep_dir / (STATE if shard is None else f"state.{shard_name(shard)}.json")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def new_record(point, run_dir: str, log: str) -> dict:
    """A point's entry in state.json; paths are relative to the sweep directory."""
    return {"id": point.id, "index": point.index, "params": point.params, "args": [],
            "run_dir": run_dir, "log": log, "status": "pending", "attempts": 0,
            "returncode": None, "error": None, "started": None, "ended": None, "seconds": None,
            "pid": None, "host": None, "updated": 0.0}


def write_state(path: Path, state: dict) -> None:
    state["updated"] = now()
    atomic_write_text(path, json.dumps(state, indent=1, default=str) + "\n")


def read_json(path: Path) -> dict | None:
    """A JSON object, or None if the file is missing or unreadable (a warning says which)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        print(f"ddsweep: warning: {path} is unreadable ({err}); rebuilding it from the run directories",
              file=sys.stderr)
        return None
    return data if isinstance(data, dict) else None


def read_records(sweep_dir: Path) -> tuple[dict | None, dict[str, dict]]:
    """(a header: state.json's, else a shard file's; the newest record of each point over state.json
    and every shard file)."""
    files = [read_json(sweep_dir / STATE)] + [read_json(p) for p in sorted(sweep_dir.glob("state.shard-*.json"))]
    header = next((data for data in files if data is not None), None)
    records: dict[str, dict] = {}
    for data in files:
        for rec in (data or {}).get("points", []):
            if not isinstance(rec, dict) or "id" not in rec:
                continue
            old = records.get(rec["id"])
            if old is None or _newer(rec, old):
                records[rec["id"]] = rec
    return header, records


def _newer(a: dict, b: dict) -> bool:
    return (a.get("attempts") or 0, a.get("updated") or 0.0) > (b.get("attempts") or 0, b.get("updated") or 0.0)


def read_summary(run_dir: Path) -> dict | None:
    try:
        data = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Lock:
    """An advisory lock on a file in the sweep directory (see the module docstring)."""

    def __init__(self, path: Path, shared: bool = False):
        self.path = path
        self.shared = shared
        self._fd: int | None = None

    def acquire(self, what: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(f"{self.path.parent}: {what} is already running there "
                            "(wait for it, or stop it first)") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sweep_locks(sweep_dir: Path, shard: tuple[int, int] | None) -> list[tuple[Lock, str]]:
    if shard is None:
        return [(Lock(sweep_dir / ".lock"), "another ddsweep sweep engine or a shard of this sweep")]
    return [(Lock(sweep_dir / ".lock", shared=True), "a ddsweep sweep engine for the whole sweep"),
            (Lock(sweep_dir / f".lock.{shard_name(shard)}"), f"shard {shard[0]}/{shard[1]}")]
