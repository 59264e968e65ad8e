"""The on-disk dataset cache (data.cache): a cached dataset is bit for bit the generated one, a
changed option or package version misses the cache, a damaged file is generated again."""
from __future__ import annotations

import dataclasses
import importlib.metadata
from pathlib import Path

import pytest
import torch

from ddsweep.data import sources
from ddsweep.data.cache import cache_dir
from ddsweep.data.sources import Dataset, load_source

SMALL = {
    "mnist1d": {"num_samples": 100, "train_split": 0.5},
    "moons": {"train_size": 60, "test_size": 30},
    "gaussians": {"train_size": 60, "test_size": 30, "dim": 3},
    "spirals": {"train_size": 60, "test_size": 30, "classes": 3},
    "digits": {},
}


def assert_bitwise_equal(a: Dataset, b: Dataset) -> None:
    for f in dataclasses.fields(Dataset):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if torch.is_tensor(x):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert x.numpy().tobytes() == y.numpy().tobytes(), f.name
        else:
            assert x == y and type(x) is type(y), f.name


def files() -> list[Path]:
    return sorted(cache_dir().glob("*.pt")) if cache_dir().exists() else []


def count_generations(monkeypatch, name: str) -> list:
    """Replace the source's generator by one that counts its calls."""
    calls = []
    source = sources._SOURCES[name]

    def counted(**options):
        calls.append(options)
        return source.fn(**options)

    monkeypatch.setitem(sources._SOURCES, name, dataclasses.replace(source, fn=counted))
    return calls


@pytest.mark.parametrize("name", sorted(SMALL))
def test_cached_dataset_is_bitwise_the_generated_one(name, monkeypatch):
    fresh = sources._SOURCES[name].fn(**SMALL[name])
    calls = count_generations(monkeypatch, name)
    first = load_source(name, **SMALL[name])   # generated and written
    second = load_source(name, **SMALL[name])  # read back
    assert len(calls) == 1 and len(files()) == 1 and files()[0].name.startswith(f"{name}-")
    assert_bitwise_equal(first, fresh)
    assert_bitwise_equal(second, fresh)


def test_defaults_written_out_hit_the_same_file(monkeypatch):
    calls = count_generations(monkeypatch, "moons")
    load_source("moons")
    load_source("moons", noise=0.1, seed=0)  # the defaults, written out
    assert len(calls) == 1


def test_a_changed_option_or_package_version_misses_the_cache(monkeypatch):
    calls = count_generations(monkeypatch, "moons")
    a = load_source("moons", **SMALL["moons"])
    b = load_source("moons", **SMALL["moons"], seed=1)
    assert len(calls) == 2 and len(files()) == 2 and not torch.equal(a.x_train, b.x_train)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda pkg: "0.0-other" if pkg == "numpy" else real(pkg))
    load_source("moons", **SMALL["moons"])
    assert len(calls) == 3 and len(files()) == 3


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "empty"])
def test_a_damaged_cache_file_is_generated_again(damage, monkeypatch, capsys):
    fresh = load_source("mnist1d", **SMALL["mnist1d"])
    (path,) = files()
    blob = bytearray(path.read_bytes())
    if damage == "flip a byte":
        blob[len(blob) // 2] ^= 0x01
    elif damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob = bytearray()
    path.write_bytes(bytes(blob))
    calls = count_generations(monkeypatch, "mnist1d")
    again = load_source("mnist1d", **SMALL["mnist1d"])
    assert len(calls) == 1 and "damaged" in capsys.readouterr().err
    assert_bitwise_equal(again, fresh)
    assert path.read_bytes() != bytes(blob)  # replaced by an intact file, read from then on
    load_source("mnist1d", **SMALL["mnist1d"])
    assert len(calls) == 1


def test_an_unwritable_cache_only_costs_time(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("DDSWEEP_CACHE", str(blocker))
    fresh = sources._SOURCES["moons"].fn(**SMALL["moons"])
    assert_bitwise_equal(load_source("moons", **SMALL["moons"]), fresh)
    assert "cannot cache the dataset" in capsys.readouterr().err


def test_sources_that_read_files_are_not_cached():
    assert sources._SOURCES["cifar10"].cache is None and sources._SOURCES["mnist"].cache is None
    assert sources._SOURCES["mnist1d"].cache == ("mnist1d", "scipy")
