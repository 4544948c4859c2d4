"""The package's layout: imports only go down the layers, no cycles, modules ≤ 600 lines.

The import graph is read from the source with ``ast``: every ``import`` and
``from ... import`` in every module of ``one_store``, at module level, under
``if TYPE_CHECKING:`` and inside functions alike (a lazy import is still a
dependency). The layers, bottom to top (an import may only point to a lower layer,
or stay inside its own package):

1. ``one_store.model``: values, IDs, errors, validators, schema (pure, no I/O)
2. ``one_store.engine``: the data layer, the only place that speaks SQL
3. ``one_store.runtime``: running functions (contexts, scheduler, crons, ...)
4. ``one_store.app``: loading an app folder; ``one_store.data``: table views and
   DataFrames, below the store because ``store.table()`` hands out its views
5. ``one_store.store``: ``Store``, the façade
6. ``one_store.snapshot``, ``one_store.testing`` and the package's ``__init__``
   (the public names): each may use the store, none another
7. ``one_store.server``: the HTTP API
8. ``one_store.cli``: the ``one-store`` command, which may start the server

A module outside every layer fails the test until it is placed here.

The house rule for sizes is 150-600 lines and one noun per module. Only the upper
bound is tested: a lower bound would push people to pad a module or merge unrelated
code. Accepted under 150 lines: the package markers (``cli/__init__.py``,
``engine/__init__.py``, ``engine/sqlite/__init__.py``, ``model/__init__.py``,
``runtime/__init__.py``, ``server/__init__.py``, all empty), ``__init__.py`` (the
curated public names), ``server/logs.py`` (the per-request log lines) and
``server/cors.py`` (the HTTP API's CORS answers).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "one_store"
MAX_LINES = 600
LAYERS: tuple[tuple[str, ...], ...] = (
    ("one_store.model",),
    ("one_store.engine",),
    ("one_store.runtime",),
    ("one_store.app", "one_store.data"),
    ("one_store.store",),
    ("one_store.snapshot", "one_store.testing", "one_store"),
    ("one_store.server",),
    ("one_store.cli",),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit_of(module: str) -> str:
    """The layer entry ``module`` belongs to (its package, or itself at the top)."""
    for layer in LAYERS:
        for unit in layer:
            if module == unit or (
                unit != "one_store" and module.startswith(unit + ".")
            ):
                return unit
    raise AssertionError(f"{module} is in no layer: place it in LAYERS")


def rank_of(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def resolve(target: str) -> str | None:
    """The ``one_store`` module that an import of ``target`` loads, or None."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports_of(module: str) -> set[str]:
    """Every one_store module that ``module`` imports, wherever the import is."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = module.split(".")
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            # ``from pkg import name`` loads pkg.name when that is a module.
            targets = [f"{stem}.{alias.name}" for alias in node.names] or [stem]
        else:
            continue
        for target in targets:
            if target == "one_store" or target.startswith("one_store."):
                resolved = resolve(target)
                if resolved is not None and resolved != module:
                    found.add(resolved)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        unit_of(module)


def test_imports_only_go_down_the_layers():
    wrong = []
    for module, targets in sorted(GRAPH.items()):
        here = unit_of(module)
        for target in sorted(targets):
            there = unit_of(target)
            if there == here:
                continue  # inside one package
            if rank_of(there) >= rank_of(here):
                way = "up" if rank_of(there) > rank_of(here) else "sideways"
                wrong.append(f"{module} -> {target} ({way})")
    assert wrong == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_imports_have_no_cycle():
    assert cycles(GRAPH) == []


def test_relative_imports_resolve_to_modules():
    # The graph must see the edges it is meant to check, or the tests above pass
    # vacuously: a module of each layer is known to import the one below it.
    assert "one_store.model.values" in GRAPH["one_store.engine.sqlite.storage"]
    assert "one_store.engine.ranges" in GRAPH["one_store.engine.query"]
    assert "one_store.store" in GRAPH["one_store"]
    assert "one_store.server.http_api" in GRAPH["one_store.cli.main"]


def test_every_module_is_at_most_600_lines():
    long = {
        module: n
        for module, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
