"""`ddsweep sweep`: run a W&B sweep file online (W&B sweep + agents), locally, or on SLURM.

    spec.py    the sweep file: checks, points, commands exactly as W&B's agent builds them
    local.py   the local engine: N workers, progress, failures recorded, resume, shards
    state.py   the sweep directory's state files (atomic) and locks
    online.py  W&B sweep and agents
    slurm.py   agent jobs through submitit
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ddsweep.errors import OneLineParser, UserError

DESCRIPTION = """\
Run every point of a W&B sweep file. When W&B is logged in and online, this creates the W&B sweep,
starts --agents N agents here and prints the `wandb agent ENTITY/PROJECT/ID` line for other
machines. Otherwise (or with --local) the local engine expands the same file and runs each point
exactly as W&B's agent would, --workers N at a time, into DIR/runs/<point id>/.

Running the same command again, or --resume DIR, continues an interrupted sweep: finished points (a
summary.json that says finished in their run directory) are not rerun; interrupted ones, and those
whose engine was killed, resume from their last checkpoint.

The sweep file's command is executed as given, for every point: run only sweep files you trust.

Extra --key=value arguments override the training config of every point (after the point's own
values, so they win), e.g. --train.epochs=1 for a quick trial."""

EPILOG = """\
examples:
  ddsweep sweep sweeps/demo.yaml --local
  ddsweep sweep sweeps/demo.yaml --max-points 2 --train.epochs=1 --output runs/trial
  ddsweep sweep sweeps/demo.yaml --dry-run
  ddsweep sweep --resume runs/demo
  ddsweep sweep sweeps/demo.yaml --slurm --partition gpu --gpus-per-job 4 --agents 8
  ddsweep sweep sweeps/demo.yaml --shard 2/4      (on the second of four machines sharing DIR)"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="ddsweep sweep", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("file", nargs="?", metavar="FILE", help="a W&B sweep file (YAML)")
    p.add_argument("--local", action="store_true", help="use the local engine even when W&B is online")
    p.add_argument("--output", metavar="DIR", help="sweep directory (default: runs/<FILE's stem>)")
    p.add_argument("--resume", metavar="DIR", help="continue the sweep in DIR (FILE is then optional)")
    p.add_argument("--workers", type=_positive, metavar="N",
                   help="local points run at once (default: one per CUDA GPU, else half the CPUs)")
    p.add_argument("--agents", type=_positive, default=1, metavar="N",
                   help="W&B agents started here; with --slurm, the number of jobs (default 1)")
    p.add_argument("--max-points", type=_positive, metavar="N",
                   help="run at most N points (also caps random and bayes sweeps)")
    p.add_argument("--seed", type=_non_negative, metavar="S",
                   help="seed of a local random or bayes sweep's points (default 0)")
    p.add_argument("--retry-failed", action="store_true", help="on resume, rerun failed and diverged points too")
    p.add_argument("--shard", metavar="I/N",
                   help="run only the points whose index is I-1 modulo N (local engine; one machine "
                        "each, sharing DIR)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the file, print the points and their commands, run nothing")
    p.add_argument("--fresh-processes", dest="fork", action="store_false", default=None,
                   help="start every point as a new process; by default the local engine on a machine without "
                        "GPUs forks `ddsweep train` points from itself, which imported the trainer once")
    p.add_argument("--no-fuse-points", dest="fuse", action="store_false",
                   help="run every point as its own process; by default points that differ only in "
                        "data.noise.rate and seeds train as one fused network (same results, each its own run)")
    g = p.add_argument_group("SLURM (through submitit)")
    g.add_argument("--slurm", action="store_true", help="submit --agents N jobs instead of running here")
    g.add_argument("--partition", metavar="P", help="SLURM partition")
    g.add_argument("--gpus-per-job", type=_non_negative, default=1, metavar="G", help="GPUs per job (default 1)")
    g.add_argument("--cpus-per-job", type=_positive, metavar="C", help="CPUs per job")
    g.add_argument("--mem-gb", type=_positive, metavar="M", help="memory per job in GB")
    g.add_argument("--timeout-min", type=_positive, default=24 * 60, metavar="M",
                   help="time limit per job in minutes (default 1440)")
    g.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="any other submitit slurm_KEY parameter, e.g. account=myproj (repeatable)")
    g.add_argument("--wait", action="store_true", help="wait for the jobs and print the final line")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    bad = [a for a in extra if not (a.startswith("--") and "=" in a)]
    if bad:
        parser.error(f"unrecognized argument {bad[0]!r}; config overrides take the form --key=value")
    try:
        return _run(args, extra)
    except UserError as err:
        print(f"ddsweep: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, overrides: list[str]) -> int:
    from ddsweep.pipeline.sweep import local, online, slurm
    from ddsweep.pipeline.sweep.spec import load_spec
    from ddsweep.pipeline.sweep.state import SWEEP_FILE

    if args.file is None and args.resume is None:
        raise UserError("give a sweep FILE, or --resume DIR")
    if args.resume and args.output and Path(args.resume) != Path(args.output):
        raise UserError(f"--resume {args.resume} and --output {args.output}: give one sweep directory")
    if args.resume:
        sweep_dir = Path(args.resume)
        check_sweep_dir_paths(sweep_dir, "--resume", write=not args.dry_run)
        if not (sweep_dir / SWEEP_FILE).is_file():
            raise UserError(f"--resume {sweep_dir}: not a sweep directory (no {SWEEP_FILE})")
    else:
        sweep_dir = Path(args.output) if args.output else local.default_sweep_dir(args.file)
        check_sweep_dir_paths(sweep_dir, "--output" if args.output else "--output (default)",
                              write=not args.dry_run)
    spec = load_spec(args.file or sweep_dir / SWEEP_FILE, overrides)
    shard = local.parse_shard(args.shard)
    if shard and args.slurm:
        raise UserError("--shard and --slurm: SLURM jobs are sharded for you; use --agents N for N jobs")

    use_wandb = not args.local and not args.dry_run and shard is None and online.is_online()
    if args.slurm:
        opts = slurm.SlurmOptions(jobs=args.agents, partition=args.partition, gpus_per_job=args.gpus_per_job,
                                  cpus_per_job=args.cpus_per_job, mem_gb=args.mem_gb,
                                  timeout_min=args.timeout_min, extra=_pairs(args.slurm_param), wait=args.wait)
        return slurm.submit(spec, sweep_dir, opts, use_wandb=use_wandb, seed=args.seed,
                            max_points=args.max_points, workers=args.workers, retry_failed=args.retry_failed,
                            resume=args.resume is not None, fuse=args.fuse)
    if use_wandb:
        return online.run(spec, sweep_dir, agents=args.agents, max_points=args.max_points, fuse=args.fuse)
    engine = local.LocalSweep(spec, sweep_dir, seed=args.seed, max_points=args.max_points, workers=args.workers,
                              shard=shard, retry_failed=args.retry_failed, resume=args.resume is not None,
                              fuse=args.fuse, fork=args.fork)
    return engine.dry_run() if args.dry_run else engine.run()


def check_sweep_dir_paths(sweep_dir: Path, what: str, write: bool) -> None:
    """The sweep directory and the fixed names in it are what the engine will write (before the
    sweep file is even read)."""
    from ddsweep.pipeline.store.outputs import check_not_directories, check_output_dir
    from ddsweep.pipeline.sweep import state as st

    check_output_dir(sweep_dir, what, write)
    for sub in ("runs", "logs", "args"):
        check_output_dir(sweep_dir / sub, f"{what} {sweep_dir}:", write)
    check_not_directories([sweep_dir / name for name in (st.STATE, st.SWEEP_FILE, st.SHARDS)], f"{what} {sweep_dir}")


def _pairs(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--slurm-param {item!r}: write KEY=VALUE, e.g. account=myproj")
        out[key] = value
    return out
