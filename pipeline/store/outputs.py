"""Where a command will write, checked before it does any work, so a wrong place ends in one line
(`--out x: is a file`) instead of a traceback half-way through:

    check_output_dir(path, "--out")         a directory that is, or can be made, and can be written
    check_not_directories(paths, "--out")   files to be written that are directories now
    check_memory(nbytes, what, hint)        an allocation that cannot fit
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ddsweep.errors import UserError

MEMORY_LIMIT = 2 << 30  # bytes one command may set aside for its arrays, at most


def _mode(path: Path, what: str) -> int | None:
    """stat mode of `path` (following links), None when it does not exist."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise UserError(f"{what} {path}: cannot be read ({err.strerror or err})") from None


def writable(path: Path) -> bool:
    """Whether files can be created in the directory `path` (read-only mounts included)."""
    return os.access(path, os.W_OK | os.X_OK)


def check_output_dir(path: str | Path, what: str, write: bool = True) -> None:
    """`path` is a directory, or can be made one, that this process can write into (`write`)."""
    path = Path(path)
    mode = _mode(path, what)
    if mode is not None and not stat.S_ISDIR(mode):
        raise UserError(f"{what} {path}: is a file; give a directory")
    existing = path
    while _mode(existing, what) is None and existing != existing.parent:
        existing = existing.parent  # the nearest part that exists, where mkdir will start
    if not stat.S_ISDIR(_mode(existing, what) or stat.S_IFDIR):
        raise UserError(f"{what} {path}: {existing} is a file, so no directory can be made under it")
    if write and not writable(existing):
        where = "" if existing == path else f" ({existing}, where it would be made)"
        raise UserError(f"{what} {path}: is not writable{where}; give another directory")


def check_not_directories(paths, what: str) -> None:
    """Each path, a file this command will (re)write, is not a directory."""
    for path in paths:
        mode = _mode(Path(path), what)
        if mode is not None and stat.S_ISDIR(mode):
            raise UserError(f"{what}: {path} is a directory where a file was expected; move it away")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux MemAvailable), None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_limit() -> tuple[int, str]:
    """(bytes, its description): MEMORY_LIMIT, or the available memory when that is less."""
    free = available_memory()
    if free is not None and free < MEMORY_LIMIT:
        return free, f"{gib(free)} (the memory available now)"
    return MEMORY_LIMIT, f"{gib(MEMORY_LIMIT)}"


def check_memory(nbytes: int, what: str, hint: str) -> None:
    limit, text = memory_limit()
    if nbytes > limit:
        raise UserError(f"{what} need about {gib(nbytes)}, over the limit of {text}; {hint}")


def gib(nbytes: float) -> str:
    return f"{nbytes / (1 << 30):.3g} GiB"
