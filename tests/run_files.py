"""Readers of a run directory's files, shared by the tests (tests/ is on sys.path through its conftest.py)."""
from __future__ import annotations

import json
from pathlib import Path


def rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock column."""
    out = []
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        row.pop("time", None)
        out.append(row)
    return out


def summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())
