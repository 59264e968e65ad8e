"""`ddsweep train`'s command line: one run, or a fused group of runs (pipeline/train/group.py).

Here, below the CLI package, so that the sweep engine can run it in a process forked from itself
(ddsweep.pipeline.sweep.forking) with the same errors as `ddsweep train`.
"""
from __future__ import annotations

import argparse
import os
import sys

from ddsweep.errors import OneLineParser, UserError


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


def run_train_command(argv: list[str]) -> int:
    """`ddsweep train ARGV` as the `ddsweep` command runs it: a user mistake is one line, exit code 2."""
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        return train_main(argv)
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        return 2
