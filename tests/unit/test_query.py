"""Tests for one_store.engine.query: compiled SQL (golden), Convex's index-range rules, filters,
terminals, scan limits, and that every indexed query is an SQLite index range scan.

Expected key bytes are written out by hand from Convex's order (tag bytes: undefined
0x01, null 0x03, int64 0x04-0x0C around zero at 0x08, float64 0x0D, false 0x0E, true
0x0F, string 0x10 ... 0x00), not computed with ``sort_key``, so a change in the
encoding or in the range compiler shows up here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import operator
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure

from one_store import (
    UNSET,
    ArgsInvalid,
    HandlerError,
    InvalidIndexRange,
    LimitExceeded,
    NotUnique,
    Store,
    define_schema,
    define_table,
    v,
)
from one_store.engine.backend import IndexScan
from one_store.engine.query import (
    FilterBuilder,
    FilterError,
    Query,
    compile_expr,
    plan,
)
from one_store.engine.sqlite.scans import index_scan_sql
from one_store.model.errors import ProblemError
from one_store.testing import trace
from tests.strategies import convex_values

SCHEMA = define_schema(
    {
        "items": define_table(
            {
                "a": v.optional(v.any()),
                "b": v.optional(v.any()),
                "body": v.optional(v.string()),
            }
        )
        .index("by_a", ["a"])
        .index("by_ab", ["a", "b"]),
    }
)

INT_1 = b"\x09\x01"
STR_X = b"\x10x\x00"
# After a value's key comes the next key's type tag (0x01-0x15), never 0xFF: K + FF
# is past every key whose value is exactly that one, and before "x\x00" (10 78 00 FF
# 00), so ranges end there rather than at the increment of K.
PAST = b"\xff"
COL = '"_k_by_ab"'


@pytest.fixture
def db() -> Iterator[Store]:
    with Store.memory(SCHEMA, seed=0) as store:
        yield store


def run(store: Store, fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(ctx)`` in a mutation and unwrap the result."""
    return store.run(fn).unwrap()


def compiled(
    store: Store, build: Callable[[Any], Query], limit: int | None = None
) -> Any:
    """The SQLite engine's ``(sql, params)`` for the scan ``build(ctx)`` asks for."""

    def sql(ctx: Any) -> Any:
        scan = plan(build(ctx), limit=limit)
        assert isinstance(scan, IndexScan)
        return list(index_scan_sql(scan))

    return run(store, sql)


def insert(store: Store, *docs: dict[str, Any]) -> Any:
    return run(store, lambda ctx: [ctx.db.insert("items", d) for d in docs])


# ------------------------------------------------------------------ golden SQL


def test_a_query_without_index_scans_by_creation_time(db: Store) -> None:
    sql, params = compiled(db, lambda ctx: ctx.db.query("items"))
    assert sql == (
        'SELECT _body, "_k_by_creation_time" FROM "items" '
        'ORDER BY "_k_by_creation_time" ASC'
    )
    assert params == []


def test_equality_on_a_prefix_is_one_key_interval(db: Store) -> None:
    sql, params = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index("by_ab", lambda q: q.eq("a", 1)),
    )
    assert sql == (
        f'SELECT _body, {COL} FROM "items" WHERE {COL} >= ? AND {COL} < ? '
        f"ORDER BY {COL} ASC"
    )
    assert params == [INT_1, INT_1 + PAST]


def test_equality_then_lower_bound(db: Store) -> None:
    _, params = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index(
            "by_ab", lambda q: q.eq("a", 1).gt("b", "x")
        ),
    )
    # gt skips every key whose b is "x" (any _creationTime/_id after it).
    assert params == [INT_1 + STR_X + PAST, INT_1 + PAST]


def test_gte_and_lte_include_the_bound_value(db: Store) -> None:
    _, params = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index(
            "by_ab", lambda q: q.eq("a", 1).gte("b", "x").lte("b", "x")
        ),
    )
    assert params == [INT_1 + STR_X, INT_1 + STR_X + PAST]


def test_lt_excludes_the_bound_value(db: Store) -> None:
    sql, params = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index("by_a", lambda q: q.lt("a", 1)),
    )
    assert sql == (
        'SELECT _body, "_k_by_a" FROM "items" WHERE "_k_by_a" < ? '
        'ORDER BY "_k_by_a" ASC'
    )
    assert params == [INT_1]


def test_missing_field_and_null_are_different_keys(db: Store) -> None:
    _, missing = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index(
            "by_a", lambda q: q.eq("a", UNSET)
        ),
    )
    _, null = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index("by_a", lambda q: q.eq("a", None)),
    )
    assert missing == [b"\x01", b"\x01" + PAST]
    assert null == [b"\x03", b"\x03" + PAST]


def test_int_float_and_bool_are_different_keys(db: Store) -> None:
    def keys(value: object) -> Any:
        return compiled(
            db,
            lambda ctx: ctx.db.query("items").with_index(
                "by_a", lambda q: q.eq("a", value)
            ),
        )[1][0]

    assert keys(1) == INT_1
    assert keys(1.0) == b"\x0d\xbf\xf0\x00\x00\x00\x00\x00\x00"
    assert keys(True) == b"\x0f"
    assert len({keys(1), keys(1.0), keys(True)}) == 3


def test_desc_order_and_limit(db: Store) -> None:
    sql, _ = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index("by_a").order("desc"),
        limit=10,
    )
    assert (
        sql == 'SELECT _body, "_k_by_a" FROM "items" ORDER BY "_k_by_a" DESC LIMIT 10'
    )


def test_by_id_equality_uses_the_primary_key(db: Store) -> None:
    (doc_id,) = insert(db, {"a": 1})
    sql, params = compiled(
        db,
        lambda ctx: ctx.db.query("items").with_index(
            "by_id", lambda q: q.eq("_id", doc_id)
        ),
    )
    assert sql == (
        'SELECT _body, _id FROM "items" WHERE _id >= ? AND _id <= ? ORDER BY _id ASC'
    )
    # The key interval [0x10 id 0x00, 0x10 id 0x00 0xFF) as text: [id, id].
    assert params == [doc_id, doc_id]


def test_by_id_ranges_and_results(db: Store) -> None:
    ids = sorted(insert(db, *({"a": i} for i in range(6))))
    got = run(
        db,
        lambda ctx: [
            d["_id"]
            for d in ctx.db.query("items")
            .with_index("by_id", lambda q: q.gt("_id", ids[1]).lte("_id", ids[4]))
            .collect()
        ],
    )
    assert got == ids[2:5]
    # Every string sorts after null and before bytes, in Convex's order.
    everything = run(
        db,
        lambda ctx: len(
            ctx.db.query("items")
            .with_index("by_id", lambda q: q.gt("_id", None).lt("_id", b""))
            .collect()
        ),
    )
    nothing = run(
        db,
        lambda ctx: (
            ctx.db.query("items")
            .with_index("by_id", lambda q: q.lt("_id", None))
            .collect()
        ),
    )
    assert (everything, nothing) == (6, [])


def test_every_builder_call_returns_a_new_query(db: Store) -> None:
    insert(db, *({"a": i % 2, "b": i} for i in range(6)))

    def handler(ctx: Any) -> Any:
        base = ctx.db.query("items")
        indexed = base.with_index("by_a", lambda q: q.eq("a", 1))
        backwards = indexed.order("desc")
        filtered = indexed.filter(lambda q: q.gt(q.field("b"), 2))
        # Building on a query leaves it as it was; branches do not see each other.
        return [
            [d["b"] for d in q.collect()]
            for q in (base, indexed, backwards, filtered, indexed)
        ], len({id(q) for q in (base, indexed, backwards, filtered)})

    got, distinct = run(db, handler)
    assert got == [[0, 1, 2, 3, 4, 5], [1, 3, 5], [5, 3, 1], [3, 5], [1, 3, 5]]
    assert distinct == 4


# ------------------------------------------------------------------ range rules


def range_failure(
    store: Store, index: str, build: Callable[[Any], Any]
) -> InvalidIndexRange:
    """Run a bad range after an insert; check the Failure and that nothing was written."""

    def handler(ctx: Any) -> Any:
        ctx.db.insert("items", {"a": "written before the bad query"})
        return ctx.db.query("items").with_index(index, build).collect()

    outcome = store.run(handler)
    assert isinstance(outcome, Failure), outcome
    problem = outcome.failure()
    assert isinstance(problem, InvalidIndexRange)
    assert run(store, lambda ctx: ctx.db.query("items").collect()) == []
    return problem


@pytest.mark.parametrize(
    ("build", "field", "code"),
    [
        (lambda q: q.eq("a", 1).eq("a", 2), "a", "AlreadyDefinedBound"),
        (lambda q: q.gt("a", 1).gte("a", 2), "a", "AlreadyDefinedBound"),
        (lambda q: q.lt("a", 1).lte("a", 2), "a", "AlreadyDefinedBound"),
        (lambda q: q.eq("a", 1).gt("a", 0), "a", "AlreadyDefinedBound"),
        (lambda q: q.gt("a", 1).lt("b", 2), "b", "BoundsOnMultipleFields"),
        (
            lambda q: q.eq("a", 1).gt("b", 1).lt("_creationTime", 5),
            "_creationTime",
            "BoundsOnMultipleFields",
        ),
        (lambda q: q.eq("c", 1), "c", "FieldNotInIndex"),
        (lambda q: q.eq("a", 1).gt("body", "x"), "body", "FieldNotInIndex"),
        (lambda q: q.eq("b", 1), "b", "InvalidIndexRange"),
        (lambda q: q.gt("a", 1).eq("b", 2), "b", "InvalidIndexRange"),
        (
            lambda q: q.eq("a", 1).gt("_creationTime", 0),
            "_creationTime",
            "InvalidIndexRange",
        ),
        (
            lambda q: q.eq("a", 1).eq("b", 1).eq("_id", "x").gt("_creationTime", 0),
            "_id",
            "InvalidIndexRange",
        ),
    ],
)
def test_ranges_convex_refuses(db: Store, build: Any, field: str, code: str) -> None:
    problem = range_failure(db, "by_ab", build)
    assert problem.index == "items.by_ab"
    assert problem.field == field
    assert problem.message.startswith(code + ":")


def test_out_of_order_message_lists_index_and_query_fields(db: Store) -> None:
    problem = range_failure(db, "by_ab", lambda q: q.eq("b", 1))
    assert problem.message == (
        "InvalidIndexRange: Tried to query index items.by_ab but the query didn't use "
        "the index fields in order.\nIndex fields: ['a', 'b', '_creationTime']\n"
        "Query fields: ['b']\nFirst incorrect field: b"
    )


def test_unknown_index_names_the_index(db: Store) -> None:
    problem = range_failure(db, "by_nothing", lambda q: q)
    assert problem.index == "items.by_nothing"
    assert "Index items.by_nothing not found" in problem.message


def test_a_value_that_is_not_a_convex_value_names_the_field(db: Store) -> None:
    problem = range_failure(db, "by_ab", lambda q: q.eq("a", {1, 2}))
    assert problem.field == "a"
    assert "set" in problem.message
    problem = range_failure(db, "by_ab", lambda q: q.eq("a", 1).gt("b", 2**64))
    assert problem.field == "b"
    assert "int64" in problem.message


@pytest.mark.parametrize(
    "build",
    [
        lambda q: q.eq("b", 2).eq("a", 1),  # eq order does not matter, as Convex
        lambda q: q.eq("a", 1).eq("b", 2),
        lambda q: q.eq("a", 1).eq("b", 2).gte("_creationTime", 0),
        lambda q: (
            q.eq("a", 1).eq("b", 2).lte("b", 2)
            if False
            else q.eq("a", 1).gte("b", 2).lte("b", 2)
        ),
    ],
)
def test_accepted_ranges_find_the_document(db: Store, build: Any) -> None:
    insert(db, {"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 2, "b": 2})
    got = run(
        db, lambda ctx: ctx.db.query("items").with_index("by_ab", build).collect()
    )
    assert [(d["a"], d["b"]) for d in got] == [(1, 2)]


def test_creation_time_and_id_tie_break_within_equal_fields(db: Store) -> None:
    ids = insert(db, *({"a": 1, "b": i} for i in range(5)))
    times = run(
        db, lambda ctx: [d["_creationTime"] for d in ctx.db.query("items").collect()]
    )
    got = run(
        db,
        lambda ctx: [
            d["_id"]
            for d in ctx.db.query("items")
            .with_index("by_a", lambda q: q.eq("a", 1).gt("_creationTime", times[1]))
            .order("desc")
            .collect()
        ],
    )
    assert got == ids[:1:-1]


def test_with_index_must_come_first_and_order_only_once(db: Store) -> None:
    def after_filter(ctx: Any) -> Any:
        return ctx.db.query("items").filter(lambda q: True).with_index("by_a")

    outcome = db.run(after_filter)
    assert isinstance(outcome.failure(), InvalidIndexRange)
    outcome = db.run(lambda ctx: ctx.db.query("items").order("asc").order("desc"))
    assert "at most once" in outcome.failure().message
    outcome = db.run(lambda ctx: ctx.db.query("items").order("up"))  # type: ignore[arg-type]
    assert isinstance(outcome.failure(), ArgsInvalid)


# ------------------------------------------------------------------ filters


def matching(store: Store, predicate: Callable[[Any], Any]) -> Any:
    return run(
        store,
        lambda ctx: [
            d.get("a", "missing")
            for d in ctx.db.query("items").filter(predicate).collect()
        ],
    )


@pytest.fixture
def mixed(db: Store) -> Store:
    insert(
        db,
        {"a": 1},
        {"a": 1.0},
        {"a": True},
        {"a": None},
        {},
        {"a": "1"},
        {"a": -0.0},
        {"a": 0.0},
    )
    return db


def test_filter_equality_is_type_strict(mixed: Store) -> None:
    assert matching(mixed, lambda q: q.eq(q.field("a"), 1)) == [1]
    assert matching(mixed, lambda q: q.eq(q.field("a"), 1.0)) == [1.0]
    assert matching(mixed, lambda q: q.eq(q.field("a"), True)) == [True]
    assert matching(mixed, lambda q: q.eq(q.field("a"), None)) == [None]
    assert matching(mixed, lambda q: q.eq(q.field("a"), UNSET)) == ["missing"]
    got = matching(mixed, lambda q: q.eq(q.field("a"), 0.0))
    assert len(got) == 1
    assert math.copysign(1, got[0]) == 1  # -0.0 is not 0.0 in Convex's order


def test_filter_comparisons_use_the_total_order(mixed: Store) -> None:
    # missing < null < int64 < float64 < boolean < string
    assert matching(mixed, lambda q: q.lt(q.field("a"), None)) == ["missing"]
    assert matching(mixed, lambda q: q.gt(q.field("a"), True)) == ["1"]
    assert sorted(
        map(
            repr,
            matching(
                mixed, lambda q: q.and_(q.gt(q.field("a"), 1), q.lt(q.field("a"), True))
            ),
        )
    ) == ["-0.0", "0.0", "1.0"]
    assert len(matching(mixed, lambda q: q.neq(q.field("a"), 1))) == 7


def test_filter_logic_short_circuits(mixed: Store) -> None:
    # The second operand would be an EvalError; or_ stops at the first True.
    assert len(matching(mixed, lambda q: q.or_(True, q.add(1, 1.0)))) == 8
    assert matching(mixed, lambda q: q.and_(False, q.add(1, 1.0))) == []
    assert matching(mixed, lambda q: q.not_(q.gte(q.field("a"), None))) == ["missing"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (lambda q: q.div(-7, 2), -3),  # int64 division truncates, as Rust
        (lambda q: q.mod(-7, 2), -1),  # the remainder has the dividend's sign
        (lambda q: q.mul(3, 4), 12),
        (lambda q: q.sub(3, 4), -1),
        (lambda q: q.neg(5), -5),
        (lambda q: q.div(1.0, 0.0), math.inf),
        (lambda q: q.div(-1.0, 0.0), -math.inf),
        (lambda q: q.add(0.5, 0.25), 0.75),
    ],
)
def test_arithmetic(db: Store, expr: Any, expected: object) -> None:
    insert(db, {"a": 1})
    assert matching(db, lambda q: q.eq(expr(q), expected)) == [1]


def test_float_nan_results_equal_nan(db: Store) -> None:
    insert(db, {"a": 1})
    assert matching(db, lambda q: q.eq(q.div(0.0, 0.0), math.nan)) == [1]
    assert matching(db, lambda q: q.eq(q.mod(math.inf, 2.0), math.nan)) == [1]


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (lambda q: q.add(1, 1.0), "Cannot add 1 (type int64) and 1.0 (type float64)"),
        (lambda q: q.add(q.field("nope"), 1), "Cannot add undefined (type undefined)"),
        (
            lambda q: q.mul(2**62, 4),
            "Cannot multiply 4611686018427387904 and 4: the result is out of range "
            "for Int64",
        ),
        (lambda q: q.add(2**63 - 1, 1), "Cannot add 9223372036854775807 and 1: the"),
        (lambda q: q.div(-(2**63), -1), "Cannot divide -9223372036854775808 and -1"),
        (lambda q: q.mod(-(2**63), -1), "Cannot mod -9223372036854775808 and -1"),
        (lambda q: q.neg(-(2**63)), "Cannot negate -9223372036854775808: the result"),
        (lambda q: q.mod(5, 0), "Cannot mod 5 by zero"),
        (lambda q: q.div(1, 0), "by zero"),
        (lambda q: q.neg("x"), "Cannot negate"),
        (lambda q: q.and_(1, True), "as a Boolean"),
        (lambda q: q.field("a"), "as a Boolean"),
    ],
)
def test_eval_errors_fail_the_function(db: Store, expr: Any, text: str) -> None:
    insert(db, {"a": 1})
    outcome = db.run(lambda ctx: ctx.db.query("items").filter(expr).collect())
    problem = outcome.failure()
    assert isinstance(problem, HandlerError)
    assert text in str(problem.exception)


INT64 = st.integers(-(2**63), 2**63 - 1)
RUST_INT: dict[str, Callable[[int, int], int]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    # Rust's / and % truncate toward zero; written apart from query.py's formula.
    "div": lambda x, y: -(-x // y) if (x < 0) != (y < 0) else x // y,
    "mod": lambda x, y: x - y * (-(-x // y) if (x < 0) != (y < 0) else x // y),
}


def evaluate(expr: Callable[[FilterBuilder], Any]) -> object:
    return compile_expr(expr(FilterBuilder()))({})


@given(st.sampled_from(sorted(RUST_INT)), INT64, INT64 | st.integers(-3, 3))
def test_int64_arithmetic_is_rusts_checked_arithmetic(op: str, x: int, y: int) -> None:
    if op in ("div", "mod") and y == 0:
        want: object = None
    else:
        exact = RUST_INT[op](x, y)
        quotient = RUST_INT["div"](x, y) if op in ("div", "mod") else exact
        want = exact if -(2**63) <= quotient < 2**63 else None
    try:
        got = evaluate(lambda q: getattr(q, op)(x, y))
    except FilterError:
        got = None
    assert got == want
    assert got is None or type(got) is int


FLOATS = st.floats(allow_nan=True, allow_infinity=True)
# Rust's f64 % is C's fmod; the C library's is the reference (Python's math.fmod
# raises where IEEE gives NaN).
LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
LIBM.fmod.restype = ctypes.c_double
LIBM.fmod.argtypes = [ctypes.c_double, ctypes.c_double]


def ieee_div(x: float, y: float) -> float:
    """IEEE 754 division: a zero divisor gives a signed infinity, or NaN for 0/0."""
    if y != 0:
        return x / y
    if x == 0 or math.isnan(x):
        return math.nan
    negative = (math.copysign(1, x) < 0) != (math.copysign(1, y) < 0)
    return -math.inf if negative else math.inf


IEEE: dict[str, Callable[[float, float], float]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": ieee_div,
    "mod": LIBM.fmod,
}


@given(st.sampled_from(sorted(IEEE)), FLOATS, FLOATS | st.sampled_from([0.0, -0.0]))
def test_float64_arithmetic_is_ieee(op: str, x: float, y: float) -> None:
    want = IEEE[op](x, y)
    got = evaluate(lambda q: getattr(q, op)(x, y))
    assert type(got) is float
    # Same bits (NaN sign aside): -0.0 and 0.0 differ in Convex's order.
    assert (math.isnan(got) and math.isnan(want)) or struct.pack(
        ">d", got
    ) == struct.pack(">d", want)


def test_mixed_number_types_never_combine() -> None:
    pairs: list[tuple[object, object]] = [
        (1, 1.0),
        (1.0, 1),
        (True, 1),
        (1, None),
        ("1", 1),
    ]
    for a, b in pairs:
        with pytest.raises(FilterError, match="Cannot add"):
            compile_expr(FilterBuilder().add(a, b))({})
    assert evaluate(lambda q: q.neg(-0.0)) == 0.0
    assert math.copysign(1, evaluate(lambda q: q.neg(0.0))) == -1  # type: ignore[arg-type]


def test_a_literal_that_is_not_a_convex_value_is_refused(db: Store) -> None:
    outcome = db.run(
        lambda ctx: ctx.db.query("items").filter(lambda q: q.eq(q.field("a"), object()))
    )
    problem = outcome.failure()
    assert isinstance(problem, HandlerError)
    assert "Invalid literal in filter" in str(problem.exception)


def test_filters_chain_as_and(db: Store) -> None:
    insert(db, *({"a": i, "b": i % 2} for i in range(10)))
    got = run(
        db,
        lambda ctx: [
            d["a"]
            for d in ctx.db.query("items")
            .filter(lambda q: q.gte(q.field("a"), 4))
            .filter(lambda q: q.eq(q.field("b"), 1))
            .collect()
        ],
    )
    assert got == [5, 7, 9]


def test_at_most_256_filters(db: Store) -> None:
    insert(db, {"a": 1})

    def filtered(n: int) -> Callable[[Any], Any]:
        def handler(ctx: Any) -> Any:
            q = ctx.db.query("items")
            for _ in range(n):
                q = q.filter(lambda f: f.eq(f.field("a"), 1))
            return len(q.collect())

        return handler

    assert db.run(filtered(256)).unwrap() == 1
    problem = db.run(filtered(257)).failure()
    assert isinstance(problem, ArgsInvalid)
    assert problem.message == "Can't construct query with more than 256 operators"


def test_nested_field_paths(db: Store) -> None:
    insert(db, {"a": {"x": {"y": 3}}}, {"a": {"x": 3}}, {"a": 3})
    assert matching(db, lambda q: q.eq(q.field("a.x.y"), 3)) == [{"x": {"y": 3}}]


# ------------------------------------------------------------------ SQL prefilter


@pytest.mark.sqlite_only("compiles the SQLite engine's SQL (its JSON prefilter)")
def test_leading_equalities_are_tested_in_sql(db: Store) -> None:
    sql, params = compiled(
        db,
        lambda ctx: (
            ctx.db.query("items")
            .with_index("by_a", lambda q: q.eq("a", 1))
            .filter(
                lambda q: q.and_(
                    q.eq(q.field("body"), "hi"),
                    q.eq(7, q.field("b.c")),
                    q.gt(q.field("b"), 0),  # not an equality: Python only, and so
                    q.eq(q.field("a"), True),  # is everything after it
                )
            )
        ),
    )
    case = (
        "CASE WHEN (json_type(_body, ?) = 'text' AND json_extract(_body, ?) = ?) "
        "AND (json_type(_body, ?) = 'integer' AND json_extract(_body, ?) = ?) "
        "THEN _body END"
    )
    assert sql == (
        f'SELECT {case}, "_k_by_a", length(_body) FROM "items" '
        'WHERE "_k_by_a" >= ? AND "_k_by_a" < ? ORDER BY "_k_by_a" ASC'
    )
    assert params == [
        '$."body"',
        '$."body"',
        "hi",
        '$."b"."c"',
        '$."b"."c"',
        7,
        INT_1,
        INT_1 + PAST,
    ]


@pytest.mark.sqlite_only("compiles the SQLite engine's SQL (its JSON prefilter)")
@pytest.mark.parametrize(
    ("literal", "test"),
    [
        (UNSET, "json_type(_body, ?) IS NULL"),
        (None, "json_type(_body, ?) = 'null'"),
        (False, "json_type(_body, ?) = ?"),
    ],
)
def test_missing_null_and_booleans_are_tested_by_json_type(
    db: Store, literal: object, test: str
) -> None:
    sql, _ = compiled(
        db,
        lambda ctx: ctx.db.query("items").filter(lambda q: q.eq(q.field("a"), literal)),
    )
    assert sql.startswith(f"SELECT CASE WHEN {test} THEN _body END")


@pytest.mark.parametrize(
    "predicate",
    [
        lambda q: q.eq(q.field("a"), 1.0),  # floats: -0.0 and NaN are Python's
        lambda q: q.eq(q.field("a"), b"x"),
        lambda q: q.eq(q.field("a"), "x\x00"),  # json_extract stops at a NUL
        lambda q: q.eq(q.field("a.$bytes"), UNSET),  # a storage tag, not a field
        lambda q: q.eq(q.field('a"'), 1),
        lambda q: q.neq(q.field("a"), 1),
        lambda q: q.or_(q.eq(q.field("a"), 1), q.eq(q.field("a"), 2)),
        lambda q: q.and_(q.lt(q.field("a"), 1), q.eq(q.field("a"), 2)),
    ],
)
def test_everything_else_is_left_to_python(db: Store, predicate: Any) -> None:
    sql, _ = compiled(db, lambda ctx: ctx.db.query("items").filter(predicate))
    assert sql.startswith("SELECT _body,")


# Nested names with JSON-path punctuation check the quoting of SQLite paths.
PATHS = ["a", "b", "a.c", "b.c", "a.c d[0]", "b.*", "a.$bytes"]
literals = st.one_of(
    st.sampled_from(
        [UNSET, None, 0, 1, -1, 1.0, -0.0, True, False, "", "1", "x", "x\x00", b""]
    ),
    convex_values(max_leaves=3),
)
equalities = st.tuples(st.sampled_from(PATHS), literals)
# A filter: some equalities, optionally followed by a part that raises on non-int64.
filters = st.tuples(st.lists(equalities, min_size=1, max_size=3), st.booleans())
field_values = st.one_of(
    st.sampled_from([UNSET, None, 1, 1.0, True, "1", "x", "x\x00", "x\x00y", b"x"]),
    convex_values(max_leaves=3),
    st.dictionaries(
        st.sampled_from(["c", "d", "c d[0]", "*"]), convex_values(max_leaves=2)
    ),
)


def _build(spec: tuple[list[tuple[str, Any]], bool]) -> Callable[[Any], Any]:
    eqs, raising = spec

    def predicate(q: Any) -> Any:
        parts = [q.eq(q.field(path), value) for path, value in eqs]
        if raising:  # Cannot mod anything but int64: an EvalError if ever reached
            parts.append(q.eq(q.mod(q.field("a"), 2), 1))
        return parts[0] if len(parts) == 1 else q.and_(*parts)

    return predicate


@pytest.mark.sqlite_only("compiles the SQLite engine's SQL (its JSON prefilter)")
@given(
    st.lists(st.tuples(field_values, field_values), max_size=8),
    st.lists(filters, min_size=1, max_size=2),
)
def test_the_sql_prefilter_changes_no_outcome(
    rows: list[tuple[Any, Any]], specs: list[tuple[list[tuple[str, Any]], bool]]
) -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        docs = [
            {k: val for k, val in (("a", a), ("b", b)) if val is not UNSET}
            for a, b in rows
        ]
        ids = insert(store, *docs)
        predicates = [compile_expr(_build(spec)(FilterBuilder())) for spec in specs]
        # The oracle: every filter evaluated in Python on every document, in order.
        want: object
        try:
            want = [
                doc_id
                for doc_id, doc in zip(ids, docs, strict=True)
                if all(p(doc) for p in predicates)
            ]
        except FilterError:
            want = HandlerError

        def handler(ctx: Any) -> Any:
            q = ctx.db.query("items")
            for spec in specs:
                q = q.filter(_build(spec))
            scan = plan(q)
            assert isinstance(scan, IndexScan)
            return index_scan_sql(scan)[0], [d["_id"] for d in q.collect()]

        outcome = store.run(handler)
        got = type(outcome.failure()) if isinstance(outcome, Failure) else None
        if got is None:
            sql, got = outcome.unwrap()
            leading = specs[0][0][0]
            literal = leading[1]
            if (
                leading[0] != "a.$bytes"
                and type(literal) in (str, int, bool)
                and not (type(literal) is str and "\x00" in literal)
            ):
                assert "CASE WHEN" in sql  # the property is about the prefilter
        assert got == want
        # Every row was read, whether or not its body was decoded.
        if want is not HandlerError:
            counted = run(
                store,
                lambda ctx: (
                    ctx.db.query("items").filter(_build(specs[0])).collect(),
                    ctx.db._txn.docs_read,
                ),
            )[1]
            assert counted == len(docs)


def test_a_trace_still_sees_every_document_a_filter_scanned(db: Store) -> None:
    ids = insert(db, {"body": "keep"}, {"body": "drop"}, {"body": "keep"})
    with trace(db) as t:
        kept = run(
            db,
            lambda ctx: (
                ctx.db.query("items")
                .filter(lambda q: q.eq(q.field("body"), "keep"))
                .collect()
            ),
        )
    assert [d["_id"] for d in kept] == [ids[0], ids[2]]
    assert [r.id for r in t.calls[0].reads] == ids


# ------------------------------------------------------------------ terminals


def test_take_first_unique(db: Store) -> None:
    ids = insert(db, {"a": 1}, {"a": 2}, {"a": 2})

    def by_a(value: int) -> Callable[[Any], Query]:
        return lambda ctx: ctx.db.query("items").with_index(
            "by_a", lambda q: q.eq("a", value)
        )

    assert run(db, lambda ctx: by_a(3)(ctx).first()) is None
    assert run(db, lambda ctx: by_a(3)(ctx).unique()) is None
    assert run(db, lambda ctx: by_a(1)(ctx).unique())["_id"] == ids[0]
    assert [d["_id"] for d in run(db, lambda ctx: by_a(2)(ctx).take(5))] == ids[1:]
    assert run(db, lambda ctx: ctx.db.query("items").take(0)) == []
    problem = db.run(lambda ctx: by_a(2)(ctx).unique()).failure()
    assert isinstance(problem, NotUnique)
    assert problem.ids == tuple(ids[1:])
    assert problem.message.startswith(
        "unique() query returned more than one result from table items"
    )


@pytest.mark.parametrize("n", [-1, 1.5, "2", True, None])
def test_take_refuses_what_is_not_a_count(db: Store, n: Any) -> None:
    problem = db.run(lambda ctx: ctx.db.query("items").take(n)).failure()
    assert isinstance(problem, ArgsInvalid)
    assert "non-negative integer" in problem.message


def test_iteration_streams(db: Store) -> None:
    insert(db, *({"a": i} for i in range(5)))

    def handler(ctx: Any) -> Any:
        seen = []
        for doc in ctx.db.query("items").with_index("by_a").order("desc"):
            seen.append(doc["a"])
            if len(seen) == 2:
                break
        return seen, ctx.db._txn.docs_read

    assert run(db, handler) == [[4, 3], 2]


def test_a_query_on_a_table_never_written_is_empty() -> None:
    with Store.memory(seed=0) as store:
        assert store.run(lambda ctx: ctx.db.query("ghosts").collect()).unwrap() == []


# ------------------------------------------------------------------ rows read


def rows_read(store: Store, build: Callable[[Any], Any]) -> Any:
    return run(store, lambda ctx: (build(ctx), ctx.db._txn.docs_read))


def test_take_one_over_a_large_range_reads_one_row(db: Store) -> None:
    insert(db, *({"a": i, "b": i % 7} for i in range(3000)))
    result, read = rows_read(
        db,
        lambda ctx: (
            ctx.db.query("items").with_index("by_a", lambda q: q.gte("a", 0)).take(1)
        ),
    )
    assert (result[0]["a"], read) == (0, 1)
    result, read = rows_read(
        db, lambda ctx: ctx.db.query("items").with_index("by_a").order("desc").first()
    )
    assert (result["a"], read) == (2999, 1)
    # With a filter, rows are stepped one at a time: the scan stops at the match.
    result, read = rows_read(
        db,
        lambda ctx: (
            ctx.db.query("items").filter(lambda q: q.eq(q.field("b"), 3)).first()
        ),
    )
    assert (result["a"], read) == (3, 4)


def vm_steps(store: Store, build: Callable[[Any], Any]) -> Any:
    """Run ``build(ctx)``; its result and the SQLite VM instructions it executed."""
    conn = store.storage.connection
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0  # 0 = carry on

    def handler(ctx: Any) -> Any:
        conn.set_progress_handler(tick, 1)
        try:
            return build(ctx)
        finally:
            conn.set_progress_handler(None, 1)

    return run(store, handler), steps[0]


TAKE_ONE: list[Callable[[Any], Any]] = [
    lambda ctx: (
        ctx.db.query("items").with_index("by_a", lambda q: q.gte("a", 0)).take(1)
    ),
    lambda ctx: ctx.db.query("items").with_index("by_a").order("desc").first(),
    lambda ctx: (
        ctx.db.query("items").with_index("by_id", lambda q: q.gt("_id", "")).first()
    ),
    lambda ctx: (
        ctx.db.query("items")
        .with_index("by_ab", lambda q: q.eq("a", 1).gte("b", 0))
        .paginate({"numItems": 1, "cursor": None})
    ),
    lambda ctx: ctx.db.query("items").filter(lambda q: q.gte(q.field("b"), 0)).first(),
]


@pytest.mark.sqlite_only("counts SQLite VM instructions (set_progress_handler)")
@pytest.mark.parametrize("build", TAKE_ONE)
def test_take_one_costs_the_same_at_any_table_size(
    build: Callable[[Any], Any],
) -> None:
    # SQLite's own instruction count, not a timing: reading the first row of a
    # range must not depend on how many rows the range holds.
    steps = []
    for size in (200, 2000):
        with Store.memory(SCHEMA, seed=0) as store:
            insert(store, *({"a": 1, "b": i} for i in range(size)))
            steps.append(vm_steps(store, build)[1])
            whole = vm_steps(store, lambda ctx: ctx.db.query("items").collect())[1]
            assert whole > 10 * steps[-1]  # the counter sees a whole scan
    assert steps[0] == steps[1] > 0


def test_filtered_out_documents_count_as_read(db: Store) -> None:
    insert(db, *({"a": i} for i in range(50)))
    result, read = rows_read(
        db,
        lambda ctx: (
            ctx.db.query("items").filter(lambda q: q.eq(q.field("a"), -1)).collect()
        ),
    )
    assert (result, read) == ([], 50)


def test_reading_more_than_32000_documents_is_limit_exceeded(db: Store) -> None:
    for _ in range(2):
        run(db, lambda ctx: len([ctx.db.insert("items", {}) for _ in range(16_000)]))
    run(db, lambda ctx: ctx.db.insert("items", {}))
    assert run(db, lambda ctx: len(ctx.db.query("items").take(32_000))) == 32_000
    problem = db.run(lambda ctx: ctx.db.query("items").collect()).failure()
    assert isinstance(problem, LimitExceeded)
    assert (problem.limit, problem.value) == ("documentsRead", 32_000)


def fill_megabytes(db: Store) -> None:
    """18 documents of 1 MB, in two mutations (16 MiB written at most per call)."""
    body = "x" * 1_000_000
    for _ in range(2):
        run(
            db,
            lambda ctx: len([ctx.db.insert("items", {"body": body}) for _ in range(9)]),
        )


def test_reading_more_than_16_mib_is_limit_exceeded(db: Store) -> None:
    fill_megabytes(db)
    assert run(db, lambda ctx: len(ctx.db.query("items").take(16))) == 16
    problem = db.run(lambda ctx: ctx.db.query("items").collect()).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "bytesRead"
    # Rows a filter drops in SQL are never decoded but their bytes count all the same.
    problem = db.run(
        lambda ctx: (
            ctx.db.query("items").filter(lambda q: q.eq(q.field("body"), "y")).collect()
        )
    ).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "bytesRead"


def test_a_caught_read_limit_still_counts_the_row_that_crossed_it(db: Store) -> None:
    # take()/collect() count rows in one loop; a handler that catches the
    # LimitExceeded must find the budget as spent as after a single get's
    # overrun: even a tiny document is refused afterwards.
    fill_megabytes(db)
    small = run(db, lambda ctx: ctx.db.insert("items", {"body": ""}))

    def overrun_then_get(ctx: Any) -> Any:
        with pytest.raises(ProblemError) as caught:
            ctx.db.query("items").collect()
        assert isinstance(caught.value.problem, LimitExceeded)
        return ctx.db.get(small)

    problem = db.run(overrun_then_get).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "bytesRead"


# ------------------------------------------------------------------ query plans

PK = "sqlite_autoindex_items_1"  # SQLite's index for the TEXT primary key _id
# (query, the SQLite index it must use, the range it must seek: None = whole index)
PLANNED: list[tuple[Callable[[Any], Query], str, str | None]] = [
    (lambda ctx: ctx.db.query("items"), "items$by_creation_time", None),
    (
        lambda ctx: ctx.db.query("items").order("desc"),
        "items$by_creation_time",
        None,
    ),
    (lambda ctx: ctx.db.query("items").with_index("by_a"), "items$by_a", None),
    (
        lambda ctx: ctx.db.query("items").with_index("by_a", lambda q: q.eq("a", 1)),
        "items$by_a",
        "_k_by_a>? AND _k_by_a<?",
    ),
    (
        lambda ctx: (
            ctx.db.query("items")
            .with_index("by_a", lambda q: q.gt("a", 1))
            .order("desc")
        ),
        "items$by_a",
        "_k_by_a>?",
    ),
    (
        lambda ctx: ctx.db.query("items").with_index("by_a", lambda q: q.lt("a", 1)),
        "items$by_a",
        "_k_by_a<?",
    ),
    (
        lambda ctx: ctx.db.query("items").with_index(
            "by_ab", lambda q: q.eq("a", 1).lte("b", "x")
        ),
        "items$by_ab",
        "_k_by_ab>? AND _k_by_ab<?",
    ),
    (
        lambda ctx: ctx.db.query("items").with_index(
            "by_ab", lambda q: q.eq("a", 1).gt("b", 0).lt("b", 9)
        ),
        "items$by_ab",
        "_k_by_ab>? AND _k_by_ab<?",
    ),
    (
        lambda ctx: (
            ctx.db.query("items")
            .with_index("by_ab", lambda q: q.eq("a", 1).gte("b", 0).lte("b", 9))
            .order("desc")
        ),
        "items$by_ab",
        "_k_by_ab>? AND _k_by_ab<?",
    ),
    (
        lambda ctx: ctx.db.query("items").with_index(
            "by_ab",
            lambda q: q.eq("b", 1).eq("a", 1).gt("_creationTime", 0.0),
        ),
        "items$by_ab",
        "_k_by_ab>? AND _k_by_ab<?",
    ),
    (
        lambda ctx: ctx.db.query("items").with_index(
            "by_creation_time", lambda q: q.gt("_creationTime", 5.0)
        ),
        "items$by_creation_time",
        "_k_by_creation_time>?",
    ),
    (
        lambda ctx: (
            ctx.db.query("items")
            .with_index(
                "by_creation_time",
                lambda q: q.gte("_creationTime", 5.0).lt("_creationTime", 9.0),
            )
            .order("desc")
        ),
        "items$by_creation_time",
        "_k_by_creation_time>? AND _k_by_creation_time<?",
    ),
    (lambda ctx: ctx.db.query("items").with_index("by_id"), PK, None),
    (
        lambda ctx: ctx.db.query("items").with_index(
            "by_id", lambda q: q.eq("_id", "abc")
        ),
        PK,
        "_id>? AND _id<?",
    ),
    (
        lambda ctx: (
            ctx.db.query("items")
            .with_index("by_id", lambda q: q.gte("_id", "a"))
            .order("desc")
        ),
        PK,
        "_id>?",
    ),
    (
        lambda ctx: (
            ctx.db.query("items")
            .with_index("by_a", lambda q: q.eq("a", 1))
            .filter(lambda q: q.eq(q.field("b"), 2))
        ),
        "items$by_a",
        "_k_by_a>? AND _k_by_a<?",
    ),
]


@pytest.mark.sqlite_only("reads SQLite's EXPLAIN QUERY PLAN")
@pytest.mark.parametrize(("build", "index", "seek"), PLANNED)
def test_every_query_is_an_index_scan(
    db: Store, build: Callable[[Any], Query], index: str, seek: str | None
) -> None:
    insert(db, *({"a": i % 3, "b": i} for i in range(200)))
    conn = db.storage.connection
    conn.execute("ANALYZE")  # let the planner see real statistics, not guesses
    sql, params = compiled(db, build, limit=5)
    plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    # One step: the named index, read in ORDER BY order (no TEMP B-TREE sort step),
    # seeking the key range when there is one instead of scanning the table.
    # (SQLite prints >= as > and <= as < in plans.)
    if seek is None:
        assert plan == [f"SCAN items USING INDEX {index}"], (sql, plan)
    else:
        assert plan == [f"SEARCH items USING INDEX {index} ({seek})"], (sql, plan)
