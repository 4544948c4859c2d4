"""The suite on both engines: ``--engine sqlite|postgresql|all`` and the ``engine`` fixture.

Every test that opens a store runs once per selected engine (ids ``[sqlite]`` and
``[postgresql]``): a test that asks for one of :data:`STORE_FIXTURES`, or whose module
calls ``Store.memory(``. On ``postgresql``, ``Store.memory(...)`` opens a fresh schema of the
throwaway server of :mod:`one_store.testing.postgres` instead of a SQLite memory
database (``Store.open(dsn, ...)`` with the same arguments), so the tests need no
change; the schema is dropped when the test ends. A test that opens a store by
where it lives (``Store.open(target)`` twice, child processes, the CLI) asks
:func:`store_target` for the place: a file under ``tmp_path`` on SQLite, a fresh
schema's DSN on PostgreSQL. A test that opens a SQLite file by its path stays on
SQLite.

A test about SQLite itself (the file, its pragmas, WAL, the ``sqlite3`` shell) says
so with ``@pytest.mark.sqlite_only("why")`` and runs on SQLite only; under
``--engine postgresql`` it is deselected, as a test of the other engine. A slow test
of a rule no engine takes part in (the executor's write counting, cron arithmetic)
says so with ``@pytest.mark.engine_independent("why")`` and runs once, on SQLite,
to keep CI's time.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import settings

ENGINES = ("sqlite", "postgresql")
# Fixtures that hand out a store of the engine under test (tests/conftest.py, tests/apps).
STORE_FIXTURES = frozenset({"store", "one", "chat", "store_target"})
# Markers that keep a test on the sqlite engine only (each names its reason).
ONE_ENGINE = ("sqlite_only", "engine_independent")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=(*ENGINES, "all"),
        default=os.environ.get("ONE_STORE_TEST_ENGINE", "all"),
        help="the storage engine(s) the store tests run on (default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): a test of SQLite itself (file, pragmas, WAL); "
        "runs on the sqlite engine only",
    )
    config.addinivalue_line(
        "markers",
        "engine_independent(reason): a slow test of a rule no engine takes part "
        "in (the executor's counting, cron arithmetic); runs on one engine, sqlite",
    )


def selected(config: pytest.Config) -> tuple[str, ...]:
    chosen = str(config.getoption("--engine"))
    return ENGINES if chosen == "all" else (chosen,)


def opens_stores(metafunc: pytest.Metafunc) -> bool:
    if STORE_FIXTURES & set(metafunc.fixturenames):
        return True
    return "Store.memory(" in module_source(metafunc.module)


@functools.cache
def module_source(module: ModuleType) -> str:
    return inspect.getsource(module)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" not in metafunc.fixturenames or not opens_stores(metafunc):
        return
    engines = selected(metafunc.config)
    for kind in ONE_ENGINE:
        marker = metafunc.definition.get_closest_marker(kind)
        if marker is None:
            continue
        if not marker.args or not str(marker.args[0]).strip():
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: {kind} needs the reason"
            )
        engines = tuple(e for e in engines if e == "sqlite")
    if engines:
        metafunc.parametrize("engine", engines, indirect=True)


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # --engine postgresql: a SQLite-only test is a test of the other engine.
    if "sqlite" in selected(config):
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        is_sqlite = any(item.get_closest_marker(m) is not None for m in ONE_ENGINE)
        (dropped if is_sqlite else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """The engine under test; on ``postgresql``, ``Store.memory`` opens a fresh schema."""
    name: str = getattr(request, "param", "sqlite")
    if name == "sqlite":
        yield name
        return
    with postgres_memory() as _, fewer_examples(request.function):
        yield name


# A property runs a fraction of its examples on PostgreSQL, where every example
# opens a store (a schema and its tables): the rule is the engine-independent
# code's, which the SQLite run checks with every example; a quarter still drives
# the PostgreSQL engine through the property's inputs. HYPOTHESIS_PROFILE still
# scales both (the ``long`` profile).
EXAMPLES_ON_POSTGRESQL = 0.25


@contextlib.contextmanager
def fewer_examples(test: Any) -> Iterator[None]:
    """Run the Hypothesis test ``test`` with a fraction of its examples, then restore."""
    chosen = getattr(test, "_hypothesis_internal_use_settings", None)
    if chosen is None or not hasattr(test, "hypothesis"):
        yield
        return
    fewer = max(5, int(chosen.max_examples * EXAMPLES_ON_POSTGRESQL))
    test._hypothesis_internal_use_settings = settings(chosen, max_examples=fewer)
    try:
        yield
    finally:
        test._hypothesis_internal_use_settings = chosen


@contextlib.contextmanager
def postgres_memory() -> Iterator[list[str]]:
    """While open, ``Store.memory(...)`` opens a fresh schema on the test server."""
    from one_store import Store
    from one_store.testing.postgres import postgres_cluster

    cluster = postgres_cluster()
    opened: list[Any] = []
    made: list[str] = []

    def memory(cls: type[Store], /, schema: Any = None, **kwargs: Any) -> Store:
        dsn = cluster.database()
        made.append(dsn)
        store = cls.open(dsn, schema=schema, **kwargs)
        opened.append(store)
        return store

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Store, "memory", classmethod(memory))
            yield made
    finally:
        for store in opened:
            store.close()
        for dsn in made:
            cluster.drop(dsn)


@pytest.fixture
def store_target(engine: str, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``target(name)``: where a store named ``name`` lives on the engine under test.

    SQLite: the file ``tmp_path / name``; PostgreSQL: a fresh schema's DSN. The same
    name gives the same place for the whole test (reopen it, hand it to a child).
    """
    places: dict[str, str] = {}
    if engine == "sqlite":
        yield lambda name: places.setdefault(name, str(tmp_path / name))
        return
    from one_store.testing.postgres import postgres_cluster

    cluster = postgres_cluster()

    def target(name: str) -> str:
        if name not in places:
            places[name] = cluster.database()
        return places[name]

    try:
        yield target
    finally:
        for dsn in places.values():
            cluster.drop(dsn)


def dump(store: Any) -> list[Any]:
    """Everything a store's database holds, to compare before and after a call.

    SQLite: ``iterdump()`` of the file; PostgreSQL: every row of every table of the
    store's schema, in order.
    """
    connection = store.storage.connection
    if store.storage.features.vendor == "sqlite":
        return list(connection.iterdump())
    tables = connection.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        " ORDER BY 1"
    ).fetchall()
    rows: list[Any] = []
    for (table,) in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        found = connection.execute(f"SELECT * FROM {quoted}").fetchall()
        rows.append((table, sorted(map(repr, found))))
    return rows
