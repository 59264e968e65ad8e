"""The distribution installs one top-level package, ddsweep, holding every package of the tree."""
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed_name(init: Path) -> str:
    parts = list(init.parent.relative_to(ROOT).parts)
    return ".".join(parts if parts[0] == "ddsweep" else ["ddsweep", *parts])


def test_every_package_of_the_tree_is_installed_inside_ddsweep():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    tree = {installed_name(p) for top in ("ddsweep", "models", "data", "pipeline") for p in (ROOT / top).rglob("__init__.py")}
    assert sorted(setup["packages"]) == sorted(tree)
    assert {name.split(".")[0] for name in setup["packages"]} == {"ddsweep"}
    assert setup["package-dir"] == {"ddsweep": "ddsweep", "ddsweep.models": "models", "ddsweep.data": "data",
                                    "ddsweep.pipeline": "pipeline"}
