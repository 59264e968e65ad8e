"""Models by name, as timm does it (`register_model`, `create_model`, `list_models`).

A family is a function `fn(width, in_shape, num_classes, activation, copies, **options)` that
returns an uninitialized FusedModel; its keyword options and their defaults are read from its
signature. `create_model` checks the arguments (a ConfigError naming the key for a bad one),
builds the model and initializes it from explicit generators.
"""

import inspect
from collections.abc import Callable
from numbers import Integral, Real

import torch
from torch import nn

from ddsweep.models.base import init_parameters
from ddsweep.models.layers import check_activation
from ddsweep.errors import ConfigError

_FIXED = ("width", "in_shape", "num_classes", "activation", "copies")
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a family under its function name (decorator)."""
    params = list(inspect.signature(fn).parameters.values())
    if tuple(p.name for p in params[:len(_FIXED)]) != _FIXED:
        raise TypeError(f"register_model: {fn.__name__} must take {', '.join(_FIXED)} first")
    if any(p.default is inspect.Parameter.empty for p in params[len(_FIXED):]):
        raise TypeError(f"register_model: every option of {fn.__name__} needs a default")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def _lookup(name: str) -> Callable[..., nn.Module]:
    if name not in _REGISTRY:
        raise ConfigError(f"model.name: {name!r} is not a model; choose one of {', '.join(list_models())}")
    return _REGISTRY[name]


def model_options(name: str) -> dict[str, object]:
    """The family-specific options of `name` and their defaults, e.g. {'depth': 2, 'smelu_beta': 1.0}."""
    params = list(inspect.signature(_lookup(name)).parameters.values())[len(_FIXED):]
    return {p.name: p.default for p in params}


def _integer(key: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ConfigError(f"model.{key}: must be an integer >= {low}, got {value!r}")
    return int(value)


def _option(name: str, key: str, value: object, defaults: dict[str, object]) -> object:
    """`value` with the type of the option's default (an int is fine where a float is expected)."""
    if key not in defaults:
        raise ConfigError(f"model.{key}: not an option of {name}; "
                          f"its options are {', '.join(defaults) or 'none'}")
    default = defaults[key]
    if isinstance(default, bool) and isinstance(value, bool):
        return value
    if isinstance(default, Integral) and not isinstance(default, bool):
        if isinstance(value, Integral) and not isinstance(value, bool):
            return int(value)
    elif isinstance(default, Real) and isinstance(value, Real) and not isinstance(value, bool):
        return float(value)
    elif not isinstance(default, (bool, Real)):
        return value
    raise ConfigError(f"model.{key}: must be of type {type(default).__name__}, got {value!r}")


def create_model(name: str, *, width: int, in_shape: tuple[int, ...], num_classes: int,
                 activation: str = "relu", copies: int = 1,
                 generators: list[torch.Generator] | None = None, **options) -> nn.Module:
    """Build family `name` at `width` with `copies` independent copies, initialized from
    `generators` (copy s from generators[s]; default: generators seeded 0..copies-1)."""
    model = _construct(name, width=width, in_shape=in_shape, num_classes=num_classes, activation=activation,
                       copies=copies, **options)
    if generators is None:
        generators = [torch.Generator().manual_seed(i) for i in range(copies)]
    init_parameters(model, generators)
    return model


def model_skeleton(name: str, *, width: int, in_shape: tuple[int, ...], num_classes: int,
                   activation: str = "relu", copies: int = 1, **options) -> nn.Module:
    """Family `name` as `create_model` builds it, on the meta device and uninitialized: every
    parameter's shape and a forward pass that computes output shapes only, without allocating
    (sizes are checked with it before a run allocates anything)."""
    with torch.device("meta"):
        return _construct(name, width=width, in_shape=in_shape, num_classes=num_classes, activation=activation,
                          copies=copies, **options)


def _construct(name: str, *, width, in_shape, num_classes, activation, copies, **options) -> nn.Module:
    """The validated, uninitialized module of family `name`."""
    fn = _lookup(name)
    width = _integer("width", width, 1)
    copies = _integer("copies", copies, 1)
    num_classes = _integer("num_classes", num_classes, 1)
    if not in_shape or any(isinstance(d, bool) or not isinstance(d, Integral) or d < 1 for d in in_shape):
        raise ConfigError(f"model.in_shape: must be a non-empty tuple of integers >= 1, got {in_shape!r}")
    in_shape = tuple(int(d) for d in in_shape)
    defaults = model_options(name)
    kwargs = {**defaults, **{k: _option(name, k, v, defaults) for k, v in options.items()}}
    check_activation(activation, kwargs.get("smelu_beta", 1.0))
    return fn(width=width, in_shape=in_shape, num_classes=num_classes, activation=activation,
              copies=copies, **kwargs)
