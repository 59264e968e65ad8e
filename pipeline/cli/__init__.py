"""`ddsweep` command line: train, sweep, report, plane, dashboard. User mistakes end in one line, exit code 2."""
from __future__ import annotations

import argparse
import os
import sys

from ddsweep.errors import OneLineParser, UserError

USAGE = """usage: ddsweep COMMAND [ARGS]

commands:
  train    train one run (one width and noise level, several seeds): ddsweep train --config FILE [--key=value ...]
  sweep    run a W&B sweep file, online through W&B agents or offline with the local engine
  report   turn a sweep's run directories into figures and an HTML page
  plane    draw decision planes from a saved run's checkpoint
  dashboard  build a sweep's W&B workspace (offline: its JSON, pushed later)

`ddsweep COMMAND --help` describes each command."""


def train_main(argv: list[str]) -> int:
    from ddsweep.pipeline.config import Config, known_keys

    # No abbreviations: `--q=1` or `--conf.x=1` are config overrides (and wrong), not --quiet/--config.
    parser = OneLineParser(
        prog="ddsweep train", formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False,
        description="Train one run: S seeds of one model width and label-noise level. Writes "
                    "<output_dir>/<run_name>/ (config.yaml, metrics.jsonl, summary.json, planes/, checkpoints/) "
                    "and logs to W&B (offline unless logged in). Running the same command again resumes.",
        epilog="overrides: --section.key=value (W&B's ${args} form), applied after --config. Keys:\n  "
               + "\n  ".join(sorted(known_keys(Config())))
               + "\nplus family/source options such as --model.depth=3 or --data.num_samples=4000."
               + "\n--wandb=disabled is short for --wandb.mode=disabled.")
    parser.add_argument("--config", help="YAML file with config sections (model, data, train, ...)")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    parser.add_argument("--group", metavar="FILE",
                        help="train several runs that differ only in data.noise.rate, seeds and run_name as one "
                             "fused network (each its own run directory and W&B run): a YAML/JSON list of "
                             "mappings of those keys. A list --data.noise.rate=[0,0.1,0.2] does the same")
    args, overrides = parser.parse_known_args(argv)

    from ddsweep.pipeline.config import load_config
    from ddsweep.pipeline.train.group import group_configs

    cfgs = group_configs(args.config, overrides, args.group)
    if cfgs is not None:
        from ddsweep.pipeline.train.group import train_group

        return train_group(cfgs, argv=["ddsweep", "train", *argv], verbose=not args.quiet)
    cfg = load_config(args.config, overrides)
    from ddsweep.pipeline.train.run import train_run

    return train_run(cfg, argv=["ddsweep", "train", *argv], verbose=not args.quiet)


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
