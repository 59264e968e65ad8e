"""Typed run configuration: one name, one type, one default and one clear error per knob.

A config is built from defaults, then a YAML file, then `--section.key=value` overrides (W&B's
`${args}` form), and validated before any work starts. Family- and source-specific options
(`model.depth`, `data.num_samples`, ...) sit flat in their section and are checked against the
registries, so a sweep can vary them like any other key.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ddsweep.errors import ConfigError

NOISE_KINDS = ("symmetric", "uniform", "uniform_incorrect", "asymmetric")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "inv_sqrt")
VARY = ("init", "order", "both")
PLANE_FAMILIES = ("train", "test", "clean_class", "mislabeled")
AGREEMENT_FAMILIES = ("test_distinct", "test")
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
WANDB_MODES = ("online", "offline", "disabled")
MARGIN_METHODS = ("lower_bound", "dbviz")


@dataclass
class NoiseConfig:
    kind: str = "symmetric"
    rate: float = 0.0
    seed: int = 0


@dataclass
class AugmentConfig:
    crop: bool = False
    flip: bool = False
    pad: int = 4


@dataclass
class DataConfig:
    name: str = "digits"
    root: Optional[str] = None
    download: bool = False
    n_train: Optional[int] = None
    subset_seed: int = 0
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    options: dict = field(default_factory=dict)  # source-specific, written flat as data.<option>


@dataclass
class ModelConfig:
    name: str = "mlpk"
    width: int = 16
    activation: str = "relu"
    smelu_beta: float = 1.0
    options: dict = field(default_factory=dict)  # family-specific, written flat as model.<option>


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 2048
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    schedule_step: int = 512  # inv_sqrt: lr / sqrt(1 + floor(t / schedule_step)) at gradient step t
    precision: str = "auto"
    accelerator: str = "auto"
    devices: int = 1  # one device per run: several GPUs are used by running several runs at once
    strategy: str = "auto"  # kept so run directories can be re-read; only "auto"
    fuse_seeds: bool = True
    compile: bool = False  # torch.compile the network
    compile_mode: str = "default"  # torch.compile mode; reduce-overhead captures CUDA graphs on a GPU
    checkpoint_every: int = 1
    eval_every: int = 1  # evaluate train/test sets (bookkeeping metrics) every n epochs


@dataclass
class ReproConfig:
    vary: str = "init"
    shuffle_window: Optional[int] = None  # None: full shuffle (W = N); 1: fixed order


@dataclass
class PlanesConfig:
    every_n_epochs: int = 1  # 0 turns decision-plane measurement off
    families: list = field(default_factory=lambda: ["train", "test"])
    n_planes: int = 20
    resolution: int = 50
    margin: float = 0.1
    triangles: bool = False  # also count regions on the triangle x1, x2, x3 of each plane's triplet
    seed: int = 0
    agreement_triplets: int = 100
    # METHODS: agreement over test triplets of three distinct classes; `test` (any three test
    # points) is the choice for data with fewer than three classes, recorded in the config.
    agreement_family: str = "test_distinct"
    draw: int = 2  # planes drawn as pictures per family (0: none)
    draw_resolution: int = 200
    draw_margin: float = 0.5
    draw_every_n_epochs: int = 10  # pictures are drawn on these epochs and at the last one
    max_points_per_call: int = 16384  # grid points per forward pass (bounds memory)


@dataclass
class Regions1dConfig:
    pairs: int = 100  # 0 turns the 1-D count off
    points: int = 200


@dataclass
class MarginConfig:
    points: int = 0  # base points; 0 turns the margin off
    max_step: float = 10.0
    steps: int = 64
    # lower_bound: one direction per base point on the geometric grid up to max_step (METHODS);
    # dbviz: dbViz's avg_margin over `directions` crossing directions on its own step grid
    method: str = "lower_bound"
    directions: int = 10


@dataclass
class WandbConfig:
    mode: Optional[str] = None  # None: WANDB_MODE, else online when logged in, else offline
    project: str = "ddsweep"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: list = field(default_factory=list)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seeds: list = field(default_factory=lambda: [0, 1])
    repro: ReproConfig = field(default_factory=ReproConfig)
    planes: PlanesConfig = field(default_factory=PlanesConfig)
    regions1d: Regions1dConfig = field(default_factory=Regions1dConfig)
    margin: MarginConfig = field(default_factory=MarginConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    output_dir: str = "runs"
    run_name: Optional[str] = None

    def to_dict(self) -> dict:
        """Nested plain dict with family/source options written flat, as a user writes them."""
        out = dataclasses.asdict(self)
        for section in ("model", "data"):
            out[section].update(out[section].pop("options"))
        return out


# ----------------------------------------------------------------------------- loading

def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> Config:
    """Defaults ← YAML file ← overrides, then validated. Raises ConfigError on any bad input."""
    raw: dict = {}
    if path is not None:
        raw = read_yaml(path)
    if isinstance(overrides, dict):
        pairs = list(overrides.items())
    else:
        pairs = [parse_override(arg) for arg in overrides or []]
    for key, value in pairs:
        set_dotted(raw, key, value)
    cfg = from_dict(raw)
    validate(cfg)
    return cfg


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config: {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file") from None
    except (yaml.YAMLError, ValueError) as err:  # PyYAML raises ValueError for a bad `!!int x` and the like
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or (str(err).splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config sections")
    return raw


def parse_override(arg: str) -> tuple[str, Any]:
    """`--model.width=4` → ("model.width", 4); values are YAML scalars or lists."""
    if not arg.startswith("--") or "=" not in arg:
        raise ConfigError(f"{arg!r}: overrides take the form --section.key=value (e.g. --model.width=8)")
    key, text = arg[2:].split("=", 1)
    if not key:
        raise ConfigError(f"{arg!r}: missing key before '='")
    if not all(key.split(".")):
        raise ConfigError(f"{arg!r}: {key!r} has an empty part; keys are dotted names such as model.width")
    try:
        value = yaml.safe_load(text) if text != "" else ""
    except (yaml.YAMLError, ValueError):  # not YAML: the text itself, which the key's type then checks
        value = text
    return key, value


def set_dotted(raw: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None or part != "wandb" else {"mode": child}
            node[part] = child
        node = child
    node[parts[-1]] = value


def from_dict(raw: dict) -> Config:
    raw = dict(raw)
    # `--wandb=disabled` is shorthand for `--wandb.mode=disabled`.
    if "wandb" in raw and not isinstance(raw["wandb"], dict):
        raw["wandb"] = {"mode": raw["wandb"]}
    return _build(Config, raw, "")


def _build(cls, raw: Any, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict = {}
    extra: dict = {}
    for key, value in raw.items():
        if key not in names or key == "options":
            if "options" in names:
                extra[key] = value
                continue
            allowed = ", ".join(sorted(n for n in names if n != "options"))
            name = f"{prefix}{key}" if isinstance(key, str) and key.strip() else f"{prefix}{key!r}"
            raise ConfigError(f"{name}: unknown key; allowed keys are {allowed}")
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    if extra:
        kwargs["options"] = extra
    return cls(**kwargs)


def _coerce(tp, value: Any, key: str):
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, key + ".")
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: must be true or false, got {value!r}")
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value != int(value)):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:  # YAML reads 1e-4 as a string
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: must be a string, got {value!r}")
    if tp is list or origin is list:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list, got {value!r}")
        return list(value)
    if tp is dict:
        return dict(value)
    return value


# ----------------------------------------------------------------------------- validation

def _choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(str, allowed))}")


def _at_least(key: str, value, low) -> None:
    if value < low:
        raise ConfigError(f"{key}: must be >= {low}, got {value}")


def validate(cfg: Config) -> None:
    """Check every value against what it may be, before any work starts."""
    from data import list_sources, source_options
    from models import ACTIVATIONS, list_models, model_options

    m = cfg.model
    _choice("model.name", m.name, list_models())
    _at_least("model.width", m.width, 1)
    _choice("model.activation", m.activation, ACTIVATIONS)
    if m.smelu_beta <= 0:
        raise ConfigError(f"model.smelu_beta: must be > 0, got {m.smelu_beta}")
    _check_options("model", m.name, m.options, model_options(m.name))

    d = cfg.data
    _choice("data.name", d.name, list_sources())
    _check_options("data", d.name, d.options, source_options(d.name))
    if d.n_train is not None:
        _at_least("data.n_train", d.n_train, 1)
    _choice("data.noise.kind", d.noise.kind, NOISE_KINDS)
    if not 0.0 <= d.noise.rate < 1.0:
        raise ConfigError(f"data.noise.rate: must be in [0, 1), got {d.noise.rate}")
    _at_least("data.augment.pad", d.augment.pad, 0)

    t = cfg.train
    _at_least("train.epochs", t.epochs, 1)
    _at_least("train.batch_size", t.batch_size, 1)
    _at_least("train.eval_batch_size", t.eval_batch_size, 1)
    _choice("train.optimizer", t.optimizer, OPTIMIZERS)
    if t.lr <= 0:
        raise ConfigError(f"train.lr: must be > 0, got {t.lr}")
    if not 0 <= t.momentum < 1:
        raise ConfigError(f"train.momentum: must be in [0, 1), got {t.momentum}")
    _at_least("train.weight_decay", t.weight_decay, 0)
    _choice("train.schedule", t.schedule, SCHEDULES)
    _at_least("train.schedule_step", t.schedule_step, 1)
    _choice("train.precision", t.precision, PRECISIONS)
    _choice("train.accelerator", t.accelerator, ACCELERATORS)
    _choice("train.compile_mode", t.compile_mode, COMPILE_MODES)
    if t.devices != 1 or t.strategy != "auto":
        key, value = ("train.devices", t.devices) if t.devices != 1 else ("train.strategy", repr(t.strategy))
        raise ConfigError(f"{key}: {value} is not supported; a run trains on one device (devices 1, strategy "
                          "auto) with its data resident there. To use several GPUs run several points at "
                          "once: ddsweep sweep FILE --local (one run per GPU; --workers N packs more)")
    _at_least("train.checkpoint_every", t.checkpoint_every, 1)
    _at_least("train.eval_every", t.eval_every, 1)

    if not cfg.seeds:
        raise ConfigError("seeds: needs at least one seed, e.g. [0, 1]")
    for s in cfg.seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds: every seed must be an integer >= 0, got {s!r}")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"seeds: must be distinct, got {cfg.seeds}")

    _choice("repro.vary", cfg.repro.vary, VARY)
    if cfg.repro.shuffle_window is not None:
        _at_least("repro.shuffle_window", cfg.repro.shuffle_window, 1)

    p = cfg.planes
    _at_least("planes.every_n_epochs", p.every_n_epochs, 0)
    for fam in p.families:
        _choice("planes.families", fam, PLANE_FAMILIES)
    if "mislabeled" in p.families and d.noise.rate == 0 and p.every_n_epochs:
        raise ConfigError("planes.families: 'mislabeled' needs label noise (data.noise.rate > 0)")
    _at_least("planes.n_planes", p.n_planes, 1)
    _at_least("planes.resolution", p.resolution, 2)
    _at_least("planes.margin", p.margin, 0)
    _at_least("planes.agreement_triplets", p.agreement_triplets, 0)
    _choice("planes.agreement_family", p.agreement_family, AGREEMENT_FAMILIES)
    _at_least("planes.draw", p.draw, 0)
    _at_least("planes.draw_resolution", p.draw_resolution, 2)
    _at_least("planes.draw_margin", p.draw_margin, 0)
    _at_least("planes.draw_every_n_epochs", p.draw_every_n_epochs, 1)
    _at_least("planes.max_points_per_call", p.max_points_per_call, 1)
    _at_least("regions1d.pairs", cfg.regions1d.pairs, 0)
    _at_least("regions1d.points", cfg.regions1d.points, 2)
    _at_least("margin.points", cfg.margin.points, 0)
    _at_least("margin.steps", cfg.margin.steps, 2)
    if cfg.margin.max_step <= 0:
        raise ConfigError(f"margin.max_step: must be > 0, got {cfg.margin.max_step}")
    _choice("margin.method", cfg.margin.method, MARGIN_METHODS)
    _at_least("margin.directions", cfg.margin.directions, 1)

    if cfg.wandb.mode is not None:
        _choice("wandb.mode", cfg.wandb.mode, WANDB_MODES)
    if not cfg.output_dir:
        raise ConfigError("output_dir: must be a non-empty path")
    if cfg.run_name is not None and (not cfg.run_name or "/" in cfg.run_name or cfg.run_name in (".", "..")):
        raise ConfigError(f"run_name: {cfg.run_name!r} must be a plain directory name")


def _check_options(section: str, name: str, given: dict, allowed: dict) -> None:
    for key in given:
        if key not in allowed:
            choices = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"{section}.{key}: unknown key for {section}.name={name}; its options are {choices}")


def known_keys(cfg: Config | None = None) -> set[str]:
    """Every dotted key a sweep may set (family/source options of the configured names included)."""
    cfg = cfg or Config()
    keys: set[str] = set()

    def walk(obj, prefix):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name == "options":
                continue
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                keys.add(prefix + f.name)

    walk(cfg, "")
    keys.add("wandb")
    return keys
