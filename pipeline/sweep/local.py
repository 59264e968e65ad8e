"""The local sweep engine: every point of a sweep file run as W&B's agent would run it, N at a time,
with no account and no network.

One process (this engine) starts each point as a subprocess from an argument list (never a
shell), one per worker slot, and is the only writer of its state file. Points that differ only in
noise rate and seeds run as one fused group, one process for all (sweep/fuse.py); `ddsweep train`
processes are forked from this engine when there is no GPU (sweep/forking.py). Each point gets its own run
directory `<sweep dir>/runs/<point id>/` (passed as `--output_dir=<sweep dir>/runs
--run_name=<point id>`) and its own log `<sweep dir>/logs/<point id>.log`, so concurrent workers
never share a directory. With CUDA GPUs each worker slot owns one (CUDA_VISIBLE_DEVICES), and every
point gets OMP_NUM_THREADS = CPUs // workers (or less, if the environment asks for less) and
WANDB_MODE from the environment, else offline.

Finished means one thing: the point's run directory has a summary.json whose status is finished.
It is checked when a point ends (a command that exits 0 without one is a failed point, say a sweep
file whose command ends in --help) and again at every resume (a point recorded finished whose run
directory or summary.json has gone is run again).

Resume (`--resume DIR`, or the same command again): a finished point is never run again; a point
that was pending, interrupted, or "running" under an engine that died (see state.py) is run again
with the same arguments, and `ddsweep train` resumes it from its last checkpoint; failed and
diverged points are kept as they are unless `--retry-failed`. A sweep directory holding another
sweep (a different sweep.yaml, or another --seed) is refused.

Shards (`--shard I/N`, and `--slurm` jobs): shard I runs the points whose index is I-1 modulo N,
so shards never claim the same point; each writes only `state.shard-I-of-N.json` (see state.py).
Every shard of a directory has the same N: the first records it, another count is refused.

Stopping: Ctrl-C or SIGTERM is passed on to the running points, which get STOP_GRACE_S to save and
exit; their points are interrupted, for a resume. A SIGKILL of the engine leaves a valid state file,
and on Linux its points are killed with it (PR_SET_PDEATHSIG), so a resume never runs a point
twice at once.
"""
from __future__ import annotations

import collections
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ddsweep.errors import UserError
from ddsweep.pipeline.store.rundir import atomic_write_text, remove_temporaries
from ddsweep.pipeline.sweep import state as st
from ddsweep.pipeline.sweep.spec import (Point, SweepSpec, args_json, build_command, config_args, expand, load_spec,
                                 propose, validate_points)
from ddsweep.pipeline.sweep.forking import ForkedPoint, can_fork, forkable, preload
from ddsweep.pipeline.sweep.fuse import describe, group_command, group_file_text, point_groups
from ddsweep.pipeline.train.device import detect_gpus, gpu_for_slot

POLL_S = 0.2
STOP_GRACE_S = 30.0
EXIT_DIVERGED = 3  # `ddsweep train`'s exit code for a NaN/inf loss
EXIT_INTERRUPTED = 75  # `ddsweep train` stopped by a signal after a checkpoint (EX_TEMPFAIL): resumable
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Job:
    points: list[Point]  # one point, or the points of a fused group (one process)
    proc: subprocess.Popen | ForkedPoint
    slot: int
    started: float
    log: Path  # the process's output (a group's: its first point's log)


def default_sweep_dir(file: str | Path) -> Path:
    return Path("runs") / Path(file).stem


def check_sweep_dir(spec: SweepSpec, sweep_dir: Path) -> None:
    """Refuse a directory whose sweep.yaml is another sweep (don't mix sweeps)."""
    path = sweep_dir / st.SWEEP_FILE
    if not path.exists():
        return
    try:
        stored = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"{path}: unreadable ({err}); this is not a sweep directory") from None
    mine = yaml.safe_load(yaml.safe_dump(spec.effective(), sort_keys=False))
    if stored != mine:
        stored = stored if isinstance(stored, dict) else {}
        keys = sorted(k for k in set(stored) | set(mine) if stored.get(k) != mine.get(k))
        raise UserError(f"{sweep_dir}: holds another sweep (its sweep.yaml differs in {', '.join(keys)}); "
                        f"choose another --output, or resume it with --resume {sweep_dir} and no file "
                        "or overrides")


def write_sweep_file(spec: SweepSpec, sweep_dir: Path) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / st.SWEEP_FILE
    if not path.exists():
        atomic_write_text(path, yaml.safe_dump(spec.effective(), sort_keys=False))


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise UserError(f"--shard {text}: write I/N with 1 <= I <= N, e.g. --shard 1/4")
    return i, n


class LocalSweep:
    """A sweep directory and the engine that runs (a shard of) its points."""

    def __init__(self, spec: SweepSpec, sweep_dir: str | Path, *, seed: int | None = None,
                 max_points: int | None = None, workers: int | None = None,
                 shard: tuple[int, int] | None = None, retry_failed: bool = False,
                 validate: bool = True, resume: bool = False, fuse: bool = True, fork: bool | None = None,
                 out=None, err=None):
        self.spec = spec
        self.dir = Path(sweep_dir)
        self.seed_arg, self.max_points_arg = seed, max_points
        self.workers_arg = workers
        self.shard = shard
        self.retry_failed = retry_failed
        self.validate = validate
        self.fuse = fuse  # points that differ only in noise rate and seeds train as one fused group
        self.fork_arg = fork  # None: fork `ddsweep train` points from this engine when there is no GPU
        self._preloaded = False
        self._configs: dict = {}  # point id -> its training config (see _config)
        self.groups: list[list[Point]] = []
        self.resume = resume  # seed and max_points not given: the directory's, not the defaults
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.points: list[Point] = []
        self.records: dict[str, dict] = {}
        self.extra: list[dict] = []  # attempted points the current expansion no longer has
        self._stop: int | None = None
        self._running: dict[int, Job] = {}
        self._owner = False  # holds this engine's locks: its own "running" records are stale
        self.notes: list[str] = []  # what the resume found, printed when the sweep starts

    # ------------------------------------------------------------------------- preparation

    def prepare(self) -> None:
        """Check that the directory holds this sweep, expand and validate the points, and take
        each point's status from its record and its run directory."""
        check_sweep_dir(self.spec, self.dir)
        if self.shard is not None:
            st.claim_shards(self.dir, self.shard, record=self._owner)
        header, records = st.read_records(self.dir)
        header = header or {}
        self.seed = self._resolve_seed(header)
        self.max_points = self.max_points_arg
        if self.max_points is None and self.resume:
            self.max_points = header.get("max_points")
        self.created = header.get("created") or st.now()
        if self.spec.method == "bayes":
            self._prepare_bayes(records)
        else:
            self.points = expand(self.spec, self.seed, self.max_points)
            if self.validate:
                self._configs.update(validate_points(self.spec, self.points))
        self.groups = point_groups(self.spec, self.points, self.fuse and self.spec.method != "bayes")
        ids = {p.id for p in self.points}
        mine = {p.id for p in self.mine()}
        self.notes, alive = [], {}
        for point in self.points:
            rec = records.get(point.id) or st.new_record(point, f"runs/{point.id}", f"logs/{point.id}.log")
            if rec.get("index") != point.index or rec.get("params") != point.params:
                raise UserError(f"{self.dir / st.STATE}: point {point.id} has other values than "
                                f"{self.spec.name} gives it; this directory holds another sweep")
            self.records[point.id] = rec
            self._reconcile(rec, owned=self._owner and point.id in mine, alive=alive)
        self.extra = [r for r in records.values() if r["id"] not in ids and r.get("attempts")]
        name = self.spec.config.get("name")
        self.group = name.strip() if isinstance(name, str) and name.strip() else self.dir.resolve().name
        self.workers = self.workers_arg or None
        self.gpus = detect_gpus()
        self.fork = (not self.gpus if self.fork_arg is None else self.fork_arg) and can_fork()
        if self.workers is None:
            self.workers = len(self.gpus) or max(1, cpu_count() // 2)
        threads = max(1, cpu_count() // self.workers)
        asked = os.environ.get("OMP_NUM_THREADS", "")
        self.threads = min(threads, int(asked)) if asked.isdigit() and int(asked) > 0 else threads

    def _resolve_seed(self, header: dict) -> int:
        stored = header.get("seed")
        seed = self.seed_arg
        if seed is None:
            seed = stored if self.resume and isinstance(stored, int) else 0
        if stored is not None and stored != seed and self.spec.method != "grid":
            raise UserError(f"{self.dir}: was run with --seed {stored}; resume it with the same seed, "
                            "or choose another --output")
        return seed

    def _prepare_bayes(self, records: dict) -> None:
        if self.shard is not None:
            raise UserError(f"{self.spec.name}: method: bayes chooses each point from all results so far, "
                            "so it cannot be split into shards; use W&B agents (online) or run it unsharded")
        if self._cap() is None:
            raise UserError(f"{self.spec.name}: run_cap: method bayes needs run_cap in the file or --max-points N")
        known = sorted(records.values(), key=lambda r: r.get("index", 0))
        self.points = [Point(r["index"], r["id"], r["params"]) for r in known]
        if not self.points:
            validate_points(self.spec, [propose(self.spec, 0, [], self.seed)])

    def _cap(self) -> int | None:
        caps = [c for c in (self.max_points, self.spec.config.get("run_cap")) if c is not None]
        return min(caps) if caps else None

    def _reconcile(self, rec: dict, owned: bool, alive: dict) -> None:
        """The status a point resumes with. Its summary.json alone decides finished. A "running"
        record whose engine died is interrupted (or failed, if its summary.json says so), unless
        its own process still runs it here."""
        run_dir = self.dir / rec["run_dir"]
        summary = st.read_summary(run_dir)
        status = (summary or {}).get("status")
        if status == "finished":
            rec["status"] = "finished"
        elif rec["status"] == "finished":
            found = "is gone" if summary is None else f"says {status!r}"
            rec.update(status="pending", error=f"was recorded finished, but {run_dir / 'summary.json'} {found}")
            self.notes.append(f"{rec['id']}: {rec['error']}; running it again")
        elif rec["status"] == "running" and self._engine_dead(rec, owned, alive):
            if st.point_process_alive(rec):
                self.notes.append(f"{rec['id']}: its engine died but its process {rec['pid']} still runs it "
                                  "on this host; not run again until it ends")
            elif status in ("failed", "diverged"):
                rec["status"], rec["error"] = status, summary.get("error")
            else:
                rec.update(status="interrupted", error=f"interrupted: its engine died (the point was pid "
                                                       f"{rec.get('pid')} on {rec.get('host')}, started "
                                                       f"{rec.get('started')})")
        elif rec["status"] not in st.STATUSES:
            rec["status"] = "pending"
        if self.retry_failed and rec["status"] in ("failed", "diverged"):
            rec["status"] = "pending"

    def _engine_dead(self, rec: dict, owned: bool, alive: dict) -> bool:
        """Whether the engine that recorded `rec` running is dead: surely when this engine holds
        the locks for the point (`owned`), else when that engine's lock is free (probed once per
        engine, cached in `alive`)."""
        if owned:
            return True
        label = st.record_shard(rec)
        if label not in alive:
            alive[label] = st.owner_alive(self.dir, label)
        return not alive[label]

    def mine(self) -> list[Point]:
        """This engine's points: all, or its shard's (by the index of each group's first point)."""
        if self.shard is None:
            return self.points
        i, n = self.shard
        first = {p.id: g[0].index for g in self.groups for p in g}
        return [p for p in self.points if first.get(p.id, p.index) % n == i - 1]

    def my_groups(self, todo: bool = False) -> list[list[Point]]:
        """This engine's groups (only their points still to run, with `todo`)."""
        mine = {p.id for p in self.mine()}
        out = []
        for group in self.groups:
            group = [p for p in group if p.id in mine and (not todo or self.records[p.id]["status"] in st.TODO)]
            if group:
                out.append(group)
        return out

    def counts(self) -> dict:
        return dict(collections.Counter(self.records[p.id]["status"] for p in self.mine()))

    # ------------------------------------------------------------------------- running

    def run(self) -> int:
        """Run every pending point; 0 if all finished, 1 if any failed, 128+signal if stopped."""
        self.prepare()  # a mistake in the file is reported before anything is written
        locks = st.sweep_locks(self.dir, self.shard)
        try:
            for lock, what in locks:
                lock.acquire(what)
            self._owner = True
            self.prepare()  # again, now that no other engine can change the records
            self._init_dir()
            return self._loop()
        finally:
            self._owner = False
            for lock, _ in reversed(locks):
                lock.release()

    def initialize(self) -> None:
        """Write sweep.yaml and state.json (merging any shard files) without running anything."""
        locks = st.sweep_locks(self.dir, None)
        try:
            for lock, what in locks:
                lock.acquire(what)
            self._owner = True
            self.prepare()
            self._init_dir()
        finally:
            self._owner = False
            for lock, _ in reversed(locks):
                lock.release()

    def collect(self) -> int:
        """Merge the shard files into state.json and print the final line (after SLURM jobs)."""
        self.initialize()
        return self._final(0.0)

    def _init_dir(self) -> None:
        for sub in ("runs", "logs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._remove_temporaries()
        write_sweep_file(self.spec, self.dir)
        self.save()
        if self.shard is None:  # state.json now holds every shard's records
            st.forget_shards(self.dir)

    def _remove_temporaries(self) -> None:
        """Temporary files of atomic writes left by an engine killed mid-write (under our lock: a
        whole-sweep engine owns every file here, a shard only its own state file)."""
        if self.shard is None:
            for sub in (self.dir, self.dir / "args"):
                if sub.is_dir():
                    remove_temporaries(sub)
            return
        for tmp in self.dir.glob(f".{st.state_path(self.dir, self.shard).name}.tmp*"):
            tmp.unlink(missing_ok=True)

    def save(self) -> None:
        points = [self.records[p.id] for p in self.mine()]
        if self.shard is None:
            points += self.extra
        st.write_state(st.state_path(self.dir, self.shard), {
            "version": st.VERSION, "sweep": self.spec.name, "method": self.spec.method, "seed": self.seed,
            "max_points": self.max_points, "shard": st.shard_name(self.shard) or None,
            "created": self.created, "points": points})

    def _loop(self) -> int:
        from tqdm import tqdm

        queue = collections.deque(costliest_first(self.my_groups(todo=True), self._cost))
        total = self._cap() if self.spec.method == "bayes" else len(self.mine())
        done = sum(self.records[p.id]["status"] in st.DONE for p in self.mine())
        self._header(sum(len(g) for g in queue))
        for note in self.notes:
            self._print(note)
        start = time.monotonic()
        self.bar = tqdm(total=total, initial=done, file=self.err, disable=None, unit="pt",
                        desc=self.dir.name, dynamic_ncols=True, leave=False)
        old_handlers = self._install_signals()
        try:
            while not self._stop:
                for slot, job in list(self._running.items()):
                    if job.proc.poll() is not None:
                        del self._running[slot]
                        self._finish(job)
                for slot in range(self.workers):
                    if slot in self._running or self._stop:
                        continue
                    group = queue.popleft() if queue else self._propose()
                    if group is None:
                        break
                    self._launch(group if isinstance(group, list) else [group], slot)
                if not self._running and not queue:
                    break
                self.bar.set_postfix_str(self._postfix(), refresh=False)
                time.sleep(POLL_S)
            if self._stop:
                self._shutdown()
        finally:
            self._restore_signals(old_handlers)
            self.bar.close()
        return self._final(time.monotonic() - start)

    def _propose(self) -> Point | None:
        if self.spec.method != "bayes" or len(self.points) >= self._cap():
            return None
        history = [(p.params, self.records[p.id]["status"], self._metrics(p)) for p in self.points]
        point = propose(self.spec, len(self.points), history, self.seed)
        self.points.append(point)
        rec = st.new_record(point, f"runs/{point.id}", f"logs/{point.id}.log")
        self.records[point.id] = rec
        try:
            validate_points(self.spec, [point])
        except UserError as err:
            rec.update(status="failed", error=str(err), updated=time.time())
            self.save()
            self._print(f"{point.id}: failed before it started: {err}")
            return self._propose()
        return point

    def _config(self, point: Point):
        """The point's training config, or None when it does not build (the point then fails and says why)."""
        from ddsweep.pipeline.config import load_config

        if point.id not in self._configs:
            try:
                self._configs[point.id] = load_config(*config_args(self.spec, point))
            except UserError:
                self._configs[point.id] = None
        return self._configs[point.id]

    def _cost(self, point: Point) -> float:
        """A point's training cost up to a factor common to a sweep's points: width^2 x epochs x seeds."""
        cfg = self._config(point)
        return 0.0 if cfg is None else float(cfg.model.width) ** 2 * cfg.train.epochs * len(cfg.seeds)

    def _metrics(self, point: Point) -> dict:
        summary = st.read_summary(self.dir / self.records[point.id]["run_dir"]) or {}
        metrics = summary.get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    def _launch(self, points: list[Point], slot: int) -> None:
        """Start one point, or a fused group of points as one process writing to its first point's log."""
        recs = [self.records[p.id] for p in points]
        root = self.dir.resolve()
        if len(points) > 1:
            group_file = root / "args" / f"{points[0].id}.group.json"
            group_file.parent.mkdir(exist_ok=True)
            atomic_write_text(group_file, group_file_text(self.spec, points))
            argv = group_command(self.spec, points, str(root / "runs"), group_file)
        else:
            json_text = args_json(self.spec, points[0])
            json_file = None
            if json_text is not None:
                json_file = root / "args" / f"{points[0].id}.json"
                json_file.parent.mkdir(exist_ok=True)
                atomic_write_text(json_file, json_text)
            argv = build_command(self.spec, points[0], [f"--output_dir={root / 'runs'}",
                                                        f"--run_name={points[0].id}"], json_file)
        started = st.now()
        for rec in recs:
            rec.update(status="running", attempts=rec["attempts"] + 1, args=argv, started=started, ended=None,
                       returncode=None, error=None, seconds=None, host=socket.gethostname(),
                       shard=st.shard_name(self.shard) or None, updated=time.time(),
                       fused_with=[p.id for p in points] if len(points) > 1 else None)
        log = self.dir / recs[0]["log"]
        try:
            for rec in recs[1:]:
                with open(self.dir / rec["log"], "ab") as fh:
                    fh.write(f"# ddsweep sweep: attempt {rec['attempts']} at {started}: fused with "
                             f"{points[0].id}; its output is in {log}\n".encode())
            with open(log, "ab") as fh:
                fh.write(f"# ddsweep sweep: attempt {recs[0]['attempts']} at {started}: "
                         f"{shlex.join(argv)}\n".encode())
                fh.flush()
                args = forkable(argv) if self.fork else None
                if args is not None:  # `ddsweep train`: forked from this engine, which imported it once
                    if not self._preloaded:
                        # these points (now "running") and this shard's points still to run
                        todo = points + [p for group in self.my_groups(todo=True) for p in group]
                        preload([cfg for cfg in map(self._config, todo) if cfg is not None])
                        self._preloaded = True
                    proc = ForkedPoint(args, fh.fileno(), self._env(slot), self.threads, _child_setup())
                else:
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                            env=self._env(slot), close_fds=True, preexec_fn=_child_setup())
        except OSError as err:
            for point, rec in zip(points, recs):
                rec.update(status="failed", returncode=None, error=f"cannot start {argv[0]}: {err.strerror or err}",
                           ended=st.now(), pid=None, updated=time.time())
                self.bar.update(1)
                self._print(f"{self._progress()} {point.id}: failed: {rec['error']}")
            self.save()
            return
        for rec in recs:
            rec["pid"] = proc.pid
        self._running[slot] = Job(points, proc, slot, time.monotonic(), log)
        self.save()

    def _env(self, slot: int) -> dict:
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = str(self.threads)
        env.setdefault("WANDB_MODE", "offline")
        # W&B's own variable: one group per sweep, under the sweep's wandb.group or the user's
        # WANDB_RUN_GROUP when either is set (an explicit group wins over the variable)
        env.setdefault("WANDB_RUN_GROUP", self.group)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpu_for_slot(self.gpus, slot)
        return env

    def _finish(self, job: Job, interrupted: bool = False) -> None:
        """Record how each of the job's points ended, from its own summary.json."""
        rc = job.proc.returncode
        seconds = round(time.monotonic() - job.started, 3)
        for point in job.points:
            rec = self.records[point.id]
            summary = st.read_summary(self.dir / rec["run_dir"])
            point_rc = member_returncode(rc, summary) if len(job.points) > 1 else rc
            status, error = classify(point_rc, summary, job.log, self.dir / rec["run_dir"])
            if interrupted and status != "finished":
                status, error = "interrupted", f"stopped by {signal.Signals(self._stop).name}"
            rec.update(status=status, returncode=rc, error=error, ended=st.now(), seconds=seconds, pid=None,
                       updated=time.time())
            self.save()
            if status == "interrupted":
                continue
            self.bar.update(1)
            line = f"{self._progress()} {point.id}: {status}"
            if status == "finished":
                line += f"  {self._metric_text(summary)}"
            else:
                line += f" (exit {rc}): {error}  log: {job.log}"
            self._print(f"{line}  {fmt_duration(seconds)}")

    def _metric_text(self, summary: dict | None) -> str:
        metrics = (summary or {}).get("metrics") or {}
        for name in (self.spec.metric_name, "test/error"):
            value = metrics.get(name) if name else None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return f"{name}={value:.4g}"
        return ""

    # ------------------------------------------------------------------------- stopping

    def _install_signals(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            old[signum] = signal.signal(signum, self._on_signal)
        return old

    @staticmethod
    def _restore_signals(old: dict) -> None:
        for signum, handler in old.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame) -> None:
        first = self._stop is None
        self._stop = signum
        for job in self._running.values():
            _signal_group(job.proc, signum if first else signal.SIGKILL)

    def _shutdown(self) -> None:
        """Give the running points STOP_GRACE_S to exit after the signal, then kill them; their
        points stay pending."""
        self._print(f"stopping: waiting for {len(self._running)} running point(s) to save and exit")
        deadline = time.monotonic() + STOP_GRACE_S
        while self._running and time.monotonic() < deadline:
            for slot, job in list(self._running.items()):
                if job.proc.poll() is not None:
                    del self._running[slot]
                    self._finish(job, interrupted=True)
            time.sleep(POLL_S)
        for job in self._running.values():
            _signal_group(job.proc, signal.SIGKILL)
            job.proc.wait()
            self._finish(job, interrupted=True)
        self._running.clear()

    # ------------------------------------------------------------------------- reporting

    def _print(self, line: str) -> None:
        from tqdm import tqdm

        tqdm.write(line, file=self.out)
        self.out.flush()

    def _progress(self) -> str:
        mine = self.mine()
        done = sum(self.records[p.id]["status"] in st.DONE for p in mine)
        total = self._cap() if self.spec.method == "bayes" else len(mine)
        return f"[{done}/{total}]"

    def _postfix(self) -> str:
        c = self.counts()
        return (f"finished={c.get('finished', 0)} failed={c.get('failed', 0) + c.get('diverged', 0)} "
                f"running={c.get('running', 0)} pending={c.get('pending', 0) + c.get('interrupted', 0)}")

    def _header(self, todo: int) -> None:
        where = f"shard {self.shard[0]}/{self.shard[1]} of " if self.shard else ""
        total = self._cap() if self.spec.method == "bayes" else len(self.mine())
        gpus = f", GPUs {','.join(self.gpus)}" if self.gpus else ""
        self._print(f"sweep {self.spec.name}: {self.spec.method}, {total} points, {todo} to run, "
                    f"{self.workers} worker(s) x {self.threads} thread(s){gpus} -> {where}{self.dir}")
        if describe(self.my_groups()):
            self._print(describe(self.my_groups()))

    def _final(self, seconds: float) -> int:
        if self._stop:
            self._print(f"sweep {self.dir}: stopped; {self._postfix()}. Continue with: "
                        f"ddsweep sweep --resume {self.dir}")
            return 128 + int(self._stop)
        mine = self.mine()
        c = self.counts()
        n = len(mine)
        took = f" in {fmt_duration(seconds)}" if seconds else ""
        if c.get("finished", 0) == n:
            self._print(f"sweep {self.dir}: all {n} points finished{took}; runs in {self.dir / 'runs'}")
            return 0
        bad = [self.dir / self.records[p.id]["log"] for p in mine
               if self.records[p.id]["status"] in ("failed", "diverged")]
        listed = ", ".join(map(str, bad[:3])) + (f" and {len(bad) - 3} more (see state.json)" if len(bad) > 3 else "")
        todo = c.get("pending", 0) + c.get("interrupted", 0)
        not_run = f", {todo} not run" if todo else ""
        not_run += f", {c['running']} still running" if c.get("running") else ""
        self._print(f"sweep {self.dir}: {c.get('finished', 0)} finished, {c.get('failed', 0)} failed, "
                    f"{c.get('diverged', 0)} diverged{not_run} of {n} points{took}"
                    + (f"; logs: {listed}" if bad else ""))
        return 1

    # ------------------------------------------------------------------------- dry run

    def dry_run(self) -> int:
        """Print the points and their commands (and statuses, if the directory has them); run nothing."""
        self.prepare()
        root = self.dir.resolve()
        points = self.mine()
        total = len(expand(self.spec)) if self.spec.method == "grid" else len(points)
        of = f" of {total}" if total != len(points) else ""
        self._print(f"sweep {self.spec.name}: {self.spec.method}, {len(points)}{of} point(s) -> {self.dir} "
                    f"({self.workers} worker(s))")
        if self.spec.method == "bayes" and len(points) < (self._cap() or 0):
            history = [(p.params, self.records[p.id]["status"], self._metrics(p)) for p in points]
            nxt = propose(self.spec, len(points), history, self.seed)
            self._print(f"bayes: up to {self._cap()} points, each chosen from the results so far; next:")
            points = points + [nxt]
            self.records.setdefault(nxt.id, st.new_record(nxt, f"runs/{nxt.id}", f"logs/{nxt.id}.log"))
        for note in self.notes:
            self._print(note)
        shown = {p.id for p in points}
        groups = [g for g in self.groups if g[0].id in shown] + [[p] for p in points if p.id not in
                                                                  {q.id for g in self.groups for q in g}]
        if describe(groups):
            self._print(describe(groups))
        for group in groups:
            p = group[0]
            if len(group) > 1:
                argv = group_command(self.spec, group, str(root / "runs"), root / "args" / f"{p.id}.group.json")
                names = ", ".join(f"{q.id} [{self.records[q.id]['status']}]" for q in group)
                self._print(f"fused {names}: {shlex.join(argv)}")
                continue
            json_file = root / "args" / f"{p.id}.json" if args_json(self.spec, p) is not None else None
            argv = build_command(self.spec, p, [f"--output_dir={root / 'runs'}", f"--run_name={p.id}"], json_file)
            self._print(f"{p.id} [{self.records[p.id]['status']}]: {shlex.join(argv)}")
        return 0


def costliest_first(groups: list[list[Point]], cost) -> list[list[Point]]:
    """Groups in the order to start them: the costliest first (the sum of `cost(point)` over a
    group), ties in sweep order, so the longest runs do not start last and run alone at the end."""
    return sorted(groups, key=lambda group: -sum(cost(p) for p in group))


def member_returncode(rc: int | None, summary: dict | None) -> int | None:
    """The exit code a fused group's point would have had alone, from its own summary.json (the
    group's process exits with its worst point's code)."""
    status = (summary or {}).get("status")
    return {"finished": 0, "diverged": EXIT_DIVERGED, "interrupted": EXIT_INTERRUPTED}.get(status, rc)


def classify(rc: int | None, summary: dict | None, log: Path, run_dir: Path) -> tuple[str, str | None]:
    """(status, error) of a point from its exit code and its run directory's summary.json: only a
    summary.json that says finished makes a finished point, whatever the exit code."""
    status = (summary or {}).get("status")
    error = (summary or {}).get("error")
    error = str(error)[:2000] if error else None
    if rc == 0:
        if status == "finished":
            return "finished", None
        if status in ("failed", "diverged"):
            return status, error
        said = "" if summary is None else f" (it says {status!r})"
        return "failed", f"exited 0 but wrote no finished summary.json in {run_dir}{said}"
    if rc == EXIT_DIVERGED or status == "diverged":
        return "diverged", error or "the loss became NaN or inf"
    if rc == EXIT_INTERRUPTED or status == "interrupted":  # runs again on resume, from its checkpoint
        return "interrupted", error or "interrupted"
    if rc is not None and rc < 0:
        name = signal.Signals(-rc).name if -rc in signal.Signals._value2member_map_ else str(-rc)
        hint = " (out of memory, or killed from outside?)" if -rc == signal.SIGKILL else ""
        return "failed", f"killed by {name}{hint}"
    if status == "failed" and error:
        return "failed", error
    return "failed", last_line(log) or f"exit code {rc}"


def last_line(log: Path) -> str | None:
    try:
        with open(log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    lines = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("# ddsweep sweep:")]
    return lines[-1][:500] if lines else None


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


_PR_SET_PDEATHSIG = 1


def _child_setup():
    """A preexec function: the point gets its own process group (the engine passes Ctrl-C on
    itself), and on Linux dies with the engine, so a SIGKILLed engine leaves no point running."""
    parent = os.getpid()
    prctl = None
    if sys.platform.startswith("linux"):
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None

    def setup() -> None:
        os.setpgrp()
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            if os.getppid() != parent:  # the engine died before prctl took effect
                os._exit(137)

    return setup


def run_shard(sweep_dir: str, shard: tuple[int, int], workers: int | None = None,
              retry_failed: bool = False, fuse: bool = True) -> dict:
    """One shard of a sweep directory, as a SLURM job runs it: the sweep comes from its sweep.yaml,
    whose points the submitting process has validated (so the job does not import the trainer)."""
    sweep_dir = Path(sweep_dir)
    spec = load_spec(sweep_dir / st.SWEEP_FILE)
    engine = LocalSweep(spec, sweep_dir, workers=workers, shard=shard, retry_failed=retry_failed, validate=False,
                        resume=True, fuse=fuse)
    rc = engine.run()
    return {"shard": list(shard), "returncode": rc, "counts": engine.counts()}
