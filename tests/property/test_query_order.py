"""Indexed queries return documents in Convex's total order across types.

The reference comparator below is written from Convex's ordering (docs.convex.dev/database/types),
not from ``one_store.model.values.sort_key``: missing < null < int64 < float64 < false <
true < string < bytes < array < object; int64 numerically; float64 by IEEE-754
totalOrder (Rust's ``f64::total_cmp``, as Convex's ``sorting.rs``); strings by UTF-8
bytes; bytes lexicographically; arrays element-wise with a prefix first; objects as
their key-sorted ``(key, value)`` sequences. Equal values keep ``_creationTime`` order.
Every index range and filter comparison must agree with it, so ``1`` and ``1.0``
are different keys and booleans never equal ints.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from one_store import UNSET, Store, define_schema, define_table, v
from tests.strategies import convex_values

SCHEMA = define_schema(
    {
        "t": define_table({"v": v.optional(v.any()), "g": v.int64(), "i": v.int64()})
        .index("by_v", ["v"])
        .index("by_g_v", ["g", "v"]),
    }
)

TYPE_RANK = [
    ("missing", lambda x: x is UNSET),
    ("null", lambda x: x is None),
    ("int64", lambda x: type(x) is int),
    ("float64", lambda x: type(x) is float),
    ("boolean", lambda x: type(x) is bool),
    ("string", lambda x: type(x) is str),
    ("bytes", lambda x: type(x) is bytes),
    ("array", lambda x: type(x) is list),
    ("object", lambda x: type(x) is dict),
]


def rank(x: object) -> int:
    return next(i for i, (_, test) in enumerate(TYPE_RANK) if test(x))


def sign(n: float) -> int:
    return (n > 0) - (n < 0)


def total_order_bits(x: float) -> int:
    """IEEE-754 totalOrder as an integer (the recipe of Rust's ``f64::total_cmp``)."""
    bits: int = struct.unpack(">q", struct.pack(">d", x))[0]
    return bits ^ 0x7FFF_FFFF_FFFF_FFFF if bits < 0 else bits


def reference_compare(a: Any, b: Any) -> int:
    """Convex's total order, from the reference text."""
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return sign(ra - rb)
    if a is UNSET or a is None:
        return 0
    if type(a) is float:
        return sign(total_order_bits(a) - total_order_bits(b))
    if type(a) is str:
        return sign((a.encode() > b.encode()) - (a.encode() < b.encode()))
    if type(a) in (int, bool, bytes):
        return sign((a > b) - (a < b))
    if type(a) is list:
        return sequence_compare(a, b, reference_compare)
    pairs_a = sorted(a.items(), key=lambda kv: kv[0].encode())
    pairs_b = sorted(b.items(), key=lambda kv: kv[0].encode())
    return sequence_compare(pairs_a, pairs_b, pair_compare)


def pair_compare(a: tuple[str, Any], b: tuple[str, Any]) -> int:
    return reference_compare(a[0], b[0]) or reference_compare(a[1], b[1])


def sequence_compare(
    a: list[Any], b: list[Any], item: Callable[[Any, Any], int]
) -> int:
    for x, y in zip(a, b, strict=False):
        c = item(x, y)
        if c:
            return c
    return sign(len(a) - len(b))


OPS: dict[str, Callable[[int], bool]] = {
    "eq": lambda c: c == 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
}

values = st.one_of(st.just(UNSET), convex_values(max_leaves=4))
# Values that collide under loose equality, so they show up together often.
# Strings and bytes whose encoding extends another's ("x" is a prefix of "x\x00",
# whose NUL is escaped as 00 FF) catch ranges built by incrementing a prefix.
tricky: st.SearchStrategy[Any] = st.sampled_from(
    [
        *(UNSET, None, 0, 1, -1, 0.0, -0.0, 1.0, False, True, "", "1", b"", [], {}),
        *(
            "x",
            "x\x00",
            "x\x00\x00",
            "x\x00a",
            "\x00",
            b"x",
            b"x\x00",
            ["x"],
            ["x\x00"],
        ),
    ]
)
mixed_values = st.lists(st.one_of(tricky, values), max_size=14)


def load(vals: list[Any], groups: list[int] | None = None) -> Store:
    store = Store.memory(SCHEMA, seed=0)

    def insert(ctx: Any) -> None:
        for i, value in enumerate(vals):
            doc = {"g": groups[i] if groups else 0, "i": i}
            if value is not UNSET:
                doc["v"] = value
            ctx.db.insert("t", doc)

    store.run(insert).unwrap()
    return store


def positions(store: Store, build: Callable[[Any], Any]) -> Any:
    return store.run(
        lambda ctx: [d["i"] for d in build(ctx.db.query("t")).collect()]
    ).unwrap()


def expected_order(vals: list[Any]) -> list[int]:
    """Positions in index order: by value, then creation (insertion) order."""

    def by_value_then_position(x: int, y: int) -> int:
        return reference_compare(vals[x], vals[y]) or x - y

    return sorted(range(len(vals)), key=functools.cmp_to_key(by_value_then_position))


@given(mixed_values)
def test_an_index_returns_documents_in_convex_order(vals: list[Any]) -> None:
    with load(vals) as store:
        want = expected_order(vals)
        assert positions(store, lambda q: q.with_index("by_v")) == want
        assert (
            positions(store, lambda q: q.with_index("by_v").order("desc")) == want[::-1]
        )


@given(mixed_values, st.one_of(tricky, values), st.sampled_from(sorted(OPS)))
def test_index_ranges_agree_with_the_total_order(
    vals: list[Any], bound: Any, op: str
) -> None:
    with load(vals) as store:
        want = [
            i
            for i in expected_order(vals)
            if OPS[op](reference_compare(vals[i], bound))
        ]
        got = positions(
            store, lambda q: q.with_index("by_v", lambda r: getattr(r, op)("v", bound))
        )
        assert got == want


@given(
    st.lists(st.tuples(st.integers(0, 2), st.one_of(tricky, values)), max_size=14),
    st.integers(0, 2),
    st.one_of(tricky, values),
    st.one_of(tricky, values),
)
def test_prefix_equality_then_a_two_sided_range(
    rows: list[tuple[int, Any]], group: int, low: Any, high: Any
) -> None:
    vals = [value for _, value in rows]
    with load(vals, [g for g, _ in rows]) as store:
        want = [
            i
            for i in expected_order(vals)
            if rows[i][0] == group
            and reference_compare(vals[i], low) > 0
            and reference_compare(vals[i], high) <= 0
        ]
        got = positions(
            store,
            lambda q: q.with_index(
                "by_g_v", lambda r: r.eq("g", group).gt("v", low).lte("v", high)
            ),
        )
        assert got == want


@given(mixed_values, st.one_of(tricky, values), st.sampled_from(sorted(OPS)))
def test_filter_comparisons_agree_with_the_total_order(
    vals: list[Any], operand: Any, op: str
) -> None:
    with load(vals) as store:
        want = [
            i for i in range(len(vals)) if OPS[op](reference_compare(vals[i], operand))
        ]
        got = positions(
            store, lambda q: q.filter(lambda f: getattr(f, op)(f.field("v"), operand))
        )
        assert got == want


def test_one_one_point_oh_and_true_are_three_keys() -> None:
    with load([1, 1.0, True, 1, "1"]) as store:
        cases: list[tuple[Any, list[int]]] = [
            (1, [0, 3]),
            (1.0, [1]),
            (True, [2]),
            ("1", [4]),
        ]
        for value, want in cases:

            def build(q: Any, value: Any = value) -> Any:
                return q.with_index("by_v", lambda r: r.eq("v", value))

            assert positions(store, build) == want
        assert positions(store, lambda q: q.with_index("by_v")) == [0, 3, 1, 2, 4]


NUL_EXTENDED = ["w", "x", "x\x00", "x\x00\x00", "x\x00a", "x\x01", "y", b"x", b"x\x00"]


def bounded(store: Store, index: str, op: str, bound: Any) -> Any:
    """Positions from ``index`` (``by_g_v``: after ``eq("g", 0)``) with one bound."""

    def build(r: Any) -> Any:
        return getattr(r if index == "by_v" else r.eq("g", 0), op)("v", bound)

    return positions(store, lambda q: q.with_index(index, build))


def test_a_value_is_not_equal_to_its_nul_extensions() -> None:
    # "x" < "x\x00" < "x\x00a" < "x\x01": the key of "x" is a byte prefix of the
    # others' (a NUL is escaped as 00 FF), so a range must not be "every key that
    # starts with the bound's key".
    with load(NUL_EXTENDED, [0] * len(NUL_EXTENDED)) as store:
        for op in sorted(OPS):
            for bound in ["x", "x\x00", b"x"]:
                want = [
                    i
                    for i in expected_order(NUL_EXTENDED)
                    if OPS[op](reference_compare(NUL_EXTENDED[i], bound))
                ]
                for index in ("by_v", "by_g_v"):
                    assert bounded(store, index, op, bound) == want, (op, bound)
        # An equality prefix ending in such a value, then the rest of the index.
        got = positions(
            store,
            lambda q: q.with_index("by_g_v", lambda r: r.eq("g", 0).eq("v", "x")),
        )
        assert got == [1]
