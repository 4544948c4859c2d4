"""The immutable query builder: index ranges, order, filters, terminals, pagination, search.

``ctx.db.query("messages")`` returns a :class:`Query`; every builder call returns a
new one. A query compiles to one SQL statement (:meth:`Query.sql`): a range scan
over an index's BLOB key column (see :mod:`one_store.engine.sqlite.storage`) whose bytes compare
in Convex's total order, so SQLite's own B-tree answers ``eq``/``gt``/``lt`` ranges
and ``order("desc")`` walks it backwards. Rows are stepped one at a time from the
``sqlite3`` cursor and decoded only when reached, so ``take(1)`` over a range of a
million documents decodes one row, and ``LIMIT n`` is added when nothing can drop
rows after SQL.

Index ranges (what Convex accepts, and the key interval of each) are compiled in
:mod:`one_store.engine.ranges`; filter expressions in :mod:`one_store.engine.filters`.

``paginate`` is Convex's ``queryPage``: a cursor is a key position tied to the
query's fingerprint; ``maximumRowsRead``/``maximumBytesRead`` and the function's
read limits end a page early with ``pageStatus: "SplitRequired"``
(:class:`PageScan`).

Filters are compiled once into Python closures and always run on the documents
they return. Measured on 20,000 documents with an ``eq`` on a string field keeping
10% (docs/querying.md has the table): no filter 112 ms, decode-then-Python 132 ms,
raw ``sqlite3`` with ``json_extract`` in the WHERE clause 40 ms. The predicate is
cheap; decoding rows it drops is the cost. SQL alone cannot be Convex: every
scanned row counts against the read limits (and a page cut by a limit continues
after the last row scanned), and comparisons are type-strict (``1`` is not ``1.0``,
``True`` is not ``1``, missing is not ``null``, ``-0.0 < 0.0``, ``NaN == NaN``). So
the leading ``eq(field, str | int | bool | None | UNSET)`` conjuncts, which
``json_type`` tests exactly and which can never raise, are also tested in SQL
(:func:`prefilter`): rows they reject are stepped and counted by their length but
never decoded (63 ms above).

Text search uses the FTS5 table kept by storage in the same transaction as the
document. Query text is tokenised like Convex's ``convex_en`` analyser (Tantivy's
``SimpleTokenizer``, tokens of 32 bytes or more dropped, lowercased; storage indexes
documents with the same tokeniser), the first 16 terms are OR-ed, the last one also
matches as a prefix, results come in BM25 order with ties newest first, and reading
past 1,024 candidates raises ``LimitExceeded`` as Convex's
``SearchQueryScannedTooManyDocumentsError``.

Mistakes in a query (unknown index, a range Convex refuses, a foreign cursor) raise
:class:`~one_store.model.errors.ProblemError` inside the handler, which the store turns into
``Failure(InvalidIndexRange | InvalidCursor | ArgsInvalid | ...)`` and a rolled-back
transaction, as Convex throws.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, cast

from attrs import Factory, define, frozen

from ..model.errors import (
    ArgsInvalid,
    InvalidCursor,
    InvalidIndexRange,
    LimitExceeded,
    NotUnique,
    Problem,
    ProblemError,
)
from ..model.values import (
    UNSET,
    Document,
    Value,
    show,
    sort_key,
)
from .backend import NO_OBSERVER, Bounds, ReadPort
from .filters import (
    Expr,
    FilterBuilder,
    FilterError,
    as_boolean,
    checked_literals,
    compile_expr,
    prefilter,
)
from .ranges import (
    IndexRangeBuilder,
    KeyRange,
    Order,
    compile_range,
    fail,
    id_bounds,
    range_value,
)
from .sqlite.storage import TableLayout, key_column, quote, search_tokens

_WHOLE_INDEX = KeyRange()  # the range of a query without with_index's range

# A scanned row: body (None when the SQL prefilter dropped it), key, body length
# (given by SQL only for dropped rows).
_Row = tuple[str | None, bytes, int]
MAX_SEARCH_TERMS = 16
MAX_SEARCH_FILTERS = 8
MAX_SEARCH_RESULTS = 1024
MAX_PAGE_SIZE = 32_000
MAX_QUERY_OPERATORS = 256  # filters per query (convex-js query_impl.ts)
# The transaction's read limits (context.MAX_DOCS_READ / MAX_BYTES_READ; context
# imports this module, so they are repeated): a page is "approaching" them past 3/4.
_TX_MAX_ROWS = 32_000
_TX_MAX_BYTES = 16 * 1024 * 1024
SOFT_MAX_PAGE_LEN = 6144  # 3/4 of 8192, Convex's SOFT_MAX_PAGE_LEN
# Index-scan SQL by query shape (table, index, bounds present, order, limit,
# prefilter): the same few texts serve every call, and sqlite3's statement cache
# keys on the text.
_SQL_CACHE: dict[tuple[object, ...], str] = {}
_SQL_CACHE_SIZE = 1024


# ---------------------------------------------------------------------- search


class SearchFilterBuilder:
    """The ``q`` of ``with_search_index(name, lambda q: q.search(f, text).eq(g, x))``."""

    def __init__(self) -> None:
        self.search_calls: list[tuple[str, str]] = []
        self.eqs: list[tuple[str, object]] = []

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        """Match documents whose ``field`` contains any term of ``text``."""
        self.search_calls.append((field, text))
        return self

    def eq(self, field: str, value: object) -> SearchFilterBuilder:
        """Only documents whose filter field equals ``value`` (``UNSET`` = missing)."""
        self.eqs.append((field, value))
        return self


def search_terms(text: str) -> list[str]:
    """The terms Convex searches for: the first 16 tokens (the rest are ignored, as Convex)."""
    return search_tokens(text)[:MAX_SEARCH_TERMS]


def match_expression(terms: list[str]) -> str:
    """FTS5 MATCH text: terms OR-ed, each quoted, the last also a prefix."""
    return " OR ".join(
        f'"{t}"' + ("*" if i == len(terms) - 1 else "") for i, t in enumerate(terms)
    )


@frozen
class SearchSpec:
    """A compiled search: the FTS table, the MATCH text and filter key values."""

    fts: str
    match: str
    filters: tuple[tuple[int, bytes], ...]


# ---------------------------------------------------------------------- pages


@define
class PageScan:
    """What one ``paginate`` call scanned, for its cursors and read limits.

    As Convex's ``IndexRange``: ``maximum_rows``/``maximum_bytes`` (the page's
    ``maximumRowsRead``/``maximumBytesRead``) count every row the range yields,
    filtered out or not, and stop the page once reached (after at least one row,
    so a page always makes progress); a transaction read limit hit once the page
    has a position (a row it scanned, or its start cursor) stops the page too
    instead of failing the function (``read_page_from_query``: a "pagination
    limit" error becomes ``pageStatus: "SplitRequired"``).
    """

    maximum_rows: int | None = None
    maximum_bytes: int | None = None
    resume: bytes | None = None  # the position the page started after, if any
    keys: list[bytes] = Factory(list)
    bytes_read: int = 0
    split_required: bool = False

    def over_page_limits(self) -> bool:
        """Whether the page's own limits are used up (checked before each next row)."""
        return (
            self.maximum_rows is not None and len(self.keys) >= self.maximum_rows
        ) or (self.maximum_bytes is not None and self.bytes_read >= self.maximum_bytes)

    def stops_at(self, problem: Problem) -> bool:
        """Whether ``problem`` ends the page early rather than failing the function."""
        return (
            isinstance(problem, LimitExceeded)
            and problem.limit in ("documentsRead", "bytesRead")
            # Convex needs a position to continue from: a row this page read,
            # or the cursor it started at.
            and (bool(self.keys) or self.resume is not None)
        )

    def last_position(self) -> bytes | None:
        """Where a page cut short continues from."""
        return self.keys[-1] if self.keys else self.resume

    def status(self, page_length: int) -> str | None:
        """Convex's ``pageStatus``: SplitRequired, SplitRecommended or None."""
        if self.split_required:
            return "SplitRequired"
        soft_rows = min(self.maximum_rows or _TX_MAX_ROWS, _TX_MAX_ROWS) * 3 // 4
        soft_bytes = min(self.maximum_bytes or _TX_MAX_BYTES, _TX_MAX_BYTES) * 3 // 4
        if (
            len(self.keys) > soft_rows
            or self.bytes_read > soft_bytes
            or page_length > SOFT_MAX_PAGE_LEN
        ):
            return "SplitRecommended"
        return None

    def split_key(self) -> bytes | None:
        """The middle scanned position, once three or more rows were scanned."""
        return self.keys[len(self.keys) // 2] if len(self.keys) > 2 else None


# ---------------------------------------------------------------------- the query


class Query:
    """A lazy, immutable query over one table. Build it with ``ctx.db.query(table)``.

    Every builder returns a new Query; the attributes below are its state (read
    them, do not set them). A plain class rather than an attrs one: a query is
    built on every call of a query function, and three ``attrs.evolve`` calls
    were ~4 us of a 30 us ``take(10)``.

    Example:
        >>> # inside a handler:
        >>> # ctx.db.query("messages").with_index("by_thread", lambda q: q.eq("threadId", t)).take(10)
    """

    index: str = "by_creation_time"
    key_range: KeyRange = _WHOLE_INDEX
    order_: Order = "asc"
    filters: tuple[Expr, ...] = ()
    search: SearchSpec | None = None
    ordered: bool = False
    indexed: bool = False
    # The range (or search) calls as written, for observers: ("eq", "f", value).
    bounds: Bounds = ()

    def __init__(self, port: ReadPort, table: str) -> None:
        self._port = port
        self.table = table

    def _with(self, **changes: Any) -> Query:
        """A copy with ``changes`` (the builders' ``attrs.evolve``)."""
        new = object.__new__(type(self))
        state = new.__dict__
        state.update(self.__dict__)
        state.update(changes)
        state.pop("_fingerprint", None)
        return new

    def __repr__(self) -> str:
        return (
            f"Query(table={self.table!r}, index={self.index!r}, "
            f"key_range={self.key_range!r}, order={self.order_!r}, "
            f"filters={self.filters!r}, search={self.search!r})"
        )

    # ---------------------------------------------------------- builders

    def _misuse(self, name: str, message: str) -> ProblemError:
        return fail(InvalidIndexRange(f"{self.table}.{name}", None, message))

    def with_index(
        self,
        name: str,
        range_fn: Callable[[IndexRangeBuilder], IndexRangeBuilder] | None = None,
    ) -> Query:
        """Scan index ``name``, restricted by ``range_fn`` (whole index if None).

        Raises:
            ProblemError: ``InvalidIndexRange`` for an unknown index or a range
                Convex refuses, naming the index and the field.
        """
        if self.indexed or self.ordered or self.filters:
            raise self._misuse(
                name,
                "with_index must come first, once, right after db.query() "
                "(before order, filter or another index).",
            )
        layout = self._port.layout(self.table)
        index = layout.indexes.get(name) if layout else _builtin(name)
        if index is None:
            raise self._misuse(
                name, f"IndexNotFoundError: Index {self.table}.{name} not found."
            )
        ops: list[tuple[str, str, object]] = []
        if range_fn is not None:
            builder = range_fn(IndexRangeBuilder())
            if not isinstance(builder, IndexRangeBuilder):
                raise self._misuse(
                    name,
                    "The index range function must return the builder it was given "
                    "(lambda q: q.eq(...).gt(...)).",
                )
            ops = builder.ops
        key_range = compile_range(self.table, name, index.key_fields, ops)
        return self._with(
            index=name, key_range=key_range, indexed=True, bounds=tuple(ops)
        )

    def with_search_index(
        self, name: str, filter_fn: Callable[[SearchFilterBuilder], SearchFilterBuilder]
    ) -> Query:
        """Full-text search on search index ``name``; results in relevance order.

        Raises:
            ProblemError: ``InvalidIndexRange`` for an unknown index, a missing or
                repeated ``q.search``, a wrong field or more than 8 ``eq`` filters.
        """
        index_id = f"{self.table}.{name}"

        def bad(field: str | None, message: str) -> ProblemError:
            return fail(InvalidIndexRange(index_id, field, message))

        if self.indexed or self.ordered or self.filters:
            raise bad(
                None, "with_search_index must come first, right after db.query()."
            )
        layout = self._port.layout(self.table)
        s = layout.search.get(name) if layout else None
        if s is None:
            raise bad(None, f"IndexNotFoundError: Search index {index_id} not found.")
        builder = filter_fn(SearchFilterBuilder())
        if not isinstance(builder, SearchFilterBuilder):
            raise bad(
                None, "The search filter function must return the builder it was given."
            )
        search_field = s.index.search_field
        if not builder.search_calls:
            raise bad(
                None,
                f"MissingSearchFilterError: Search query against {index_id} does not "
                "contain any search filters. You must include a search filter like "
                f'q.search("{search_field}", search_text).',
            )
        for field, _ in builder.search_calls:
            if field != search_field:
                raise bad(
                    field,
                    f"IncorrectSearchField: Search query against {index_id} contains a "
                    f"search filter against {field!r}, which doesn't match the indexed "
                    f"search_field {search_field!r}.",
                )
        if len(builder.search_calls) > 1:
            raise bad(
                search_field,
                f"DuplicateSearchFiltersError: Search query against {index_id} contains "
                f"multiple search filters against {search_field!r}. Only one is allowed.",
            )
        filters = []
        for field, raw in builder.eqs:
            if field not in s.index.filter_fields:
                raise bad(
                    field,
                    f"IncorrectFilterFieldError: Search query against {index_id} contains "
                    f"an equality filter on {field!r} but that field isn't indexed for "
                    "filtering in filter_fields.",
                )
            value = range_value(index_id, field, raw)
            filters.append((s.index.filter_fields.index(field), sort_key(value)))
        if len(filters) > MAX_SEARCH_FILTERS:
            raise bad(
                None,
                f"TooManyFilterConditionsInSearchQueryError: Search query against "
                f"{index_id} has too many filter conditions. Max: {MAX_SEARCH_FILTERS} "
                f"Actual: {len(filters)}",
            )
        text = builder.search_calls[0][1]
        if not isinstance(text, str):
            raise bad(
                search_field, f"The search text must be a string, got {show(text)}."
            )
        spec = SearchSpec(s.fts, match_expression(search_terms(text)), tuple(filters))
        bounds = (
            ("search", search_field, text),
            *(("eq", field, raw) for field, raw in builder.eqs),
        )
        return self._with(index=name, search=spec, indexed=True, bounds=bounds)

    def order(self, order: Order) -> Query:
        """Scan ascending (default) or descending along the index."""
        if order not in ("asc", "desc"):
            raise fail(
                ArgsInvalid(
                    "order", f"order must be 'asc' or 'desc', got {show(order)}"
                )
            )
        if self.search is not None:
            raise self._misuse(
                self.index,
                "Search queries must always be in relevance order. Can not set order manually.",
            )
        if self.ordered:
            raise self._misuse(
                self.index, "Queries may only specify order at most once"
            )
        return self._with(order_=order, ordered=True)

    def filter(self, predicate: Callable[[FilterBuilder], object]) -> Query:
        """Keep documents for which ``predicate(q)`` evaluates to True.

        Raises:
            ProblemError: ``ArgsInvalid`` past Convex's 256 operators per query.
        """
        if len(self.filters) >= MAX_QUERY_OPERATORS:
            raise fail(
                ArgsInvalid(
                    "filter",
                    f"Can't construct query with more than {MAX_QUERY_OPERATORS} "
                    "operators",
                )
            )
        expr = predicate(FilterBuilder())
        if not isinstance(expr, Expr):
            expr = Expr("literal", (expr,))
        checked = checked_literals(expr)
        assert isinstance(checked, Expr)
        return self._with(filters=(*self.filters, checked))

    # ---------------------------------------------------------- SQL

    def sql(
        self,
        key_range: KeyRange | None = None,
        limit: int | None = None,
        bodies_only: bool = False,
    ) -> tuple[str, list[Any]]:
        """The SQL and parameters this query runs: one index range scan, or one FTS5 match.

        An index scan selects ``_body, <key>`` (plus ``length(_body)`` under a SQL
        prefilter), or ``_body`` alone with ``bodies_only``.
        """
        if self.search is not None:
            return self._search_sql()
        r = self.key_range if key_range is None else key_range
        # An observer sees every row a filter scanned, so none may be skipped in SQL.
        observed = self._port.observer is not NO_OBSERVER
        pre = None if observed else prefilter(self.filters)
        if self.index == "by_id":
            bounds = id_bounds(r)
            where, params = (["0"], []) if bounds is None else bounds
            return self._build_sql("_id", where, params, limit, pre, bodies_only)
        params = [] if pre is None else [*pre[1]]
        if r.low:
            params.append(r.low)
        if r.high is not None:
            params.append(r.high)
        # The text depends only on the query's shape: build it once per shape.
        shape = (
            self.table,
            self.index,
            bool(r.low),
            r.high is not None,
            self.order_,
            limit,
            None if pre is None else pre[0],
            bodies_only,
        )
        sql = _SQL_CACHE.get(shape)
        if sql is None:
            col = quote(key_column(self.index))
            where = []
            if r.low:
                where.append(f"{col} >= ?")
            if r.high is not None:
                where.append(f"{col} < ?")
            sql = self._build_sql(col, where, [], limit, pre, bodies_only)[0]
            if len(_SQL_CACHE) >= _SQL_CACHE_SIZE:
                _SQL_CACHE.clear()
            _SQL_CACHE[shape] = sql
        return sql, params

    def _build_sql(
        self,
        col: str,
        where: list[str],
        params: list[Any],
        limit: int | None,
        pre: tuple[str, list[Any]] | None,
        bodies_only: bool,
    ) -> tuple[str, list[Any]]:
        body, columns = "_body", f", {col}"
        if pre is not None:
            # Every row is still stepped (and counted as read, with its length);
            # only rows passing the leading equalities bring their body.
            body = f"CASE WHEN {pre[0]} THEN _body END"
            columns += ", length(_body)"
            params = [*pre[1], *params]
        if bodies_only:
            columns = ""
        sql = f"SELECT {body}{columns} FROM {quote(self.table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {col} {self.order_.upper()}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return sql, params

    def _search_sql(self) -> tuple[str, list[Any]]:
        s = self.search
        assert s is not None
        where = "".join(f" AND s.f{i} = ?" for i, _ in s.filters)
        sql = (
            f"SELECT d._body, s.rank, d._creationTime, d._id FROM {quote(s.fts)} s "
            f"JOIN {quote(self.table)} d ON d.rowid = s.rowid WHERE s.text MATCH ?{where} "
            f"ORDER BY s.rank, d._creationTime DESC, d._id LIMIT {MAX_SEARCH_RESULTS}"
        )
        return sql, [s.match, *(k for _, k in s.filters)]

    # ---------------------------------------------------------- running

    def _rows(
        self,
        key_range: KeyRange | None = None,
        limit: int | None = None,
        scan: PageScan | None = None,
    ) -> Generator[tuple[Document, bytes], None, None]:
        """Yield ``(document, key)`` that pass the filters, counting every row read.

        With ``scan`` (paginate), every scanned row is recorded there, and the scan
        stops early, without raising, where a read limit ends the page.
        """
        if self._port.layout(self.table) is None:
            return
        r = self.key_range if key_range is None else key_range
        rows: Iterator[Any]
        if self.search is not None:
            # A top-n search from the start ranks on the FTS table alone and
            # reads only the rows it returns (_top_search_rows).
            whole = r == _WHOLE_INDEX and not self.filters
            rows = self._search_rows(r, limit if whole else None)
        elif self.index == "by_id":
            rows = self._id_rows(r)
        else:
            # LIMIT only when every SQL row becomes a result (no filter).
            rows = self._port.execute(*self.sql(r, None if self.filters else limit))
        check = self._predicate()
        read_row, skip_row = self._port.read_row, self._port.skip_row
        sink = self._range_sink()
        # Close the SQL cursor as soon as the caller stops or a filter raises, not
        # whenever the generator happens to be collected.
        with contextlib.closing(rows):  # type: ignore[type-var]
            for row in rows:
                body, key = row[0], row[1]
                if scan is not None and scan.over_page_limits():
                    scan.split_required = True
                    return
                try:
                    if body is None:  # dropped by the SQL prefilter: read, not decoded
                        size = row[2]
                        skip_row(size)
                        doc = None
                    else:
                        size = len(body)
                        doc = read_row(body)
                except ProblemError as e:
                    if scan is not None and scan.stops_at(e.problem):
                        scan.split_required = True
                        return
                    raise
                if scan is not None:
                    scan.keys.append(key)
                    scan.bytes_read += size
                if doc is not None and (check is None or check(doc)):
                    if sink is not None:
                        sink(str(doc["_id"]))
                    yield doc, key

    def _range_sink(self) -> Callable[[str], None] | None:
        """Tell the transaction's observer this scan starts; its sink for result IDs."""
        order = "relevance" if self.search is not None else self.order_
        return self._port.observer.range_read(
            self.table, self.index, self.bounds, order
        )

    def _read_all(
        self,
        sql: str,
        params: list[Any],
        keys: list[bytes] | None = None,
        resumable: bool = False,
    ) -> tuple[list[Document], int, bool]:
        """Every row of a scan whose rows are all results (:meth:`_simple`)."""
        sink = self._range_sink()
        found = self._port.read_all(sql, params, keys, resumable)
        if sink is not None:
            for doc in found[0]:
                sink(str(doc["_id"]))
        return found

    def _simple(self) -> bool:
        """Whether every scanned row is a result: an index scan, no filter."""
        return (
            not self.filters
            and self.search is None
            and self.index != "by_id"
            and self._port.layout(self.table) is not None
        )

    def _id_rows(self, r: KeyRange) -> Generator[_Row, None, None]:
        """``by_id`` rows: the SQL bounds are a superset, so keys are re-checked."""
        cursor = self._port.execute(*self.sql(r))
        try:
            for row in cursor:
                key = sort_key(row[1])
                if r.contains(key):
                    yield row[0], key, row[2] if len(row) > 2 else 0
        finally:
            cursor.close()

    def _search_rows(
        self, r: KeyRange, limit: int | None = None
    ) -> Generator[_Row, None, None]:
        assert self.search is not None
        if not self.search.match:  # no terms: no results, as Convex
            return
        if limit is not None:
            top = self._top_search_rows(min(limit, MAX_SEARCH_RESULTS))
            if top is not None:
                yield from top
                return
        sql, params = self._search_sql()
        # Stream the ranked rows: take(10) transfers and decodes 10 rows, not the
        # 1,024 candidates the SQL allows (fetchall was ~13% of a top-10 search).
        candidates = self._port.execute(sql, params)
        try:
            for position, (body, rank, created, doc_id) in enumerate(candidates, 1):
                # Convex's key for a search result: (-score, -creationTime, id);
                # FTS5's rank is already "lower is better".
                key = sort_key([float(rank), -float(created), doc_id])
                if r.contains(key):
                    yield body, key, 0
                if position == MAX_SEARCH_RESULTS:
                    break
            else:
                return
        finally:
            candidates.close()
        raise fail(
            LimitExceeded(
                "searchResults",
                MAX_SEARCH_RESULTS,
                f"Search query scanned too many documents (fetched {MAX_SEARCH_RESULTS}). "
                "Consider using a smaller limit, paginating the query, or using a filter "
                "field to limit the number of documents pulled from the search index.",
            )
        )

    def _top_search_rows(self, n: int) -> list[_Row] | None:
        """The first ``n`` results of a search, ranked on the FTS table alone.

        Joining every match to its document only to break ties was most of a
        top-10 search (each match's row was read for its ``_creationTime``). The
        FTS5 ranking is read first, up to the ``n``-th match and every match tied
        with it; only those rows are read from the table and put in Convex's order
        (score, then newest first, then ``_id``). None when the ties run past the
        1,024 results a search may read (the general path then applies its limit).
        """
        s = self.search
        assert s is not None
        where = "".join(f" AND f{i} = ?" for i, _ in s.filters)
        ranked = self._port.execute(
            f"SELECT rowid, rank FROM {quote(s.fts)} WHERE text MATCH ?{where} "
            "ORDER BY rank",
            [s.match, *(k for _, k in s.filters)],
        )
        picked: list[tuple[int, float]] = []
        try:
            for rowid, rank in ranked:
                if len(picked) >= n and rank != picked[-1][1]:
                    break
                if len(picked) == MAX_SEARCH_RESULTS:
                    return None
                picked.append((rowid, rank))
        finally:
            ranked.close()
        if not picked:
            return []
        marks = ",".join("?" * len(picked))
        found = {
            rowid: (body, created, doc_id)
            for rowid, body, created, doc_id in self._port.execute(
                f"SELECT rowid, _body, _creationTime, _id FROM {quote(self.table)} "
                f"WHERE rowid IN ({marks})",
                [rowid for rowid, _ in picked],
            )
        }
        rows: list[_Row] = []
        for rowid, rank in picked:
            body, created, doc_id = found[rowid]
            rows.append((body, sort_key([float(rank), -float(created), doc_id]), 0))
        rows.sort(key=lambda row: row[1])
        return rows[:n]

    def _predicate(self) -> Callable[[Document], bool] | None:
        if not self.filters:
            return None
        compiled = [compile_expr(e) for e in self.filters]

        def check(doc: Document) -> bool:
            return all(as_boolean(evaluate(doc), "filter") for evaluate in compiled)

        return check

    def __iter__(self) -> Iterator[Document]:
        with contextlib.closing(self._rows()) as rows:
            for doc, _ in rows:
                yield doc

    def collect(self) -> list[Document]:
        """Every matching document."""
        if self._simple():
            return self._read_all(*self.sql(bodies_only=True))[0]
        return [doc for doc, _ in self._rows()]

    def take(self, n: int) -> list[Document]:
        """The first ``n`` matching documents."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise fail(
                ArgsInvalid(
                    "n",
                    f"Arg 1 `n` to `take` must be a non-negative integer, got {show(n)}",
                )
            )
        out: list[Document] = []
        if n == 0:
            return out
        if self._simple():
            return self._read_all(*self.sql(limit=n, bodies_only=True))[0]
        with contextlib.closing(self._rows(limit=n)) as rows:
            for doc, _ in rows:
                out.append(doc)
                if len(out) >= n:
                    break  # stop stepping the cursor: nothing more is read
        return out

    def first(self) -> Document | None:
        """The first matching document, or None."""
        found = self.take(1)
        return found[0] if found else None

    def unique(self) -> Document | None:
        """The only matching document, None if there is none; NotUnique if several."""
        found = self.take(2)
        if len(found) > 1:
            raise fail(NotUnique(self.table, tuple(str(d["_id"]) for d in found)))
        return found[0] if found else None

    # ---------------------------------------------------------- pagination

    def fingerprint(self) -> str:
        """Identifies the query a cursor belongs to (table, index, range, order, filters)."""
        cached: str | None = self.__dict__.get("_fingerprint")
        if cached is not None:  # a page encodes up to three cursors
            return cached
        text = repr(
            (
                self.table,
                self.index,
                self.key_range,
                self.order_,
                self.filters,
                self.search,
            )
        )
        self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._fingerprint

    def paginate(self, options: Mapping[str, Any]) -> dict[str, Value]:
        """One page: ``{"page", "isDone", "continueCursor", "splitCursor", "pageStatus"}``.

        ``options`` is ``{"numItems": n, "cursor": None | str}``; pass the previous
        page's ``continueCursor`` to get the next page. Cursors are key positions,
        not offsets: documents inserted or deleted elsewhere do not shift later
        pages, and a cursor stays valid after the file is reopened. With
        ``"endCursor"`` the page is everything after ``cursor`` up to and including
        that position, whatever ``numItems`` says (Convex's reactive page ends).
        ``"maximumRowsRead"``/``"maximumBytesRead"`` end a page early once that many
        rows/bytes were scanned (filtered-out rows count), as does the function's
        32,000-document / 16 MiB read limit: such a page is returned, not done,
        with ``pageStatus`` ``"SplitRequired"``, and continues where it stopped.
        ``splitCursor`` is the middle of the scanned rows (three or more), as
        Convex's, so a client can split a page in two.

        Raises:
            ProblemError: ``ArgsInvalid`` for a bad ``numItems`` or limit;
                ``InvalidCursor`` for a garbage cursor or one from another query.
        """
        if not isinstance(options, Mapping):
            raise fail(
                ArgsInvalid(
                    "", "paginate() takes {'numItems': n, 'cursor': None | str}"
                )
            )
        num = _page_size(options.get("numItems"))
        maximum_rows = _read_limit(options, "maximumRowsRead")
        maximum_bytes = _read_limit(options, "maximumBytesRead")
        position = self._decode_cursor(options.get("cursor"), "cursor")
        scan = PageScan(maximum_rows, maximum_bytes, position or None)
        end = options.get("endCursor")
        end_position = b"" if end is None else self._decode_cursor(end, "endCursor")
        if position is None:  # the End cursor
            return self._page([], True, self._cursor(None), scan)
        key_range = (
            self.key_range
            if position == b""
            else self.key_range.after(position, self.order_)
        )
        if end is not None:
            if end_position:
                key_range = key_range.before_or_at(end_position, self.order_)
            # The whole (cursor, endCursor] interval, for correctness: the page's
            # own limits do not apply (Convex's IndexRange ``enforce_limits``).
            scan = PageScan(resume=position or None)
            whole: list[Value] = [doc for doc, _ in self._rows(key_range, scan=scan)]
            return self._page(whole, end_position is None, end, scan)
        if maximum_rows is None and maximum_bytes is None and self._simple():
            # Every scanned row is a result: one loop, the page's SQL ends at num.
            docs, scan.bytes_read, scan.split_required = self._read_all(
                *self.sql(key_range, num), scan.keys, resumable=scan.resume is not None
            )
            found = cast("list[Value]", docs)
            if len(found) >= num:
                return self._page(found, False, self._cursor(scan.keys[-1]), scan)
            if scan.split_required:
                end_at = scan.last_position()
                return self._page(found, False, self._cursor(end_at), scan)
            return self._page(found, True, self._cursor(None), scan)
        page: list[Value] = []
        with contextlib.closing(self._rows(key_range, limit=num, scan=scan)) as rows:
            for doc, key in rows:
                page.append(doc)
                if len(page) >= num:
                    return self._page(page, False, self._cursor(key), scan)
        if scan.split_required:
            # Continue after the last row scanned, filtered out or not.
            return self._page(page, False, self._cursor(scan.last_position()), scan)
        return self._page(page, True, self._cursor(None), scan)

    def _page(
        self, page: list[Value], done: bool, cursor: Value, scan: PageScan
    ) -> dict[str, Value]:
        split = scan.split_key()
        return {
            "page": page,
            "isDone": done,
            "continueCursor": cursor,
            "splitCursor": None if split is None else self._cursor(split),
            "pageStatus": scan.status(len(page)),
        }

    def _cursor(self, key: bytes | None) -> str:
        payload = {"q": self.fingerprint(), "k": None if key is None else key.hex()}
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()

    def _decode_cursor(self, cursor: object, name: str) -> bytes | None:
        """``b""`` for the start, the key to continue after, or None for the end."""
        if cursor is None:
            return b""
        try:
            if not isinstance(cursor, str):
                raise TypeError(cursor)
            payload = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
            fingerprint, key = payload["q"], payload["k"]
            position = None if key is None else bytes.fromhex(key)
        except (ValueError, KeyError, TypeError, UnicodeError):
            raise fail(
                InvalidCursor(
                    str(cursor),
                    f"InvalidCursor: {name} {show(cursor)} is not a cursor returned by "
                    f"paginate() on {self.table}.{self.index}.",
                )
            ) from None
        if fingerprint != self.fingerprint():
            raise fail(
                InvalidCursor(
                    cursor,
                    "InvalidCursor: Tried to run a query starting from a cursor, but it "
                    f"looks like this cursor is from a different query (on "
                    f"{self.table}.{self.index} now).",
                )
            )
        return position


def _page_size(num: object) -> int:
    """Check ``numItems`` as Convex: a whole number from 1 to 32,000."""
    if (
        isinstance(num, bool)
        or not isinstance(num, int | float)
        or num != num
        or num in (math.inf, -math.inf)
        or num != int(num)
    ):
        raise fail(
            ArgsInvalid(
                ".numItems", f"numItems must be a whole number >= 1, got {show(num)}"
            )
        )
    if num < 1:
        raise fail(
            ArgsInvalid(
                ".numItems",
                f"Must request at least 1 document while paginating (numItems: {show(num)})",
            )
        )
    if num > MAX_PAGE_SIZE:
        raise fail(
            ArgsInvalid(
                ".numItems",
                f"PageSizeTooLarge: numItems {int(num)} is larger than the maximum page "
                f"size {MAX_PAGE_SIZE}",
            )
        )
    return int(num)


def _read_limit(options: Mapping[str, Any], name: str) -> int | None:
    """Check ``maximumRowsRead``/``maximumBytesRead``: absent/None, or a whole number >= 1."""
    value = options.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or value in (math.inf, -math.inf)
        or value != int(value)
        or value < 0
    ):
        raise fail(
            ArgsInvalid(
                f".{name}", f"{name} must be a whole number >= 1, got {show(value)}"
            )
        )
    if value == 0:
        raise fail(
            ArgsInvalid(
                f".{name}",
                "InvalidPaginationLimit: maximumRowsRead and maximumBytesRead must be "
                "greater than 0",
            )
        )
    return int(value)


def _builtin(name: str) -> Any:
    from ..model.schema import Index

    return Index(name, ()) if name in ("by_id", "by_creation_time") else None


__all__ = [
    "UNSET",
    "Expr",
    "FilterBuilder",
    "FilterError",
    "IndexRangeBuilder",
    "KeyRange",
    "Query",
    "SearchFilterBuilder",
    "TableLayout",
    "compile_expr",
    "compile_range",
    "match_expression",
    "search_terms",
]
