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

The entry is written in the document's transaction (:func:`index_document`,
:func:`reindex_document`, :func:`unindex_document`): a rolled-back write leaves
the index as it was. What is indexed is what the SQLite engine indexes
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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from attrs import define

from ...model.values import loads
from ..backend import Row, TableInfo, VectorScan
from .side_tables import VectorSide, quote

if TYPE_CHECKING:
    from psycopg import Connection

    from ..vector_matrix import VectorMatrix
    from ..vectors import VectorQuery

_FETCH = 4096


def sides(table: TableInfo) -> list[VectorSide]:
    """The side tables of ``table``'s vector indexes."""
    return [
        _side(table.name, index) for _, index in sorted(table.vector_indexes.items())
    ]


# Built once per (table, index): every write of the table asks for its sides.
_side = functools.lru_cache(maxsize=1024)(VectorSide.build)


# ---------------------------------------------------------------------- DDL


def create(connection: Connection[Any], side: VectorSide) -> None:
    """Create a vector index's table (empty) and its ``seq`` index."""
    t = quote(side.name)
    filters = "".join(f", f{i} bytea" for i in range(len(side.filter_paths)))
    connection.execute(
        f'CREATE TABLE {t} (id text COLLATE "C" PRIMARY KEY, seq bigint NOT NULL, '
        f"vector bytea{filters})"
    )
    connection.execute(f"CREATE INDEX {quote(side.name + '$seq')} ON {t} (seq)")


def drop(connection: Connection[Any], side: VectorSide) -> None:
    """Drop a vector index's table."""
    connection.execute(f"DROP TABLE IF EXISTS {quote(side.name)}")


def backfill(
    connection: Connection[Any], side: VectorSide, bodies: Iterable[str]
) -> int:
    """Index stored documents (their JSON) in a new vector index; how many were indexed."""
    count = 0
    for body in bodies:
        doc = loads(body)
        if _write(connection, side, doc):
            count += 1
    return count


# ---------------------------------------------------------------------- writes


def _next_seq(side: VectorSide) -> str:
    return f"(SELECT coalesce(max(seq), 0) + 1 FROM {quote(side.name)})"


def _write(connection: Connection[Any], side: VectorSide, doc: Any) -> bool:
    """Write ``doc``'s entry over whatever the table held for it; False: not indexed."""
    entry = side.entry(doc)
    if entry is None:
        return False
    vector, keys = entry
    n = len(keys)
    columns = "".join(f", f{i}" for i in range(n))
    sets = "".join(f", f{i} = excluded.f{i}" for i in range(n))
    connection.execute(
        f"INSERT INTO {quote(side.name)} (id, seq, vector{columns}) "
        f"VALUES (%s, {_next_seq(side)}, %s{', %s' * n}) "
        f"ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, vector = excluded.vector{sets}",
        (doc["_id"], vector, *keys),
    )
    return True


def _tombstone(connection: Connection[Any], side: VectorSide, doc_id: str) -> None:
    connection.execute(
        f"UPDATE {quote(side.name)} SET vector = NULL, seq = {_next_seq(side)} "
        "WHERE id = %s AND vector IS NOT NULL",
        (doc_id,),
    )


def index_document(connection: Connection[Any], table: TableInfo, doc: Any) -> None:
    """Write a new document's entries in every vector index of ``table``."""
    for side in sides(table):
        _write(connection, side, doc)


def reindex_document(
    connection: Connection[Any], table: TableInfo, old: Any, new: Any
) -> None:
    """Bring a replaced document's entries up to date (unchanged ones stay)."""
    for side in sides(table):
        if not side.same_entry(old, new) and not _write(connection, side, new):
            _tombstone(connection, side, new["_id"])


def unindex_document(
    connection: Connection[Any], table: TableInfo, doc_id: str
) -> None:
    """Tombstone a deleted document's entries."""
    for side in sides(table):
        _tombstone(connection, side, doc_id)


def clear(connection: Connection[Any], table: TableInfo) -> None:
    """Tombstone every entry of ``table``'s vector indexes (the table is being emptied)."""
    for side in sides(table):
        connection.execute(
            f"UPDATE {quote(side.name)} SET vector = NULL, seq = {_next_seq(side)} "
            "WHERE vector IS NOT NULL"
        )


# ---------------------------------------------------------------------- reading


def _changes(
    connection: Connection[Any], side: VectorSide, after: int
) -> Iterator[Row]:
    """``(id, id, vector | None, *filter keys)`` of the rows changed after ``after``."""
    filters = "".join(f", f{i}" for i in range(len(side.filter_paths)))
    t = quote(side.name)
    if after == 0:  # a first load: live rows only
        sql = f"SELECT id, id, vector{filters} FROM {t} WHERE vector IS NOT NULL"
        params: tuple[int, ...] = ()
    else:
        sql = f"SELECT id, id, vector{filters} FROM {t} WHERE seq > %s"
        params = (after,)
    # A server-side cursor (the caller holds a transaction): a first load of a
    # large index streams in batches instead of arriving whole in libpq.
    with connection.cursor(name="one_store_vectors", binary=True) as cursor:
        cursor.itersize = _FETCH
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(_FETCH):
            yield from chunk


def _refresh(
    connection: Connection[Any], side: VectorSide, cache: _Cache
) -> list[Row] | None:
    """The rows changed since ``cache`` was brought up to date, in one round trip.

    Each is ``(seq, id, id, vector | None, *filter keys)``; None when the table
    is not the one the cache was built on (its OID changed).
    """
    filters = "".join(f", f{i}" for i in range(len(side.filter_paths)))
    t = quote(side.name)
    rows = connection.execute(
        f"SELECT g.oid, c.* FROM (SELECT %s::regclass::oid::bigint) g (oid) "
        f"LEFT JOIN (SELECT seq, id, id AS doc, vector{filters} FROM {t} "
        "WHERE seq > %s) c ON true",
        (t, cache.seq),
        binary=True,
    ).fetchall()
    if not rows or rows[0][0] != cache.generation:
        return None
    return [row[1:] for row in rows if row[1] is not None]


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
        with self._lock:
            cache, query = self._current(connection, table, scan)
            return cache.matrix.top(query)

    def search_in(self, storage: Reader, scan: VectorScan) -> list[tuple[str, float]]:
        """:meth:`search` at one snapshot of ``storage``, ranked after it ends.

        The storage's transaction (and its lock) covers reading the changes
        only: NumPy ranks while the store's other calls go on, as on SQLite.
        """
        with self._lock:
            with storage.read():
                table = storage.layouts.get(scan.table)
                cache, query = self._current(storage.connection, table, scan)
            return cache.matrix.top(query)

    def _current(
        self, connection: Connection[Any], table: TableInfo | None, scan: VectorScan
    ) -> tuple[_Cache, VectorQuery]:
        """The index's matrix brought up to date, and the checked query (lock held)."""
        from ..vector_matrix import VectorMatrix
        from ..vectors import plan

        index = table.vector_indexes.get(scan.index) if table else None
        query = plan(scan, index)
        assert table is not None
        assert index is not None
        side = _side(table.name, index)
        cache = self._caches.get(side.name)
        if cache is not None:
            changed = _refresh(connection, side, cache)
            if changed is not None:
                cache.matrix.apply(row[1:] for row in changed)
                cache.seq = max((row[0] for row in changed), default=cache.seq)
                return cache, query
        # A first search, or the table was made again (a changed index): load
        # every live row.
        generation, newest, count = connection.execute(
            f"SELECT %s::regclass::oid::bigint, coalesce(max(seq), 0), "
            f"count(vector) FROM {quote(side.name)}",
            (quote(side.name),),
        ).fetchone() or (0, 0, 0)
        matrix = VectorMatrix(index.dimensions, len(side.filter_paths))
        matrix.reserve(int(count))
        matrix.apply(_changes(connection, side, 0))
        cache = _Cache(int(generation), int(newest), matrix)
        self._caches[side.name] = cache
        return cache, query

    def matrix(self, table: str, index: str) -> VectorMatrix | None:
        """The matrix of ``table``'s vector index ``index``, once a search built it."""
        from .side_tables import vector_table

        cache = self._caches.get(vector_table(table, index))
        return None if cache is None else cache.matrix


class Reader(Protocol):
    """What :meth:`VectorCaches.search_in` reads through (the engine's storage)."""

    @property
    def connection(self) -> Connection[Any]:
        """The storage's connection."""

    @property
    def layouts(self) -> Mapping[str, TableInfo]:
        """Every table by name."""

    def read(self) -> AbstractContextManager[None]:
        """A read transaction (one snapshot)."""
