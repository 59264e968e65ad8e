"""The sweep directory's own records: state files and the locks that keep one writer per file.

    <sweep dir>/
        sweep.yaml                      the sweep as run (a valid W&B sweep file, overrides folded in)
        state.json                      every point: written by the engine that runs the whole sweep
        state.shard-I-of-N.json         the points of shard I: written only by that shard's engine
        shards.json                     N, recorded by the first shard engine: every shard is I/N
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
together with a whole-sweep engine. Shards of one directory all have the same N (shards.json,
written under `.lock.shards`), so two shards never share a point; the whole-sweep engine, which
excludes every shard, merges their files into state.json and forgets N.

A point recorded "running" is owned by the engine that launched it (its record names the shard, or
none for the whole sweep). Its owner is provably dead when the owner's lock can be taken: an engine
that takes its locks turns its own "running" points into "interrupted" and runs them again (unless
the point's process itself still lives on this host, see `point_process_alive`), and a listing
(`--dry-run`, `ddsweep report`) shows a "running" point whose owner's lock is free as
"interrupted". A lock held by anyone counts as alive, so a shard on another machine is never taken
over.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

from ddsweep.errors import UserError
from ddsweep.pipeline.store.rundir import atomic_write_text

STATE = "state.json"
SWEEP_FILE = "sweep.yaml"
VERSION = 1
SHARDS = "shards.json"
STATUSES = ("pending", "running", "interrupted", "finished", "failed", "diverged")
DONE = ("finished", "failed", "diverged")
TODO = ("pending", "interrupted")  # what an engine runs: never started, or stopped mid-way
_SHARD_FILE = re.compile(r"^state\.(shard-(\d+)-of-(\d+))\.json$")


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
            "pid": None, "host": None, "shard": None, "updated": 0.0}


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
    shard_files = sorted(p for p in sweep_dir.glob("state.shard-*.json") if _SHARD_FILE.match(p.name))
    files = [(None, read_json(sweep_dir / STATE))]
    files += [(_SHARD_FILE.match(p.name).group(1), read_json(p)) for p in shard_files]
    header = next((data for _, data in files if data is not None), None)
    records: dict[str, dict] = {}
    for shard, data in files:
        for rec in (data or {}).get("points", []):
            if not isinstance(rec, dict) or "id" not in rec:
                continue
            if shard is not None:  # written before records named their engine: the file does
                rec.setdefault("shard", shard)
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


def lock_free(path: Path, shared: bool = False) -> bool:
    """Whether nobody holds `path` (in a way that excludes a `shared` or exclusive lock), found by
    taking the lock for an instant. A lock file that cannot be opened proves nothing: held."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True  # no engine ever locked it
    except OSError:
        return False
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the instant's lock


def record_shard(rec: dict) -> str | None:
    """The engine a record names: a shard's name (shard-I-of-N), or None for the whole sweep."""
    label = rec.get("shard")
    return label if isinstance(label, str) and re.fullmatch(r"shard-\d+-of-\d+", label) else None


def owner_alive(sweep_dir: Path, shard_label: str | None) -> bool:
    """Whether the engine that may be running a point recorded "running" by the engine of
    `shard_label` (None: the whole sweep) is alive: the whole-sweep engine holds `.lock`
    exclusively, a shard its own `.lock.shard-I-of-N`."""
    if not lock_free(sweep_dir / ".lock", shared=True):
        return True
    return shard_label is not None and not lock_free(sweep_dir / f".lock.{shard_label}")


def point_process_alive(rec: dict) -> bool:
    """Whether a point's own process (recorded pid, on this host) still runs it, though its engine
    died: on Linux the point dies with its engine (PR_SET_PDEATHSIG), elsewhere it may not. Where
    /proc exists the pid must still be running this point (`--run_name=<id>` in its command line),
    so a reused pid is not mistaken for it."""
    pid = rec.get("pid")
    if not isinstance(pid, int) or pid <= 0 or rec.get("host") != socket.gethostname():
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            return f"--run_name={rec['id']}".encode() in cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def shard_count(sweep_dir: Path) -> tuple[int | None, str]:
    """(N every shard of this directory uses, where it was recorded), (None, "") when unsharded."""
    data = read_json(sweep_dir / SHARDS)
    if isinstance(data, dict) and isinstance(data.get("shards"), int):
        return data["shards"], f"by {data.get('first') or 'the first shard engine'} in {sweep_dir / SHARDS}"
    for path in sorted(sweep_dir.glob("state.shard-*.json")):  # a directory from before shards.json
        match = _SHARD_FILE.match(path.name)
        if match:
            return int(match.group(3)), f"by its file {path.name}"
    return None, ""


def claim_shards(sweep_dir: Path, shard: tuple[int, int], record: bool) -> None:
    """Refuse shard I/M of a directory whose shards are I/N with N != M (they would share points);
    with `record`, the first shard records M. Checked and recorded under `.lock.shards`, so two
    shards starting at once with different counts cannot both pass."""
    i, m = shard
    fd = None
    if record:
        fd = os.open(sweep_dir / ".lock.shards", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for a read and a write, never longer
    try:
        n, where = shard_count(sweep_dir)
        if n is not None and n != m:
            raise UserError(f"--shard {i}/{m}: {sweep_dir} is split into {n} shards (recorded {where}); "
                            f"use --shard I/{n}, or once no shard runs, run it unsharded (ddsweep sweep "
                            f"--resume {sweep_dir}) to merge them, after which any count works")
        if record and n is None:
            write_state(sweep_dir / SHARDS, {"shards": m, "first": f"shard {i}/{m} on {socket.gethostname()} "
                                                                     f"at {now()}"})
    finally:
        if fd is not None:
            os.close(fd)


def forget_shards(sweep_dir: Path) -> None:
    """After the whole-sweep engine (which excludes every shard) wrote state.json with every
    record: the shard files and their count are no longer needed."""
    for path in sweep_dir.glob("state.shard-*.json"):
        if _SHARD_FILE.match(path.name):
            path.unlink(missing_ok=True)
    (sweep_dir / SHARDS).unlink(missing_ok=True)


def interrupted_points(sweep_dir: Path) -> dict[str, tuple[Path, str]]:
    """{point id: (its resolved run directory, why)} for every point of the sweep directory that
    nothing runs now: its record is not "running", or the engine that recorded it is dead (and its
    process too). A listing shows such a point as interrupted, whatever its summary.json last said."""
    _, records = read_records(sweep_dir)
    alive: dict = {}
    out = {}
    for rec in records.values():
        if not isinstance(rec.get("run_dir"), str):
            continue
        if rec.get("status") == "running":
            label = record_shard(rec)
            if label not in alive:
                alive[label] = owner_alive(sweep_dir, label)
            if alive[label] or point_process_alive(rec):
                continue
            why = f"interrupted: its sweep engine died (the point was pid {rec.get('pid')} on {rec.get('host')})"
        else:
            why = f"interrupted: its sweep point is {rec.get('status')}" + (
                f" ({rec['error']})" if rec.get("error") else "")
        out[str(rec["id"])] = ((sweep_dir / rec["run_dir"]).resolve(), why)
    return out
