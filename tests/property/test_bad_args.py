"""Arbitrary Python values thrown at a validated mutation never raise and never leak.

Every call returns ``Success`` or ``Failure``; on ``Failure`` the store's full dump
is what it was before the call. The handler writes a first document before the one
built from the arguments, so a late failure (a document limit the arguments did not
break) must roll an earlier write back too.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from one_store import (
    UNSET,
    ArgsInvalid,
    DocumentInvalid,
    Store,
    define_schema,
    define_table,
    mutation,
    v,
)
from tests import engines
from tests.strategies import convex_values

SCHEMA = define_schema(
    {
        "agents": define_table({"name": v.string()}),
        "items": define_table(
            {
                "name": v.string(),
                "count": v.int64(),
                "score": v.number(),
                "tags": v.array(v.string()),
                "kind": v.union(v.literal("a"), v.literal(2)),
                "meta": v.optional(v.record(v.string(), v.any())),
                "owner": v.optional(v.id("agents")),
                "blob": v.optional(v.bytes()),
                "flag": v.optional(v.boolean()),
            }
        ),
        "log": define_table({"n": v.float64()}),
    }
)
FIELDS = {
    "name": v.string(),
    "count": v.int64(),
    "score": v.number(),
    "tags": v.array(v.string()),
    "kind": v.union(v.literal("a"), v.literal(2)),
    "meta": v.optional(v.record(v.string(), v.any())),
    "owner": v.optional(v.id("agents")),
    "blob": v.optional(v.bytes()),
    "flag": v.optional(v.boolean()),
}


@mutation(args=FIELDS)
def add_item(ctx, args):
    ctx.db.insert("log", {"n": 1.0})
    return ctx.db.insert("items", args)


class Color(enum.Enum):
    RED = 1


class Number(enum.IntEnum):
    ONE = 1


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


odd = st.sampled_from(
    [
        object(),
        Opaque(),
        1j,
        decimal.Decimal("1.5"),
        datetime.date(2026, 1, 1),
        Color.RED,
        Number.ONE,
        Ellipsis,
        int,
        print,
        UNSET,
        range(3),
        frozenset({1}),
        bytearray(b"x"),
        memoryview(b"y"),
    ]
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # unbounded: beyond int64 too
    st.floats(),
    st.text(),  # lone surrogates included
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.binary(),
    odd,
)
keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["$a", "_id", "_creationTime", "é", "a\n", "x" * 1025, ""]),
    st.integers(-2, 2),
    st.none(),
    st.tuples(st.integers()),
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.sets(st.integers(), max_size=3),
        st.dictionaries(keys, inner, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def mostly(
    valid: st.SearchStrategy[Any], near_misses: list[Any] | None = None
) -> st.SearchStrategy[Any]:
    """A valid value most of the time; a near miss or anything at all otherwise."""
    misses = st.sampled_from(near_misses) if near_misses else anything

    def pick(i: int) -> st.SearchStrategy[Any]:
        return anything if i == 0 else misses if i == 1 else valid

    return st.integers(0, 9).flatmap(pick)


unicode = st.text(st.characters(exclude_categories=["Cs"]), max_size=5)
int64s = st.integers(-(2**63), 2**63 - 1)
# Mostly-right arguments reach deep into the validators and the document checks.
field_values = {
    "name": mostly(unicode, ["a\ud800", 1, None, b"a"]),
    "count": mostly(int64s, [True, False, math.nan, 1.0, 2**63, -(2**63) - 1]),
    "score": mostly(st.one_of(st.floats(), int64s), [True, "1", None, 10**400]),
    "tags": mostly(
        st.lists(unicode, max_size=3), [["a", 1], "ab", [None], ["x"] * 8193]
    ),
    "kind": mostly(st.sampled_from(["a", 2]), [2.0, True, "b", "A"]),
    "meta": mostly(
        st.dictionaries(unicode, convex_values(6), max_size=3),
        [
            {"deep": nested(15)},  # document nesting 17
            {"deep": nested(14)},  # document nesting 16: fine
            {"big": "x" * (1 << 20)},  # over 1 MiB as a document
            {"$k": 1},
            {"k": {"$k": 1}},
            {"é": 1},
            {f"k{i}": 0 for i in range(1025)},
        ],
    ),
    "owner": mostly(st.text(max_size=40), ["x" * 32, 5]),
    "blob": mostly(st.binary(max_size=8), ["bytes?", [1]]),
    "flag": mostly(st.booleans(), [0, 1, None]),
}
mostly_right = st.fixed_dictionaries(
    {k: field_values[k] for k in ("name", "count", "score", "tags", "kind")},
    optional={k: field_values[k] for k in ("meta", "owner", "blob", "flag")},
)
odd_keys = st.dictionaries(st.sampled_from(["extra", "$bad", "_id", 1]), anything)
arguments = st.integers(0, 9).flatmap(
    lambda i: (
        anything
        if i == 0
        else st.dictionaries(keys, anything)
        if i == 1
        else st.builds(lambda a, b: {**a, **b}, mostly_right, odd_keys)
        if i == 2
        else mostly_right
    )
)


def dump(store: Store) -> list[Any]:
    return engines.dump(store)  # the file's SQL dump, or every row on PostgreSQL


@settings(max_examples=settings().max_examples * 2)
@given(arguments)
def test_any_arguments_give_a_result_and_failures_leave_no_trace(args):
    with Store.memory(SCHEMA, seed=0) as store:
        store.run(lambda ctx: ctx.db.insert("agents", {"name": "a"})).unwrap()
        before = dump(store)
        result = store.mutation(add_item, args)
        match result:
            case Success(item_id):
                doc = store.run(lambda ctx: ctx.db.get(item_id)).unwrap()
                assert doc is not None
                assert store.storage.count("log") == 1
            case Failure(problem):
                assert isinstance(problem, ArgsInvalid | DocumentInvalid), problem
                assert problem.message
                assert dump(store) == before
            case _:
                raise AssertionError(f"not a Result: {result!r}")


valid_args = st.fixed_dictionaries(
    {
        "name": st.text(st.characters(exclude_categories=["Cs"]), max_size=5),
        "count": st.integers(-(2**63), 2**63 - 1),
        "score": st.one_of(st.floats(), st.integers(-(2**63), 2**63 - 1)),
        "tags": st.lists(st.text(st.characters(exclude_categories=["Cs"])), max_size=3),
        "kind": st.sampled_from(["a", 2]),
    }
)


@given(st.booleans(), valid_args)
def test_id_arguments_must_name_the_right_table(right_table, args):
    with Store.memory(SCHEMA, seed=0) as store:
        agent = store.run(lambda ctx: ctx.db.insert("agents", {"name": "a"})).unwrap()
        log = store.run(lambda ctx: ctx.db.insert("log", {"n": 0.0})).unwrap()
        before = dump(store)
        result = store.mutation(
            add_item, {**args, "owner": agent if right_table else log}
        )
        if right_table:
            item = store.run(lambda ctx: ctx.db.get(result.unwrap())).unwrap()
            assert item["owner"] == agent
            assert type(item["score"]) is float
        else:
            problem = result.failure()
            assert isinstance(problem, ArgsInvalid)
            assert problem.path == ".owner"
            assert "from table `log`" in problem.message
            assert dump(store) == before


VALID = {"name": "n", "count": 1, "score": 1.5, "tags": [], "kind": "a"}


def test_valid_arguments_succeed_and_write_both_documents():
    with Store.memory(SCHEMA, seed=0) as store:
        item_id = store.mutation(add_item, VALID).unwrap()
        doc = store.run(lambda ctx: ctx.db.get(item_id)).unwrap()
        assert {k: doc[k] for k in VALID} == VALID
        assert store.storage.count("log") == 1


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"deep": nested(15)}, "too nested"),
        ({"big": "x" * (1 << 20)}, "too large"),
    ],
)
def test_arguments_valid_but_document_too_big_roll_back_the_earlier_write(
    meta, fragment
):
    # Args may nest 64 deep and weigh 16 MiB; a document only 16 and 1 MiB.
    with Store.memory(SCHEMA, seed=0) as store:
        before = dump(store)
        problem = store.mutation(add_item, {**VALID, "meta": meta}).failure()
        assert isinstance(problem, DocumentInvalid)
        assert problem.table == "items"
        assert fragment in problem.message
        assert dump(store) == before
