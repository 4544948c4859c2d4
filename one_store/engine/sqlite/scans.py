"""The SQL of reads: index range scans, ``by_id`` scans, the equality prefilter, FTS5.

An :class:`~one_store.engine.backend.IndexScan` becomes one ``SELECT`` over an
index's BLOB key column (see :mod:`one_store.engine.sqlite.layout`), whose bytes
compare in Convex's total order: SQLite's own B-tree answers ``eq``/``gt``/``lt``
ranges, ``order("desc")`` walks it backwards, and ``LIMIT n`` is pushed down when
every row becomes a result. Rows are stepped one at a time from the ``sqlite3``
cursor, so ``take(1)`` over a range of a million documents reads one row. The text
depends only on the scan's shape and is built once per shape (and sqlite3's
statement cache keys on the text).

The leading-equality prefilter: a filtered scan's cost is mostly decoding rows the
filter then drops. Measured on 20,000 documents with an ``eq`` on a string field
keeping 10% (docs/querying.md has the table): no filter 112 ms, decode-then-Python
132 ms, raw ``sqlite3`` with ``json_extract`` in the WHERE clause 40 ms. SQL alone
cannot be Convex: every scanned row counts against the read limits (and a page cut
by a limit continues after the last row scanned), and comparisons are type-strict
(``1`` is not ``1.0``, ``True`` is not ``1``, missing is not ``null``, ``-0.0 <
0.0``, ``NaN == NaN``). So the leading ``eq(field, str | int | bool | None |
UNSET)`` conjuncts, which ``json_type`` tests exactly, are tested in a ``CASE``:
rows they reject come back as ``(None, key, length)``, stepped and counted by
their length but never decoded (63 ms above).

Text search runs on the FTS5 table kept in the same transaction as the document;
query terms are OR-ed, each quoted, the last also a prefix, in BM25 order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Generator
from typing import Any

from ...model.keys import sort_key
from ...model.values import UNSET, Document, loads
from ..backend import Equalities, IndexScan, Row, Rows, SearchScan
from ..ranges import KeyRange
from .layout import key_column, quote, search_table

_STRING_TAG = b"\x10"  # first byte of a string's sort key (values.sort_key)
# Index-scan SQL by scan shape (table, index, bounds present, order, limit,
# prefilter, bodies only): the same few texts serve every call.
_SQL_CACHE: dict[tuple[object, ...], str] = {}
_SQL_CACHE_SIZE = 1024


# ---------------------------------------------------------------- the prefilter


def json_path(path: tuple[str, ...]) -> str | None:
    """SQLite JSON path of a field path (None when a name would need escaping)."""
    # "$"-names are storage tags ({"$bytes": ...}), never user fields: Python
    # reads them as missing, SQL would find the tag's payload.
    if any(not part or part[0] == "$" or '"' in part or "\\" in part for part in path):
        return None
    return "$" + "".join(f'."{part}"' for part in path)


def equality_sql(path: tuple[str, ...], value: object) -> tuple[str, list[Any]] | None:
    """SQL that holds exactly when the field at ``path`` equals ``value``, or None.

    Storage bodies are JSON in which strings, int64, booleans and null appear as
    themselves (bytes and special floats are tagged objects), so ``json_type``
    tells Convex's types apart and the test is type-strict: ``"1"``, ``1``,
    ``1.0`` and ``True`` never match one another, and a missing field
    (``UNSET``) is not ``null``. Floats are left to Python (``-0.0``, NaN).
    """
    where = json_path(path)
    if where is None:
        return None
    if value is UNSET:
        return "json_type(_body, ?) IS NULL", [where]
    if value is None:
        return "json_type(_body, ?) = 'null'", [where]
    if type(value) is bool:
        return "json_type(_body, ?) = ?", [where, "true" if value else "false"]
    kind = {str: "text", int: "integer"}.get(type(value))
    # SQLite's json_extract ends a string at an escaped NUL ("x\u0000y" -> "x"),
    # so a literal with a NUL could never match: leave those to Python.
    if kind is None or (kind == "text" and "\x00" in str(value)):
        return None
    return f"(json_type(_body, ?) = '{kind}' AND json_extract(_body, ?) = ?)", [
        where,
        where,
        value,
    ]


def prefilter_sql(equalities: Equalities) -> tuple[str, list[Any]] | None:
    """SQL for the leading ``equalities`` SQLite tests exactly, or None.

    The equalities come in evaluation order and none can raise, so any leading
    run of them is a test the Python predicate would also fail without an error;
    the run stops at the first one SQL cannot test exactly (a float, bytes, a
    path needing escapes).
    """
    tests: list[tuple[str, list[Any]]] = []
    for path, value in equalities:
        test = equality_sql(path, value)
        if test is None:
            break
        tests.append(test)
    if not tests:
        return None
    return " AND ".join(sql for sql, _ in tests), [p for _, ps in tests for p in ps]


# ---------------------------------------------------------------- index scans


def index_scan_sql(scan: IndexScan) -> tuple[str, list[Any]]:
    """The ``(sql, params)`` of an index range scan.

    Selects ``_body, <key>`` (plus ``length(_body)`` under a prefilter, whose
    rows bring their body only when they pass it), or ``_body`` alone for
    ``bodies_only``.
    """
    pre = prefilter_sql(scan.equalities) if scan.equalities else None
    if scan.index == "by_id":
        return _by_id_sql(scan, pre)
    low, high = scan.low, scan.high
    params = [] if pre is None else [*pre[1]]
    if low:
        params.append(low)
    if high is not None:
        params.append(high)
    pre_sql = None if pre is None else pre[0]
    shape = (
        scan.table,
        scan.index,
        bool(low),
        high is not None,
        scan.order,
        scan.limit,
        pre_sql,
        scan.bodies_only,
    )
    sql = _SQL_CACHE.get(shape)
    if sql is None:
        col = quote(key_column(scan.index))
        where = []
        if low:
            where.append(f"{col} >= ?")
        if high is not None:
            where.append(f"{col} < ?")
        sql = _select(scan, col, where, scan.limit, pre_sql, scan.bodies_only)
        if len(_SQL_CACHE) >= _SQL_CACHE_SIZE:
            _SQL_CACHE.clear()
        _SQL_CACHE[shape] = sql
    return sql, params


def _by_id_sql(
    scan: IndexScan, pre: tuple[str, list[Any]] | None
) -> tuple[str, list[Any]]:
    # The primary key's condition is a superset of the range (see id_bounds):
    # rows are re-checked on their keys, so neither LIMIT nor bodies_only
    # applies in SQL (index_rows applies them after the check).
    bounds = id_bounds(KeyRange(scan.low, scan.high))
    where, params = (["0"], []) if bounds is None else bounds
    if pre is not None:
        params = [*pre[1], *params]
    return _select(
        scan, "_id", where, None, None if pre is None else pre[0], False
    ), params


def _select(
    scan: IndexScan,
    col: str,
    where: list[str],
    limit: int | None,
    pre_sql: str | None,
    bodies_only: bool,
) -> str:
    body, columns = "_body", f", {col}"
    if pre_sql is not None:
        # Every row is still stepped (and counted as read, with its length);
        # only rows passing the leading equalities bring their body.
        body = f"CASE WHEN {pre_sql} THEN _body END"
        columns += ", length(_body)"
    if bodies_only:
        columns = ""
    sql = f"SELECT {body}{columns} FROM {quote(scan.table)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {col} {scan.order.upper()}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql


def id_bounds(r: KeyRange) -> tuple[list[str], list[object]] | None:
    """SQL conditions on the TEXT ``_id`` covering the key range (a superset), or None if empty.

    ``by_id`` is SQLite's primary key on ``_id`` rather than a BLOB key column. An
    ``_id`` key is ``0x10 + utf8 + 0x00`` and TEXT compares as memcmp of UTF-8, so a
    key bound maps to a text bound on the part before its first NUL; where the map
    is not exact, the condition is widened and rows are re-checked on their keys.
    """
    where: list[str] = []
    params: list[object] = []
    if r.low > _STRING_TAG:
        if r.low >= b"\x11":
            return None
        text = _text_prefix(r.low[1:])
        if text is not None:
            where.append("_id >= ?")
            params.append(text[0])
    if r.high is not None:
        if r.high <= _STRING_TAG:
            return None
        if r.high < b"\x11":
            text = _text_prefix(r.high[1:])
            if text is not None:
                where.append("_id < ?" if text[1] else "_id <= ?")
                params.append(text[0])
    return where, params


def _text_prefix(rest: bytes) -> tuple[str, bool] | None:
    """The text before the first NUL of a string-key tail, and whether there was none."""
    head, nul, _ = rest.partition(b"\x00")
    try:
        return head.decode("utf-8"), not nul
    except UnicodeDecodeError:
        return None


def documents(
    connection: sqlite3.Connection,
    table: str,
    index: str,
    low: bytes = b"",
    high: bytes | None = None,
    limit: int | None = None,
) -> Generator[Document, None, None]:
    """Decode the documents of an index range in key order (library reads)."""
    scan = IndexScan(table, index, low, high, "asc", limit, (), True)
    cursor = connection.execute(*index_scan_sql(scan))
    try:
        for (body,) in cursor:
            yield loads(body)
    finally:
        cursor.close()


def id_rows(connection: sqlite3.Connection, scan: IndexScan) -> Rows:
    """The rows of a ``by_id`` scan (see :class:`~one_store.engine.backend.IndexScan`).

    The SQL bounds on ``_id`` are a superset of the key range, so each row's key
    is re-checked here, and the scan's limit and ``bodies_only`` apply after it.
    """
    return _id_rows(connection.execute(*index_scan_sql(scan)), scan)


def _id_rows(cursor: sqlite3.Cursor, scan: IndexScan) -> Generator[Row, None, None]:
    r = KeyRange(scan.low, scan.high)
    left = scan.limit
    try:
        if left is not None and left <= 0:
            return
        for row in cursor:
            key = sort_key(row[1])
            if r.contains(key):
                yield (row[0],) if scan.bodies_only else (row[0], key, *row[2:])
                if left is not None:
                    left -= 1
                    if left == 0:
                        return
    finally:
        cursor.close()


# ---------------------------------------------------------------- text search


def match_expression(terms: tuple[str, ...] | list[str]) -> str:
    """FTS5 MATCH text: terms OR-ed, each quoted, the last also a prefix."""
    return " OR ".join(
        f'"{t}"' + ("*" if i == len(terms) - 1 else "") for i, t in enumerate(terms)
    )


def search_sql(scan: SearchScan, max_results: int) -> tuple[str, list[Any]]:
    """The ``(sql, params)`` of a search's ranked candidates, joined to their documents."""
    where = "".join(f" AND s.f{i} = ?" for i, _ in scan.filters)
    fts = search_table(scan.table, scan.index)
    sql = (
        f"SELECT d._body, s.rank, d._creationTime, d._id FROM {quote(fts)} s "
        f"JOIN {quote(scan.table)} d ON d.rowid = s.rowid WHERE s.text MATCH ?{where} "
        f"ORDER BY s.rank, d._creationTime DESC, d._id LIMIT {int(max_results)}"
    )
    return sql, [match_expression(scan.terms), *(k for _, k in scan.filters)]


def search_rows(
    connection: sqlite3.Connection, scan: SearchScan, max_results: int
) -> Generator[Row, None, None]:
    """``(body, key)`` of a search's candidates in Convex's order (see :func:`search_sql`)."""
    cursor = connection.execute(*search_sql(scan, max_results))
    try:
        for body, rank, created, doc_id in cursor:
            # Convex's key for a search result: (-score, -creationTime, id);
            # FTS5's rank is already "lower is better".
            yield body, sort_key([float(rank), -float(created), doc_id])
    finally:
        cursor.close()


def search_top(
    connection: sqlite3.Connection, scan: SearchScan, n: int, max_results: int
) -> list[Row] | None:
    """The first ``n`` results of a search, ranked on the FTS table alone.

    Joining every match to its document only to break ties was most of a
    top-10 search (each match's row was read for its ``_creationTime``). The
    FTS5 ranking is read first, up to the ``n``-th match and every match tied
    with it; only those rows are read from the table and put in Convex's order
    (score, then newest first, then ``_id``). None when the ties run past the
    ``max_results`` a search may read (the full ranked scan then applies).
    """
    where = "".join(f" AND f{i} = ?" for i, _ in scan.filters)
    fts = search_table(scan.table, scan.index)
    ranked = connection.execute(
        f"SELECT rowid, rank FROM {quote(fts)} WHERE text MATCH ?{where} ORDER BY rank",
        [match_expression(scan.terms), *(k for _, k in scan.filters)],
    )
    picked: list[tuple[int, float]] = []
    try:
        for rowid, rank in ranked:
            if len(picked) >= n and rank != picked[-1][1]:
                break
            if len(picked) == max_results:
                return None
            picked.append((rowid, rank))
    finally:
        ranked.close()
    if not picked:
        return []
    marks = ",".join("?" * len(picked))
    found = {
        rowid: (body, created, doc_id)
        for rowid, body, created, doc_id in connection.execute(
            f"SELECT rowid, _body, _creationTime, _id FROM {quote(scan.table)} "
            f"WHERE rowid IN ({marks})",
            [rowid for rowid, _ in picked],
        )
    }
    rows: list[Row] = []
    for rowid, rank in picked:
        body, created, doc_id = found[rowid]
        rows.append((body, sort_key([float(rank), -float(created), doc_id])))
    rows.sort(key=lambda row: row[1])
    return rows[:n]
