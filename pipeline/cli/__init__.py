"""`ddsweep` command line: train, sweep, report, plane, dashboard. User mistakes end in one line, exit code 2."""
from __future__ import annotations

import os
import sys

from ddsweep.errors import UserError
from ddsweep.pipeline.train.command import train_main

USAGE = """usage: ddsweep COMMAND [ARGS]

commands:
  train    train one run (one width and noise level, several seeds): ddsweep train --config FILE [--key=value ...]
  sweep    run a W&B sweep file, online through W&B agents or offline with the local engine
  report   turn a sweep's run directories into figures and an HTML page
  plane    draw decision planes from a saved run's checkpoint
  dashboard  build a sweep's W&B workspace (offline: its JSON, pushed later)

`ddsweep COMMAND --help` describes each command."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        if command == "train":
            return train_main(rest)
        if command == "sweep":
            from ddsweep.pipeline.sweep import main as sweep_main
            return sweep_main(rest)
        if command == "report":
            from ddsweep.pipeline.report import main as report_main
            return report_main(rest)
        if command == "plane":
            from ddsweep.pipeline.cli.plane import main as plane_main
            return plane_main(rest)
        if command == "dashboard":
            from ddsweep.pipeline.sweep.dashboard import main as dashboard_main
            return dashboard_main(rest)
        print(f"ddsweep: error: unknown command {command!r}; choose one of train, sweep, report, plane, dashboard",
              file=sys.stderr)
        return 2
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
