"""DDL and introspection with sqlite-utils: creating tables, indexes, search tables, migrations.

sqlite-utils is the tool for the statements that shape the file (``CREATE TABLE``,
``ADD COLUMN``, ``CREATE INDEX``, drops) and for computing a new key column over
existing rows (``Table.convert``); it runs on the store's own connection, inside
the write transaction the caller holds (its ``execute`` joins an open
transaction). The hot paths never go through it (its per-call work would cost
2-3x), and it is imported only here, when DDL runs: ``import one_store`` and
opening a file whose tables already match do not pay its ~75 ms import.

Three statements stay hand-written, each for a reason given where it runs: the
FTS5 tables, dropping a column, and the check at open that the bookkeeping
tables exist. The tables of vector indexes are made by
:mod:`one_store.engine.sqlite.vectors` (through sqlite-utils too).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ...model.errors import StorageError, StorageFailure
from ...model.schema import Index, SearchIndex, TableDefinition, VectorIndex
from ...model.values import loads
from . import vectors
from .layout import (
    LAYOUT_VERSION,
    META,
    TABLES,
    SideIndex,
    TableLayout,
    VectorLayout,
    index_name,
    key_column,
    quote,
    search_table,
    spec_text,
)

if TYPE_CHECKING:
    import sqlite_utils


def utils(connection: sqlite3.Connection) -> sqlite_utils.Database:
    """A sqlite-utils view of ``connection`` (no plugins, no pragmas of its own)."""
    db: sqlite_utils.Database = _sqlite_utils().Database(
        connection, recursive_triggers=False, execute_plugins=False
    )
    return db


def _sqlite_utils() -> ModuleType:
    """sqlite-utils, imported here rather than at the top: paid only when DDL runs.

    Its import also imports pandas and numpy when they are installed, to map
    their values on insert (sqlite_utils/db.py), which one_store never does
    through it: with the ``data`` extra installed that took the import from ~75
    ms to over a second, in every process that creates a table. Unless a
    program already loaded them, they are hidden while sqlite-utils loads
    (``sys.modules`` entries of None make its ``import`` fail as if absent).
    """
    if "sqlite_utils" in sys.modules:
        return sys.modules["sqlite_utils"]
    hidden = [m for m in ("pandas", "numpy") if m not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # typeshed: no None, but the import system documents it
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]
    return sqlite_utils


def has_bookkeeping(connection: sqlite3.Connection) -> bool:
    """Whether the file already holds one_store's two bookkeeping tables."""
    # sqlite-utils' table_names() would answer too, but this runs at every open:
    # one query on sqlite_master spares an existing file sqlite-utils' import.
    (found,) = connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN (?, ?)",
        (META, TABLES),
    ).fetchone()
    return int(found) == 2


def create_bookkeeping(connection: sqlite3.Connection) -> None:
    """Create ``_one_store_meta`` and ``_one_store_tables`` where missing."""
    db = utils(connection)
    if not db.table(META).exists():
        db.table(META).create({"key": str, "value": str}, pk="key")
    if not db.table(TABLES).exists():
        tables = db.table(TABLES).create(
            {"name": str, "number": int, "indexes": str},
            pk="name",
            not_null={"number", "indexes"},
        )
        tables.create_index(["number"], index_name=f"{TABLES}$number", unique=True)


def create_table(
    connection: sqlite3.Connection,
    name: str,
    number: int,
    indexes: tuple[Index, ...],
    search: tuple[SideIndex, ...],
    document: str | None = None,
) -> None:
    """Create an empty table with its key columns, indexes, search and vector tables."""
    db = utils(connection)
    db.table(name).create(
        {"_id": str, "_creationTime": float, "_body": str},
        pk="_id",
        not_null={"_id", "_creationTime", "_body"},
    )
    connection.execute(
        f"INSERT INTO {TABLES}(name, number, indexes) VALUES (?, ?, ?)",
        (name, number, spec_text(indexes, search, document)),
    )
    for index in indexes:
        if index.name != "by_id":
            db.table(name).add_column(key_column(index.name), "BLOB")
            _create_index(db, name, index)
    for s in search:
        if isinstance(s, SearchIndex):
            _create_search(connection, name, s)
        else:
            vectors.create(db, VectorLayout.build(name, s))


def _create_index(db: sqlite_utils.Database, table: str, index: Index) -> None:
    db.table(table).create_index(
        [key_column(index.name)], index_name=index_name(table, index.name)
    )


def _create_search(
    connection: sqlite3.Connection, table: str, index: SearchIndex
) -> None:
    # Hand-written: sqlite-utils' enable_fts makes an external-content FTS table
    # over the table's own columns, named <table>_fts and kept by triggers. A
    # search index here is a standalone FTS5 table of tokens (see
    # engine.search.search_tokens) and filter keys, keyed by the document's rowid.
    filters = "".join(f", f{i} UNINDEXED" for i in range(len(index.filter_fields)))
    connection.execute(
        f"CREATE VIRTUAL TABLE {quote(search_table(table, index.name))} USING "
        f"fts5(text{filters}, tokenize='unicode61 remove_diacritics 0')"
    )


def migrate(
    connection: sqlite3.Connection,
    layout: TableLayout,
    definition: TableDefinition,
    document: str | None = None,
) -> None:
    """Bring an existing table's indexes and search indexes to ``definition``.

    Removed or changed indexes are dropped; new ones are added and filled from
    the stored documents, in the caller's write transaction.
    """
    db = utils(connection)
    name = layout.name
    wanted = {i.name: i for i in definition.all_indexes()}
    for old_name, old in layout.indexes.items():
        if old_name != "by_id" and wanted.get(old_name) != old:
            db.table(name).drop_index(index_name(name, old_name), ignore=True)
            # Hand-written: sqlite-utils drops a column by rebuilding the table
            # (transform: copy every row to a new table); SQLite 3.35+ drops it
            # in place.
            connection.execute(
                f"ALTER TABLE {quote(name)} DROP COLUMN {quote(key_column(old_name))}"
            )
    wanted_search = {s.name: s for s in definition.search_indexes}
    for old_name, s in layout.search.items():
        if wanted_search.get(old_name) != s.index:
            db.table(s.fts).drop()
    new_indexes = [
        i for n, i in wanted.items() if n != "by_id" and layout.indexes.get(n) != i
    ]
    new_search = [
        wanted_index
        for n, wanted_index in wanted_search.items()
        if n not in layout.search or layout.search[n].index != wanted_index
    ]
    new_vectors = _migrate_vectors(db, layout, definition.vector_indexes)
    record_spec(connection, name, definition, document)
    fresh = TableLayout.build(
        name, layout.number, definition.all_indexes(), definition.side_indexes()
    )
    key_fns = dict(fresh.key_fns)
    for index in new_indexes:
        _backfill_index(db, name, index, key_fns[index.name])
    for search_index in new_search:
        _create_search(connection, name, search_index)
    if new_search:
        _backfill_search(connection, fresh, {i.name for i in new_search})
    if new_vectors:
        vectors.backfill(connection, fresh, new_vectors)


def _migrate_vectors(
    db: sqlite_utils.Database, layout: TableLayout, wanted: tuple[VectorIndex, ...]
) -> set[str]:
    """Drop removed or changed vector indexes, create new ones; the new names."""
    by_name = {x.name: x for x in wanted}
    for old_name, old in layout.vectors.items():
        if by_name.get(old_name) != old.index:
            vectors.drop(db, old.table)
    created = set()
    for index in wanted:
        if layout.vector_indexes.get(index.name) != index:
            vectors.create(db, VectorLayout.build(layout.name, index))
            created.add(index.name)
    return created


def _backfill_index(
    db: sqlite_utils.Database,
    table: str,
    index: Index,
    key_fn: Callable[[dict[str, Any]], bytes],
) -> None:
    """Add an index's key column filled from every stored document, then its index."""

    def key_of(body: str) -> bytes:
        return key_fn(loads(body))

    # convert() registers the function with SQLite under its __name__, and skips a
    # name it registered before: a name per index keeps two indexes' keys apart.
    key_of.__name__ = f"one_store_key_{index.name}"
    db.table(table).convert(
        "_body", key_of, output=key_column(index.name), output_type="BLOB"
    )
    db.conn.create_function(key_of.__name__, 1, None)  # done: unregister it
    _create_index(db, table, index)


def _backfill_search(
    connection: sqlite3.Connection, layout: TableLayout, names: set[str]
) -> None:
    rows = connection.execute(f"SELECT rowid, _body FROM {quote(layout.name)}")
    for rowid, body in list(rows):
        doc = loads(body)
        for name in names:
            s = layout.search[name]
            row = s.row(doc)
            if row is not None:  # the search field is not a string: not indexed
                connection.execute(s.insert_sql, (rowid, *row))


def record_spec(
    connection: sqlite3.Connection,
    name: str,
    definition: TableDefinition,
    document: str | None,
) -> None:
    """Record ``definition``'s indexes and the checked ``document`` validator."""
    spec = spec_text(definition.all_indexes(), definition.side_indexes(), document)
    connection.execute(f"UPDATE {TABLES} SET indexes=? WHERE name=?", (spec, name))


def checked_documents(connection: sqlite3.Connection) -> dict[str, str]:
    """Per table, the document validator text recorded as checked."""
    recorded: dict[str, str] = {}
    for name, spec in connection.execute(f"SELECT name, indexes FROM {TABLES}"):
        document = json.loads(spec).get("document")
        if isinstance(document, str):
            recorded[name] = document
    return recorded


def forget_checked(connection: sqlite3.Connection, keep: set[str]) -> None:
    """Clear the checked-validator record of every table not in ``keep``."""
    for name, text in list(connection.execute(f"SELECT name, indexes FROM {TABLES}")):
        spec = json.loads(text)
        if name not in keep and spec.pop("document", None) is not None:
            connection.execute(
                f"UPDATE {TABLES} SET indexes=? WHERE name=?", (json.dumps(spec), name)
            )


def check_layout_version(version: str | None) -> None:
    """Refuse a file whose layout is newer than this one_store knows."""
    if version is not None and int(version) > LAYOUT_VERSION:
        raise StorageFailure(
            StorageError(
                f"file layout version {version} is newer than this one_store "
                f"({LAYOUT_VERSION}); upgrade one_store"
            )
        )


def needs_migration(layout: TableLayout, definition: TableDefinition) -> bool:
    """Whether ``definition``'s indexes differ from the table's (so DDL must run)."""
    return (
        layout.indexes != {i.name: i for i in definition.all_indexes()}
        or {n: s.index for n, s in layout.search.items()}
        != {s.name: s for s in definition.search_indexes}
        or layout.vector_indexes != {x.name: x for x in definition.vector_indexes}
    )
