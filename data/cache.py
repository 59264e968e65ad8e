"""Datasets cached on disk by their config, so the runs of a sweep do not each generate their data
again (MNIST-1D takes seconds to generate, scikit-learn a second to import).

A cached dataset is one file, `<cache dir>/datasets/<name>-<key>.pt`: a first line with the sha256
of the rest, then `torch.save` of a dict of tensors and plain values. The key is a digest of what
the caller says the data depends on (for data.sources: the source's name, its options with
defaults filled in, the versions of the packages its generator uses and the text of the code that
generates it), so a change to any of them misses the cache. The file is written atomically
(temporary file, fsync, rename: two runs generating the same data at once at worst write the same
file twice) and read back bit for bit; a file that does not match its digest or does not load is
generated again and replaced. The cache directory is $DDSWEEP_CACHE, else ~/.cache/ddsweep.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Callable

import torch


def cache_dir() -> Path:
    return Path(os.environ.get("DDSWEEP_CACHE") or "~/.cache/ddsweep").expanduser() / "datasets"


def cache_key(depends_on: dict) -> str:
    """A digest of everything the cached value depends on (JSON-able)."""
    text = json.dumps(depends_on, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached(name: str, depends_on: dict, generate: Callable[[], dict]) -> dict:
    """The dict `generate()` returns (tensors and plain values: numbers, strings, tuples, None),
    from the cache when a file for `depends_on` is there and intact, else generated and stored."""
    path = cache_dir() / f"{name}-{cache_key(depends_on)}.pt"
    value = _read(path)
    if value is None:
        value = generate()
        _write(path, value)
    return value


def _read(path: Path) -> dict | None:
    try:
        blob = path.read_bytes()
    except OSError:
        return None  # not cached yet (or unreadable: generated instead)
    digest, _, payload = blob.partition(b"\n")
    try:
        if hashlib.sha256(payload).hexdigest().encode() != digest:
            raise ValueError("its sha256 does not match its contents")
        value = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        if not isinstance(value, dict):
            raise ValueError("not a mapping")
    except Exception as err:  # noqa: BLE001 - any damaged file is regenerated, and said so
        print(f"ddsweep: warning: cached dataset {path} is damaged ({err}); generating it again", file=sys.stderr)
        return None
    return value


def _write(path: Path, value: dict) -> None:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    payload = buffer.getvalue()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            fh.write(hashlib.sha256(payload).hexdigest().encode() + b"\n")
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:  # a full or read-only cache only costs time: the run goes on
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        print(f"ddsweep: warning: cannot cache the dataset in {path.parent} ({err.strerror or err}); "
              "it is generated again by every run (set DDSWEEP_CACHE to a writable directory)", file=sys.stderr)
