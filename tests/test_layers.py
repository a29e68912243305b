"""The folder tree is the flow, and nothing imports upward.

Why: a module that imports from a later stage (the trial code reading the
analysis, a strategy reading the CLI) ties the engine to what is built on it;
this test keeps the order README's "How it fits together" describes. It reads
every module with ``ast`` (imports inside functions included), so it needs
no TensorFlow.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Earlier stages first; a module may import its own stage and earlier ones.
LAYERS = [
    ("tuner", "tuner.errors", "tuner.progress", "tuner.quiet", "tuner.processes", "tuner.user_cache",
     "tuner.paths", "tuner.load", "tuner.stored_keys", "tuner.devices", "studies"),
    ("tuner.data",),
    ("tuner.model",),
    ("tuner.trials",),
    ("objectives",),
    ("tuner.store",),
    ("tuner.strategies",),
    ("tuner.search",),
    ("tuner.analysis",),
    ("tuner.export",),
    ("tuner.api",),
    ("tuner.cli",),
]
PACKAGES = ("tuner", "objectives", "studies")


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _layer(module: str) -> int:
    """The stage of ``module``: its longest matching prefix in LAYERS."""
    best, length = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    assert best is not None, f"{module} belongs to no stage of LAYERS: add it there and to README"
    return best


def _imports(path: pathlib.Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # ``from tuner.trials import activations`` imports a module, not a name
            names.update(f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" in MODULES)
    return {n for n in names if n.split(".")[0] in PACKAGES}


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_nothing_imports_upward(module):
    mine = _layer(module)
    upward = sorted(n for n in _imports(MODULES[module], module) if _layer(n) > mine)
    assert not upward, f"{module} (stage {mine}) imports later stages: {upward}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_says_its_job_in_its_first_line(module):
    doc = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert doc and doc.splitlines()[0].strip(), f"{module} has no one-line docstring saying its job"


def _cycle() -> list[str]:
    """A cycle in the import graph of the project's modules (imports inside functions included), or []."""
    graph = {m: sorted(n for n in _imports(p, m) if n in MODULES and n != m) for m, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> list[str]:
        state[m] = 1
        for n in graph[m]:
            # a package's __init__ is imported by its modules anyway: only module-to-module edges count
            if n in ("tuner", "objectives", "studies") or m in ("tuner", "objectives", "studies"):
                continue
            if state.get(n) == 1:
                return path[path.index(n):] + [n] if n in path else [m, n]
            if n not in state:
                found = visit(n, path + [n])
                if found:
                    return found
        state[m] = 2
        return []

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [m])
            if found:
                return found
    return []


def test_no_import_circles():
    # Why: a circle is hidden by an import inside a function and makes the order of imports matter.
    assert _cycle() == []


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60
LONG_BY_NATURE = ("DepthSearch.__init__",)
"""The API constructor lists every option of ``search`` (argparse tables, ``add_*_arguments``, too)."""


def _functions(tree: ast.Module):
    """(qualified name, node) of every function, methods as ``Class.method``."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item


def test_rooms_a_newcomer_can_read():
    # Why: a module over 400 lines does several jobs, a function over 60 lines several steps.
    too_long = []
    for module, path in sorted(MODULES.items()):
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{module}: {text.count(chr(10))} lines")
        for name, node in _functions(ast.parse(text)):
            lines = node.end_lineno - node.lineno + 1
            table = name in LONG_BY_NATURE or (name.startswith("add_") and name.endswith("_arguments"))
            if lines > MAX_FUNCTION_LINES and not table:
                too_long.append(f"{module}.{name}: {lines} lines")
    assert not too_long, "split these: " + "; ".join(too_long)
