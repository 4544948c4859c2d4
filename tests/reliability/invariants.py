"""Whole-file checks run after crashes, concurrent runs and faults.

They read the SQLite file directly (layout described in one_store/engine/sqlite/layout.py) so
that they do not trust the Store that wrote it: the key of every index is rebuilt
from the stored JSON body with the core's key function and compared byte for byte
with the BLOB column SQLite indexes; search rows and the live rows of vector
indexes are compared with the bodies.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from pathlib import Path
from typing import Any

from one_store.engine.sqlite.layout import TABLES, key_column, quote, search_table
from one_store.model.keys import key_function, sort_key
from one_store.model.values import get_path, loads

BUILT_IN_KEYS = {"by_creation_time": ("_creationTime", "_id")}


def integrity_problems(connection: sqlite3.Connection) -> list[str]:
    """``PRAGMA integrity_check`` findings (empty when the file is sound)."""
    rows = [str(r[0]) for r in connection.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def index_problems(connection: sqlite3.Connection) -> list[str]:
    """Rows whose index key or search row disagrees with the document body."""
    problems: list[str] = []
    for name, spec_text in connection.execute(f"SELECT name, indexes FROM {TABLES}"):
        spec = json.loads(spec_text)
        problems += _table_index_problems(connection, name, spec)
        for search in spec.get("search", []):
            problems += _search_problems(connection, name, search)
        for vector in spec.get("vector", []):
            problems += _vector_problems(connection, name, vector)
    return problems


def _table_index_problems(
    connection: sqlite3.Connection, table: str, spec: dict[str, Any]
) -> list[str]:
    keyed = [i for i in spec["indexes"] if i["name"] != "by_id"]
    fns = []
    for index in keyed:
        fields = BUILT_IN_KEYS.get(index["name"]) or (
            *index["fields"],
            "_creationTime",
            "_id",
        )
        fns.append(
            (index["name"], key_function(tuple(tuple(f.split(".")) for f in fields)))
        )
    cols = "".join(f", {quote(key_column(i['name']))}" for i in keyed)
    sql = f"SELECT _id, _creationTime, _body{cols} FROM {quote(table)}"
    problems = []
    for row in connection.execute(sql):
        doc_id, created, body = row[0], row[1], loads(row[2])
        if body.get("_id") != doc_id or body.get("_creationTime") != created:
            problems.append(f"{table} {doc_id}: system columns differ from the body")
        for (index_name, fn), stored in zip(fns, row[3:], strict=True):
            if fn(body) != stored:
                problems.append(
                    f"{table} {doc_id}: key of {index_name} differs from the body"
                )
    return problems


def _search_problems(
    connection: sqlite3.Connection, table: str, search: dict[str, Any]
) -> list[str]:
    path = tuple(search["searchField"].split("."))
    expected = {}
    for rowid, body in connection.execute(f"SELECT rowid, _body FROM {quote(table)}"):
        text = get_path(loads(body), path)
        if isinstance(text, str):
            expected[rowid] = text
    fts = quote(search_table(table, search["name"]))
    actual = dict(connection.execute(f"SELECT rowid, text FROM {fts}"))
    if actual != expected:
        return [f"{table}: search index {search['name']} differs from the bodies"]
    return []


def _float32(vector: object, dimensions: int) -> bytes | None:
    """The stored bytes of an indexable vector (Convex's rule), or None."""
    if not isinstance(vector, list) or len(vector) != dimensions:
        return None
    if not all(type(x) is float and math.isfinite(x) for x in vector):
        return None
    try:
        packed = struct.pack(f"<{dimensions}f", *vector)
    except OverflowError:  # beyond float32
        return None
    return packed


def _vector_problems(
    connection: sqlite3.Connection, table: str, vector: dict[str, Any]
) -> list[str]:
    path = tuple(vector["vectorField"].split("."))
    filters = [tuple(f.split(".")) for f in vector["filterFields"]]
    expected = {}
    for rowid, body in connection.execute(f"SELECT rowid, _body FROM {quote(table)}"):
        doc = loads(body)
        packed = _float32(get_path(doc, path), vector["dimensions"])
        if packed is not None:
            keys = tuple(sort_key(get_path(doc, f)) for f in filters)
            expected[rowid] = (doc["_id"], packed, *keys)
    columns = "".join(f", f{i}" for i in range(len(filters)))
    name = quote(f"{table}$vector${vector['name']}")
    actual = {
        row[0]: tuple(row[1:])
        for row in connection.execute(
            f"SELECT doc, id, vector{columns} FROM {name} WHERE vector IS NOT NULL"
        )
    }
    if actual != expected:
        return [f"{table}: vector index {vector['name']} differs from the bodies"]
    return []


def file_problems(path: Path) -> list[str]:
    """Integrity and index consistency of the file at ``path``, via a fresh connection."""
    connection = sqlite3.connect(path)
    try:
        return integrity_problems(connection) + index_problems(connection)
    finally:
        connection.close()


def dump(connection: sqlite3.Connection) -> list[str]:
    """Every row of every table (index columns included) as SQL text, for equality."""
    return list(connection.iterdump())
