"""The import graph of the source tree: layers import only downwards, and no module imports itself
back through others (no cycles), counting imports inside functions too."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ddsweep", "models", "data", "pipeline")
# Lowest first; a module may import its own layer and the layers before it.
LAYERS = [
    ("ddsweep", "ddsweep.errors"),
    ("ddsweep.models", "ddsweep.data"),
    ("ddsweep.pipeline", "ddsweep.pipeline.config", "ddsweep.pipeline.config_types"),
    ("ddsweep.pipeline.store",),
    ("ddsweep.pipeline.measure",),
    ("ddsweep.pipeline.viz",),
    ("ddsweep.pipeline.train",),
    ("ddsweep.pipeline.sweep", "ddsweep.pipeline.report"),
    ("ddsweep.pipeline.cli", "ddsweep.__main__"),
]


def module_name(path: Path) -> str:
    """The installed name: models/, data/ and pipeline/ are subpackages of ddsweep (pyproject.toml)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] != "ddsweep":
        parts.insert(0, "ddsweep")
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    """Every project module; vendored third-party code (ddsweep/vendor) is not ours to layer."""
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if "vendor" not in p.relative_to(ROOT).parts}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules that `path` imports (absolute and relative, at any depth of the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known}
    return found - {name}


def layer_of(name: str) -> int:
    """The layer of the longest prefix that names `name` (ddsweep.models before ddsweep)."""
    matches = [(len(p), i) for i, prefixes in enumerate(LAYERS) for p in prefixes
               if name == p or (name.startswith(p + ".") and p not in ("ddsweep", "ddsweep.pipeline"))]
    if matches:
        return max(matches)[1]
    raise AssertionError(f"{name} belongs to no layer; add it to LAYERS")


def graph() -> dict[str, set[str]]:
    """module → project modules it imports; a module's own parent packages are left out (importing
    `from data import constants` inside data/ runs nothing the package is not already running)."""
    modules = source_modules()
    g = {name: imports_of(path, name, set(modules)) for name, path in modules.items()}
    return {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in g.items()}


def upward_imports(g: dict[str, set[str]]) -> list[str]:
    return [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
            for a, targets in sorted(g.items()) for b in sorted(targets) if layer_of(b) > layer_of(a)]


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(g):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_import_points_down_the_layers():
    wrong = upward_imports(graph())
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_find_a_planted_upward_import_and_cycle():
    a, run = "ddsweep.models.a", "ddsweep.pipeline.train.run"
    g = {a: {run}, run: {a}, "ddsweep.data.x": set()}
    assert upward_imports(g) == [f"{a} (layer 1) imports {run} (layer 6)"]
    assert find_cycle(g) == [a, run, a]
    assert find_cycle({"a.b": {"a.c"}, "a.c": set()}) is None
