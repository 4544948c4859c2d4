"""The SQL of index range scans on PostgreSQL, streamed in keyset batches.

An :class:`~one_store.engine.backend.IndexScan` becomes ``SELECT`` over an
index's ``bytea`` key column (see :mod:`one_store.engine.postgres.layout`):
the btree answers the range and walks it in either direction. A psycopg
client cursor holds a whole result in memory, so a scan without a ``LIMIT``
is read in batches, each a new statement continuing after the last key seen
(keyset pagination: ``key > last``), growing from :data:`FIRST_BATCH` to
:data:`MAX_BATCH` rows: ``take(1)`` over a range of a million documents reads
one small batch. Inside a read every batch sees the transaction's snapshot;
inside a write no other process commits (the write lock). A scan with leading
equalities tests them in SQL (:mod:`one_store.engine.postgres.prefilter`).

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
from .prefilter import prefilter_sql

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[tuple[Any, ...]]

FIRST_BATCH = 64
MAX_BATCH = 4096


def _batch_sql(
    scan: IndexScan, col: str, where: list[str], limit: int, pre: str | None
) -> str:
    # Under the prefilter every row is still stepped (and counted, with its
    # length); only rows passing the leading equalities bring their body.
    body = "_body" if pre is None else pre
    extra = "" if pre is None else ", length(_body)"
    sql = f"SELECT {body}, {col}{extra} FROM {quote(scan.table)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY {col} {scan.order.upper()} LIMIT {int(limit)}"


def index_rows(connection: Connection, scan: IndexScan) -> Generator[Row, None, None]:
    """The rows of an index range scan, as the protocol describes.

    With ``scan.equalities`` each row is ``(body | None, key, length)``
    (:mod:`one_store.engine.postgres.prefilter`).
    """
    if scan.index == "by_id":
        return _id_rows(connection, scan)
    return _key_rows(connection, scan)


def _key_rows(connection: Connection, scan: IndexScan) -> Generator[Row, None, None]:
    pre = prefilter_sql(scan.equalities) if scan.equalities else None
    pre_sql, pre_params = (None, []) if pre is None else pre
    col = quote(key_column(scan.index))
    after = ">" if scan.order == "asc" else "<"
    left = scan.limit
    last: bytes | None = None
    batch = FIRST_BATCH
    while left is None or left > 0:
        where, params = [], list(pre_params)
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
        sql = _batch_sql(scan, col, where, size, pre_sql)
        rows = connection.execute(sql, params).fetchall()
        for row in rows:
            if scan.bodies_only:
                yield (row[0],)
            else:
                yield (row[0], bytes(row[1]), *row[2:])
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
    pre = prefilter_sql(scan.equalities) if scan.equalities else None
    pre_sql, pre_params = (None, []) if pre is None else pre
    params0 = [*pre_params, *bounds[1]]
    after = ">" if scan.order == "asc" else "<"
    left = scan.limit
    last: str | None = None
    batch = FIRST_BATCH
    while left is None or left > 0:
        where, params = list(base), list(params0)
        if last is not None:
            where.append(f"_id {after} %s")
            params.append(last)
        sql = _batch_sql(scan, "_id", where, batch, pre_sql)
        rows = connection.execute(sql, params).fetchall()
        for row in rows:
            key = sort_key(row[1])
            if r.contains(key):
                yield (row[0],) if scan.bodies_only else (row[0], key, *row[2:])
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
