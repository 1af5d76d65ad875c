"""The layering of DESIGN.md section 6, read from the source with ``ast`` (no import runs).

Imports run one way: ``runtime`` -> ``actors`` and ``transport`` -> the core (``celeriac/``).
The core reaches the runtime only lazily (an import inside a function, e.g. the App's client),
never while it is being imported; ``transport`` knows no pykka and ``actors`` no ZeroMQ.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = "celeriac"
LAYERS = ("celeriac.transport", "celeriac.actors", "celeriac.runtime")
#: ``python -m celeriac`` runs the command line: an entry point, never imported by the core.
ENTRY_POINTS = frozenset({"celeriac.__main__"})


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement: who imports what, where, and whether it runs at import time."""

    importer: str
    target: str
    line: int
    module_level: bool

    def __str__(self) -> str:
        where = "module level" if self.module_level else "inside a function"
        return f"{self.importer}:{self.line} imports {self.target} ({where})"


@cache
def modules() -> dict[str, Path]:
    """Every module of the distribution by dotted name, from pyproject's package-dir mapping."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir: dict[str, str] = config["tool"]["setuptools"]["package-dir"]
    found: dict[str, Path] = {}
    for package, folder in package_dir.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            # A nested mapping (celeriac.transport -> transport/) wins over its parent's folder.
            found.setdefault(name, path)
    return found


def _package_of(module: str) -> str:
    """The package a module's relative imports start from."""
    return module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module named by a ``from ... import`` (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = _package_of(importer)
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """What one statement imports: ``from pkg import mod`` names the submodule when it is one."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = _resolve(importer, node)
    for alias in node.names:
        candidate = f"{base}.{alias.name}"
        yield candidate if candidate in modules() else base


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(importer: str, nodes: Iterable[ast.AST], module_level: bool) -> Iterator[Import]:
    """The imports under ``nodes``; a function body runs later, not at import time."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(importer, node):
                yield Import(importer, target, node.lineno, module_level)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _walk(importer, node.orelse, module_level)  # the body never runs
        else:
            deferred = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            yield from _walk(importer, ast.iter_child_nodes(node), module_level and not deferred)


@cache
def imports() -> tuple[Import, ...]:
    """Every import statement in the distribution (those under ``if TYPE_CHECKING`` excepted)."""
    found: list[Import] = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found.extend(_walk(name, tree.body, True))
    return tuple(found)


def layer_of(module: str) -> str | None:
    """``celeriac.transport``/``actors``/``runtime``, ``celeriac`` for the core, else None."""
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return CORE if module == CORE or module.startswith(CORE + ".") else None


def _violations(importers: str, forbidden: tuple[str, ...], module_level: bool) -> list[str]:
    """The imports by layer ``importers`` of anything under ``forbidden`` (as sentences)."""
    return [
        str(imp)
        for imp in imports()
        if layer_of(imp.importer) == importers
        and imp.importer not in ENTRY_POINTS
        and (imp.module_level or not module_level)
        and any(imp.target == f or imp.target.startswith(f + ".") for f in forbidden)
    ]


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path ``[a, b, ..., a]``, or None (iterative DFS)."""
    state: dict[str, int] = {}
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return None


def _graph(*, module_level_only: bool) -> dict[str, set[str]]:
    """Module -> the modules of the distribution it imports."""
    edges: dict[str, set[str]] = {name: set() for name in modules()}
    for imp in imports():
        known = imp.target in modules() and imp.target != imp.importer
        if known and (imp.module_level or not module_level_only):
            edges[imp.importer].add(imp.target)
    return edges


# -- the tests ---------------------------------------------------------------------------------


def test_the_source_folders_are_read() -> None:
    """The check sees every layer (a wrong package-dir reading would make it pass vacuously)."""
    names = modules()
    assert "celeriac._app" in names
    assert {layer_of(n) for n in names} == {CORE, *LAYERS}
    assert any(imp.target.startswith("pykka") for imp in imports())
    assert any(imp.target.startswith("zmq") for imp in imports())


def test_core_imports_no_runtime_transport_or_actors_at_import_time() -> None:
    """celeriac/ (the pure core) reaches transport/actors/runtime only inside functions."""
    assert _violations(CORE, LAYERS, module_level=True) == []


def test_transport_imports_no_pykka_and_no_upper_layer() -> None:
    """transport/ knows neither pykka nor the actors and runtime built on top of it."""
    forbidden = ("pykka", "celeriac.actors", "celeriac.runtime")
    assert _violations("celeriac.transport", forbidden, module_level=False) == []


def test_actors_import_no_zmq_and_no_upper_layer() -> None:
    """actors/ knows neither ZeroMQ nor the transport and runtime that wire it to sockets."""
    forbidden = ("zmq", "celeriac.transport", "celeriac.runtime")
    assert _violations("celeriac.actors", forbidden, module_level=False) == []


def test_no_import_cycles_between_modules() -> None:
    """No cycle among module-level imports (importing any module never needs a half-done one)."""
    assert _cycle(_graph(module_level_only=True)) is None


def test_no_cycles_within_a_layer_even_through_lazy_imports() -> None:
    """Inside one layer an import in a function is no excuse for a cycle (cli <-> prefork)."""
    edges = {
        name: {t for t in targets if layer_of(t) == layer_of(name)}
        for name, targets in _graph(module_level_only=False).items()
    }
    assert _cycle(edges) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The DFS reports a known cycle, so a green cycle test means something."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
