"""A view per table, so that any SQLite tool reads documents as rows.

one_store keeps each document as JSON text in a ``_body`` column, which the
``sqlite3`` shell, Datasette or a spreadsheet's SQLite import show as one opaque
string. Next to each table ``<table>`` this module keeps a view ``<table>_view``
with the columns ``_id``, ``_creationTime`` (milliseconds since the epoch, as
stored) and one per top-level field the table's validator declares (every field
of every member, for a union of objects), each extracted from ``_body``:

- strings, numbers and int64 as themselves; ``±Infinity`` as SQLite's infinities
  and NaN as NULL (SQLite has no NaN);
- booleans as 1 and 0 (SQLite has no boolean type);
- ``v.bytes()`` fields as BLOBs, decoded from the stored base64 in SQL, so the
  view needs no function of one_store's (SQLite before 3.41 has no ``unhex``);
- objects and arrays as their JSON text; a missing field as NULL.

A table whose validator is not an object (no schema, ``v.any()``) gets one
``document`` column holding the whole JSON text instead. A field whose name holds
a double quote or a control character has no column (a JSON path cannot name it
in every SQLite version).

The views are made with sqlite-utils (``create_view(..., replace=True)``) in the
write transaction that syncs a changed schema, so they follow every schema
change (a file without the ``views`` record, from before them, is synced once); the names made are kept in ``_one_store_meta`` (``views``), so a view
one_store made for a table that is gone is dropped, and a user's own view is
never touched. A view is skipped where ``<table>_view`` already names a table,
and a memory database gets none (no other tool can open it).
Views hold no data: the stored documents, the snapshot export and import, the
schema check at open and ``Storage.clear`` read the tables one_store keeps in
``_one_store_tables`` and never see them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from operator import attrgetter

from ...model.schema import Schema
from ...model.validators import Validator
from ..view_fields import view_fields
from .ddl import utils
from .layout import key_column, quote, read_meta, write_meta

SUFFIX = "_view"
META_KEY = "views"
_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Byte k of this blob is k: substr() on it turns a number into a one-byte BLOB.
_BYTES = "x'" + "".join(f"{i:02X}" for i in range(256)) + "'"


def view_name(table: str) -> str:
    """The view that shows ``table``'s documents as rows."""
    return table + SUFFIX


def sync(
    connection: sqlite3.Connection, schema: Schema, tables: Iterable[str]
) -> list[str]:
    """Create or replace the view of every table in ``tables``; return their names.

    Runs inside the caller's write transaction (the schema sync).
    """
    db = utils(connection)
    existing = {
        name: kind
        for name, kind in connection.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
        )
    }
    made_before = json.loads(read_meta(connection, META_KEY) or "[]")
    made: list[str] = []
    for table in sorted(tables):
        name = view_name(table)
        if existing.get(name) == "table":
            continue  # a table of that name: leave it alone
        definition = schema.tables.get(table)
        document = definition.document if definition is not None else None
        # A field that is bytes in one member, text in another: read as stored.
        fields = view_fields(document, attrgetter("kind"))
        db.create_view(name, view_sql(table, fields), replace=True)
        made.append(name)
    for stale in set(made_before) - set(made):
        if existing.get(stale) == "view":
            connection.execute(f"DROP VIEW IF EXISTS {quote(stale)}")
    write_meta(connection, META_KEY, json.dumps(made))
    return made


def view_sql(table: str, fields: Mapping[str, Validator] | None) -> str:
    """The ``SELECT`` of ``table``'s view (see the module docstring)."""
    columns = ["_id", "_creationTime"]
    if fields is None:
        columns.append('_body AS "document"')
    else:
        for name, validator in fields.items():
            if name in ("_id", "_creationTime") or not _nameable(name):
                continue
            columns.append(f"{column_sql(name, validator)} AS {quote(name)}")
    order = quote(key_column("by_creation_time"))  # indexed: no sort
    return f"SELECT {', '.join(columns)} FROM {quote(table)} ORDER BY {order}"


def _nameable(name: str) -> bool:
    return '"' not in name and "\\" not in name and name.isprintable()


def _path(name: str, *more: str) -> str:
    parts = "".join(f'."{p}"' for p in (name, *more))
    return "'$" + parts.replace("'", "''") + "'"


def column_sql(name: str, validator: Validator) -> str:
    """The expression of one field's column."""
    value = f"json_extract(_body, {_path(name)})"
    if validator.kind == "bytes":
        return _bytes_sql(f"json_extract(_body, {_path(name, '$bytes')})")
    if validator.kind == "number":  # ±Infinity and NaN are stored tagged
        special = f"json_extract(_body, {_path(name, '$float')})"
        return (
            f"CASE json_type(_body, {_path(name)}) WHEN 'object' THEN "
            f"CASE {special} WHEN 'Infinity' THEN 9e999 WHEN '-Infinity' "
            f"THEN -9e999 ELSE NULL END ELSE {value} END"
        )
    return value


def _bytes_sql(base64: str) -> str:
    """``base64`` (an expression) decoded to a BLOB, in SQL alone (NULL stays NULL)."""

    def sextet(k: int) -> str:
        return f"(max(instr('{_BASE64}', substr(t, i + {k}, 1)) - 1, 0))"

    n = f"({sextet(0)} * 262144 + {sextet(1)} * 4096 + {sextet(2)} * 64 + {sextet(3)})"
    three = " || ".join(
        f"substr({_BYTES}, {part} + 1, 1)"
        for part in (f"({n} >> 16)", f"(({n} >> 8) & 255)", f"({n} & 255)")
    )
    size = "(length(t) / 4) * 3 - (substr(t, -1) = '=') - (substr(t, -2, 1) = '=')"
    # || makes TEXT of the bytes; CAST gives them back as a BLOB, byte for byte.
    return (
        f"(WITH RECURSIVE s(t) AS (SELECT {base64}), "
        f"d(i, acc) AS (SELECT 1, x'' UNION ALL "
        f"SELECT i + 4, CAST(acc || {three} AS BLOB) FROM d, s WHERE i <= length(t)) "
        f"SELECT CASE WHEN t IS NULL THEN NULL "
        f"ELSE coalesce(substr(acc, 1, {size}), x'') END "
        f"FROM d, s ORDER BY i DESC LIMIT 1)"
    )
