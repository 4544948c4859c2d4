"""Tests for one_store.engine.vectors and the SQLite tables of vector indexes.

The request rules are in tests/acceptance/test_vector_search.py; here, what the
engine keeps: which values are indexed (``pack``), the rows of a vector table as
writes change it (``seq`` grows, a delete leaves a tombstone), and that a
rolled-back write leaves the table exactly as it was.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from returns.result import Failure

from one_store import ConvexError, Store, define_schema, define_table, mutation
from one_store.engine.sqlite.layout import pack
from one_store.engine.vectors import VectorFilterBuilder

SCHEMA = define_schema(
    {
        "docs": define_table().vector_index(
            "by_e", vector_field="e", dimensions=2, filter_fields=["tag"]
        )
    }
)
TABLE = '"docs$vector$by_e"'


@pytest.mark.parametrize(
    ("value", "packed"),
    [
        ([1.0, 2.0], struct.pack("<2f", 1.0, 2.0)),
        ([-0.0, 3.4e38], struct.pack("<2f", -0.0, 3.4e38)),
        ([1.0], None),
        ([1.0, 2.0, 3.0], None),
        ([1, 2.0], None),  # an int64 element: Convex indexes Float64 only
        ([True, 2.0], None),
        ((1.0, 2.0), None),
        ([1.0, math.nan], None),
        ([1.0, -math.inf], None),
        ([1.0, 1e39], None),  # beyond float32: an infinity once packed
        (None, None),
        ("1,2", None),
    ],
)
def test_pack_indexes_exactly_dimensions_finite_floats(value, packed):
    assert pack(value, 2) == packed


def rows(store: Store) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = store.storage.connection.execute(
        f"SELECT doc, seq, id, vector IS NOT NULL, f0 FROM {TABLE} ORDER BY doc"
    ).fetchall()
    return found


@pytest.mark.sqlite_only("reads the SQLite engine's vector side table")
def test_writes_keep_the_table_in_step_and_seq_grows():
    with Store.memory(SCHEMA) as store:
        a = store.run(lambda ctx: ctx.db.insert("docs", {"e": [1.0, 0.0]})).unwrap()
        b = store.run(lambda ctx: ctx.db.insert("docs", {"e": [1.0]})).unwrap()
        assert [(r[1], r[2], r[3]) for r in rows(store)] == [(1, a, 1)]
        store.run(lambda ctx: ctx.db.patch(b, {"e": [0.0, 1.0]})).unwrap()
        assert [(r[1], r[2]) for r in rows(store)] == [(1, a), (2, b)]
        store.run(lambda ctx: ctx.db.patch(a, {"other": 1})).unwrap()
        assert [r[1] for r in rows(store)] == [1, 2]  # the same entry: untouched
        store.run(lambda ctx: ctx.db.patch(a, {"tag": "x"})).unwrap()
        assert rows(store)[0][1] > 2
        store.run(lambda ctx: ctx.db.delete(a)).unwrap()
        tombstone = rows(store)[0]
        assert tombstone[3] == 0  # vector NULL: readers learn of the delete
        assert tombstone[1] == max(r[1] for r in rows(store))


@pytest.mark.sqlite_only("reads the SQLite engine's vector side table")
def test_a_rolled_back_write_leaves_the_table_as_it_was():
    with Store.memory(SCHEMA) as store:
        a = store.run(lambda ctx: ctx.db.insert("docs", {"e": [1.0, 0.0]})).unwrap()
        before = rows(store)

        @mutation(args={})
        def churn(ctx, args):
            ctx.db.insert("docs", {"e": [0.5, 0.5]})
            ctx.db.patch(a, {"e": [0.0, 1.0], "tag": "y"})
            ctx.db.delete(a)
            raise ConvexError("no")

        assert isinstance(store.mutation(churn, {}), Failure)
        assert rows(store) == before


@pytest.mark.sqlite_only("reads the SQLite engine's vector side table")
def test_clearing_a_table_tombstones_every_entry():
    with Store.memory(SCHEMA) as store:
        for i in range(3):
            doc = {"e": [1.0, float(i)]}
            store.run(lambda ctx: ctx.db.insert("docs", doc)).unwrap()  # noqa: B023
        with store.storage.write():
            store.storage.clear("docs")
        assert [r[3] for r in rows(store)] == [0, 0, 0]


def test_the_builder_flattens_nested_or_into_conditions():
    q = VectorFilterBuilder()
    built = q.or_(q.eq("a", 1), q.or_(q.eq("b", 2), q.or_()), q.eq("a", 1))
    assert built.conditions == (("a", 1), ("b", 2), ("a", 1))
