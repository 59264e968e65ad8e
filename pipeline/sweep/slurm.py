"""`--slurm`: the sweep's agents as SLURM jobs, submitted through submitit.

Online (W&B logged in, not `--local`): each of the `--agents N` jobs runs one `wandb agent
ENTITY/PROJECT/ID`, and W&B's server hands out the points.

Offline: this process writes the sweep directory (sweep.yaml, and state.json with every point) on
the shared file system, then job K of N runs the local engine on it as shard K/N (`run_shard`):
shard K takes the points whose index is K-1 modulo N, so no two jobs ever claim the same point, and
writes only its own state file; inside a job, one worker per GPU of its node. Each submission first
merges earlier jobs' state files into state.json (so, once those jobs have ended, it may use another
--agents N). `--wait` waits for the jobs and merges their state files with the final line; without
it, `ddsweep sweep --resume DIR --dry-run` shows progress, and once the jobs are done `ddsweep sweep
--resume DIR` (locally) or with `--slurm` (again on the cluster) runs whatever is left.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ddsweep.errors import UserError
from ddsweep.pipeline.sweep import online
from ddsweep.pipeline.sweep.local import LocalSweep, run_shard
from ddsweep.pipeline.sweep.spec import SweepSpec


@dataclass
class SlurmOptions:
    jobs: int = 1
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    mem_gb: int | None = None
    timeout_min: int = 24 * 60
    extra: dict = field(default_factory=dict)  # other slurm_* parameters of submitit
    wait: bool = False
    cluster: str | None = None  # submitit's AutoExecutor choice; "local" runs jobs as local processes


def executor_for(sweep_dir: Path, opts: SlurmOptions):
    import submitit

    executor = submitit.AutoExecutor(folder=sweep_dir / "slurm", cluster=opts.cluster)
    params = {"name": f"ddsweep-{sweep_dir.name}", "timeout_min": opts.timeout_min, "nodes": 1,
              "tasks_per_node": 1, "gpus_per_node": opts.gpus_per_job}
    if opts.cpus_per_job:
        params["cpus_per_task"] = opts.cpus_per_job
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    if opts.partition:
        params["slurm_partition"] = opts.partition
    params.update({f"slurm_{k}": v for k, v in opts.extra.items()})
    try:
        executor.update_parameters(**params)
    except (ValueError, NameError) as err:
        raise UserError(f"--slurm: {err}") from None
    return executor


def submit(spec: SweepSpec, sweep_dir: Path, opts: SlurmOptions, *, use_wandb: bool, seed: int | None = None,
           max_points: int | None = None, workers: int | None = None, retry_failed: bool = False,
           resume: bool = False, fuse: bool = True, out=None) -> int:
    out = out or sys.stdout
    if use_wandb:
        path = online.create_sweep(spec, sweep_dir, max_points, fuse=fuse)
        calls = [(online.run_agent, (path,)) for _ in range(opts.jobs)]
        print(f"W&B sweep {path}; other machines can join with:\n  wandb agent {path}", file=out, flush=True)
    else:
        engine = LocalSweep(spec, sweep_dir, seed=seed, max_points=max_points, workers=workers,
                            retry_failed=retry_failed, resume=resume, fuse=fuse, out=out)
        if spec.method == "bayes":
            raise UserError(f"{spec.name}: method: bayes needs W&B online to run across SLURM jobs; "
                            "use method: grid or random, or log in to W&B")
        engine.initialize()
        shared = str(sweep_dir.resolve())
        calls = [(run_shard, (shared, (k + 1, opts.jobs), workers, retry_failed, fuse)) for k in range(opts.jobs)]
    executor = executor_for(sweep_dir, opts)
    with executor.batch():
        jobs = [executor.submit(fn, *args) for fn, args in calls]
    print(f"submitted {len(jobs)} job(s) {' '.join(str(j.job_id) for j in jobs)}; "
          f"their logs are in {sweep_dir / 'slurm'}", file=out, flush=True)
    if not opts.wait:
        if not use_wandb:
            print(f"progress: ddsweep sweep --resume {sweep_dir} --dry-run", file=out, flush=True)
        return 0
    failed = 0
    for job in jobs:
        try:
            job.result()
        except Exception as err:  # a job that crashed: its error text comes from submitit
            failed += 1
            print(f"job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err).strip() else err}",
                  file=out, flush=True)
    if use_wandb:
        return 1 if failed else 0
    rc = LocalSweep(spec, sweep_dir, seed=seed, max_points=max_points, resume=True, out=out).collect()
    return rc or (1 if failed else 0)
