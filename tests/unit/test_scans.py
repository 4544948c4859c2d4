"""Tests for one_store.engine.sqlite.scans: the SQL of index scans, ``by_id`` scans,
the equality prefilter and text search, asserted as ``(sql, params)`` (peewee's
``assertSQL``), and the rows the SQLite engine returns for them.

Scans are built by hand here, as a query (or the scheduler) asks for them; what a
query asks for is tested in test_query.py and test_search.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from one_store import UNSET, Store, define_schema, define_table, v
from one_store.engine.backend import IndexScan, SearchScan
from one_store.engine.ranges import KeyRange
from one_store.engine.sqlite.scans import (
    equality_sql,
    id_bounds,
    index_scan_sql,
    prefilter_sql,
    search_sql,
)
from one_store.model.keys import prefix_end, sort_key

SCHEMA = define_schema(
    {
        "items": define_table({"a": v.optional(v.any()), "body": v.optional(v.any())})
        .index("by_a", ["a"])
        .search_index("search_body", search_field="body", filter_fields=["a"]),
    }
)
A = '"_k_by_a"'
PAST = b"\xff"


@pytest.fixture
def db() -> Iterator[Store]:
    with Store.memory(SCHEMA, seed=0) as store:
        yield store


def insert(store: Store, *docs: dict[str, Any]) -> list[str]:
    ids: list[str] = store.run(
        lambda ctx: [ctx.db.insert("items", d) for d in docs]
    ).unwrap()
    return ids


def rows(store: Store, scan: IndexScan) -> list[tuple[Any, ...]]:
    """Every row the engine returns for ``scan``, in one read transaction."""
    with store.storage.read():
        found = store.storage.index_rows(scan)
        try:
            return [tuple(row) for row in found]
        finally:
            found.close()


# ------------------------------------------------------------------ index scans


def test_a_whole_index_is_one_ordered_select() -> None:
    assert index_scan_sql(IndexScan("items", "by_a")) == (
        f'SELECT _body, {A} FROM "items" ORDER BY {A} ASC',
        [],
    )


def test_bounds_order_limit_and_bodies_only() -> None:
    scan = IndexScan("items", "by_a", b"\x09\x01", b"\x09\x02", "desc", 10, (), True)
    assert index_scan_sql(scan) == (
        f'SELECT _body FROM "items" WHERE {A} >= ? AND {A} < ? '
        f"ORDER BY {A} DESC LIMIT 10",
        [b"\x09\x01", b"\x09\x02"],
    )


def test_only_the_bounds_a_range_has_are_in_the_sql() -> None:
    low_only = IndexScan("items", "by_a", b"\x10a\x00")
    high_only = IndexScan("items", "by_a", b"", b"\x10a\x00")
    assert index_scan_sql(low_only) == (
        f'SELECT _body, {A} FROM "items" WHERE {A} >= ? ORDER BY {A} ASC',
        [b"\x10a\x00"],
    )
    assert index_scan_sql(high_only) == (
        f'SELECT _body, {A} FROM "items" WHERE {A} < ? ORDER BY {A} ASC',
        [b"\x10a\x00"],
    )


def test_the_sql_text_is_built_once_per_shape() -> None:
    # The same text object serves every scan of one shape, whatever its bounds
    # (sqlite3's statement cache keys on the text); another shape gets another.
    first = index_scan_sql(IndexScan("items", "by_a", b"\x01", b"\x02", limit=5))[0]
    second = index_scan_sql(IndexScan("items", "by_a", b"\x03", b"\x04", limit=5))[0]
    other = index_scan_sql(IndexScan("items", "by_a", b"\x03", b"\x04", limit=6))[0]
    assert first is second
    assert other != first


def test_equalities_select_bodies_only_for_rows_passing_them() -> None:
    scan = IndexScan(
        "items", "by_a", b"\x01", None, equalities=((("body",), "hi"), (("a",), 7))
    )
    case = (
        "CASE WHEN (json_type(_body, ?) = 'text' AND json_extract(_body, ?) = ?) "
        "AND (json_type(_body, ?) = 'integer' AND json_extract(_body, ?) = ?) "
        "THEN _body END"
    )
    assert index_scan_sql(scan) == (
        f'SELECT {case}, {A}, length(_body) FROM "items" WHERE {A} >= ? '
        f"ORDER BY {A} ASC",
        ['$."body"', '$."body"', "hi", '$."a"', '$."a"', 7, b"\x01"],
    )


# ------------------------------------------------------------------ the prefilter


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UNSET, ("json_type(_body, ?) IS NULL", ['$."a"."b"'])),
        (None, ("json_type(_body, ?) = 'null'", ['$."a"."b"'])),
        (True, ("json_type(_body, ?) = ?", ['$."a"."b"', "true"])),
        (False, ("json_type(_body, ?) = ?", ['$."a"."b"', "false"])),
        (
            "x",
            (
                "(json_type(_body, ?) = 'text' AND json_extract(_body, ?) = ?)",
                ['$."a"."b"', '$."a"."b"', "x"],
            ),
        ),
        (
            -3,
            (
                "(json_type(_body, ?) = 'integer' AND json_extract(_body, ?) = ?)",
                ['$."a"."b"', '$."a"."b"', -3],
            ),
        ),
    ],
)
def test_equality_sql_is_type_strict(value: object, expected: object) -> None:
    assert equality_sql(("a", "b"), value) == expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("a",), 1.0),  # -0.0 and NaN compare in Python
        (("a",), b"x"),  # bytes are tagged objects in storage
        (("a",), [1]),
        (("a",), {"b": 1}),
        (("a",), "x\x00y"),  # json_extract ends a string at a NUL
        (("a", "$bytes"), UNSET),  # a storage tag, not a field
        (('a"',), 1),  # would need escaping in a JSON path
        (("a\\",), 1),
    ],
)
def test_what_sql_cannot_test_exactly_is_left_out(
    path: tuple[str, ...], value: object
) -> None:
    assert equality_sql(path, value) is None


def test_the_prefilter_is_the_leading_run_sql_can_test() -> None:
    assert prefilter_sql(((("a",), 1.5), (("b",), 1))) is None
    sql, params = prefilter_sql(((("a",), "x"), (("b",), 1.5), (("c",), 2))) or ("", [])
    assert sql == "(json_type(_body, ?) = 'text' AND json_extract(_body, ?) = ?)"
    assert params == ['$."a"', '$."a"', "x"]


@pytest.mark.sqlite_only("the SQLite engine's JSON prefilter")
def test_rows_failing_the_prefilter_come_back_undecoded_with_their_length(
    db: Store,
) -> None:
    insert(db, {"a": 1, "body": "keep"}, {"a": 1, "body": "drop"})
    low = sort_key(1)
    scan = IndexScan(
        "items", "by_a", low, prefix_end(low), equalities=((("body",), "keep"),)
    )
    found = rows(db, scan)
    assert [row[0] is None for row in found] == [False, True]
    kept, dropped = found
    assert '"body":"keep"' in kept[0]
    assert dropped[2] > 0  # its stored length, counted as read


# ------------------------------------------------------------------ by_id


def test_by_id_bounds_map_key_bounds_to_text_bounds() -> None:
    key = sort_key("abc")
    assert id_bounds(KeyRange(key, key + PAST)) == (
        ["_id >= ?", "_id <= ?"],
        ["abc", "abc"],
    )
    assert id_bounds(KeyRange(b"\x11")) is None  # past every string: empty
    assert id_bounds(KeyRange(b"", b"\x10")) is None
    assert id_bounds(KeyRange()) == ([], [])


def test_by_id_sql_has_no_limit_and_always_selects_the_id() -> None:
    key = sort_key("abc")
    scan = IndexScan("items", "by_id", key, None, limit=3, bodies_only=True)
    assert index_scan_sql(scan) == (
        'SELECT _body, _id FROM "items" WHERE _id >= ? ORDER BY _id ASC',
        ["abc"],
    )
    empty = IndexScan("items", "by_id", b"\x11")
    assert index_scan_sql(empty)[0] == (
        'SELECT _body, _id FROM "items" WHERE 0 ORDER BY _id ASC'
    )


def test_by_id_rows_are_rechecked_on_their_keys_before_the_limit(db: Store) -> None:
    ids = sorted(insert(db, *({"a": i} for i in range(4))))
    # Strictly after ids[0]: the text bound "_id >= ids[0]" is wider (it holds
    # ids[0] itself), so the engine drops that row before counting the limit.
    after_first = sort_key(ids[0]) + b"\x00"
    found = rows(db, IndexScan("items", "by_id", after_first, limit=2))
    assert [row[1] for row in found] == [sort_key(ids[1]), sort_key(ids[2])]
    bodies = rows(db, IndexScan("items", "by_id", after_first, bodies_only=True))
    assert [len(row) for row in bodies] == [1, 1, 1]
    assert rows(db, IndexScan("items", "by_id", after_first, limit=0)) == []


# ------------------------------------------------------------------ search


def test_search_sql_joins_ranked_matches_to_their_documents() -> None:
    scan = SearchScan("items", "search_body", ("deploy", "fail"), ((0, b"\x09\x01"),))
    assert search_sql(scan, 50) == (
        'SELECT d._body, s.rank, d._creationTime, d._id FROM "items$search$search_body" s '
        'JOIN "items" d ON d.rowid = s.rowid WHERE s.text MATCH ? AND s.f0 = ? '
        "ORDER BY s.rank, d._creationTime DESC, d._id LIMIT 50",
        ['"deploy" OR "fail"*', b"\x09\x01"],
    )


def test_search_top_breaks_ties_newest_first(db: Store) -> None:
    ids = insert(db, *({"body": "same words"} for _ in range(3)))
    scan = SearchScan("items", "search_body", ("same",))
    with db.storage.read():
        top = db.storage.search_top(scan, 2, 1024)
    assert top is not None
    assert [json.loads(body)["_id"] for body, _ in top] == [ids[2], ids[1]]


@pytest.mark.sqlite_only("FTS5's top-n gives up on ties; PostgreSQL orders ties in SQL")
def test_search_top_gives_up_when_ties_run_past_the_limit(db: Store) -> None:
    insert(db, *({"body": "same words"} for _ in range(3)))
    scan = SearchScan("items", "search_body", ("same",))
    with db.storage.read():
        assert db.storage.search_top(scan, 1, 2) is None  # three tied, two allowed
        everything = db.storage.search_rows(scan, 2)
        try:
            assert len(list(everything)) == 2
        finally:
            everything.close()
