"""A view per table on PostgreSQL, so that ``psql`` and any SQL tool read documents as rows.

The PostgreSQL engine keeps each document as JSON text in a ``_body`` column.
Next to each table ``<table>`` this module keeps a view ``<table>_view``, as the
SQLite engine does (:mod:`one_store.engine.sqlite.views`), with the columns
``_id``, ``_creationTime`` (milliseconds since the epoch, as stored) and one per
top-level field the table's validator declares (every field of every member,
for a union of objects), each taken from the body parsed once as ``jsonb``,
typed with PostgreSQL's own types where SQLite has none:

- ``v.string()``, ``v.id()``, string literals (and unions of those): ``text``;
- ``v.int64()``: ``bigint``; ``v.number()``: ``double precision``, with
  ``±Infinity`` and NaN as PostgreSQL's (they are stored tagged);
- ``v.boolean()``: ``boolean``; ``v.bytes()``: ``bytea`` (decoded from the
  stored base64 with ``decode(..., 'base64')``);
- anything else (objects, arrays, records, ``v.any()``, other unions): ``jsonb``;
- a missing field: NULL.

A table whose validator is not an object (no schema, ``v.any()``) gets one
``document`` column (``jsonb``) instead. Column and view names longer than 63
bytes are shortened as every identifier of the engine
(:func:`~one_store.engine.postgres.layout.ident`).

The views are made in the write that syncs the schema, only where a view's
``SELECT`` changed (kept as a hash in ``_one_store_meta``, ``view_texts``), so
another tool's long query on a view never holds up a store's open: ``CREATE OR
REPLACE`` (so a user's view built on one survives a compatible change), else
dropped and made again. The names made are kept in ``_one_store_meta`` (``views``), so a
view one_store made for a table that is gone is dropped, and a user's own view
is never touched; a view is skipped where ``<table>_view`` names a table. A
change that would have to drop a view another view depends on leaves it as it
was, with a warning (logger ``one_store``), instead of failing the open.
Views hold no data: exports, imports and the schema check read the tables.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...model.validators import Validator
from ..view_fields import view_fields
from .layout import META, ident, key_column, quote

if TYPE_CHECKING:
    from psycopg import Connection

    from ...model.schema import Schema

logger = logging.getLogger("one_store")

SUFFIX = "_view"
META_KEY = "views"
TEXTS_KEY = "view_texts"  # view name -> SHA-256 of the SELECT it was made from


def view_name(table: str) -> str:
    """The view that shows ``table``'s documents as rows."""
    return ident(table + SUFFIX)


def sync(
    connection: Connection[Any], schema: Schema, layouts: Mapping[str, Any]
) -> list[str]:
    """Create or replace the view of every table in ``layouts``; return their names.

    Runs inside the caller's write transaction (the schema sync).
    """
    kinds = dict(
        connection.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relkind IN ('r', 'v', 'p')"
        ).fetchall()
    )
    made_before = set(json.loads(_meta(connection, META_KEY) or "[]"))
    # What each view was made from: a view whose SELECT is unchanged is not
    # made again, so a long query of another tool on it never holds up a
    # store's open (CREATE OR REPLACE VIEW waits for every reader).
    texts_before: dict[str, str] = json.loads(_meta(connection, TEXTS_KEY) or "{}")
    made: list[str] = []
    texts: dict[str, str] = {}
    for table in sorted(layouts):
        name = view_name(table)
        if kinds.get(name) in ("r", "p"):
            continue  # a table of that name: leave it alone
        definition = schema.tables.get(table)
        document = definition.document if definition is not None else None
        fields = view_fields(document, _type)
        select = view_sql(table, fields)
        digest = hashlib.sha256(select.encode()).hexdigest()
        unchanged = kinds.get(name) == "v" and texts_before.get(name) == digest
        if unchanged or _replace(connection, name, select):
            texts[name] = digest  # a view left as it was is tried again next time
        made.append(name)
    for stale in sorted(made_before - set(made)):
        if kinds.get(stale) == "v":
            connection.execute(f"DROP VIEW IF EXISTS {quote(stale)}")
    _set_meta(connection, META_KEY, json.dumps(made))
    _set_meta(connection, TEXTS_KEY, json.dumps(texts))
    return made


def _meta(connection: Connection[Any], key: str) -> str | None:
    row = connection.execute(
        f"SELECT value FROM {META} WHERE key = %s", (key,)
    ).fetchone()
    return None if row is None else str(row[0])


def _set_meta(connection: Connection[Any], key: str, value: str) -> None:
    connection.execute(
        f"INSERT INTO {META} (key, value) VALUES (%s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _replace(connection: Connection[Any], name: str, select: str) -> bool:
    """``CREATE OR REPLACE`` the view; drop and make it when its columns changed.

    False when a view of someone else's depends on it and the change cannot
    keep its columns: the old view then stays (logged), rather than a user's
    view stopping every store from opening; the next schema sync tries again.
    """
    import psycopg

    connection.execute("SAVEPOINT one_store_view")
    try:
        connection.execute(f"CREATE OR REPLACE VIEW {quote(name)} AS {select}")
    except psycopg.errors.DatabaseError:
        connection.execute("ROLLBACK TO SAVEPOINT one_store_view")
        try:
            connection.execute(f"DROP VIEW IF EXISTS {quote(name)}")
        except psycopg.errors.DependentObjectsStillExist as e:
            connection.execute("ROLLBACK TO SAVEPOINT one_store_view")
            connection.execute("RELEASE SAVEPOINT one_store_view")
            logger.warning("%s is left as it was: %s", name, str(e).splitlines()[0])
            return False
        connection.execute(f"CREATE VIEW {quote(name)} AS {select}")
    connection.execute("RELEASE SAVEPOINT one_store_view")
    return True


def view_sql(table: str, fields: Mapping[str, Validator] | None) -> str:
    """The ``SELECT`` of ``table``'s view (see the module docstring)."""
    columns = ["d._id", 'd."_creationTime"']
    if fields is None:
        columns.append('b.j AS "document"')
    else:
        for name, validator in fields.items():
            if name in ("_id", "_creationTime"):
                continue
            columns.append(f"{column_sql(name, validator)} AS {quote(name)}")
    order = quote(key_column("by_creation_time"))
    return (
        f"SELECT {', '.join(columns)} FROM {quote(table)} d, "
        f"LATERAL (SELECT d._body::jsonb AS j) b ORDER BY d.{order}"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _is_text(validator: Validator) -> bool:
    if validator.kind in ("string", "id"):
        return True
    if validator.kind == "literal":
        return isinstance(validator.literal, str)
    if validator.kind == "union":
        return all(_is_text(m) for m in validator.members)
    return False


def _type(validator: Validator) -> str:
    """The column's SQL type for ``validator``."""
    if _is_text(validator):
        return "text"
    return {
        "int64": "bigint",
        "number": "double precision",
        "boolean": "boolean",
        "bytes": "bytea",
    }.get(validator.kind, "jsonb")


def column_sql(name: str, validator: Validator) -> str:
    """The expression of one field's column (``b.j`` is the parsed body)."""
    key = _literal(name)
    kind = _type(validator)
    if kind == "text":
        return f"(b.j ->> {key})"
    if kind == "bigint":
        return f"(b.j ->> {key})::bigint"
    if kind == "boolean":
        return f"(b.j ->> {key})::boolean"
    if kind == "bytea":
        return f"decode(b.j -> {key} ->> '$bytes', 'base64')"
    if kind == "double precision":
        # ±Infinity and NaN are stored as {"$float": name}: PostgreSQL reads
        # the names "Infinity", "-Infinity" and "NaN" as float8 itself.
        return (
            f"(CASE jsonb_typeof(b.j -> {key}) WHEN 'object' THEN "
            f"split_part(b.j -> {key} ->> '$float', ':', 1) "
            f"ELSE b.j ->> {key} END)::double precision"
        )
    return f"(b.j -> {key})"
