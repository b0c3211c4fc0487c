"""The package layout is a rule, not a habit: imports point down the layers.

Layers, top to bottom (a module may import its own layer and those below):

- tools: ``cli``, ``migrate``, ``demo``, ``fs``, ``ui``
- API: the lazyscribe-named modules (``repository``, ``project``,
  ``experiment``, ``test``, ``release``, ``registry``, ``linked``, ``sync``, ``_utils``) and the
  package root
- ``core``: what Repository and Project share (manifest files, stored values)
- ``artifacts``: the handler API and the built-in handlers
- ``ops``: store-wide operations (registry, verify, fsck, gc)
- ``manifest``: the manifest schema, names and version selection
- ``store``: the content-addressed engine
- ``progress``: progress reporting
- ``storage``: the backends
- ``exception``: the error tree
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "scribestore"
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"cli", "migrate", "demo", "fs", "ui"}),
    frozenset(
        {
            "__init__",
            "repository",
            "project",
            "experiment",
            "test",
            "release",
            "registry",
            "_utils",
            "linked",
            "sync",
        }
    ),
    frozenset({"core"}),
    frozenset({"artifacts"}),
    frozenset({"ops"}),
    frozenset({"manifest"}),
    frozenset({"store"}),
    frozenset({"progress"}),
    frozenset({"storage"}),
    frozenset({"exception"}),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


MODULES = _modules()
#: Compiled modules: the byte-plane accelerator, private to ``store.planes``.
NATIVE = frozenset({"scribestore.store._planes"})


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every scribestore import."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [
                (a.name, [], node.lineno) for a in node.names if a.name.startswith("scribestore")
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            assert not node.level, f"{path}:{node.lineno}: relative imports hide the layer"
            if not module.startswith("scribestore"):
                continue
            names = [a.name for a in node.names]
            # ``from scribestore.store import planes`` imports a module.
            subs = [n for n in names if f"{module}.{n}" in MODULES or f"{module}.{n}" in NATIVE]
            found += [(f"{module}.{n}", [], node.lineno) for n in subs]
            rest = [n for n in names if n not in subs]
            if rest:
                found.append((module, rest, node.lineno))
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for depth, members in enumerate(LAYERS):
        if top in members:
            return depth
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, path in MODULES.items():
        for target, _, line in _imports(path):
            if _layer(target) < _layer(module):
                upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_the_import_graph_has_no_cycles() -> None:
    graph = {
        module: {target for target, _, _ in _imports(path) if target in MODULES}
        for module, path in MODULES.items()
    }
    # A package's __init__ re-exporting its submodules is not a cycle with them.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def _py_files() -> list[Path]:
    return [
        *SRC.rglob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "benchmarks").rglob("*.py"),
    ]


#: Underscored only because lazyscribe named them so; public in scribestore.
LAZYSCRIBE_NAMES = frozenset({"scribestore._utils"})
#: Functions lazyscribe users import by their underscored names.
LAZYSCRIBE_FUNCTIONS = frozenset({("scribestore.artifacts", "_get_handler")})


@pytest.mark.parametrize("path", _py_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    private = [
        f"{path.name}:{line} takes {name} from {target}"
        for target, names, line in _imports(path)
        for name in names
        if name.startswith("_")
        and name != "__version__"
        and (target, name) not in LAZYSCRIBE_FUNCTIONS
    ]
    private += [
        f"{path.name}:{line} imports the private module {target}"
        for target, _, line in _imports(path)
        if target not in LAZYSCRIBE_NAMES
        and any(part.startswith("_") for part in target.split(".")[1:])
        and not (target in NATIVE and path == SRC / "store" / "planes.py")
    ]
    assert private == []


def _module_aliases(tree: ast.AST) -> set[str]:
    """Local names bound to scribestore modules (``import a.b as m``, ``from a import m``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname for a in node.names if a.asname and a.name.startswith("scribestore")}
            names |= {a.name for a in node.names if not a.asname and a.name == "scribestore"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scribestore"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full in MODULES or full in NATIVE:
                    names.add(a.asname or a.name)
    return names


@pytest.mark.parametrize("path", _py_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_reaches_into_another_modules_private_attributes(path: Path) -> None:
    tree = ast.parse(path.read_text())
    aliases = _module_aliases(tree)
    private = [
        f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    assert private == []


@pytest.mark.parametrize("path", _py_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_test_or_module_imports_conftest(path: Path) -> None:
    tree = ast.parse(path.read_text())
    bad = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "conftest")
        or (isinstance(node, ast.Import) and any(a.name == "conftest" for a in node.names))
    ]
    assert bad == []


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for module, path in MODULES.items():
        lines = path.read_text().count("\n")
        if lines > 800:
            too_long.append(f"{module}: {lines} lines")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    too_long.append(f"{module}.{node.name}: {length} lines")
    assert too_long == []
