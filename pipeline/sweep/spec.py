"""A W&B sweep file: loaded, checked, expanded into points, and each point's command built as
W&B's agent builds it.

    spec = load_spec("sweeps/demo.yaml", overrides=["--train.epochs=1"])
    points = expand(spec, seed=0, max_points=None)    # grid and random; bayes proposes one at a time
    validate_points(spec, points)                      # every point against the training config
    argv = build_command(spec, points[0])              # the argument list the point runs

Checks, in order, each failing with one line naming the file, the key and the reason: YAML; the
structure our engine needs (method, parameters, command macros); W&B's own schema (the `sweeps`
package that W&B's server runs); then every point's arguments through `ddsweep.pipeline.config.load_config`,
so a parameter the training config does not know is rejected before any run starts.

Points come from W&B's engine: grid order is `sweeps.next_runs` (parameters sorted by name, the last
varying fastest); random draws each parameter through W&B's own distributions
(`HyperParameter.ppf`) from `np.random.default_rng(seed)` instead of the global `random` module W&B
uses, so a seed fixes the points; bayes asks `sweeps.next_run` with the results so far.

Command expansion follows wandb/wandb_agent.py (`Agent._command_run`) and reuses its helpers
(`create_sweep_command`, `create_sweep_command_args`): a macro is a whole list item, `${args}` is
`--key=value` with Python's `str(value)` (`0.1`, `True`, `[1, 2]`), `${envvar:NAME}` reads the
environment. Two local differences: `${interpreter}` is this Python (`sys.executable`, where W&B's
agent runs `python` from PATH), and a leading `ddsweep` (written or as `${program}`) runs as
`python -m ddsweep`, so a sweep works from the virtual environment without PATH.
"""
from __future__ import annotations

import copy
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ddsweep.errors import ConfigError, UserError

METHODS = ("grid", "random", "bayes")
ARGS_MACROS = ("args", "args_no_equals", "args_no_hyphens", "args_no_boolean_flags", "args_json",
               "args_json_file", "args_append_hydra", "args_override_hydra")
MACROS = ("env", "interpreter", "program") + ARGS_MACROS
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]  # W&B's default
ENGINE_KEYS = ("output_dir", "run_name")  # set per point by the engine
ENV_PROGRAM = "/usr/bin/env"  # what W&B's agent puts for ${env} on POSIX
DDSWEEP = "ddsweep"
SUGGESTED_COMMAND = "command: ['${env}', ddsweep, train, '${args}']"
ID_MAX = 80
_ENVVAR = re.compile(r"\$\{envvar:[A-Z0-9_]*\}")


@dataclass(frozen=True)
class Point:
    """One run of the sweep: its position, a stable readable id (its run directory's name) and its
    parameter values in the order W&B's engine gives them."""

    index: int
    id: str
    params: dict


@dataclass
class SweepSpec:
    """A checked sweep file plus the `--key=value` overrides given on the command line."""

    path: Path
    config: dict
    overrides: list

    @property
    def name(self) -> str:
        return str(self.path)

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def parameters(self) -> dict:
        return self.config["parameters"]

    @property
    def metric_name(self) -> str | None:
        metric = self.config.get("metric")
        return metric.get("name") if isinstance(metric, dict) else None

    @property
    def command(self) -> list[str]:
        """What every point runs: the file's command (or W&B's default) with the overrides after
        `${args}`, so they win over the point's values."""
        return [str(c) for c in self.config.get("command") or DEFAULT_COMMAND] + list(self.overrides)

    def effective(self) -> dict:
        """The sweep as run, as a valid W&B sweep file (the sweep directory's sweep.yaml): the file
        with the overrides folded into its command, so W&B's agents run the same commands."""
        out = copy.deepcopy(self.config)
        if self.overrides:
            out["command"] = self.command
        return out

    def varying(self) -> list[str]:
        """Parameters that take more than one value: the ones a point id names."""
        out = []
        for key, p in self.parameters.items():
            if "value" in p and "values" not in p and "distribution" not in p:
                continue
            if isinstance(p.get("values"), list) and len(p["values"]) == 1:
                continue
            out.append(key)
        return out


# ----------------------------------------------------------------------------- loading and checks

def load_spec(path: str | Path, overrides: list[str] | tuple = ()) -> SweepSpec:
    """Read and check a sweep file; raises UserError with one line naming file, key and reason."""
    path = Path(path)
    config = _read(path)
    spec = SweepSpec(path=path, config=config, overrides=list(overrides))
    _check_structure(spec)
    _check_wandb_schema(spec)
    _check_command(spec)
    _check_overrides(spec)
    return spec


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path}: no such sweep file")
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        lines = path.read_text(errors="replace").splitlines()
        if mark is not None and mark.line < len(lines) and "${" in lines[mark.line] and "[" in lines[mark.line]:
            problem += " (inside [...] a macro must be quoted, '${args}', or list the command one item per line)"
        raise UserError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: a sweep file is a YAML mapping with method, parameters and command")
    bad = [k for k in raw if not isinstance(k, str)]
    if bad:
        raise UserError(f"{path}: {bad[0]!r}: top-level keys must be names such as method or parameters")
    return raw


def _sweeps():
    """W&B's sweep engine, imported quietly (it warns about its own pydantic settings)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ddsweep.vendor import sweeps
        from ddsweep.vendor.sweeps import params  # noqa: F401 - sweeps.params, used by ranges
    return sweeps


def _fail(spec: SweepSpec, key: str, reason: str) -> UserError:
    return UserError(f"{spec.name}: {key}: {reason}")


def _check_structure(spec: SweepSpec) -> None:
    cfg = spec.config
    if "method" not in cfg:
        raise _fail(spec, "method", f"missing; choose one of {', '.join(METHODS)}")
    if cfg["method"] not in METHODS:
        raise _fail(spec, "method", f"{cfg['method']!r} is not a sweep method; choose one of {', '.join(METHODS)}")
    params = cfg.get("parameters")
    if not isinstance(params, dict) or not params:
        raise _fail(spec, "parameters", "needs a mapping of config keys to {values: [...]}, {value: ...} "
                                        "or a distribution")
    for key, p in params.items():
        where = f"parameters.{key}"
        if not isinstance(key, str) or not key:
            raise _fail(spec, where, "parameter names are dotted config keys such as model.width")
        if not isinstance(p, dict):
            raise _fail(spec, where, "must be a mapping such as {values: [1, 2]}, {value: 1} "
                                     "or {distribution: uniform, min: 0, max: 1}")
        if "parameters" in p:
            raise _fail(spec, where, "nested parameters are not supported; write dotted keys such as model.width")
        if not ({"values", "value", "distribution"} & p.keys() or {"min", "max"} <= p.keys()):
            raise _fail(spec, where, "needs 'values', 'value' or a distribution")
        if "values" in p and (not isinstance(p["values"], list) or not p["values"]):
            raise _fail(spec, where + ".values", "must be a non-empty list")
        for value in p.get("values", []) + ([p["value"]] if "value" in p else []):
            if not _plain(value):
                raise _fail(spec, where, f"{value!r}: values must be numbers, strings, booleans, null or lists of them")
        if key in ENGINE_KEYS:
            raise _fail(spec, where, "is set by ddsweep sweep for each point; choose where runs go with --output")
    if cfg["method"] == "bayes" and not spec.metric_name:
        raise _fail(spec, "metric", "method bayes needs metric: {name: test/error, goal: minimize}")


def _plain(value: Any) -> bool:
    """JSON-representable, as W&B's server and `${args_json}` need."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _check_wandb_schema(spec: SweepSpec) -> None:
    """W&B's own checks: the JSON schema (best-matching error, with its path) and the extra checks
    of `sweeps.schema_violations_from_proposed_config` (min < max, probabilities, ...)."""
    import jsonschema

    sweeps = _sweeps()
    from ddsweep.vendor.sweeps.config.schema import validator

    errors = list(validator.iter_errors(spec.config))
    violations = []
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        where = ".".join(str(p) for p in best.absolute_path) or "top level"
        violations.append(f"{where}: {best.message}")
    try:
        messages = sweeps.schema_violations_from_proposed_config(spec.config)
    except (ValueError, TypeError) as err:
        messages = [str(err)]
    schema_messages = {e.message for e in errors}
    violations += [m for m in dict.fromkeys(messages) if m not in schema_messages
                   and not m.startswith("invalid hyperparameter configuration")]
    if violations:
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        raise UserError(f"{spec.name}: {violations[0]} (W&B sweep schema){more}")


def _check_command(spec: SweepSpec) -> None:
    cfg = spec.config
    command = cfg.get("command")
    if command is not None:
        if not isinstance(command, list) or not command or not all(isinstance(c, (str, int, float)) for c in command):
            raise _fail(spec, "command", f"must be a list of strings such as {SUGGESTED_COMMAND[9:]}")
    tokens = [str(c) for c in command or DEFAULT_COMMAND]
    for token in tokens:
        if "${" not in _ENVVAR.sub("", token):
            continue
        if not (token.startswith("${") and token.endswith("}") and token[2:-1] in MACROS):
            known = ", ".join("${%s}" % m for m in MACROS)
            raise _fail(spec, "command", f"{token!r}: W&B's agent expands only whole items that are one of "
                                         f"{known} (or ${{envvar:NAME}} inside an item)")
    if not any(t[2:-1] in ARGS_MACROS for t in tokens if t.startswith("${")):
        raise _fail(spec, "command", "has no ${args} (or other ${args_...} macro), so every point would "
                                     "run the same command")
    program = cfg.get("program")
    if "${program}" in tokens and program is None:
        raise _fail(spec, "program", f"missing, and the command uses ${{program}}; add program: or {SUGGESTED_COMMAND}")
    if program is not None and not isinstance(program, str):
        raise _fail(spec, "program", "must be a file name or command name")
    if program == DDSWEEP and "${program}" in tokens:
        i = tokens.index("${program}")
        if i > 0 and tokens[i - 1] == "${interpreter}":
            raise _fail(spec, "command", "'${interpreter} ${program}' runs 'python ddsweep', which W&B's agent "
                                         f"cannot run; use {SUGGESTED_COMMAND}")


def _check_overrides(spec: SweepSpec) -> None:
    from ddsweep.pipeline.config import parse_override

    for arg in spec.overrides:
        key, _ = parse_override(arg)
        if key in ENGINE_KEYS:
            raise UserError(f"{arg}: {key} is set by ddsweep sweep for each point; choose where runs go with --output")


# ----------------------------------------------------------------------------- points

def expand(spec: SweepSpec, seed: int = 0, max_points: int | None = None) -> list[Point]:
    """Every point of a grid or random sweep, in W&B's order, at most `max_points` (and the file's
    run_cap). Bayes points depend on results: see `propose`."""
    cap = _cap(spec, max_points)
    if spec.method == "grid":
        values = _grid(spec, cap)
    elif spec.method == "random":
        if cap is None:
            raise _fail(spec, "run_cap", "method random draws points forever; set run_cap in the file or "
                                         "pass --max-points N")
        values = _random(spec, seed, cap)
    else:
        raise UserError(f"{spec.name}: method: bayes chooses each point from the results so far; "
                        "its points cannot be listed in advance")
    width = max(3, len(str(max(len(values) - 1, 0))))
    return [make_point(spec, i, v, width) for i, v in enumerate(values)]


def _cap(spec: SweepSpec, max_points: int | None) -> int | None:
    caps = [c for c in (max_points, spec.config.get("run_cap")) if c is not None]
    return min(caps) if caps else None


def _grid(spec: SweepSpec, cap: int | None) -> list[dict]:
    sweeps = _sweeps()

    try:
        runs = sweeps.next_runs(spec.config, [], n=cap if cap is not None else 10**7)
    except ValueError as err:
        key = next((k for k in spec.parameters if f"Parameter {k} " in str(err)), None)
        if key is not None:
            raise _fail(spec, f"parameters.{key}", "grid search needs 'values', 'value' or an "
                                                   "int_uniform / q_uniform range") from None
        raise UserError(f"{spec.name}: {err}") from None
    return [{k: to_plain(v["value"]) for k, v in run.config.items()} for run in runs if run is not None]


def _random(spec: SweepSpec, seed: int, cap: int) -> list[dict]:
    import numpy as np

    HyperParameterSet = _sweeps().params.HyperParameterSet
    params = HyperParameterSet.from_config(spec.parameters)
    rng = np.random.default_rng(seed)
    return [{p.name: to_plain(p.ppf(rng.uniform())) for p in params} for _ in range(cap)]


def propose(spec: SweepSpec, index: int, history: list[tuple[dict, str, dict]], seed: int = 0) -> Point:
    """The next bayes point from W&B's engine, given (params, status, final metrics) of the points so
    far. W&B's bayes search draws from NumPy's global generator: it is seeded from (seed, index) for
    this call and restored afterwards, so the same history gives the same point."""
    import numpy as np

    sweeps = _sweeps()
    RunState, SweepRun = sweeps.RunState, sweeps.SweepRun

    states = {"finished": RunState.finished, "failed": RunState.failed, "diverged": RunState.failed,
              "running": RunState.running, "pending": RunState.running, "interrupted": RunState.running}
    runs = [SweepRun(name=str(i), state=states.get(status, RunState.running),
                     config={k: {"value": v} for k, v in params.items()},
                     summary_metrics=metrics or {})
            for i, (params, status, metrics) in enumerate(history)]
    import warnings

    saved = np.random.get_state()
    try:
        np.random.seed([seed, index])
        with warnings.catch_warnings():  # the GP fit's convergence notes
            warnings.simplefilter("ignore")
            run = sweeps.next_run(spec.config, runs)
    except ValueError as err:
        raise UserError(f"{spec.name}: bayes: {err}") from None
    finally:
        np.random.set_state(saved)
    return make_point(spec, index, {k: to_plain(v["value"]) for k, v in run.config.items()}, 3)


def to_plain(value: Any) -> Any:
    """NumPy scalars and arrays from W&B's engine as Python values (formatted as W&B's server would)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def make_point(spec: SweepSpec, index: int, params: dict, width: int = 3) -> Point:
    """`p003-model.width=4-data.noise.rate=0.2`: the index and the varying values; over ID_MAX
    characters it is cut and ends in a hash of the full name, so ids stay unique and stable."""
    varying = spec.varying()
    parts = [f"p{index:0{width}d}"] + [f"{k}={params[k]}" for k in varying if k in params]
    full = re.sub(r"[^A-Za-z0-9._=+-]", "_", "-".join(parts))
    if len(full) > ID_MAX:
        digest = hashlib.sha1(full.encode()).hexdigest()[:8]
        full = f"{full[:ID_MAX - 9]}-{digest}"
    return Point(index=index, id=full, params=dict(params))


# ----------------------------------------------------------------------------- commands

def build_command(spec: SweepSpec, point: Point, extra: list[str] | tuple = (),
                  args_json_file: str | Path | None = None) -> list[str]:
    """The argument list a point runs, as W&B's agent builds it, with `extra` (the engine's
    --output_dir/--run_name) at the end."""
    sweep_vars = _sweep_vars(spec, point)
    sweep_vars["args_json_file"] = [str(args_json_file)] if args_json_file else []
    return _resolve_ddsweep(_substitute(spec, sweep_vars)) + list(extra)


def _sweep_vars(spec: SweepSpec, point: Point) -> dict:
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in point.params.items()}})
    sweep_vars["env"] = [ENV_PROGRAM]
    sweep_vars["interpreter"] = [sys.executable]
    sweep_vars["program"] = [spec.config["program"]] if "program" in spec.config else []
    return sweep_vars


def _substitute(spec: SweepSpec, sweep_vars: dict) -> list[str]:
    from wandb.sdk.launch.sweeps.utils import create_sweep_command

    out: list[str] = []
    for c in create_sweep_command(list(spec.command)):
        c = str(c)
        if c.startswith("${") and c.endswith("}"):
            out += sweep_vars.get(c[2:-1]) or []
        else:
            out.append(c)
    return out


def _resolve_ddsweep(argv: list[str]) -> list[str]:
    start = 1 if argv[:1] == [ENV_PROGRAM] else 0
    if argv[start:start + 1] == [DDSWEEP]:
        return argv[:start] + [sys.executable, "-m", "ddsweep"] + argv[start + 1:]
    return argv


def args_json(spec: SweepSpec, point: Point) -> str | None:
    """The JSON text for `${args_json_file}`, when the command uses it."""
    if "${args_json_file}" not in spec.command:
        return None
    return _sweep_vars(spec, point)["args_json"][0]


def config_args(spec: SweepSpec, point: Point) -> tuple[str | None, list[str]]:
    """What the training config of a point is built from: the `--config FILE` of the command (if
    any) and every `--key=value` item in command order, with the point's values in W&B's `${args}`
    form wherever the command takes its arguments."""
    sweep_vars = _sweep_vars(spec, point)
    for macro in ARGS_MACROS:
        sweep_vars[macro] = sweep_vars["args"]
    argv = _substitute(spec, sweep_vars)
    config_file, pairs = None, []
    for i, token in enumerate(argv):
        if token == "--config" and i + 1 < len(argv):
            config_file = argv[i + 1]
        elif token.startswith("--config="):
            config_file = token.split("=", 1)[1]
        elif token.startswith("--") and "=" in token:
            pairs.append(token)
    return config_file, pairs


def validate_points(spec: SweepSpec, points: list[Point]) -> dict:
    """Build and check the training config of every point before any run starts; {point id: its Config}."""
    from ddsweep.pipeline.config import load_config

    built: dict = {}  # (config file, pairs) -> Config: points with the same arguments are built once
    configs = {}
    for point in points:
        config_file, pairs = config_args(spec, point)
        key = (config_file, tuple(pairs))
        if key not in built:
            try:
                built[key] = load_config(config_file, pairs)
            except ConfigError as err:
                raise UserError(_blame(spec, str(err))) from None
        configs[point.id] = built[key]
    return configs


def _blame(spec: SweepSpec, message: str) -> str:
    """Point a config error at the parameter or override that set the key it names."""
    key = message.split(":", 1)[0].strip()

    def sets(name: str) -> bool:
        return name == key or name.startswith(key + ".") or key.startswith(name + ".")

    for name in spec.parameters:
        if sets(str(name)):
            rest = message[len(key):] if str(name) == key else f" ({key}){message[len(key):]}"
            return f"{spec.name}: parameters.{name}{rest}"
    for arg in spec.overrides:
        if sets(arg[2:].split("=", 1)[0]):
            return f"override {arg}: {message}"
    return f"{spec.name}: {message}"
