"""The SQL of index range scans on PostgreSQL, streamed in keyset batches.

An :class:`~one_store.engine.backend.IndexScan` becomes ``SELECT`` over an
index's ``bytea`` key column (see :mod:`one_store.engine.postgres.layout`):
the btree answers the range and walks it in either direction. A psycopg
client cursor holds a whole result in memory, so a scan without a ``LIMIT``
is read in batches, each a new statement continuing after the last key seen
(keyset pagination: ``key > last``), growing from :data:`FIRST_BATCH` to
:data:`MAX_BATCH` rows: ``take(1)`` over a range of a million documents reads
one small batch. Inside a read every batch sees the transaction's snapshot;
inside a write no other process commits (the write lock).

``by_id`` scans the primary key: an ``_id`` key is ``0x10 + utf8 + 0x00`` and
``_id`` compares ``COLLATE "C"`` (bytes), so the SQLite engine's
:func:`~one_store.engine.sqlite.scans.id_bounds` maps key bounds to text
bounds (a superset, re-checked on each row's key).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from ...model.keys import sort_key
from ...model.values import Document, loads
from ..backend import IndexScan, Row
from ..ranges import KeyRange
from ..sqlite.scans import id_bounds
from .layout import key_column, quote

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[Any, ...]]

FIRST_BATCH = 64
MAX_BATCH = 4096


def _batch_sql(scan: IndexScan, col: str, where: list[str], limit: int) -> str:
    sql = f"SELECT _body, {col} FROM {quote(scan.table)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY {col} {scan.order.upper()} LIMIT {int(limit)}"


def index_rows(connection: Connection, scan: IndexScan) -> Generator[Row, None, None]:
    """The rows of an index range scan, as the protocol describes (no prefilter)."""
    if scan.index == "by_id":
        return _id_rows(connection, scan)
    return _key_rows(connection, scan)


def _key_rows(connection: Connection, scan: IndexScan) -> Generator[Row, None, None]:
    col = quote(key_column(scan.index))
    after = ">" if scan.order == "asc" else "<"
    left = scan.limit
    last: bytes | None = None
    batch = FIRST_BATCH
    while left is None or left > 0:
        where, params = [], []
        if scan.low:
            where.append(f"{col} >= %s")
            params.append(scan.low)
        if scan.high is not None:
            where.append(f"{col} < %s")
            params.append(scan.high)
        if last is not None:
            where.append(f"{col} {after} %s")
            params.append(last)
        size = left if left is not None else batch
        rows = connection.execute(_batch_sql(scan, col, where, size), params).fetchall()
        for body, key in rows:
            key = bytes(key)
            yield (body,) if scan.bodies_only else (body, key)
        if len(rows) < size:
            return
        last = bytes(rows[-1][1])
        if left is not None:
            left -= len(rows)
        batch = min(batch * 4, MAX_BATCH)


def _id_rows(connection: Connection, scan: IndexScan) -> Generator[Row, None, None]:
    r = KeyRange(scan.low, scan.high)
    bounds = id_bounds(r)
    if bounds is None:
        return
    base = [w.replace("?", "%s") for w in bounds[0]]
    params0 = list(bounds[1])
    after = ">" if scan.order == "asc" else "<"
    left = scan.limit
    last: str | None = None
    batch = FIRST_BATCH
    while left is None or left > 0:
        where, params = list(base), list(params0)
        if last is not None:
            where.append(f"_id {after} %s")
            params.append(last)
        rows = connection.execute(
            _batch_sql(scan, "_id", where, batch), params
        ).fetchall()
        for body, doc_id in rows:
            key = sort_key(doc_id)
            if r.contains(key):
                yield (body,) if scan.bodies_only else (body, key)
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
        if len(rows) < batch:
            return
        last = str(rows[-1][1])
        batch = min(batch * 4, MAX_BATCH)


def documents(
    connection: Connection,
    table: str,
    index: str,
    low: bytes = b"",
    high: bytes | None = None,
    limit: int | None = None,
) -> Generator[Document, None, None]:
    """Decode the documents of an index range in key order (library reads)."""
    scan = IndexScan(table, index, low, high, "asc", limit, (), True)
    for (body,) in index_rows(connection, scan):
        yield loads(body)


def rows(connection: Connection, table: str, batch: int) -> Iterator[tuple[str, str]]:
    """``(_id, stored JSON)`` of every document of ``table``, in ``_id`` order."""
    last: str | None = None
    while True:
        params: list[str] = [] if last is None else [last]
        where = "" if last is None else " WHERE _id > %s"
        chunk = connection.execute(
            f"SELECT _id, _body FROM {quote(table)}{where} "
            f"ORDER BY _id LIMIT {int(batch)}",
            params,
        ).fetchall()
        yield from ((str(i), str(b)) for i, b in chunk)
        if len(chunk) < batch:
            return
        last = str(chunk[-1][0])
