"""DDL on PostgreSQL: bookkeeping tables, Convex tables, their indexes, migrations.

Everything here runs in the caller's write transaction (PostgreSQL's DDL is
transactional: a rolled-back ``sync_schema`` leaves nothing behind) and bumps
``generation`` in ``_one_store_meta``, so every other process reloads its
layouts at its next transaction. Search and vector indexes are made by the
modules of :mod:`one_store.engine.postgres.extras`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ...model.errors import StorageError, StorageFailure
from ...model.schema import Index, TableDefinition
from ...model.values import loads
from . import text_search, vector_tables
from .layout import (
    CHANGES,
    LAYOUT_VERSION,
    META,
    TABLES,
    PgTableLayout,
    SideIndex,
    index_ident,
    key_column,
    parse_spec,
    quote,
    spec_text,
)

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[Any, ...]]


def create_bookkeeping(connection: Connection) -> None:
    """Create ``_one_store_meta`` and ``_one_store_tables`` where missing."""
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {META} "
        '(key text COLLATE "C" PRIMARY KEY, value text NOT NULL)'
    )
    connection.execute(
        f'CREATE TABLE IF NOT EXISTS {TABLES} (name text COLLATE "C" PRIMARY KEY, '
        "number integer NOT NULL UNIQUE, indexes text NOT NULL)"
    )


def bootstrap(connection: Connection, lock_key: int, lock_timeout_ms: int) -> None:
    """Create the bookkeeping tables and record the layout version, under the lock.

    The write lock (``lock_key``) is taken first, so two processes opening a new
    schema at once never race on ``CREATE TABLE``.
    """
    connection.execute(
        f"BEGIN; SET LOCAL lock_timeout = {int(lock_timeout_ms)}; "
        f"SELECT pg_advisory_xact_lock({int(lock_key)})"
    )
    try:
        create_bookkeeping(connection)
        row = connection.execute(
            f"SELECT value FROM {META} WHERE key = 'layout_version'"
        ).fetchone()
        if row is None:
            connection.execute(
                f"INSERT INTO {META}(key, value) VALUES ('layout_version', %s)",
                (str(LAYOUT_VERSION),),
            )
        check_layout_version(None if row is None else str(row[0]))
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            connection.execute("ROLLBACK")
        raise


def has_bookkeeping(connection: Connection) -> bool:
    """Whether the schema holds one_store's bookkeeping tables."""
    row = connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
        (quote(META), quote(TABLES)),
    ).fetchone()
    return bool(row and row[0])


def has_change_log(connection: Connection) -> bool:
    """Whether the change log table exists."""
    row = connection.execute("SELECT to_regclass(%s)", (quote(CHANGES),)).fetchone()
    return row is not None and row[0] is not None


def bump_generation(connection: Connection) -> None:
    """Tell every process its cached layouts are stale (in the current write)."""
    connection.execute(
        f"INSERT INTO {META}(key, value) VALUES ('generation', '1') "
        "ON CONFLICT (key) DO UPDATE "
        f"SET value = (({META}.value)::bigint + 1)::text"
    )


def load_tables(connection: Connection) -> Iterator[PgTableLayout]:
    """Every table's layout, as ``_one_store_tables`` records it."""
    rows = connection.execute(f"SELECT name, number, indexes FROM {TABLES}").fetchall()
    for name, number, spec in rows:
        indexes, side = parse_spec(spec)
        yield PgTableLayout.build(name, int(number), indexes, side)


def create_table(
    connection: Connection,
    name: str,
    number: int,
    indexes: tuple[Index, ...],
    side: tuple[SideIndex, ...],
    document: str | None = None,
) -> None:
    """Create an empty table with its key columns, indexes, search and vector indexes."""
    keyed = [i for i in indexes if i.name != "by_id"]
    columns = "".join(f", {quote(key_column(i.name))} bytea NOT NULL" for i in keyed)
    connection.execute(
        f'CREATE TABLE {quote(name)} (_id text COLLATE "C" PRIMARY KEY, '
        f'"_creationTime" double precision NOT NULL, _body text NOT NULL{columns})'
    )
    connection.execute(
        f"INSERT INTO {TABLES}(name, number, indexes) VALUES (%s, %s, %s)",
        (name, number, spec_text(indexes, side, document)),
    )
    for index in keyed:
        _create_index(connection, name, index)
    layout = PgTableLayout.build(name, number, indexes, side)
    for search in text_search.sides(layout):
        text_search.create(connection, search)
    for vector in vector_tables.sides(layout):
        vector_tables.create(connection, vector)
    bump_generation(connection)


def _create_index(connection: Connection, table: str, index: Index) -> None:
    connection.execute(
        f"CREATE INDEX {quote(index_ident(table, index.name))} "
        f"ON {quote(table)} ({quote(key_column(index.name))})"
    )


def needs_migration(layout: PgTableLayout, definition: TableDefinition) -> bool:
    """Whether ``definition``'s indexes differ from the table's (so DDL must run)."""
    return (
        layout.indexes != {i.name: i for i in definition.all_indexes()}
        or layout.search_indexes != {s.name: s for s in definition.search_indexes}
        or layout.vector_indexes != {x.name: x for x in definition.vector_indexes}
    )


def migrate(
    connection: Connection,
    layout: PgTableLayout,
    definition: TableDefinition,
    document: str | None = None,
) -> None:
    """Bring an existing table's indexes to ``definition``, back-filling new ones."""
    name = layout.name
    wanted = {i.name: i for i in definition.all_indexes()}
    for old_name, old in layout.indexes.items():
        if old_name != "by_id" and wanted.get(old_name) != old:
            connection.execute(
                f"ALTER TABLE {quote(name)} DROP COLUMN {quote(key_column(old_name))}"
            )  # drops its index too
    new_indexes = [
        i for n, i in wanted.items() if n != "by_id" and layout.indexes.get(n) != i
    ]
    record_spec(connection, name, definition, document)
    fresh = PgTableLayout.build(
        name, layout.number, definition.all_indexes(), definition.side_indexes()
    )
    # Search and vector indexes removed or changed are dropped, new ones made
    # and filled (a side is its index: one that changed is a different side).
    old_search, new_search = text_search.sides(layout), text_search.sides(fresh)
    old_vector, new_vector = vector_tables.sides(layout), vector_tables.sides(fresh)
    for s in old_search:
        if s not in new_search:
            text_search.drop(connection, s)
    for x in old_vector:
        if x not in new_vector:
            vector_tables.drop(connection, x)
    for index in new_indexes:
        connection.execute(
            f"ALTER TABLE {quote(name)} ADD COLUMN {quote(key_column(index.name))} bytea"
        )
    if new_indexes:
        _backfill_keys(connection, fresh, [i.name for i in new_indexes])
    for index in new_indexes:
        connection.execute(
            f"ALTER TABLE {quote(name)} ALTER COLUMN "
            f"{quote(key_column(index.name))} SET NOT NULL"
        )
        _create_index(connection, name, index)
    for s in new_search:
        if s not in old_search:
            text_search.create(connection, s)
            text_search.backfill(connection, s, _texts(connection, name))
    for x in new_vector:
        if x not in old_vector:
            vector_tables.create(connection, x)
            vector_tables.backfill(connection, x, _texts(connection, name))
    bump_generation(connection)


def _bodies(connection: Connection, table: str) -> list[tuple[str, str]]:
    return connection.execute(f"SELECT _id, _body FROM {quote(table)}").fetchall()


def _texts(connection: Connection, table: str) -> list[str]:
    return [body for _, body in _bodies(connection, table)]


def _backfill_keys(
    connection: Connection, layout: PgTableLayout, names: list[str]
) -> None:
    """Fill the new key columns ``names`` from every stored document."""
    fns = dict(layout.key_fns)
    sets = ", ".join(f"{quote(key_column(n))} = %s" for n in names)
    sql = f"UPDATE {quote(layout.name)} SET {sets} WHERE _id = %s"
    rows = []
    for doc_id, body in _bodies(connection, layout.name):
        doc = loads(body)
        rows.append((*(fns[n](doc) for n in names), doc_id))
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def record_spec(
    connection: Connection,
    name: str,
    definition: TableDefinition,
    document: str | None,
) -> None:
    """Record ``definition``'s indexes and the checked ``document`` validator."""
    spec = spec_text(definition.all_indexes(), definition.side_indexes(), document)
    connection.execute(
        f"UPDATE {TABLES} SET indexes = %s WHERE name = %s", (spec, name)
    )


def checked_documents(connection: Connection) -> dict[str, str]:
    """Per table, the document validator text recorded as checked."""
    recorded: dict[str, str] = {}
    for name, spec in connection.execute(f"SELECT name, indexes FROM {TABLES}"):
        document = json.loads(spec).get("document")
        if isinstance(document, str):
            recorded[name] = document
    return recorded


def forget_checked(connection: Connection, keep: set[str]) -> None:
    """Clear the checked-validator record of every table not in ``keep``."""
    rows = connection.execute(f"SELECT name, indexes FROM {TABLES}").fetchall()
    for name, text in rows:
        spec = json.loads(text)
        if name not in keep and spec.pop("document", None) is not None:
            connection.execute(
                f"UPDATE {TABLES} SET indexes = %s WHERE name = %s",
                (json.dumps(spec), name),
            )


def check_layout_version(version: str | None) -> None:
    """Refuse a database whose layout is newer than this one_store knows."""
    if version is not None and int(version) > LAYOUT_VERSION:
        raise StorageFailure(
            StorageError(
                f"database layout version {version} is newer than this one_store "
                f"({LAYOUT_VERSION}); upgrade one_store"
            )
        )
