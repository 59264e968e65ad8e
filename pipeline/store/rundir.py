"""The run directory: the local, always-written copy of everything a run produces.

    <output_dir>/<run_name>/
        .lock            held (flock) by the one process writing the directory; names its pid and host
        config.yaml      resolved config + provenance (versions, git commit, command)
        metrics.jsonl    one JSON object per epoch, each epoch exactly once
        summary.json     status (running, finished, failed, diverged), error, final metrics
        planes/          decision-plane pictures (PNG) and their raw label maps (NPZ)
        checkpoints/     last.ckpt (and prev.ckpt, the one before it); digests.json, the sha256 of
                         each checkpoint file as written, so a damaged one is found at resume (each
                         checkpoint also carries its own config hash and tensor digest, so it is
                         verified without digests.json too: ddsweep.pipeline.train.epoch)

Every file is written atomically (temporary file, fsync, rename), so a kill at any moment leaves
either the old or the new version, never half a file; the temporary files such a kill leaves behind
are removed when the run starts again.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from ddsweep.errors import UserError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


# `.name.tmp<pid>` (atomic_write_bytes, checkpoints) and `name.png.tmp` (pictures)
_TEMPORARY = re.compile(r"\.tmp\d*$")


def remove_temporaries(directory: Path) -> None:
    """Delete the temporary files of atomic writes that a killed process left in `directory`
    (never a complete file: only the rename makes one). Only its one writer may call this."""
    for path in Path(directory).iterdir():
        if _TEMPORARY.search(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def file_digest(path: Path, sync: bool = False) -> str:
    """sha256 of a file's bytes (fsynced first when `sync`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        if sync:
            os.fsync(fh.fileno())
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def to_jsonable(value: Any) -> Any:
    """Tensors and numpy scalars → plain numbers. NaN/inf stay as JSON's NaN/Infinity tokens (Python's
    json reads them back): turning them into null would hide a divergence."""
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def default_run_name(cfg_dict: dict) -> str:
    """Readable and unique per resolved config: same config → same directory → resume."""
    m, d = cfg_dict["model"], cfg_dict["data"]
    stable = {k: v for k, v in cfg_dict.items() if k not in ("wandb", "output_dir", "run_name")}
    digest = hashlib.sha1(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:8]
    noise = d["noise"]
    return f"{d['name']}-{m['name']}-k{m['width']}-{noise['kind']}{noise['rate']:g}-{digest}"


def provenance(argv: list[str] | None = None) -> dict:
    import lightning
    import numpy
    import torch

    versions = {"python": platform.python_version(), "torch": str(torch.__version__),
                "lightning": lightning.__version__, "numpy": numpy.__version__}
    try:
        import wandb
        versions["wandb"] = wandb.__version__
    except ImportError:  # W&B is optional at run time; the run directory is the record
        pass
    try:
        from importlib.metadata import version
        versions["ddsweep"] = version("ddsweep")
    except Exception:
        versions["ddsweep"] = None
    return {"versions": versions, "git_commit": _git_commit(), "command": argv or sys.argv,
            "host": platform.node(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


class RunDir:
    """Owns the files of one run. Only one process writes a run directory at a time: the one
    holding its lock (`lock`)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock_path = self.path / ".lock"
        self._lock_fd: int | None = None
        self.metrics_path = self.path / "metrics.jsonl"
        self.summary_path = self.path / "summary.json"
        self.config_path = self.path / "config.yaml"
        self.planes = self.path / "planes"
        self.checkpoints = self.path / "checkpoints"
        self.digests_path = self.checkpoints / "digests.json"

    # ------------------------------------------------------------------ lock
    def lock(self) -> None:
        """Take the run directory for this process (creating the directory) or raise a UserError
        naming the process that holds it. The lock is an flock on `.lock`, which the kernel releases
        when its holder dies (even by SIGKILL), so a lock file left by a dead process is simply
        taken over; the pid and host written into it are only for the message."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise UserError(f"output_dir: cannot create {err.filename or self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):  # a file system without locks
                print(f"ddsweep: warning: {self.lock_path}: cannot lock ({err.strerror}); make sure no other "
                      "process trains this run", file=sys.stderr)
                return
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise UserError(f"cannot lock {self.lock_path}: {err.strerror}") from None
            who = "another process" if not holder else f"pid {holder[0]}" + (f" on {holder[1]}" if holder[1:] else "")
            raise UserError(f"{self.path} is in use by {who} (another ddsweep train of this run); "
                            "wait for it to end, or set another run_name or output_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {platform.node()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    @contextlib.contextmanager
    def locked(self):
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    # ------------------------------------------------------------------ creation
    def create(self) -> None:
        try:
            for p in (self.path, self.planes, self.checkpoints):
                p.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"output_dir: cannot create {err.filename or self.path}: {err.strerror}") from None
        if not os.access(self.path, os.W_OK):
            raise UserError(f"output_dir: {self.path} is not writable")
        for p in (self.path, self.planes, self.checkpoints):
            remove_temporaries(p)

    def write_config(self, cfg_dict: dict, prov: dict) -> None:
        atomic_write_text(self.config_path, yaml.safe_dump({**cfg_dict, "provenance": prov}, sort_keys=False))

    def saved_config(self) -> dict | None:
        if not self.config_path.is_file():
            return None
        try:
            raw = yaml.safe_load(self.config_path.read_text()) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            reason = getattr(err, "problem", None) or getattr(err, "strerror", None) or type(err).__name__
            raise UserError(f"{self.config_path}: unreadable ({reason}); move the run directory away "
                            "or choose another run_name") from None
        if not isinstance(raw, dict):
            raise UserError(f"{self.config_path}: not a mapping of config sections; move the run directory "
                            "away or choose another run_name")
        raw.pop("provenance", None)
        return raw

    # ------------------------------------------------------------------ metrics
    def read_metrics(self) -> list[dict]:
        """Every complete line; a torn last line (killed mid-write) is dropped."""
        if not self.metrics_path.is_file():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return rows

    def truncate_metrics(self, keep_through_epoch: int) -> None:
        """On resume: keep rows of epochs already covered by the checkpoint, drop the rest, so every
        epoch appears exactly once after the resumed run writes its own."""
        rows = [r for r in self.read_metrics() if r.get("epoch", 0) <= keep_through_epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    def append_metrics(self, row: dict) -> None:
        """Append one row (flushed, not fsynced: `sync_metrics` runs before every checkpoint, and
        rows after the last checkpoint are redone on resume anyway)."""
        line = json.dumps(to_jsonable(row), allow_nan=True) + "\n"
        try:
            with open(self.metrics_path, "a") as fh:
                fh.write(line)
        except OSError as err:
            raise UserError(f"cannot write {self.metrics_path}: {err.strerror or err}") from None

    def sync_metrics(self) -> None:
        if self.metrics_path.exists():
            with open(self.metrics_path, "rb+") as fh:
                os.fsync(fh.fileno())

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_digests(self) -> dict | None:
        """{sha256: epochs completed} of the checkpoint files this run wrote lately; None when there
        is no record (a run directory from before digests were kept, or an unreadable record)."""
        try:
            digests = json.loads(self.digests_path.read_text())
        except (OSError, ValueError):
            return None
        return digests if isinstance(digests, dict) else None

    def remember_checkpoint(self, digest: str, epoch: int, keep: int = 3) -> None:
        """Record a checkpoint's digest before the file takes its name, so every *.ckpt on disk has
        its digest on record (last, prev and the one being written)."""
        digests = {k: v for k, v in (self.checkpoint_digests() or {}).items() if k != digest}
        digests[digest] = epoch
        atomic_write_text(self.digests_path, json.dumps(dict(list(digests.items())[-keep:]), indent=1))

    # ------------------------------------------------------------------ summary
    def read_summary(self) -> dict | None:
        try:
            return json.loads(self.summary_path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def write_summary(self, **fields) -> None:
        summary = {**(self.read_summary() or {}), **fields}
        atomic_write_text(self.summary_path, json.dumps(to_jsonable(summary), indent=2, allow_nan=True))


def final_metrics(rows: list[dict]) -> tuple[dict, dict]:
    """(last value of every metric over the epochs, the epoch that value comes from): evaluation
    and measurement metrics come from the last epoch they were computed on."""
    final: dict = {}
    epochs: dict = {}
    for row in rows:
        values = {k: v for k, v in row.items() if k != "time"}
        final.update(values)
        epochs.update(dict.fromkeys(values, row.get("epoch")))
    return final, epochs


def is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
