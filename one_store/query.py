"""The immutable query builder: index ranges, order, filters, terminals, pagination, search.

``ctx.db.query("messages")`` returns a :class:`Query`; every builder call returns a
new one. A query compiles to one SQL range scan over an index's key column (see
:mod:`one_store.storage`), which streams rows lazily, so ``take(1)`` over a range of
a million documents reads one row.

Filters are evaluated in Python on the decoded documents. Convex's comparison rules
(the total order across types, ``1`` is not ``1.0``, ``True`` is not ``1``, a
missing field is ``UNSET``) are exactly the sort-key order, which SQL's JSON
functions do not give; the documents are decoded for the result anyway, so the
Python evaluation costs one tree walk per scanned document.

Mistakes in a query (unknown index, a range Convex refuses, a foreign cursor) raise
:class:`~one_store.errors.ProblemError` inside the handler, which the store turns into
``Failure(InvalidIndexRange | InvalidCursor | ...)`` and a rolled-back transaction,
as Convex throws.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from attrs import evolve, frozen

from .errors import (
    ArgsInvalid,
    InvalidCursor,
    InvalidIndexRange,
    NotUnique,
    Problem,
    ProblemError,
)
from .storage import TableLayout, key_column, quote
from .values import (
    INT64_MAX,
    INT64_MIN,
    UNSET,
    Document,
    Value,
    compare,
    get_path,
    prefix_end,
    show,
    sort_key,
)

if TYPE_CHECKING:
    from .context import DatabaseReader

Order = Literal["asc", "desc"]
MAX_SEARCH_TERMS = 16
MAX_SEARCH_FILTERS = 8
MAX_SEARCH_RESULTS = 1024
MAX_PAGE_SIZE = 32_000


def fail(problem: Problem) -> ProblemError:
    """Wrap a Problem to be raised from handler-facing code."""
    return ProblemError(problem)


# ---------------------------------------------------------------------- index ranges


class IndexRangeBuilder:
    """The ``q`` of ``with_index(name, lambda q: q.eq(...).gt(...))``."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, str, object]] = []

    def _add(self, op: str, field: str, value: object) -> IndexRangeBuilder:
        self.ops.append((op, field, value))
        return self

    def eq(self, field: str, value: object) -> IndexRangeBuilder:
        """Field equals ``value`` (``UNSET`` means the field is missing)."""
        return self._add("eq", field, value)

    def gt(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is greater than ``value`` in Convex's total order."""
        return self._add("gt", field, value)

    def gte(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is greater than or equal to ``value``."""
        return self._add("gte", field, value)

    def lt(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is less than ``value``."""
        return self._add("lt", field, value)

    def lte(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is less than or equal to ``value``."""
        return self._add("lte", field, value)


@frozen
class KeyRange:
    """A half-open interval ``[low, high)`` of index key bytes (``high`` None = open)."""

    low: bytes = b""
    high: bytes | None = None

    def after(self, key: bytes, order: Order) -> KeyRange:
        """The part of the range strictly after ``key`` in scan order."""
        if order == "asc":
            return KeyRange(max(self.low, key + b"\x00"), self.high)
        high = key if self.high is None else min(self.high, key)
        return KeyRange(self.low, high)


def compile_range(
    table: str,
    index_name: str,
    key_fields: tuple[str, ...],
    ops: list[tuple[str, str, object]],
) -> KeyRange:
    """Turn builder operations into a key interval, with Convex's acceptance rules.

    Raises:
        ProblemError: ``InvalidIndexRange`` naming the index and the field.
    """

    def bad(field: str | None, message: str) -> ProblemError:
        return fail(InvalidIndexRange(f"{table}.{index_name}", field, message))

    eqs: dict[str, object] = {}
    lower: tuple[str, str, object] | None = None
    upper: tuple[str, str, object] | None = None
    for op, field, value in ops:
        if not isinstance(field, str) or field not in key_fields:
            raise bad(
                str(field),
                f"The index range for {table}.{index_name} uses field {field!r}, which "
                f"is not in the index (FieldNotInIndex). Index fields: {list(key_fields)}",
            )
        try:
            sort_key(value)
        except Exception:
            raise bad(
                field,
                f"The value for {field!r} in the index range of {table}.{index_name} "
                f"is not a Convex value: {show(value)}",
            ) from None
        if op == "eq":
            if field in eqs:
                raise bad(
                    field,
                    f"Already defined an equality bound on {field!r} (AlreadyDefinedBound).",
                )
            eqs[field] = value
        elif op in ("gt", "gte"):
            if lower is not None:
                raise bad(
                    field,
                    f"Already defined a lower bound on {lower[1]!r} (AlreadyDefinedBound).",
                )
            lower = (op, field, value)
        else:
            if upper is not None:
                raise bad(
                    field,
                    f"Already defined an upper bound on {upper[1]!r} (AlreadyDefinedBound).",
                )
            upper = (op, field, value)
    bound_field = None
    if lower and upper and lower[1] != upper[1]:
        raise bad(
            upper[1],
            f"Upper and lower bounds must be on the same field; got {lower[1]!r} and "
            f"{upper[1]!r} (BoundsOnMultipleFields).",
        )
    if lower or upper:
        bound_field = (lower or upper)[1]  # type: ignore[index]
        if bound_field in eqs:
            raise bad(
                bound_field,
                f"Field {bound_field!r} has both an equality and a range bound.",
            )
    used = sorted(eqs, key=key_fields.index) + ([bound_field] if bound_field else [])
    if used != list(key_fields[: len(used)]):
        wrong = next(f for f, k in zip(used, key_fields, strict=False) if f != k)
        raise bad(
            wrong,
            f"Tried to query index {table}.{index_name} but the query didn't use the "
            f"index fields in order. Index fields: {list(key_fields)} Query fields: "
            f"{used} First incorrect field: {wrong}",
        )
    prefix = b"".join(sort_key(eqs[f]) for f in used if f in eqs)
    low, high = prefix, prefix_end(prefix)
    if lower is not None:
        k = prefix + sort_key(lower[2])
        low = k if lower[0] == "gte" else (prefix_end(k) or k + b"\xff")
    if upper is not None:
        k = prefix + sort_key(upper[2])
        high = k if upper[0] == "lt" else prefix_end(k)
    return KeyRange(low, high)


# ---------------------------------------------------------------------- filters


class FilterError(ValueError):
    """A filter expression Convex cannot evaluate (EvalError)."""


@frozen
class Expr:
    """A node of a filter expression: ``op`` over ``args`` (literal values or Exprs)."""

    op: str
    args: tuple[Any, ...]

    def evaluate(self, doc: Mapping[str, Any]) -> object:
        """Evaluate against ``doc`` with Convex's semantics."""
        op = self.op
        if op == "field":
            return get_path(dict(doc), self.args[0])
        if op == "literal":
            return self.args[0]
        if op in ("and", "or"):
            want = op == "or"
            for arg in self.args:
                value = _eval(arg, doc)
                if not isinstance(value, bool):
                    raise FilterError(
                        f"Cannot use value {show(value)} as a Boolean in {op}"
                    )
                if value is want:
                    return want
            return not want
        if op == "not":
            value = _eval(self.args[0], doc)
            if not isinstance(value, bool):
                raise FilterError(f"Cannot use value {show(value)} as a Boolean in not")
            return not value
        if op == "neg":
            value = _eval(self.args[0], doc)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FilterError(f"Cannot negate {show(value)}")
            return _int_result(-value) if isinstance(value, int) else -value
        left, right = (_eval(a, doc) for a in self.args)
        if op in _COMPARE:
            return _COMPARE[op](compare(left, right))
        return _arith(op, left, right)


def _eval(node: object, doc: Mapping[str, Any]) -> object:
    return node.evaluate(doc) if isinstance(node, Expr) else node


_COMPARE: dict[str, Callable[[int], bool]] = {
    "eq": lambda c: c == 0,
    "neq": lambda c: c != 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
}


def _int_result(n: int) -> int:
    if not INT64_MIN <= n <= INT64_MAX:
        raise FilterError(f"int64 overflow: {n}")
    return n


def _arith(op: str, a: object, b: object) -> object:
    ints = type(a) is int and type(b) is int
    floats = type(a) is float and type(b) is float
    if not (ints or floats):
        raise FilterError(
            f"Cannot {op} {show(a)} and {show(b)}: both must be int64 or both float64"
        )
    if ints:
        x, y = int(a), int(b)  # type: ignore[call-overload]
        if op in ("div", "mod") and y == 0:
            raise FilterError(f"Cannot {op} by zero")
        if op == "div":
            q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)  # truncate
            return _int_result(q)
        if op == "mod":
            return _int_result(
                x - y * (abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1))
            )
        return _int_result({"add": x + y, "sub": x - y, "mul": x * y}[op])
    x2, y2 = float(a), float(b)  # type: ignore[arg-type]
    if op == "div":
        if y2 == 0:
            return (
                math.copysign(math.inf, x2) * math.copysign(1, y2) if x2 else math.nan
            )
        return x2 / y2
    if op == "mod":
        return math.fmod(x2, y2) if y2 else math.nan
    return {"add": x2 + y2, "sub": x2 - y2, "mul": x2 * y2}[op]


class FilterBuilder:
    """The ``q`` of ``.filter(lambda q: q.eq(q.field("role"), "user"))``."""

    def field(self, path: str) -> Expr:
        """A document field (dotted path); missing fields read as ``UNSET``."""
        return Expr("field", (tuple(path.split(".")),))

    def _binary(self, op: str, a: object, b: object) -> Expr:
        return Expr(op, (a, b))

    def eq(self, a: object, b: object) -> Expr:
        """``a == b`` in Convex's total order (type-strict)."""
        return self._binary("eq", a, b)

    def neq(self, a: object, b: object) -> Expr:
        """``a != b``."""
        return self._binary("neq", a, b)

    def lt(self, a: object, b: object) -> Expr:
        """``a < b``."""
        return self._binary("lt", a, b)

    def lte(self, a: object, b: object) -> Expr:
        """``a <= b``."""
        return self._binary("lte", a, b)

    def gt(self, a: object, b: object) -> Expr:
        """``a > b``."""
        return self._binary("gt", a, b)

    def gte(self, a: object, b: object) -> Expr:
        """``a >= b``."""
        return self._binary("gte", a, b)

    def add(self, a: object, b: object) -> Expr:
        """``a + b`` (both int64 or both float64)."""
        return self._binary("add", a, b)

    def sub(self, a: object, b: object) -> Expr:
        """``a - b``."""
        return self._binary("sub", a, b)

    def mul(self, a: object, b: object) -> Expr:
        """``a * b``."""
        return self._binary("mul", a, b)

    def div(self, a: object, b: object) -> Expr:
        """``a / b`` (int64 division truncates, as Rust)."""
        return self._binary("div", a, b)

    def mod(self, a: object, b: object) -> Expr:
        """``a % b`` (sign of the dividend, as Rust)."""
        return self._binary("mod", a, b)

    def neg(self, a: object) -> Expr:
        """``-a``."""
        return Expr("neg", (a,))

    def and_(self, *args: object) -> Expr:
        """All of ``args`` (booleans), short-circuit."""
        return Expr("and", args)

    def or_(self, *args: object) -> Expr:
        """Any of ``args`` (booleans), short-circuit."""
        return Expr("or", args)

    def not_(self, a: object) -> Expr:
        """Boolean negation."""
        return Expr("not", (a,))


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
        """Only documents whose filter field equals ``value``."""
        self.eqs.append((field, value))
        return self


_TOKEN = re.compile(r"[^\W_]+")


def search_terms(text: str) -> list[str]:
    """Tokenise like Tantivy's SimpleTokenizer: alphanumeric runs, lowercased, < 32 bytes."""
    tokens = [t.lower() for t in _TOKEN.findall(text)]
    return [t for t in tokens if len(t.encode("utf-8")) < 32][:MAX_SEARCH_TERMS]


@frozen
class SearchSpec:
    """A compiled search: the FTS table, the MATCH text and filter key values."""

    fts: str
    match: str
    filters: tuple[tuple[int, bytes], ...]


# ---------------------------------------------------------------------- the query


@frozen
class Query:
    """A lazy, immutable query over one table. Build it with ``ctx.db.query(table)``.

    Example:
        >>> # inside a handler:
        >>> # ctx.db.query("messages").with_index("by_thread", lambda q: q.eq("threadId", t)).take(10)
    """

    db: DatabaseReader
    table: str
    index: str = "by_creation_time"
    key_range: KeyRange = KeyRange()
    order_: Order = "asc"
    filters: tuple[Expr, ...] = ()
    search: SearchSpec | None = None
    ordered: bool = False
    indexed: bool = False

    # ---------------------------------------------------------- builders

    def with_index(
        self,
        name: str,
        range_fn: Callable[[IndexRangeBuilder], IndexRangeBuilder] | None = None,
    ) -> Query:
        """Scan index ``name``, restricted by ``range_fn`` (whole index if None)."""
        if self.indexed:
            raise fail(
                InvalidIndexRange(
                    f"{self.table}.{name}",
                    None,
                    "A query can only have one index (with_index was already called).",
                )
            )
        layout = self.db.layout(self.table)
        index = layout.indexes.get(name) if layout else _builtin(name)
        if index is None:
            raise fail(
                InvalidIndexRange(
                    f"{self.table}.{name}",
                    None,
                    f"Index {self.table}.{name} not found.",
                )
            )
        ops: list[tuple[str, str, object]] = []
        if range_fn is not None:
            builder = range_fn(IndexRangeBuilder())
            if not isinstance(builder, IndexRangeBuilder):
                raise fail(
                    InvalidIndexRange(
                        f"{self.table}.{name}",
                        None,
                        "The index range function must return the builder it was given (q.eq(...).gt(...)).",
                    )
                )
            ops = builder.ops
        key_range = compile_range(self.table, name, index.key_fields, ops)
        return evolve(self, index=name, key_range=key_range, indexed=True)

    def with_search_index(
        self, name: str, filter_fn: Callable[[SearchFilterBuilder], SearchFilterBuilder]
    ) -> Query:
        """Full-text search on search index ``name``; results in relevance order."""
        layout = self.db.layout(self.table)
        s = layout.search.get(name) if layout else None
        index_id = f"{self.table}.{name}"
        if s is None:
            raise fail(
                InvalidIndexRange(index_id, None, f"Search index {index_id} not found.")
            )
        builder = filter_fn(SearchFilterBuilder())
        if len(builder.search_calls) != 1:
            raise fail(
                InvalidIndexRange(
                    index_id,
                    None,
                    "A search query needs exactly one q.search(field, text) (MissingSearchFilterError).",
                )
            )
        field, text = builder.search_calls[0]
        if field != s.index.search_field:
            raise fail(
                InvalidIndexRange(
                    index_id,
                    field,
                    f"Field {field!r} is not the search field of {index_id} ({s.index.search_field!r}).",
                )
            )
        if len(builder.eqs) > MAX_SEARCH_FILTERS:
            raise fail(
                InvalidIndexRange(
                    index_id,
                    None,
                    f"Search queries may have at most {MAX_SEARCH_FILTERS} equality filters (TooManyFilterConditionsInSearchQueryError).",
                )
            )
        filters = []
        for f, value in builder.eqs:
            if f not in s.index.filter_fields:
                raise fail(
                    InvalidIndexRange(
                        index_id,
                        f,
                        f"Field {f!r} is not a filter field of search index {index_id}.",
                    )
                )
            filters.append((s.index.filter_fields.index(f), sort_key(value)))
        terms = search_terms(text) if isinstance(text, str) else []
        match = " OR ".join(
            '"' + t + '"' + ("*" if i == len(terms) - 1 else "")
            for i, t in enumerate(terms)
        )
        spec = SearchSpec(s.fts, match, tuple(filters))
        return evolve(self, index=name, search=spec, indexed=True)

    def order(self, order: Order) -> Query:
        """Scan ascending (default) or descending along the index."""
        if order not in ("asc", "desc"):
            raise fail(
                ArgsInvalid("order", f"order must be 'asc' or 'desc', got {order!r}")
            )
        if self.search is not None:
            raise fail(
                InvalidIndexRange(
                    self.table,
                    None,
                    "Search queries must always be in relevance order. Can not set order manually.",
                )
            )
        if self.ordered:
            raise fail(
                InvalidIndexRange(
                    self.table, None, "Queries may only specify order at most once"
                )
            )
        return evolve(self, order_=order, ordered=True)

    def filter(self, predicate: Callable[[FilterBuilder], Expr]) -> Query:
        """Keep documents for which ``predicate(q)`` evaluates to True."""
        expr = predicate(FilterBuilder())
        if not isinstance(expr, Expr):
            expr = Expr("literal", (expr,))
        return evolve(self, filters=(*self.filters, expr))

    # ---------------------------------------------------------- SQL

    def sql(
        self, key_range: KeyRange | None = None, limit: int | None = None
    ) -> tuple[str, list[Any]]:
        """The SQL and parameters this query runs (one index range scan)."""
        if self.search is not None:
            s = self.search
            where = "".join(f" AND s.f{i} = ?" for i, _ in s.filters)
            sql = (
                f"SELECT d._body, s.rank FROM {quote(s.fts)} s JOIN {quote(self.table)} d "
                f"ON d.rowid = s.rowid WHERE s.text MATCH ?{where} "
                f"ORDER BY s.rank, d._creationTime DESC LIMIT {MAX_SEARCH_RESULTS}"
            )
            return sql, [s.match, *(k for _, k in s.filters)]
        r = key_range or self.key_range
        where, params = [], []
        if self.index == "by_id":
            # by_id is the TEXT primary key: an exact ID uses it; other ranges are
            # rare and are checked row by row against the key bytes (see _rows).
            col = order_col = "_id"
            exact = _exact_id(r)
            if exact is not None:
                where.append("_id = ?")
                params.append(exact)
        else:
            col = order_col = quote(key_column(self.index))
            if r.low:
                where.append(f"{col} >= ?")
                params.append(r.low)
            if r.high is not None:
                where.append(f"{col} < ?")
                params.append(r.high)
        sql = f"SELECT _body, {col} FROM {quote(self.table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_col} {self.order_.upper()}"
        if limit is not None:
            sql += f" LIMIT {limit}"
        return sql, params

    # ---------------------------------------------------------- running

    def _rows(
        self, key_range: KeyRange | None = None, limit: int | None = None
    ) -> Iterator[tuple[Document, bytes]]:
        """Yield ``(document, key)`` that pass the filters, counting reads."""
        if self.db.layout(self.table) is None:
            return
        r = key_range or self.key_range
        by_id = self.index == "by_id"
        sql, params = self.sql(r, None if (self.filters or by_id) else limit)
        cursor = self.db.execute(sql, params)
        try:
            for body, key in cursor:
                if by_id:
                    key = sort_key(key)
                    if key < r.low or (r.high is not None and key >= r.high):
                        continue
                doc = self.db.read_row(body)
                if self.filters and not self._passes(doc):
                    continue
                yield doc, key if isinstance(key, bytes) else b""
        finally:
            cursor.close()

    def _passes(self, doc: Document) -> bool:
        for expr in self.filters:
            value = expr.evaluate(doc)
            if not isinstance(value, bool):
                raise FilterError(f"Cannot use value {show(value)} as a Boolean")
            if not value:
                return False
        return True

    def __iter__(self) -> Iterator[Document]:
        for doc, _ in self._rows():
            yield doc

    def collect(self) -> list[Document]:
        """Every matching document."""
        return [doc for doc, _ in self._rows()]

    def take(self, n: int) -> list[Document]:
        """The first ``n`` matching documents."""
        if (
            isinstance(n, bool)
            or not isinstance(n, int | float)
            or n < 0
            or n != int(n)
        ):
            raise fail(
                ArgsInvalid(
                    "n",
                    f"Arg 1 `n` to `take` must be a non-negative integer, got {show(n)}",
                )
            )
        n = int(n)
        out: list[Document] = []
        if n == 0:
            return out
        for doc, _ in self._rows(limit=n):
            out.append(doc)
            if len(out) >= n:
                break
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
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def paginate(self, options: Mapping[str, Any]) -> dict[str, Value]:
        """One page: ``{"page", "isDone", "continueCursor"}``, as Convex.

        ``options`` is ``{"numItems": n, "cursor": None | str}``; pass the previous
        page's ``continueCursor`` to get the next page.
        """
        if not isinstance(options, Mapping):
            raise fail(
                ArgsInvalid(
                    "", "paginate() takes {'numItems': n, 'cursor': None | str}"
                )
            )
        num = options.get("numItems")
        if (
            isinstance(num, bool)
            or not isinstance(num, int | float)
            or num != num
            or num < 1
            or num != int(num)
        ):
            raise fail(
                ArgsInvalid(
                    ".numItems",
                    f"numItems must be an integer >= 1 (Must request at least 1 document while paginating), got {show(num)}",
                )
            )
        if num > MAX_PAGE_SIZE:
            raise fail(
                ArgsInvalid(
                    ".numItems",
                    f"numItems {int(num)} is larger than the maximum page size {MAX_PAGE_SIZE} (PageSizeTooLarge)",
                )
            )
        position = self._decode_cursor(options.get("cursor"))
        if position is None:  # the End cursor
            return {"page": [], "isDone": True, "continueCursor": self._cursor(None)}
        key_range = (
            self.key_range
            if position == b""
            else self.key_range.after(position, self.order_)
        )
        page: list[Value] = []
        last = b""
        for doc, key in self._rows(key_range, limit=int(num)):
            page.append(doc)
            last = key
            if len(page) >= num:
                return {
                    "page": page,
                    "isDone": False,
                    "continueCursor": self._cursor(last),
                }
        return {"page": page, "isDone": True, "continueCursor": self._cursor(None)}

    def _cursor(self, key: bytes | None) -> str:
        payload = {"q": self.fingerprint(), "k": None if key is None else key.hex()}
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()

    def _decode_cursor(self, cursor: object) -> bytes | None:
        """``b""`` for the start, the key to continue after, or None for the end."""
        if cursor is None:
            return b""
        try:
            payload = json.loads(base64.urlsafe_b64decode(str(cursor).encode()))
            fingerprint, key = payload["q"], payload["k"]
            position = None if key is None else bytes.fromhex(key)
        except (ValueError, KeyError, TypeError):
            raise fail(
                InvalidCursor(
                    str(cursor),
                    f"Invalid cursor: {show(cursor)} is not a cursor returned by paginate().",
                )
            ) from None
        if fingerprint != self.fingerprint():
            raise fail(
                InvalidCursor(
                    str(cursor),
                    "InvalidCursor: Tried to run a query starting from a cursor, but it "
                    "looks like this cursor is from a different query.",
                )
            )
        if self.index == "by_id" and position:
            return position
        return position


def _exact_id(r: KeyRange) -> str | None:
    """The ID when a by_id range holds exactly one string key, else None."""
    low = r.low
    if len(low) > 2 and low[0] == 0x10 and low[-1] == 0 and r.high == prefix_end(low):
        body = low[1:-1]
        if b"\x00" not in body:
            return body.decode("utf-8", "replace")
    return None


def _builtin(name: str) -> Any:
    from .schema import Index

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
    "compile_range",
]
