"""Typed run configuration: one name, one type, one default and one clear error per knob.

A config is built from defaults, then a YAML file, then `--section.key=value` overrides (W&B's
`${args}` form), and validated before any work starts. The sections are pydantic models whose
field types (pipeline/config_types.py) check each value strictly; `validate` adds what needs the
model and dataset registries or two keys at once. Family- and source-specific options
(`model.depth`, `data.num_samples`, ...) sit flat in their section and are checked against the
registries, so a sweep can vary them like any other key. A bad value is one ConfigError line that
names the key and, when the value came from an override or the --config file, that too.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError

from ddsweep.errors import ConfigError
from ddsweep.pipeline.config_types import (AutoBool, Bool, DirPath, Float, Int, PathText, RunName, Section, Seed, Seeds, Str,
                                   StrList, above, at_least, choice, choices, config_error, in_range, key_name,
                                   keyed, only, printable, shown)

NOISE_KINDS = ("symmetric", "uniform", "uniform_incorrect", "asymmetric")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine", "inv_sqrt")
SCHEDULE_INTERVALS = ("step", "epoch")
PLANE_SCHEDULES = ("linear", "log")
VARY = ("init", "order", "both")
PLANE_FAMILIES = ("train", "test", "clean_class", "mislabeled")
AGREEMENT_FAMILIES = ("test_distinct", "test")
PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
MEASURE_PRECISIONS = ("32", "bf16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
WANDB_MODES = ("online", "offline", "disabled")
MARGIN_METHODS = ("lower_bound", "dbviz")

_ONE_DEVICE = ("a run trains on one device (devices 1, strategy auto) with its data resident there. To use "
               "several GPUs run several points at once: ddsweep sweep FILE --local (one run per GPU; "
               "--workers N packs more)")


class NoiseConfig(Section):
    kind: Annotated[str, choice(NOISE_KINDS)] = "symmetric"
    rate: Annotated[Float, in_range(0, 1)] = 0.0
    seed: Seed = 0


class AugmentConfig(Section):
    crop: Bool = False
    flip: Bool = False
    pad: Annotated[Int, at_least(0)] = 4


class DataConfig(Section):
    name: Str = "digits"  # checked against the dataset registry by validate
    root: PathText | None = None
    download: Bool = False
    n_train: Annotated[Int, at_least(1)] | None = None
    subset_seed: Seed = 0
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    options: dict = Field(default_factory=dict)  # source-specific, written flat as data.<option>


class ModelConfig(Section):
    name: Str = "mlpk"  # checked against the model registry by validate
    width: Annotated[Int, at_least(1)] = 16
    activation: Str = "relu"  # checked against models.ACTIVATIONS by validate
    smelu_beta: Annotated[Float, above(0)] = 1.0
    options: dict = Field(default_factory=dict)  # family-specific, written flat as model.<option>


class TrainConfig(Section):
    epochs: Annotated[Int, at_least(1)] = 10
    batch_size: Annotated[Int, at_least(1)] = 128
    eval_batch_size: Annotated[Int, at_least(1)] = 2048
    optimizer: Annotated[str, choice(OPTIMIZERS)] = "adam"
    lr: Annotated[Float, above(0)] = 1e-3
    momentum: Annotated[Float, in_range(0, 1)] = 0.9
    weight_decay: Annotated[Float, at_least(0)] = 0.0
    schedule: Annotated[str, choice(SCHEDULES)] = "constant"
    # inv_sqrt: lr / sqrt(1 + floor(t / schedule_step)) at gradient step t
    schedule_step: Annotated[Int, at_least(1)] = 512
    # The unit t of the schedule: `step` (every gradient step) or `epoch` (constant within an epoch,
    # as torch's schedulers stepped once per epoch: Li et al.'s cosine)
    schedule_interval: Annotated[str, choice(SCHEDULE_INTERVALS)] = "step"
    precision: Annotated[str, choice(PRECISIONS)] = "auto"
    accelerator: Annotated[str, choice(ACCELERATORS)] = "auto"
    # one device per run: several GPUs are used by running several runs at once
    devices: Annotated[Int, only(1, _ONE_DEVICE)] = 1
    strategy: Annotated[Str, only("auto", _ONE_DEVICE)] = "auto"  # kept so run directories can be re-read
    fuse_seeds: Bool = True
    compile: Bool = False  # torch.compile the network
    # torch.compile mode; reduce-overhead captures CUDA graphs on a GPU
    compile_mode: Annotated[str, choice(COMPILE_MODES)] = "default"
    channels_last: AutoBool = "auto"  # 2-D convolutions channels-last (auto: on a GPU, for images)
    deterministic: AutoBool = "auto"  # deterministic algorithms (auto: everywhere but a GPU)
    checkpoint_every: Annotated[Int, at_least(1)] | None = None  # also a checkpoint every n epochs (null: by time only)
    # a checkpoint once this much wall time passed since the last (0: off), and at the end
    checkpoint_minutes: Annotated[Float, at_least(0)] = 10.0
    eval_every: Annotated[Int, at_least(1)] = 1  # evaluate train/test sets (bookkeeping metrics) every n epochs


class ReproConfig(Section):
    vary: Annotated[str, choice(VARY)] = "init"
    shuffle_window: Annotated[Int, at_least(1)] | None = None  # None: full shuffle (W = N); 1: fixed order


class PlanesConfig(Section):
    every_n_epochs: Annotated[Int, at_least(0)] = 1  # 0 turns decision-plane measurement off (either schedule)
    # linear: every every_n_epochs; log: about log_points epochs log-spaced in [1, epochs]
    schedule: Annotated[str, choice(PLANE_SCHEDULES)] = "linear"
    log_points: Annotated[Int, at_least(2)] = 50
    at_init: Bool = False  # also evaluate and measure at epoch 0, before any training
    families: Annotated[list, choices(PLANE_FAMILIES)] = Field(default_factory=lambda: ["train", "test"])
    n_planes: Annotated[Int, at_least(1)] = 20
    resolution: Annotated[Int, at_least(2)] = 50
    margin: Annotated[Float, at_least(0)] = 0.1
    triangles: Bool = False  # also count regions on the triangle x1, x2, x3 of each plane's triplet
    seed: Seed = 0
    agreement_triplets: Annotated[Int, at_least(0)] = 100
    # METHODS: agreement over test triplets of three distinct classes; `test` (any three test
    # points) is the choice for data with fewer than three classes, recorded in the config.
    agreement_family: Annotated[str, choice(AGREEMENT_FAMILIES)] = "test_distinct"
    draw: Annotated[Int, at_least(0)] = 2  # planes drawn as pictures per family (0: none)
    draw_resolution: Annotated[Int, at_least(2)] = 200
    draw_margin: Annotated[Float, at_least(0)] = 0.5
    draw_every_n_epochs: Annotated[Int, at_least(1)] = 10  # pictures are drawn on these epochs and at the last one
    max_points_per_call: Annotated[Int, at_least(1)] = 16384  # grid points per forward pass (bounds memory)
    # 32: measurement's forward passes in fp32 whatever train.precision; bf16: bf16 autocast
    precision: Annotated[str, choice(MEASURE_PRECISIONS)] = "32"


class Regions1dConfig(Section):
    pairs: Annotated[Int, at_least(0)] = 100  # 0 turns the 1-D count off
    points: Annotated[Int, at_least(2)] = 200


class MarginConfig(Section):
    points: Annotated[Int, at_least(0)] = 0  # base points; 0 turns the margin off
    max_step: Annotated[Float, above(0)] = 10.0
    steps: Annotated[Int, at_least(2)] = 64
    # lower_bound: one direction per base point on the geometric grid up to max_step (METHODS);
    # dbviz: dbViz's avg_margin over `directions` crossing directions on its own step grid
    method: Annotated[str, choice(MARGIN_METHODS)] = "lower_bound"
    directions: Annotated[Int, at_least(1)] = 10


class WandbConfig(Section):
    # None: WANDB_MODE, else online when logged in, else offline
    mode: Annotated[str, choice(WANDB_MODES)] | None = None
    project: Str = "ddsweep"
    entity: Str | None = None
    group: Str | None = None
    tags: StrList = Field(default_factory=list)


class Config(Section):
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seeds: Seeds = Field(default_factory=lambda: [0, 1])
    repro: ReproConfig = Field(default_factory=ReproConfig)
    planes: PlanesConfig = Field(default_factory=PlanesConfig)
    regions1d: Regions1dConfig = Field(default_factory=Regions1dConfig)
    margin: MarginConfig = Field(default_factory=MarginConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    output_dir: DirPath = "runs"
    run_name: RunName | None = None

    def to_dict(self) -> dict:
        """Nested plain dict with family/source options written flat, as a user writes them."""
        out = self.model_dump()
        for section in ("model", "data"):
            out[section].update(out[section].pop("options"))
        return out


# ----------------------------------------------------------------------------- loading

class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, except that only true/false are booleans (as in YAML 1.2): yes, no,
    on and off stay text, so a bool key refuses them and `--wandb.mode=off` is not false."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> Config:
    """Defaults ← YAML file ← overrides, then validated. Raises ConfigError on any bad input; one
    about a key set by an override or the file says which."""
    raw: dict = {}
    if path is not None:
        raw = read_yaml(path)
    in_file = _dotted_keys(raw)
    if isinstance(overrides, dict):
        given = [(key, value, f"--{key}={shown(value)}") for key, value in overrides.items()]
    else:
        given = [(*parse_override(arg), arg) for arg in overrides or []]
    for key, value, _ in given:
        set_dotted(raw, key, value)
    try:
        cfg = from_dict(raw)
        validate(cfg)
    except ConfigError as err:
        raise _blamed(err, [(key, arg) for key, _, arg in given], path, in_file) from None
    return cfg


def _dotted_keys(raw: Any, prefix: str = "") -> list[str]:
    """Every dotted key path of a nested mapping, as errors name them."""
    out = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            out.append(prefix + key_name(key))
            out += _dotted_keys(value, f"{prefix}{key_name(key)}.")
    return out


def _blamed(err: ConfigError, given: list[tuple[str, str]], path, in_file: list[str]) -> ConfigError:
    """`err` naming where its key's value came from: the last override that set the key, a section
    above it or a key below it, else the --config file; unchanged when its value is a default."""
    key = getattr(err, "key", None) or str(err).split(": ", 1)[0]

    def sets(name: str) -> bool:
        return name == key or name.startswith(key + ".") or key.startswith(name + ".")

    source = next((arg for name, arg in reversed(given) if sets(name)), None)
    if source is not None:
        where = f"from {printable(source)}"
    elif path is not None and any(sets(name) for name in in_file):
        where = f"in {printable(str(path), 200)}"
    else:
        return err
    return keyed(key, f"{str(err).removeprefix(key + ': ')} ({where})")


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--config: {path} is a directory; give a YAML file")
    if not path.is_file():
        raise ConfigError(f"--config: {path} does not exist")
    try:
        raw = yaml.load(path.read_text(), Loader=_Loader)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file") from None
    except OSError as err:
        raise ConfigError(f"--config: cannot read {path}: {err.strerror or type(err).__name__}") from None
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
        value = yaml.load(text, Loader=_Loader) if text != "" else ""
    except (yaml.YAMLError, ValueError):  # not YAML: the text itself, which the key's type then checks
        value = text
    return key, value


def dotted(tree: dict, prefix: str = "") -> dict:
    """A nested mapping as {"model.width": 8, ...} (the inverse of set_dotted; empty mappings vanish)."""
    flat: dict = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(dotted(value, name + "."))
        else:
            flat[name] = value
    return flat


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
    """A Config from a nested mapping as a user writes it (options flat); ConfigError if a key is
    unknown or a value has the wrong type or range. Registry names and options are `validate`'s."""
    # `--wandb=disabled` is shorthand for `--wandb.mode=disabled`.
    if isinstance(raw, dict) and "wandb" in raw and not isinstance(raw["wandb"], dict):
        raw = {**raw, "wandb": {"mode": raw["wandb"]}}
    try:
        return Config.model_validate(raw, context={"as_written": True})
    except ValidationError as err:
        raise config_error(err) from None


# ----------------------------------------------------------------------------- validation

def _choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise keyed(key, f"{shown(value)} is not allowed; choose one of {', '.join(map(str, allowed))}")


def validate(cfg: Config) -> None:
    """What the field types cannot check alone: names from the model and dataset registries, their
    flat options, and rules that tie two keys together. Run before any work starts."""
    from ddsweep.data import list_sources, source_options
    from ddsweep.models import ACTIVATIONS, list_models, model_options

    m, d, p = cfg.model, cfg.data, cfg.planes
    _choice("model.name", m.name, list_models())
    _choice("model.activation", m.activation, ACTIVATIONS)
    _check_options("model", m.name, m.options, ModelConfig, model_options(m.name))
    _choice("data.name", d.name, list_sources())
    _check_options("data", d.name, d.options, DataConfig, source_options(d.name))
    if "mislabeled" in p.families and d.noise.rate == 0 and p.every_n_epochs:
        raise keyed("planes.families", "'mislabeled' needs label noise (data.noise.rate > 0)")


def _check_options(section: str, name: str, given: dict, cls: type[Section], options: dict) -> None:
    for key in given:
        if key not in options:
            allowed = ", ".join(sorted(set(cls.section_keys()) | set(options)))
            raise keyed(f"{section}.{key_name(key)}",
                        f"unknown key for {section}.name={name}; allowed keys are {allowed}")


def known_keys(cfg: Config | None = None) -> set[str]:
    """Every dotted key a sweep may set, but for the family/source options (`model_options`,
    `source_options`); plus `wandb`, short for `wandb.mode`."""
    keys = {"wandb"}

    def walk(section: Section, prefix: str) -> None:
        for name in section.section_keys():
            value = getattr(section, name)
            if isinstance(value, Section):
                walk(value, f"{prefix}{name}.")
            else:
                keys.add(prefix + name)

    walk(cfg or Config(), "")
    return keys
