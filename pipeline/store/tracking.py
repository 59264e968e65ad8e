"""Weights & Biases, decided before `wandb.init` and never allowed to stop a run.

Mode: the config's `wandb.mode`, else `WANDB_MODE`, else online when an API key is configured
(`wandb login` or `WANDB_API_KEY`), else offline: never a prompt, never a hang. If an online init
fails (no network, bad key) the run falls back to offline; if W&B fails mid-run the run goes on
and the run directory, which receives every metric first, stays the record.

Charts: `epoch` is every metric's x axis (`define_metric("*", step_metric="epoch")`, and each
logged row carries its `epoch`), so W&B's default panels plot against epochs, not W&B's step.
`test/error` keeps two summary values, `test/error.min` (the best epoch) and `test/error.last` (the
final epoch, the double-descent curve's point); W&B computes both from the history, so the final
summary update leaves that key to W&B instead of overwriting it with a plain number.
"""
from __future__ import annotations

import netrc
import os
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse

ONLINE_INIT_TIMEOUT_S = 30.0
STEP_METRIC = "epoch"
# metric -> W&B summary aggregations (`define_metric(summary=...)`, comma-separated)
SUMMARIES = {"test/error": "min,last"}
_ENV_MODES = {"online": "online", "run": "online", "offline": "offline", "dryrun": "offline",
              "disabled": "disabled"}


def has_api_key(env=None) -> bool:
    env = os.environ if env is None else env
    if env.get("WANDB_API_KEY"):
        return True
    host = urlparse(env.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    path = env.get("NETRC") or str(Path.home() / ".netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode(requested: str | None = None, env=None) -> str:
    """online | offline | disabled: the config's `wandb.mode`, else WANDB_MODE (dryrun = offline),
    else WANDB_DISABLED, else online when an API key is configured, else offline. Never prompts."""
    if requested:
        return requested
    env = os.environ if env is None else env
    mode = env.get("WANDB_MODE", "").strip().lower()
    if mode in _ENV_MODES:
        return _ENV_MODES[mode]
    if env.get("WANDB_DISABLED", "").strip().lower() in ("1", "true", "yes"):
        return "disabled"
    return "online" if has_api_key(env) else "offline"


def warn(message: str) -> None:
    print(f"ddsweep: warning: {message}", file=sys.stderr, flush=True)


class Tracker:
    """A W&B run that can fail without taking the training run with it. `concurrent`: one of several
    runs open at once in this process (a fused group's), each its own W&B run; `agent_run`: this
    run is the one a W&B agent started this process for (False for a group's other members)."""

    def __init__(self, mode: str, *, project: str, entity: str | None, group: str | None, tags: list,
                 run_dir: Path, run_id: str, name: str, config: dict, concurrent: bool = False,
                 agent_run: bool = True):
        self.mode = mode
        self.run = None
        self.run_dir = Path(run_dir)
        self._failed = False
        if mode == "disabled":
            return
        try:
            import wandb  # noqa: F401
        except ImportError:
            warn("wandb is not installed; metrics go to the run directory only")
            self.mode = "disabled"
            return
        kwargs = dict(project=project, entity=entity, group=group, tags=list(tags) or None,
                      dir=str(self.run_dir), name=name, config=config, resume="allow",
                      reinit="create_new" if concurrent else True)
        # A W&B agent chooses the id of the run it started (`agent_run`); the other runs of a fused
        # group in that process take their own ids
        if not (agent_run and os.environ.get("WANDB_SWEEP_ID")):
            kwargs["id"] = run_id
        self.run = self._init(mode, kwargs)
        if self.run is not None:
            self._define_metrics()

    def _init(self, mode: str, kwargs: dict):
        import wandb

        settings = wandb.Settings(init_timeout=ONLINE_INIT_TIMEOUT_S, silent=True)
        try:
            return wandb.init(mode=mode, settings=settings, **kwargs)
        except Exception as err:  # noqa: BLE001 - any W&B failure must not stop training
            if mode != "online":
                warn(f"W&B could not start ({type(err).__name__}: {err}); metrics go to the run directory only")
                self.mode = "disabled"
                return None
            warn(f"W&B online init failed ({type(err).__name__}); logging offline instead")
            self.mode = "offline"
            return self._init("offline", kwargs)

    def _define_metrics(self) -> None:
        """Epoch as the x axis and test/error's summaries. Only a display preference: if W&B refuses,
        it says so once and the run logs on with W&B's own step as the x axis."""
        try:
            self.run.define_metric(STEP_METRIC)
            self.run.define_metric("*", step_metric=STEP_METRIC)
            for name, summary in SUMMARIES.items():
                self.run.define_metric(name, summary=summary)
        except Exception as err:  # noqa: BLE001 - charts against W&B's step are still charts
            warn(f"W&B did not take the epoch as x axis ({type(err).__name__}: {err}); charts use W&B's step")

    @property
    def active(self) -> bool:
        return self.run is not None and not self._failed

    def log(self, metrics: dict, step: int, images: dict | None = None) -> None:
        if not self.active:
            return
        try:
            import wandb

            payload = {STEP_METRIC: step, **metrics}  # the step metric must be in the row it indexes
            for key, path in (images or {}).items():
                payload[key] = wandb.Image(str(path))
            self.run.log(payload, step=step)
        except Exception as err:  # noqa: BLE001
            self._fail(err)

    def summary(self, values: dict) -> None:
        if not self.active:
            return
        try:
            self.run.summary.update({k: v for k, v in values.items() if k not in SUMMARIES})
        except Exception as err:  # noqa: BLE001
            self._fail(err)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is None:
            return
        try:
            self.run.finish(exit_code=exit_code)
        except Exception as err:  # noqa: BLE001
            self._fail(err)
        if self.mode == "offline" or self._failed:
            print(f"ddsweep: W&B run kept offline; upload it later with: {self.sync_command()}", file=sys.stderr)

    def sync_command(self) -> str:
        # the directory quoted for a shell, the glob left for it to expand
        return f"wandb sync {shlex.quote(str(self.run_dir / 'wandb'))}/offline-run-*"

    def info(self) -> dict:
        return {"mode": self.mode, "id": getattr(self.run, "id", None),
                "url": getattr(self.run, "url", None) if self.mode == "online" else None,
                "sync": self.sync_command() if self.mode == "offline" else None}

    def _fail(self, err: Exception) -> None:
        if not self._failed:
            warn(f"W&B stopped working ({type(err).__name__}: {err}); training goes on, "
                 f"every metric is in {self.run_dir}")
        self._failed = True
