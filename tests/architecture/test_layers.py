"""The import graph of the source tree: layers import only downwards, and no module imports itself
back through others (no cycles), counting imports inside functions too."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ddsweep", "models", "data", "pipeline")
# Lowest first; a module may import its own layer and the layers before it.
LAYERS = [
    ("ddsweep",),
    ("models", "data"),
    ("pipeline.config", "pipeline.config_types"),
    ("pipeline.store",),
    ("pipeline.measure",),
    ("pipeline.viz",),
    ("pipeline.train",),
    ("pipeline.sweep", "pipeline.report"),
    ("pipeline.cli",),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
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
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
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
    g = {"models.a": {"pipeline.train.run"}, "pipeline.train.run": {"models.a"}, "data.x": set()}
    assert upward_imports(g) == ["models.a (layer 1) imports pipeline.train.run (layer 6)"]
    assert find_cycle(g) == ["models.a", "pipeline.train.run", "models.a"]
    assert find_cycle({"a.b": {"a.c"}, "a.c": set()}) is None
