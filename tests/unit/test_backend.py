"""Tests for one_store.engine.backend: the SQLite engine implements the Backend
protocol, SQL text lives only in the SQLite engine, and the engine-neutral modules
name no engine.

The protocol's conformance is also checked statically: ``accepts_backend`` below is
called with a ``Storage`` (mypy --strict reads this file), and
``one_store.engine.sqlite.storage`` assigns ``Storage`` to a ``type[Backend]``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from one_store import Store, define_schema, define_table, v
from one_store.engine.backend import Backend, IndexScan, Scanner
from one_store.engine.sqlite.storage import Storage
from one_store.model.keys import prefix_end, sort_key

PACKAGE = Path(__file__).resolve().parents[2] / "one_store"
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(UNIQUE\s+)?(TABLE|INDEX|VIRTUAL)|DROP\s+(TABLE|INDEX)|ALTER\s+TABLE"
    r"|PRAGMA\s|SAVEPOINT\s|json_extract|json_type)\b"
    r"|^\s*(BEGIN|COMMIT|ROLLBACK)\b",
    re.IGNORECASE | re.DOTALL,
)
SCHEMA = define_schema(
    {
        "jobs": define_table({"state": v.string(), "at": v.number()}).index(
            "by_state", ["state", "at"]
        )
    }
)


def accepts_backend(backend: Backend) -> Scanner:
    """What the runtime holds: a Backend (and a Scanner is part of it)."""
    return backend


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.memory(SCHEMA, seed=0) as s:
        yield s


@pytest.mark.sqlite_only(
    "checks the SQLite engine's class; PgStorage's twin is in test_postgres_storage.py"
)
def test_storage_has_every_member_of_the_protocol(store: Store) -> None:
    storage: Storage = store.storage
    assert accepts_backend(storage) is storage
    members = {
        name
        for cls in (Backend, Scanner)
        for name in vars(cls)
        if not name.startswith("_")
    }
    missing = sorted(name for name in members if not hasattr(storage, name))
    assert missing == []
    assert storage.features.vendor == "sqlite"
    assert storage.features.equality_prefilter


def sql_strings(path: Path) -> list[tuple[int, str]]:
    """String literals (docstrings aside) of a module that read as SQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        )
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = None if id(node) in docstrings else node.value
        elif isinstance(node, ast.JoinedStr):  # f-strings: their literal parts
            text = "".join(
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
        if text is not None and SQL.search(text):
            found.append((getattr(node, "lineno", 0), text))
    return found


def test_sql_text_lives_only_in_the_engines() -> None:
    engines = [PACKAGE / "engine" / "sqlite", PACKAGE / "engine" / "postgres"]
    outside = {
        f"{path.relative_to(PACKAGE)}:{line}": text
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(engine in path.parents for engine in engines)
        for line, text in sql_strings(path)
    }
    assert outside == {}
    # The detector does find the engines' own SQL.
    assert all(sql_strings(engine / "scans.py") for engine in engines)


# Engine-neutral modules import no engine. The one exception, and why:
ENGINE_IMPORTS_ALLOWED = {
    # problem_of() maps sqlite3 errors raised inside handler code (classify).
    "runtime/outcome.py",
}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative ones as written (``..engine.sqlite``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_engine_neutral_modules_name_no_engine() -> None:
    neutral = [
        *(PACKAGE / "engine").glob("*.py"),
        *(PACKAGE / "runtime").glob("*.py"),
    ]
    naming = {
        name: sorted(m for m in imported_modules(path) if "sqlite" in m)
        for path in neutral
        if (name := str(path.relative_to(PACKAGE))) not in ENGINE_IMPORTS_ALLOWED
    }
    assert {name: found for name, found in naming.items() if found} == {}


@pytest.mark.parametrize("module", ["engine", "model"])
def test_every_module_of_the_lower_layers_is_at_most_600_lines(module: str) -> None:
    sizes = {
        str(path.relative_to(PACKAGE)): len(
            path.read_text(encoding="utf-8").splitlines()
        )
        for path in (PACKAGE / module).rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 600} == {}


# ------------------------------------------------------------------ range reads


def add_jobs(store: Store) -> list[str]:
    jobs = [("pending", 3.0), ("done", 1.0), ("pending", 2.0), ("pending", 5.0)]
    ids: list[str] = store.run(
        lambda ctx: [ctx.db.insert("jobs", {"state": s, "at": at}) for s, at in jobs]
    ).unwrap()
    return ids


def test_first_in_range_is_the_lowest_key(store: Store) -> None:
    ids = add_jobs(store)
    pending = sort_key("pending")
    storage = store.storage
    with storage.read():
        first = storage.first_in_range("jobs", "by_state", pending, prefix_end(pending))
        due = storage.first_in_range(
            "jobs", "by_state", pending, prefix_end(pending + sort_key(1.0))
        )
        missing = storage.first_in_range("nothing", "by_state", b"", None)
    assert first is not None
    assert first["_id"] == ids[2]
    assert (due, missing) == (None, None)


def test_range_documents_and_scan(store: Store) -> None:
    ids = add_jobs(store)
    pending = sort_key("pending")
    storage = store.storage
    with storage.read():
        in_range = storage.range_documents(
            "jobs", "by_state", pending, prefix_end(pending)
        )
        everything = list(storage.scan("jobs"))
        none = storage.range_documents("nothing", "by_state", b"", None)
    assert [d["_id"] for d in in_range] == [ids[2], ids[0], ids[3]]
    assert [d["_id"] for d in everything] == ids
    assert none == []


def test_a_scan_of_the_creation_order_can_stop_early(store: Store) -> None:
    ids = add_jobs(store)
    storage = store.storage
    with storage.read():
        rows = storage.index_rows(IndexScan("jobs", "by_creation_time", limit=2))
        try:
            seen = [row[1] for row in rows]
        finally:
            rows.close()
    assert len(seen) == 2
    assert seen == sorted(seen)
    assert all(key.endswith(sort_key(i)) for key, i in zip(seen, ids, strict=False))
