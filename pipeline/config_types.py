"""The value types of the run config (pipeline/config.py), on pydantic v2, and its one-line errors.

Every type is a PlainValidator, so pydantic's lax conversions ("3" → 3, 1 → True) never apply; the
config's own rules do. An integer key takes an integer (4, or 4.0) but not 3.5, true or "3"; a float
key takes any finite number, and the text YAML 1.1 leaves for `1e-4`; a bool key takes true or false
only; a string key takes text or a number (`--data.name=10`). A bad value raises a pydantic error
whose text says what is wrong and what is allowed; `config_error` puts the dotted key in front.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainValidator, ValidationError, ValidationInfo, \
    model_validator
from pydantic_core import PydanticCustomError

from ddsweep.errors import ConfigError

INT64 = 2**63  # torch and numpy take 64-bit integers; torch.Generator.manual_seed refuses 2**64
RUN_NAME_MAX = 200  # characters; a directory name stays well inside every file system's limit (255 bytes)


def problem(text: str, key: Any = None) -> PydanticCustomError:
    """A validation error carrying one line of text (and, for an unknown key, that key)."""
    ctx = {"problem": text} if key is None else {"problem": text, "key": key}
    return PydanticCustomError("ddsweep", "{problem}", ctx)


def keyed(key: str, text: str) -> ConfigError:
    """`key: text` as a ConfigError that remembers its key (so the loader can say who set it)."""
    err = ConfigError(f"{key}: {text}")
    err.key = key
    return err


def shown(value: Any, limit: int = 80) -> str:
    """repr(value), cut short so that a pasted megabyte stays a readable line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 20]}... ({len(text)} characters)"


def printable(text: str, limit: int = 80) -> str:
    """`text` as one line: quoted with escapes if it holds a newline, NUL or the like; cut short."""
    text = text if text.isprintable() else repr(text)
    return text if len(text) <= limit else text[:limit - 20] + "..."


def key_name(key: Any) -> str:
    """A mapping key as an error names it: as written, or quoted if it is blank, not text or not
    printable on one line."""
    return key if isinstance(key, str) and key.strip() and key.isprintable() else repr(key)


def config_error(err: ValidationError) -> ConfigError:
    """The first error pydantic found, as `dotted.key: what is wrong and what is allowed`."""
    first = err.errors(include_url=False)[0]
    ctx = first.get("ctx") or {}
    parts = [key_name(part) for part in first["loc"]]
    if "key" in ctx:
        parts.append(key_name(ctx["key"]))
    return keyed(".".join(parts) or "config", ctx.get("problem", first["msg"]))


# ----------------------------------------------------------------------------- scalars

def _int(value: Any) -> int:
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)  # 4.0 is the integer 4 (3.5, nan and inf are not integers)
    if isinstance(value, bool) or not isinstance(value, int):
        raise problem(f"must be an integer, got {shown(value)}")
    if not -INT64 <= value < INT64:
        raise problem(f"must be an integer between -2**63 and 2**63 - 1, got {shown(value, 40)}")
    return value


def _float(value: Any) -> float:
    given = value
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-4 (no dot) as text
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise problem(f"must be a finite number, got {shown(given)}")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond any float
        value = math.inf
    if not math.isfinite(value):
        raise problem(f"must be a finite number, got {shown(given, 40)}")
    return value


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise problem(f"must be true or false, got {shown(value)}")


def _auto_bool(value: Any) -> bool | str:
    if isinstance(value, bool) or value == "auto":
        return value
    raise problem(f"{shown(value)} is not allowed; choose one of auto, true, false")


def _str(value: Any) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise problem(f"must be a string, got {shown(value)}")


def _is_seed(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value < INT64


def _seed(value: Any) -> int:
    if not _is_seed(value):
        raise problem(f"must be an integer in [0, 2**63), got {shown(value, 40)}")
    return value


def _seeds(value: Any) -> list[int]:
    value = _list(value)
    if not value:
        raise problem("needs at least one seed, e.g. [0, 1]")
    for seed in value:
        if not _is_seed(seed):
            raise problem(f"every seed must be an integer in [0, 2**63), got {shown(seed, 40)}")
    if len(set(value)) != len(value):
        raise problem(f"must be distinct, got {shown(value)}")
    return value


def _list(value: Any) -> list:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return [value]  # `--planes.families=train` is the list [train]
    if not isinstance(value, list):
        raise problem(f"must be a list, got {shown(value)}")
    return list(value)


def _path(value: Any) -> str:
    value = _str(value)
    if "\0" in value:
        raise problem(f"must be a path without NUL characters, got {shown(value)}")
    return value


def _dir_path(value: Any) -> str:
    value = _path(value)
    if not value:
        raise problem("must be a non-empty path")
    return value


def _run_name(value: Any) -> str:
    value = _str(value)
    if len(value) > RUN_NAME_MAX:
        raise problem(f"must be at most {RUN_NAME_MAX} characters, got {len(value)}")
    if value in ("", ".", "..") or any(c in value for c in "/\\\0"):
        raise problem(f"{shown(value)} must be a plain directory name (no '/', '\\' or NUL)")
    return value


Int = Annotated[int, PlainValidator(_int)]
Float = Annotated[float, PlainValidator(_float)]
Bool = Annotated[bool, PlainValidator(_bool)]
AutoBool = Annotated[Any, PlainValidator(_auto_bool)]  # "auto" (decided by the device plan), true or false
Str = Annotated[str, PlainValidator(_str)]
Seed = Annotated[int, PlainValidator(_seed)]
Seeds = Annotated[list, PlainValidator(_seeds)]
StrList = Annotated[list, PlainValidator(lambda value: [_str(item) for item in _list(value)])]
PathText = Annotated[str, PlainValidator(_path)]
DirPath = Annotated[str, PlainValidator(_dir_path)]
RunName = Annotated[str, PlainValidator(_run_name)]


def _choice(value: Any, allowed: Sequence[str]) -> str:
    value = _str(value)  # numbers are read as text: precision 32 is "32"
    if value not in allowed:
        raise problem(f"{shown(value)} is not allowed; choose one of {', '.join(allowed)}")
    return value


def choice(allowed: Sequence[str]) -> PlainValidator:
    """A string that must be one of `allowed`."""
    return PlainValidator(lambda value: _choice(value, allowed))


def choices(allowed: Sequence[str]) -> PlainValidator:
    """A list (or one item) of strings from `allowed`."""
    return PlainValidator(lambda value: [_choice(item, allowed) for item in _list(value)])


def _after(ok: Callable[[Any], bool], text: str) -> AfterValidator:
    def check(value):
        if not ok(value):
            raise problem(f"{text}, got {value}")
        return value
    return AfterValidator(check)


def at_least(low) -> AfterValidator:
    return _after(lambda v: v >= low, f"must be >= {low}")


def above(low) -> AfterValidator:
    return _after(lambda v: v > low, f"must be > {low}")


def in_range(low, high) -> AfterValidator:
    """In the half-open range [low, high)."""
    return _after(lambda v: low <= v < high, f"must be in [{low}, {high})")


def only(supported: Any, why: str) -> AfterValidator:
    """A key kept for old run directories that takes one value; `why` says what to do instead."""
    def check(value):
        if value != supported:
            raise problem(f"{shown(value)} is not supported; {why}")
        return value
    return AfterValidator(check)


# ----------------------------------------------------------------------------- sections

class Section(BaseModel):
    """A config section: a mapping of its own keys, each with its type and default. A missing or
    empty section means all defaults. Assignment is checked like input (`cfg.train.epochs = 0`
    raises). A section with an `options` field (model, data) keeps every key it does not know there,
    flat as the user writes them, for `validate` to check against the registries."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def section_keys(cls) -> list[str]:
        return [name for name in cls.model_fields if name != "options"]

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, raw: Any, info: ValidationInfo) -> Any:
        if raw is None:
            return {}
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, dict):
            raise problem(f"must be a mapping (keys {', '.join(cls.section_keys())}), got {shown(raw)}")
        if not (info.context or {}).get("as_written"):
            return raw  # keyword arguments and assignments name the fields themselves, options included
        known = cls.section_keys()
        unknown = [key for key in raw if key not in known]
        if "options" in cls.model_fields:
            return {**{k: v for k, v in raw.items() if k in known}, "options": {k: raw[k] for k in unknown}}
        if unknown:
            raise problem(f"unknown key; allowed keys are {', '.join(sorted(known))}", key=unknown[0])
        return raw
