"""Vector indexes in SQLite: a table per index, kept in step with writes, searched in memory.

Each vector index ``i`` of table ``t`` is a table ``t$vector$i``:

- ``doc INTEGER PRIMARY KEY``: the document's rowid (as the FTS5 tables of text
  search), so :class:`~one_store.engine.sqlite.storage.Storage` keeps it in step
  with every insert, patch, replace and delete through the same loop, in the
  same transaction: a rolled-back write leaves it as it was.
- ``id``: the document's ``_id``; ``vector``: the vector as float32 bytes
  (little-endian, as NumPy reads them); ``f0``, ``f1``, ...: the sort keys of
  the filter fields (so ``1`` is not ``1.0``, and a missing field is its own
  value, as Convex's filter values).
- ``seq``: grows with every change of the table (max + 1 in the writing
  transaction; writers are serialised, so a later commit has a larger ``seq``).
  A delete keeps the row with ``vector`` NULL (a tombstone, a few bytes), so a
  reader that remembers the last ``seq`` it saw learns of deletions as well as
  of inserts and updates: ``WHERE seq > ?``, through an index on ``seq``.

What is indexed follows Convex (``crates/vector/src/qdrant_index.rs``,
``QdrantSchema::index``): an array of exactly ``dimensions`` floats (Convex's
Float64; an int64 element, a missing field, ``null`` or a wrong length is
silently not indexed). A vector with NaN, an infinity or a value beyond float32
is not indexed either (Convex indexes it and every score against it is NaN; see
docs/differences-from-convex.md).

Searching is in memory: :class:`VectorCaches` keeps per index a
:class:`~one_store.engine.vector_matrix.VectorMatrix` and, at every search,
reads the rows whose ``seq`` is past the last one it applied (so writes of
other processes on the file are seen by the next search). A random
``generation`` kept in ``_one_store_meta`` when the table is created tells a
cache that its table was dropped and made again (a changed index), so it starts
over instead of applying a new table's changes to an old matrix.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from attrs import define

from ...model.values import loads
from ..backend import Row, VectorScan
from .layout import META, VectorLayout, quote, read_meta, vector_table, write_meta

if TYPE_CHECKING:
    import sqlite_utils

    from ..vector_matrix import VectorMatrix
    from .layout import TableLayout


def _generation_key(name: str) -> str:
    return f"vector:{name}"


# ---------------------------------------------------------------------- DDL


def create(db: sqlite_utils.Database, layout: VectorLayout) -> None:
    """Create a vector index's table (empty) and its ``seq`` index; a new generation."""
    columns: dict[str, Any] = {"doc": int, "seq": int, "id": str, "vector": bytes}
    columns.update({f"f{i}": bytes for i in range(len(layout.filter_paths))})
    table = db.table(layout.table)
    table.create(columns, pk="doc", not_null={"seq", "id"})
    table.create_index(["seq"], index_name=f"{layout.table}$seq")
    write_meta(db.conn, _generation_key(layout.table), os.urandom(8).hex())


def drop(db: sqlite_utils.Database, name: str) -> None:
    """Drop a vector index's table and forget its generation."""
    db.table(name).drop(ignore=True)
    db.conn.execute(f"DELETE FROM {META} WHERE key=?", (_generation_key(name),))


def backfill(
    connection: sqlite3.Connection, table: TableLayout, names: set[str]
) -> None:
    """Index the stored documents of ``table`` in its new vector indexes ``names``."""
    rows = connection.execute(f"SELECT rowid, _body FROM {quote(table.name)}")
    targets = [table.vectors[name] for name in sorted(names)]
    for rowid, body in list(rows):
        doc = loads(body)
        for layout in targets:
            row = layout.row(doc)
            if row is not None:  # not a vector of the index's length: not indexed
                connection.execute(layout.insert_sql, (rowid, *row))


# ---------------------------------------------------------------------- reading


def _newest(connection: sqlite3.Connection, layout: VectorLayout) -> int:
    (seq,) = connection.execute(
        f"SELECT coalesce(max(seq), 0) FROM {quote(layout.table)}"
    ).fetchone()
    return int(seq)


def _count(connection: sqlite3.Connection, layout: VectorLayout) -> int:
    # Tombstones included: counted on the seq index, without reading vectors.
    (count,) = connection.execute(
        f"SELECT count(*) FROM {quote(layout.table)}"
    ).fetchone()
    return int(count)


def _changes(
    connection: sqlite3.Connection, layout: VectorLayout, after: int
) -> Iterator[Row]:
    if after == 0:
        cursor = connection.execute(layout.load_sql)
    else:
        cursor = connection.execute(layout.changes_sql, (after,))
    while chunk := cursor.fetchmany(4096):
        yield from chunk


@define
class _Cache:
    generation: str
    seq: int
    matrix: VectorMatrix


class Reader(Protocol):
    """What a vector search reads through (the SQLite ``Storage``)."""

    connection: sqlite3.Connection

    @property
    def layouts(self) -> Mapping[str, TableLayout]:
        """Every table's layout by name."""

    def read(self) -> AbstractContextManager[None]:
        """A read transaction."""


class VectorCaches:
    """The in-memory matrices of one connection's vector indexes, kept current.

    One lock per store: a search refreshes its matrix from the rows changed
    since it last looked, then ranks; a second thread's search waits (NumPy's
    matrix product already uses the cores it can).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: dict[str, _Cache] = {}

    def search(self, storage: Reader, scan: VectorScan) -> list[tuple[str, float]]:
        """``(_id, score)`` of the best ``scan.limit`` matches, best first.

        Raises:
            ProblemError: the index does not exist, or the scan breaks its rules
                (:func:`one_store.engine.vectors.plan`).
        """
        from ..vector_matrix import VectorMatrix
        from ..vectors import plan

        with self._lock:
            with storage.read():
                table = storage.layouts.get(scan.table)
                index = table.vector_indexes.get(scan.index) if table else None
                query = plan(scan, index)
                assert table is not None  # plan() refused a missing index
                layout = table.vectors[scan.index]
                c = storage.connection
                generation = read_meta(c, _generation_key(layout.table)) or ""
                cache = self._caches.get(layout.table)
                if cache is None or cache.generation != generation:
                    matrix = VectorMatrix(
                        layout.index.dimensions, len(layout.filter_paths)
                    )
                    matrix.reserve(_count(c, layout))
                    cache = self._caches[layout.table] = _Cache(generation, 0, matrix)
                newest = _newest(c, layout)
                if newest > cache.seq:
                    cache.matrix.apply(_changes(c, layout, cache.seq))
                    cache.seq = newest
            return cache.matrix.top(query)

    def matrix(self, table: str, index: str) -> VectorMatrix | None:
        """The matrix of ``table``'s vector index ``index``, once a search built it."""
        cache = self._caches.get(vector_table(table, index))
        return None if cache is None else cache.matrix
