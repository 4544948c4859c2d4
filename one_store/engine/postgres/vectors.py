"""Vector indexes on PostgreSQL: a table per index, kept in step with writes, searched exactly.

Each vector index ``i`` of table ``t`` is a table ``t$vector$i``
(:func:`~one_store.engine.postgres.side_tables.vector_table`):

- ``id text COLLATE "C" PRIMARY KEY``: the document's ``_id``;
- ``vector bytea``: the vector as little-endian float32 bytes, as NumPy reads
  them (NULL: a tombstone, see below);
- ``f0``, ``f1``, ...: the sort keys of the filter fields (``1`` is not ``1.0``,
  a missing field is its own value, as Convex's filter values);
- ``seq bigint``: grows with every change of the table (max + 1, in the writing
  transaction). Writes of the PostgreSQL engine take its write lock first (one
  writer at a time), so a later commit has a larger ``seq``. A delete keeps the
  row with ``vector`` NULL, so a reader that remembers the last ``seq`` it
  applied learns of deletions as well as of inserts and updates, through the
  index on ``seq``.

The entry is written in the document's transaction by :func:`write` (the
storage calls it for every insert, update and delete): a rolled-back write
leaves the index as it was. What is indexed is what the SQLite engine indexes
(:func:`~one_store.engine.postgres.side_tables.pack`).

Searching is the SQLite engine's exact search:
:class:`VectorCaches` keeps per index a
:class:`~one_store.engine.vector_matrix.VectorMatrix` and, at every search,
applies the rows whose ``seq`` is past the last one it applied (so writes of
other processes and machines are seen by the next search), then ranks in NumPy.
The same vectors give the same ``(_id, _score)`` list on both engines, ties
included. A table dropped and made again (a changed index) has a new OID, which
tells a cache to start over.

pgvector is not used: its approximate indexes (HNSW, IVFFlat) do not give
Convex's exact ranking, and its exact scan would return the same results as
this one from the server's memory instead of the process's.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from attrs import define

from ...model.schema import VectorIndex
from ..backend import Row, TableInfo, VectorScan
from .layout import quote
from .side_tables import VectorSide, vector_table

if TYPE_CHECKING:
    from psycopg import Connection

    from ...model.values import Document
    from ..vector_matrix import VectorMatrix

_FETCH = 4096


@functools.lru_cache(maxsize=256)
def side(table: str, index: VectorIndex) -> VectorSide:
    """The side table of vector index ``index`` of ``table``."""
    return VectorSide.build(table, index)


# ---------------------------------------------------------------------- DDL


def create(connection: Connection[Any], table: str, index: VectorIndex) -> None:
    """Create a vector index's table (empty) and its ``seq`` index."""
    s = side(table, index)
    t = quote(s.name)
    filters = "".join(f", f{i} bytea" for i in range(len(s.filter_paths)))
    connection.execute(
        f'CREATE TABLE {t} (id text COLLATE "C" PRIMARY KEY, seq bigint NOT NULL, '
        f"vector bytea{filters})"
    )
    connection.execute(f"CREATE INDEX {quote(s.name + '$seq')} ON {t} (seq)")


def drop(connection: Connection[Any], table: str, index: VectorIndex) -> None:
    """Drop a vector index's table."""
    connection.execute(f"DROP TABLE IF EXISTS {quote(side(table, index).name)}")


def _next_seq(s: VectorSide) -> str:
    return f"(SELECT coalesce(max(seq), 0) + 1 FROM {quote(s.name)})"


def clear(connection: Connection[Any], table: str, index: VectorIndex) -> None:
    """Tombstone every entry (the table is being emptied)."""
    s = side(table, index)
    connection.execute(
        f"UPDATE {quote(s.name)} SET vector = NULL, seq = {_next_seq(s)} "
        "WHERE vector IS NOT NULL"
    )


# ---------------------------------------------------------------------- writes


def write(
    connection: Connection[Any],
    table: str,
    index: VectorIndex,
    doc_id: str,
    old: Document | None,
    new: Document | None,
) -> None:
    """Keep ``doc_id``'s entry in step with an insert (``old`` None), update or delete.

    Runs in the writing transaction; an unchanged entry is left as it is, a
    document that is no longer indexed leaves a tombstone.
    """
    s = side(table, index)
    if old is not None and new is not None and s.same_entry(old, new):
        return
    entry = None if new is None else s.entry(new)
    if entry is None:
        if old is not None:
            connection.execute(
                f"UPDATE {quote(s.name)} SET vector = NULL, seq = {_next_seq(s)} "
                "WHERE id = %s AND vector IS NOT NULL",
                (doc_id,),
            )
        return
    vector, keys = entry
    n = len(keys)
    columns = "".join(f", f{i}" for i in range(n))
    sets = "".join(f", f{i} = excluded.f{i}" for i in range(n))
    connection.execute(
        f"INSERT INTO {quote(s.name)} (id, seq, vector{columns}) "
        f"VALUES (%s, {_next_seq(s)}, %s{', %s' * n}) ON CONFLICT (id) DO UPDATE "
        f"SET seq = excluded.seq, vector = excluded.vector{sets}",
        (doc_id, vector, *keys),
    )


# ---------------------------------------------------------------------- reading


def _changes(connection: Connection[Any], s: VectorSide, after: int) -> Iterator[Row]:
    """``(id, id, vector | None, *filter keys)`` of the rows changed after ``after``."""
    filters = "".join(f", f{i}" for i in range(len(s.filter_paths)))
    t = quote(s.name)
    if after == 0:  # a first load: live rows only
        sql = f"SELECT id, id, vector{filters} FROM {t} WHERE vector IS NOT NULL"
        params: tuple[int, ...] = ()
    else:
        sql = f"SELECT id, id, vector{filters} FROM {t} WHERE seq > %s"
        params = (after,)
    with connection.cursor(binary=True) as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_FETCH):
            yield from chunk


@define
class _Cache:
    generation: int
    seq: int
    matrix: VectorMatrix


class VectorCaches:
    """The in-memory matrices of one store's vector indexes, kept current.

    One lock per store: a search refreshes its matrix from the rows changed
    since it last looked, then ranks; a second thread's search waits (NumPy's
    matrix product already uses the cores it can).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caches: dict[str, _Cache] = {}

    def search(
        self, connection: Connection[Any], table: TableInfo | None, scan: VectorScan
    ) -> list[tuple[str, float]]:
        """``(_id, score)`` of the best ``scan.limit`` matches, best first.

        ``connection`` is in a read transaction (one snapshot) the caller holds;
        ``table`` is ``scan.table`` as the engine knows it (None: no such table).

        Raises:
            ProblemError: the index does not exist, or the scan breaks its rules
                (:func:`one_store.engine.vectors.plan`).
        """
        from ..vector_matrix import VectorMatrix
        from ..vectors import plan

        index = table.vector_indexes.get(scan.index) if table else None
        query = plan(scan, index)
        assert table is not None
        assert index is not None
        s = side(table.name, index)
        with self._lock:
            # max(seq) reads the end of the seq index; the OID tells a table
            # made again (a changed index) from the one the cache was built on.
            generation, newest = connection.execute(
                f"SELECT %s::regclass::oid::bigint, coalesce(max(seq), 0) "
                f"FROM {quote(s.name)}",
                (quote(s.name),),
            ).fetchone() or (0, 0)
            cache = self._caches.get(s.name)
            if cache is None or cache.generation != generation:
                matrix = VectorMatrix(index.dimensions, len(s.filter_paths))
                (count,) = connection.execute(
                    f"SELECT count(*) FROM {quote(s.name)} WHERE vector IS NOT NULL"
                ).fetchone() or (0,)
                matrix.reserve(int(count))
                cache = self._caches[s.name] = _Cache(int(generation), 0, matrix)
            if newest > cache.seq:
                cache.matrix.apply(_changes(connection, s, cache.seq))
                cache.seq = int(newest)
            return cache.matrix.top(query)

    def matrix(self, table: str, index: str) -> VectorMatrix | None:
        """The matrix of ``table``'s vector index ``index``, once a search built it."""
        cache = self._caches.get(vector_table(table, index))
        return None if cache is None else cache.matrix


class Reader(Protocol):
    """What :func:`vector_search` reads through (the PostgreSQL storage)."""

    @property
    def connection(self) -> Connection[Any]:
        """The storage's connection."""

    @property
    def layouts(self) -> Mapping[str, TableInfo]:
        """Every table by name."""

    def read(self) -> AbstractContextManager[None]:
        """A read transaction (one snapshot)."""


# One set of matrices per storage object, gone with it.
_CACHES: weakref.WeakKeyDictionary[Any, VectorCaches] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def vector_search(storage: Reader, scan: VectorScan) -> list[tuple[str, float]]:
    """``(_id, score)`` of the best ``scan.limit`` matches, in one snapshot of ``storage``.

    Raises:
        ProblemError: the index does not exist, or the scan breaks its rules.
    """
    with _CACHES_LOCK:
        caches = _CACHES.get(storage)
        if caches is None:
            caches = _CACHES[storage] = VectorCaches()
    with storage.read():
        return caches.search(storage.connection, storage.layouts.get(scan.table), scan)
