"""The immutable query builder: index ranges, order, filters, terminals, pagination.

``ctx.db.query("messages")`` returns a :class:`Query`; every builder call returns a
new one. A query runs as one scan the engine answers (an
:class:`~one_store.engine.backend.IndexScan` over an index whose keys compare in
Convex's total order, or a :class:`~one_store.engine.backend.SearchScan`): rows
are stepped one at a time and decoded only when reached, so ``take(1)`` over a
range of a million documents decodes one row, and the scan is limited to ``n``
rows when nothing can drop rows after the engine. This module names no engine:
the SQL of the SQLite engine's scans is in :mod:`one_store.engine.sqlite.scans`.

Index ranges (what Convex accepts, and the key interval of each) are compiled in
:mod:`one_store.engine.ranges`; filter expressions in :mod:`one_store.engine.filters`
(compiled once into Python closures that always run on the documents they
return; their leading equalities are also handed to the engine, which may skip
decoding the rows they reject); text search in :mod:`one_store.engine.search`;
cursors and page limits in :mod:`one_store.engine.pagination`.

Every scanned row counts against the function's read limits, filtered out or not.

Mistakes in a query (unknown index, a range Convex refuses, a foreign cursor) raise
:class:`~one_store.model.errors.ProblemError` inside the handler, which the store turns into
``Failure(InvalidIndexRange | InvalidCursor | ArgsInvalid | ...)`` and a rolled-back
transaction, as Convex throws.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any, cast

import attrs

from ..model.errors import (
    ArgsInvalid,
    InvalidIndexRange,
    NotUnique,
    ProblemError,
)
from ..model.values import UNSET, Document, Value, show
from .backend import (
    NO_OBSERVER,
    Bounds,
    Equalities,
    IndexScan,
    ReadPort,
    Rows,
    SearchScan,
)
from .filters import (
    Expr,
    FilterBuilder,
    FilterError,
    as_boolean,
    checked_literals,
    compile_expr,
    leading_equalities,
)
from .pagination import (
    PageScan,
    decode_cursor,
    encode_cursor,
    page_result,
    page_size,
    read_limit,
)
from .ranges import IndexRangeBuilder, KeyRange, Order, compile_range, fail
from .reads import observed, report_scan
from .search import SearchFilterBuilder, compile_search, search_rows

_WHOLE_INDEX = KeyRange()  # the range of a query without with_index's range
MAX_QUERY_OPERATORS = 256  # filters per query (convex-js query_impl.ts)


# --------------------------------------------------------------------- the query


# What Convex's query object offers (convex-js server/query.ts), in Python's case.
_QUERY_METHODS = (
    "collect",
    "filter",
    "first",
    "order",
    "paginate",
    "take",
    "unique",
    "with_index",
    "with_search_index",
)


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
    search: SearchScan | None = None
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

    def __dir__(self) -> list[str]:
        # Tab completion offers Convex's query methods; the state attributes
        # above stay readable but are not advertised.
        return [*_QUERY_METHODS, *(n for n in super().__dir__() if n.startswith("_"))]

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
        if self.indexed or self.ordered or self.filters:
            raise fail(
                InvalidIndexRange(
                    f"{self.table}.{name}",
                    None,
                    "with_search_index must come first, right after db.query().",
                )
            )
        layout = self._port.layout(self.table)
        index = layout.search_indexes.get(name) if layout else None
        scan, bounds = compile_search(self.table, name, index, filter_fn)
        return self._with(index=name, search=scan, indexed=True, bounds=bounds)

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

    # ---------------------------------------------------------- the engine's scan

    def _index_scan(
        self,
        key_range: KeyRange | None = None,
        limit: int | None = None,
        bodies_only: bool = False,
    ) -> IndexScan:
        """The index scan this query asks the engine for (rows of ``key_range``)."""
        r = self.key_range if key_range is None else key_range
        equalities: Equalities = ()
        if (
            self.filters
            # An observer sees every row a filter scanned, so none may be skipped.
            and self._port.observer is NO_OBSERVER
            and self._port.scanner.features.equality_prefilter
        ):
            equalities = leading_equalities(self.filters)
        return IndexScan(
            self.table,
            self.index,
            r.low,
            r.high,
            self.order_,
            limit,
            equalities,
            bodies_only,
        )

    # ---------------------------------------------------------- running

    def _rows(
        self,
        key_range: KeyRange | None = None,
        limit: int | None = None,
        scan: PageScan | None = None,
    ) -> Generator[tuple[Document, bytes], None, None]:
        """Yield ``(document, key)`` that pass the filters, counting every row read.

        With ``scan`` (paginate), every scanned row is recorded there, and the scan
        stops early, without raising, where a read limit ends the page. An
        observer is told the key range the scan reached (:meth:`_observed`).
        """
        rows = self._scan_rows(key_range, limit, scan)
        observer = self._port.observer
        if observer is NO_OBSERVER:
            return rows
        r = self.key_range if key_range is None else key_range
        where = (self.table, self.index, r, self.order_)
        return observed(rows, observer, where, self.search)

    def _scan_rows(
        self,
        key_range: KeyRange | None,
        limit: int | None,
        scan: PageScan | None,
    ) -> Generator[tuple[Document, bytes], None, None]:
        """The rows of :meth:`_rows` (which see)."""
        if self._port.layout(self.table) is None:
            return
        r = self.key_range if key_range is None else key_range
        rows: Rows
        if self.search is not None:
            # A top-n search from the start asks the engine for its top n alone
            # (it reads only the rows it returns).
            whole = r == _WHOLE_INDEX and not self.filters
            rows = search_rows(
                self._port.scanner, self.search, r, limit if whole else None
            )
        else:
            # A limit only when every scanned row becomes a result (no filter).
            index_scan = self._index_scan(r, None if self.filters else limit)
            rows = self._port.scanner.index_rows(index_scan)
        check = self._predicate()
        read_row, skip_row = self._port.read_row, self._port.skip_row
        table = self.table
        sink = self._range_sink()
        # Close the engine's cursor as soon as the caller stops or a filter
        # raises, not whenever the generator happens to be collected.
        with contextlib.closing(rows):
            for row in rows:
                body, key = row[0], row[1]
                if scan is not None and scan.over_page_limits():
                    scan.split_required = True
                    return
                try:
                    if (
                        body is None
                    ):  # dropped by the engine's prefilter: read, not decoded
                        size = row[2]
                        skip_row(size)
                        doc = None
                    else:
                        size = len(body)
                        doc = read_row(body, table)
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
        self, scan: IndexScan, keys: list[bytes] | None = None, resumable: bool = False
    ) -> tuple[list[Document], int, bool]:
        """Every row of a scan whose rows are all results (:meth:`_simple`)."""
        observer = self._port.observer
        if observer is NO_OBSERVER:
            return self._port.read_all(scan, keys, resumable)
        sink = self._range_sink()
        if keys is None and scan.limit is not None:
            # The keys tell where a limited scan stopped.
            scan, keys = attrs.evolve(scan, bodies_only=False), []
        found = self._port.read_all(scan, keys, resumable)
        if sink is not None:
            for doc in found[0]:
                sink(str(doc["_id"]))
        report_scan(observer, scan, found, keys)
        return found

    def _simple(self) -> bool:
        """Whether every scanned row is a result: an index scan, no filter."""
        return (
            not self.filters
            and self.search is None
            and self._port.layout(self.table) is not None
        )

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
            return self._read_all(self._index_scan(bodies_only=True))[0]
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
            return self._read_all(self._index_scan(limit=n, bodies_only=True))[0]
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
        num = page_size(options.get("numItems"))
        maximum_rows = read_limit(options, "maximumRowsRead")
        maximum_bytes = read_limit(options, "maximumBytesRead")
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
                self._index_scan(key_range, num),
                scan.keys,
                resumable=scan.resume is not None,
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
        return page_result(
            page, done, cursor, scan, None if split is None else self._cursor(split)
        )

    def _cursor(self, key: bytes | None) -> str:
        return encode_cursor(self.fingerprint(), key)

    def _decode_cursor(self, cursor: object, name: str) -> bytes | None:
        """``b""`` for the start, the key to continue after, or None for the end."""
        return decode_cursor(
            cursor, name, self.fingerprint(), f"{self.table}.{self.index}"
        )


def plan(
    query: Query,
    key_range: KeyRange | None = None,
    limit: int | None = None,
    bodies_only: bool = False,
) -> IndexScan | SearchScan:
    """The scan ``query`` asks its engine for (a search's, or an index range's).

    Example:
        >>> # inside a handler, what one_store.engine.sqlite.scans turns into SQL:
        >>> # plan(ctx.db.query("messages").with_index("by_thread"), limit=10)
    """
    if query.search is not None:
        return query.search
    return query._index_scan(key_range, limit, bodies_only)


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
    "compile_expr",
    "compile_range",
    "plan",
]
