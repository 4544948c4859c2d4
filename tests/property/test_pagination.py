"""Walking pages returns every document exactly once, as Convex's cursors do.

A cursor is a key position, not an offset (Convex's paginate: docs.convex.dev/database/pagination):
documents inserted or deleted between pages do not shift later pages. So, while
pages are walked and documents come and go in between:

- no document is returned twice, and results stay in index order;
- every document present from the start and never deleted is returned;
- a document deleted before the walk reached it is not returned;
- a document inserted during the walk is returned exactly when its key lies after
  the cursor at the time it was inserted (the part of the range not yet walked),
  and never when it lies in the part already walked.

Cursors survive closing and reopening the file, and a cursor only fits its query.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_store import (
    ArgsInvalid,
    InvalidCursor,
    LimitExceeded,
    Store,
    define_schema,
    define_table,
    v,
)

SCHEMA = define_schema(
    {"t": define_table({"k": v.int64(), "i": v.int64()}).index("by_k", ["k"])}
)

keys = st.integers(0, 9)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), keys),
        st.tuples(st.just("delete"), st.integers(0, 1_000)),
        st.tuples(st.just("none"), st.just(0)),
    ),
    max_size=20,
)


def query(ctx: Any, order: str, low: int | None) -> Any:
    q = ctx.db.query("t").with_index(
        "by_k", None if low is None else (lambda r: r.gte("k", low))
    )
    return q.order(order)


def paginate(store: Store, order: str, low: int | None, options: Any) -> Any:
    """Run one ``paginate`` call; the Result."""
    return store.run(lambda ctx: query(ctx, order, low).paginate(options))


def delete(store: Store, doc_id: str) -> None:
    store.run(lambda ctx: ctx.db.delete(doc_id)).unwrap()


class Model:
    """What exists: ``i -> (k, seq)``; ``seq`` grows like ``_creationTime``."""

    def __init__(self) -> None:
        self.docs: dict[int, tuple[int, int]] = {}
        self.ids: dict[int, str] = {}
        self.seq = 0

    def add(self, store: Store, k: int) -> int:
        i = self.seq
        self.seq += 1
        self.ids[i] = store.run(
            lambda ctx: ctx.db.insert("t", {"k": k, "i": i})
        ).unwrap()
        self.docs[i] = (k, i)
        return i


@given(
    st.lists(keys, max_size=15),
    st.integers(1, 4),
    st.sampled_from(["asc", "desc"]),
    st.one_of(st.none(), keys),
    steps,
)
def test_walking_pages_returns_each_document_once(
    initial: list[int], size: int, order: str, low: int | None, between: list[Any]
) -> None:
    def in_range(i: int) -> bool:
        return low is None or model.docs[i][0] >= low

    def after_cursor(key: tuple[int, int]) -> bool:
        if last is None:
            return True
        return key > last if order == "asc" else key < last

    with Store.memory(SCHEMA, seed=0) as store:
        model = Model()
        for k in initial:
            model.add(store, k)
        original = set(model.docs)
        must_see = {i for i in original if in_range(i)}
        may_not_see: set[int] = set()  # deleted before being reached
        seen: list[int] = []
        last: tuple[int, int] | None = None
        cursor = None
        plan = iter(between)
        for _ in range(200):
            options = {"numItems": size, "cursor": cursor}
            result = paginate(store, order, low, options).unwrap()
            for doc in result["page"]:
                i = doc["i"]
                assert i in model.docs, "a deleted document came back"
                assert i not in seen, "a document came back twice"
                assert in_range(i)
                key = model.docs[i]
                assert after_cursor(key), "results went backwards"
                seen.append(i)
                last = key
            assert len(result["page"]) <= size
            if result["isDone"]:
                break
            cursor = result["continueCursor"]
            action, value = next(plan, ("none", 0))
            if action == "insert":
                i = model.add(store, value)
                if in_range(i) and after_cursor(model.docs[i]):
                    must_see.add(i)
            elif action == "delete" and model.docs:
                i = sorted(model.docs)[value % len(model.docs)]
                delete(store, model.ids[i])
                del model.docs[i]
                if i not in seen:
                    must_see.discard(i)
                    may_not_see.add(i)
        else:
            pytest.fail("the walk did not end")
        assert set(seen) >= must_see
        assert not set(seen) & may_not_see
        # Anything else returned was inserted during the walk, after the cursor.
        assert set(seen) - must_see <= set(model.ids) - original


def built_in_page(
    store: Store, index: str, order: Any, size: int, cursor: str | None
) -> Any:
    return store.run(
        lambda ctx: (
            ctx.db.query("t")
            .with_index(index)
            .order(order)
            .paginate({"numItems": size, "cursor": cursor})
        )
    ).unwrap()


@given(
    st.integers(0, 9),
    st.integers(1, 4),
    st.sampled_from(["asc", "desc"]),
    st.sampled_from(["by_id", "by_creation_time"]),
)
def test_pages_of_the_built_in_indexes(
    n: int, size: int, order: str, index: str
) -> None:
    with filled(n) as store:
        docs = store.run(lambda ctx: ctx.db.query("t").collect()).unwrap()
        field = "_id" if index == "by_id" else "_creationTime"
        want = sorted((d[field] for d in docs), reverse=order == "desc")
        seen: list[Any] = []
        cursor = None
        for _ in range(20):
            result = built_in_page(store, index, order, size, cursor)
            seen += [d[field] for d in result["page"]]
            if result["isDone"]:
                break
            cursor = result["continueCursor"]
        assert seen == want


def test_a_page_that_fills_exactly_is_not_done() -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        model = Model()
        for k in range(4):
            model.add(store, k)

        def page(cursor: str | None) -> Any:
            return store.run(
                lambda ctx: query(ctx, "asc", None).paginate(
                    {"numItems": 2, "cursor": cursor}
                )
            ).unwrap()

        first = page(None)
        second = page(first["continueCursor"])
        third = page(second["continueCursor"])
        assert [d["k"] for d in first["page"] + second["page"]] == [0, 1, 2, 3]
        assert (first["isDone"], second["isDone"]) == (False, False)
        assert (third["page"], third["isDone"]) == ([], True)
        # The end cursor stays at the end.
        again = page(third["continueCursor"])
        assert (again["page"], again["isDone"]) == ([], True)


def test_a_cursor_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pages.db"
    with Store.open(path, schema=SCHEMA, seed=0) as store:
        model = Model()
        for k in range(10):
            model.add(store, k)
        first = store.run(
            lambda ctx: query(ctx, "desc", 2).paginate({"numItems": 3, "cursor": None})
        ).unwrap()
    with Store.open(path, schema=SCHEMA, seed=0) as store:
        rest = store.run(
            lambda ctx: query(ctx, "desc", 2).paginate(
                {"numItems": 100, "cursor": first["continueCursor"]}
            )
        ).unwrap()
    assert [d["k"] for d in first["page"]] == [9, 8, 7]
    assert [d["k"] for d in rest["page"]] == [6, 5, 4, 3, 2]
    assert rest["isDone"] is True


def test_end_cursor_bounds_a_page() -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        model = Model()
        for k in range(6):
            model.add(store, k)
        first = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 2, "cursor": None}
            )
        ).unwrap()
        second = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 2, "cursor": first["continueCursor"]}
            )
        ).unwrap()
        model.add(store, 0)  # (0, newer) sorts inside the first page's interval
        # Re-running page 1 up to its old end picks up the new document (page grows).
        grown = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 2, "cursor": None, "endCursor": first["continueCursor"]}
            )
        ).unwrap()
        assert [d["k"] for d in grown["page"]] == [0, 0, 1]
        assert grown["continueCursor"] == first["continueCursor"]
        assert [d["k"] for d in second["page"]] == [2, 3]


# ------------------------------------------------------------------ bad input


def page_problem(store: Store, options: Any, order: str = "asc") -> Any:
    outcome = store.run(lambda ctx: query(ctx, order, None).paginate(options))
    return outcome.failure()


@pytest.mark.parametrize("num", [0, -1, 1.5, "10", None, True, 32_001])
def test_num_items_must_be_a_count_from_1(num: object) -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        problem = page_problem(store, {"numItems": num, "cursor": None})
        assert isinstance(problem, ArgsInvalid)
        assert problem.path == ".numItems"


@pytest.mark.parametrize("cursor", ["garbage", "eyJxIjogMX0=", "", 12, "!!!!"])
def test_a_garbage_cursor_is_invalid_cursor(cursor: object) -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        problem = page_problem(store, {"numItems": 1, "cursor": cursor})
        assert isinstance(problem, InvalidCursor)
        assert "t.by_k" in problem.message


def test_a_bad_cursor_leaves_nothing_written() -> None:
    with Store.memory(SCHEMA, seed=0) as store:

        def handler(ctx: Any) -> Any:
            ctx.db.insert("t", {"k": 1, "i": 1})
            return query(ctx, "asc", None).paginate({"numItems": 1, "cursor": "x"})

        assert isinstance(store.run(handler).failure(), InvalidCursor)
        assert store.run(lambda ctx: ctx.db.query("t").collect()).unwrap() == []


def test_a_cursor_from_another_query_is_invalid_cursor() -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        model = Model()
        for k in range(3):
            model.add(store, k)
        cursor = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 1, "cursor": None}
            )
        ).unwrap()["continueCursor"]
        for order, low in [("desc", None), ("asc", 1)]:
            options = {"numItems": 1, "cursor": cursor}
            problem = paginate(store, order, low, options).failure()
            assert isinstance(problem, InvalidCursor)
            assert "from a different query" in problem.message


# ------------------------------------------------------------------ read limits


def odd_k(ctx: Any, order: str = "asc") -> Any:
    """All documents of ``t`` by ``k``, keeping odd ``k`` (a filter that drops rows)."""
    return (
        ctx.db.query("t")
        .with_index("by_k")
        .order(order)
        .filter(lambda q: q.eq(q.mod(q.field("k"), 2), 1))
    )


def filled(n: int) -> Store:
    store = Store.memory(SCHEMA, seed=0)
    model = Model()
    for k in range(n):
        model.add(store, k)
    return store


def walk_step(store: Store, order: str, options: dict[str, Any]) -> Any:
    return store.run(lambda ctx: odd_k(ctx, order).paginate(options)).unwrap()


@given(
    st.integers(0, 12),
    st.integers(1, 5),
    st.one_of(st.none(), st.integers(1, 4)),
    st.one_of(st.none(), st.integers(1, 120)),
    st.sampled_from(["asc", "desc"]),
)
def test_pages_cut_by_read_limits_still_cover_everything_once(
    n: int, size: int, max_rows: int | None, max_bytes: int | None, order: str
) -> None:
    want = [k for k in range(n) if k % 2 == 1]
    if order == "desc":
        want.reverse()
    options: dict[str, Any] = {"numItems": size}
    if max_rows is not None:
        options["maximumRowsRead"] = max_rows
    if max_bytes is not None:
        options["maximumBytesRead"] = max_bytes
    with filled(n) as store:
        seen: list[int] = []
        cursor = None
        for _ in range(100):
            result = walk_step(store, order, {**options, "cursor": cursor})
            page = [d["k"] for d in result["page"]]
            seen += page
            assert len(page) <= size
            if result["pageStatus"] == "SplitRequired":
                # Cut short by a limit: never done, and it read no more than allowed.
                assert result["isDone"] is False
                assert len(page) < size
                assert max_rows is not None or max_bytes is not None
                if max_rows is not None and max_bytes is None:
                    assert len(page) <= max_rows
            if result["isDone"]:
                break
            cursor = result["continueCursor"]
        else:
            pytest.fail("the walk did not end")
        assert seen == want


def test_maximum_rows_read_counts_filtered_out_rows() -> None:
    with filled(10) as store:
        first = store.run(
            lambda ctx: odd_k(ctx).paginate(
                {"numItems": 10, "cursor": None, "maximumRowsRead": 3}
            )
        ).unwrap()
        # Rows k=0, 1, 2 were scanned; only 1 passed the filter.
        assert [d["k"] for d in first["page"]] == [1]
        assert (first["isDone"], first["pageStatus"]) == (False, "SplitRequired")
        second = store.run(
            lambda ctx: odd_k(ctx).paginate(
                {
                    "numItems": 10,
                    "cursor": first["continueCursor"],
                    "maximumRowsRead": 3,
                }
            )
        ).unwrap()
        assert [d["k"] for d in second["page"]] == [3, 5]  # k=3, 4, 5: after k=2
        rest = store.run(
            lambda ctx: odd_k(ctx).paginate(
                {"numItems": 10, "cursor": second["continueCursor"]}
            )
        ).unwrap()
        assert [d["k"] for d in rest["page"]] == [7, 9]
        assert (rest["isDone"], rest["pageStatus"]) == (True, None)


def test_a_page_always_reads_at_least_one_row() -> None:
    with filled(3) as store:
        result = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 5, "cursor": None, "maximumBytesRead": 1}
            )
        ).unwrap()
        assert [d["k"] for d in result["page"]] == [0]
        assert result["pageStatus"] == "SplitRequired"


def insert_padded(ctx: Any, k: int, pad: str) -> Any:
    return ctx.db.insert("t", {"k": k, "pad": pad})


def test_the_functions_read_limit_ends_a_page_instead_of_failing() -> None:
    big = define_schema({"t": define_table({"k": v.int64(), "pad": v.string()})})
    pad = "x" * 1_000_000
    with Store.memory(big, seed=0) as store:
        for k in range(18):  # one mutation each: 16 MiB written at most per call
            store.run(partial(insert_padded, k=k, pad=pad)).unwrap()

        def page(cursor: str | None) -> Any:
            return store.run(
                lambda ctx: ctx.db.query("t").paginate(
                    {"numItems": 100, "cursor": cursor}
                )
            ).unwrap()

        first = page(None)
        # 16 MiB hold 16 documents of 1 MB: the 17th read crosses the limit.
        assert [d["k"] for d in first["page"]] == list(range(16))
        assert (first["isDone"], first["pageStatus"]) == (False, "SplitRequired")
        second = page(first["continueCursor"])
        assert [d["k"] for d in second["page"]] == [16, 17]
        assert (second["isDone"], second["pageStatus"]) == (True, None)

        def page_after_spending(cursor: str | None) -> Any:
            def handler(ctx: Any) -> Any:
                ctx.db.query("t").take(16)  # 16 MB of the 16 MiB budget
                return ctx.db.query("t").paginate({"numItems": 5, "cursor": cursor})

            return store.run(handler)

        # A page with nowhere to continue from fails; one started at a cursor is
        # returned empty, to continue from the same place (Convex's query.cursor()).
        assert isinstance(page_after_spending(None).failure(), LimitExceeded)
        stalled = page_after_spending(first["continueCursor"]).unwrap()
        assert (stalled["page"], stalled["isDone"], stalled["pageStatus"]) == (
            [],
            False,
            "SplitRequired",
        )
        assert stalled["continueCursor"] == first["continueCursor"]

        def then_read_more(ctx: Any) -> Any:
            ctx.db.query("t").paginate({"numItems": 100, "cursor": None})
            return ctx.db.query("t").first()

        # The budget is spent: any further read in the same function fails, as Convex.
        problem = store.run(then_read_more).failure()
        assert isinstance(problem, LimitExceeded)
        assert problem.limit == "bytesRead"


def test_split_cursor_is_the_middle_of_the_scanned_rows() -> None:
    with filled(7) as store:

        def page(options: dict[str, Any]) -> Any:
            return store.run(
                lambda ctx: query(ctx, "asc", None).paginate(options)
            ).unwrap()

        small = page({"numItems": 2, "cursor": None})
        assert (small["splitCursor"], small["pageStatus"]) == (None, None)
        whole = page({"numItems": 5, "cursor": None})
        assert [d["k"] for d in whole["page"]] == [0, 1, 2, 3, 4]
        split = whole["splitCursor"]
        # Splitting the page at splitCursor gives two adjacent halves.
        head = page({"numItems": 1, "cursor": None, "endCursor": split})
        tail = page(
            {"numItems": 1, "cursor": split, "endCursor": whole["continueCursor"]}
        )
        assert [d["k"] for d in head["page"]] == [0, 1, 2]
        assert [d["k"] for d in tail["page"]] == [3, 4]


def test_a_page_near_its_read_limit_recommends_a_split() -> None:
    with filled(10) as store:
        result = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 7, "cursor": None, "maximumRowsRead": 8}
            )
        ).unwrap()
        # 7 rows scanned > 3/4 of 8: a full page, but close to the limit.
        assert len(result["page"]) == 7
        assert (result["isDone"], result["pageStatus"]) == (False, "SplitRecommended")
        under = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 6, "cursor": None, "maximumRowsRead": 8}
            )
        ).unwrap()
        assert under["pageStatus"] is None


def test_end_cursor_pages_ignore_the_page_limits() -> None:
    with filled(6) as store:
        end = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 4, "cursor": None}
            )
        ).unwrap()["continueCursor"]
        result = store.run(
            lambda ctx: query(ctx, "asc", None).paginate(
                {"numItems": 1, "cursor": None, "endCursor": end, "maximumRowsRead": 1}
            )
        ).unwrap()
        assert [d["k"] for d in result["page"]] == [0, 1, 2, 3]
        assert result["continueCursor"] == end


@pytest.mark.parametrize("name", ["maximumRowsRead", "maximumBytesRead"])
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_read_limits_must_be_counts_from_1(name: str, value: object) -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        problem = page_problem(store, {"numItems": 1, "cursor": None, name: value})
        assert isinstance(problem, ArgsInvalid)
        assert problem.path == f".{name}"
        if value == 0:
            assert problem.message.startswith("InvalidPaginationLimit")


def test_one_function_may_walk_every_page() -> None:
    with filled(5) as store:

        def walk(ctx: Any) -> list[int]:
            seen: list[int] = []
            cursor = None
            while True:
                result = query(ctx, "asc", None).paginate(
                    {"numItems": 2, "cursor": cursor}
                )
                seen += [d["k"] for d in result["page"]]
                if result["isDone"]:
                    return seen
                cursor = result["continueCursor"]

        assert store.run(walk).unwrap() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("filtered", [False, True])
def test_a_page_cut_by_the_read_limit_spends_the_row_that_crossed_it(
    filtered: bool,
) -> None:
    # A page without filters is read in one loop, a filtered one row by row;
    # both count the row that crossed the 16 MiB limit, so the function cannot
    # go on to read even a tiny document afterwards.
    big = define_schema({"t": define_table({"k": v.int64(), "pad": v.string()})})
    with Store.memory(big, seed=0) as store:
        for k in range(17):
            store.run(partial(insert_padded, k=k, pad="x" * 1_000_000)).unwrap()
        tiny = store.run(partial(insert_padded, k=99, pad="")).unwrap()

        def page_then_get(ctx: Any) -> Any:
            q = ctx.db.query("t")
            if filtered:
                q = q.filter(lambda f: f.gte(f.field("k"), 0))
            page = q.paginate({"numItems": 100, "cursor": None})
            assert (len(page["page"]), page["pageStatus"]) == (16, "SplitRequired")
            return ctx.db.get(tiny)

        problem = store.run(page_then_get).failure()
        assert isinstance(problem, LimitExceeded)
        assert problem.limit == "bytesRead"
