"""Tests for one_store.runtime.watch: store.watch, re-running only what a write touched.

Convex's rule (convex-backend ``crates/database/src/reads.rs``,
``ReadSet::writes_overlap``; ``subscription.rs``): a subscription re-runs when a
committed write's old or new document lies in what the last run read, and a
result equal to the last one is not sent again. Each precision test counts the
handler's runs and shows that a write outside the read set causes none.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import (
    ArgsInvalid,
    ContextError,
    FunctionNotFound,
    HandlerError,
    Rejected,
    Store,
    Watch,
    action,
    define_schema,
    define_table,
    internal_mutation,
    mutation,
    query,
    v,
)
from one_store.testing import FakeClock, wait_for

SCHEMA = define_schema(
    {
        "msgs": define_table(
            {"thread": v.string(), "body": v.string(), "n": v.optional(v.int64())}
        )
        .index("by_thread", ["thread"])
        .search_index("search_body", search_field="body", filter_fields=["thread"]),
        "other": define_table({"x": v.int64()}),
    }
)

RUNS: dict[str, int] = {}


def counted(name: str) -> None:
    RUNS[name] = RUNS.get(name, 0) + 1


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    RUNS.clear()


@pytest.fixture
def store() -> Iterator[Store]:
    with Store.memory(SCHEMA) as s:
        yield s


@query(args={"thread": v.string()})
def in_thread(ctx, args):
    counted("in_thread")
    return [
        m["body"]
        for m in ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .collect()
    ]


@query(args={"thread": v.string(), "n": v.int64()})
def first_n(ctx, args):
    counted("first_n")
    return [
        m["body"]
        for m in ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .take(args["n"])
    ]


@query(args={"thread": v.string()})
def newest(ctx, args):
    counted("newest")
    doc = (
        ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .order("desc")
        .first()
    )
    return None if doc is None else doc["body"]


@query(args={"id": v.id("msgs")})
def by_id(ctx, args):
    counted("by_id")
    doc = ctx.db.get(args["id"])
    return None if doc is None else doc["body"]


@query(args={})
def everything(ctx, args):
    counted("everything")
    return len(ctx.db.query("msgs").collect())


@query(args={"thread": v.string()})
def long_ones(ctx, args):
    counted("long_ones")
    return [
        m["body"]
        for m in ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .filter(lambda q: q.eq(q.field("n"), 1))
        .collect()
    ]


@query(args={"text": v.string(), "thread": v.string()})
def search(ctx, args):
    counted("search")
    return [
        m["body"]
        for m in ctx.db.query("msgs")
        .with_search_index(
            "search_body",
            lambda q: q.search("body", args["text"]).eq("thread", args["thread"]),
        )
        .take(10)
    ]


@query(args={"thread": v.string()})
def page_of_two(ctx, args):
    counted("page")
    page = (
        ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .paginate({"numItems": 2, "cursor": None})
    )
    return [m["body"] for m in page["page"]]


@query(args={})
def others(ctx, args):
    counted("others")
    return [d["x"] for d in ctx.db.query("other").collect()]


@mutation(args={"thread": v.string(), "body": v.string()})
def send(ctx, args):
    return ctx.db.insert("msgs", {"thread": args["thread"], "body": args["body"]})


@mutation(args={"id": v.id("msgs"), "fields": v.any()})
def patch(ctx, args):
    ctx.db.patch(args["id"], args["fields"])


def put(store: Store, thread: str, body: str, **fields: Any) -> str:
    doc = {"thread": thread, "body": body, **fields}
    return str(store.run(lambda ctx: ctx.db.insert("msgs", doc)).unwrap())


def change(store: Store, doc_id: str, **fields: Any) -> None:
    store.mutation(patch, {"id": doc_id, "fields": fields}).unwrap()


# ------------------------------------------------------------------ the contract


def test_the_first_run_happens_inside_watch_and_on_change_is_not_called_for_it(
    store: Store,
) -> None:
    put(store, "a", "one")
    seen: list[object] = []
    w = store.watch(in_thread, {"thread": "a"}, on_change=seen.append)
    assert w.result == Success(["one"])
    assert RUNS == {"in_thread": 1}
    assert seen == []
    assert isinstance(w, Watch)


def test_a_write_through_the_store_has_re_run_the_watch_when_the_call_returns(
    store: Store,
) -> None:
    threads: list[int] = []
    seen: list[object] = []

    def on_change(result: object) -> None:
        threads.append(threading.get_ident())
        seen.append(result)

    w = store.watch(in_thread, {"thread": "a"}, on_change=on_change)
    store.mutation(send, {"thread": "a", "body": "hi"}).unwrap()
    assert w.result == Success(["hi"])
    assert seen == [Success(["hi"])]
    assert threads == [threading.get_ident()]  # the writing thread


def test_a_path_can_be_watched(tmp_path: Any) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "schema.py").write_text(
        "from one_store import define_schema, define_table, v\n"
        "schema = define_schema({'notes': define_table({'text': v.string()})})\n"
    )
    (app / "notes.py").write_text(
        "from one_store import mutation, query, v\n"
        "@query(args={})\n"
        "def count(ctx, args):\n"
        "    return len(ctx.db.query('notes').collect())\n"
        "@mutation(args={})\n"
        "def add(ctx, args):\n"
        "    return ctx.db.insert('notes', {'text': 'x'})\n"
    )
    with Store.memory(app=app) as s, s.watch("notes:count", {}) as w:
        s.mutation("notes:add", {}).unwrap()
        assert w.result == Success(1)
        with pytest.raises(ContextError, match="watches queries only"):
            s.watch("notes:add", {})


# ------------------------------------------------------------------ precision, per kind of read


def test_a_document_read_by_id_re_runs_only_for_writes_to_that_document(
    store: Store,
) -> None:
    a, b = put(store, "t", "a"), put(store, "t", "b")
    w = store.watch(by_id, {"id": a})
    change(store, b, body="b2")
    put(store, "t", "c")
    assert RUNS["by_id"] == 1
    change(store, a, body="a2")
    assert (RUNS["by_id"], w.result) == (2, Success("a2"))
    store.run(lambda ctx: ctx.db.delete(a)).unwrap()
    assert (RUNS["by_id"], w.result) == (3, Success(None))


def test_an_index_range_re_runs_for_writes_whose_old_or_new_key_is_in_it(
    store: Store,
) -> None:
    put(store, "a", "one")
    b = put(store, "b", "two")
    w = store.watch(in_thread, {"thread": "a"})
    put(store, "b", "elsewhere")
    put(store, "c", "elsewhere")
    change(store, b, body="still elsewhere")
    assert RUNS["in_thread"] == 1
    change(store, b, thread="a")  # moves in: its new key is in the range
    assert (RUNS["in_thread"], w.result) == (2, Success(["one", "still elsewhere"]))
    change(store, b, thread="z")  # moves out: its old key was in the range
    assert (RUNS["in_thread"], w.result) == (3, Success(["one"]))


def test_take_n_reads_only_the_keys_it_consumed(store: Store) -> None:
    ids = [put(store, "a", f"m{i}") for i in range(5)]
    w = store.watch(first_n, {"thread": "a", "n": 2})
    assert w.result == Success(["m0", "m1"])
    change(store, ids[3], body="beyond")  # past the second key: never read
    put(store, "a", "newer")  # sorts after every key read
    store.run(lambda ctx: ctx.db.delete(ids[4])).unwrap()
    assert RUNS["first_n"] == 1
    change(store, ids[1], body="m1!")
    assert (RUNS["first_n"], w.result) == (2, Success(["m0", "m1!"]))
    store.run(lambda ctx: ctx.db.delete(ids[0])).unwrap()
    assert (RUNS["first_n"], w.result) == (3, Success(["m1!", "m2"]))


def test_take_reading_a_whole_short_range_sees_an_insert_at_its_end(
    store: Store,
) -> None:
    put(store, "a", "only")
    w = store.watch(first_n, {"thread": "a", "n": 2})
    put(store, "a", "second")  # the range ran out: its end was read
    assert (RUNS["first_n"], w.result) == (2, Success(["only", "second"]))


def test_first_in_descending_order_reads_only_the_newest_key(store: Store) -> None:
    old = put(store, "a", "old")
    put(store, "a", "new")
    w = store.watch(newest, {"thread": "a"})
    change(store, old, body="old, edited")
    assert RUNS["newest"] == 1
    put(store, "a", "newest")
    assert (RUNS["newest"], w.result) == (2, Success("newest"))


def test_a_full_table_scan_re_runs_for_any_write_to_its_table_only(
    store: Store,
) -> None:
    w = store.watch(everything, {})
    store.run(lambda ctx: ctx.db.insert("other", {"x": 1})).unwrap()
    assert RUNS["everything"] == 1
    put(store, "z", "any thread")
    assert (RUNS["everything"], w.result) == (2, Success(1))


def test_a_scan_of_a_table_that_does_not_exist_yet_sees_its_first_insert() -> None:
    with Store.memory() as s:

        @query(args={})
        def notes(ctx, args):
            counted("notes")
            return len(ctx.db.query("notes").collect())

        w = s.watch(notes, {})
        s.run(lambda ctx: ctx.db.insert("elsewhere", {"x": 1})).unwrap()
        assert RUNS["notes"] == 1
        s.run(lambda ctx: ctx.db.insert("notes", {"x": 1})).unwrap()
        assert (RUNS["notes"], w.result) == (2, Success(1))


def test_a_filtered_range_re_runs_when_a_scanned_document_starts_to_match(
    store: Store,
) -> None:
    doc = put(store, "a", "short", n=0)
    outside = put(store, "b", "other", n=0)
    w = store.watch(long_ones, {"thread": "a"})
    assert w.result == Success([])
    change(store, outside, n=1)
    assert RUNS["long_ones"] == 1
    change(store, doc, n=1)  # filtered out before, scanned all the same
    assert (RUNS["long_ones"], w.result) == (2, Success(["short"]))


def test_a_search_re_runs_only_for_documents_that_match_it(store: Store) -> None:
    w = store.watch(search, {"text": "hello", "thread": "a"})
    put(store, "a", "goodbye world")  # no term
    put(store, "b", "hello there")  # the filter differs
    store.run(lambda ctx: ctx.db.insert("other", {"x": 1})).unwrap()
    assert RUNS["search"] == 1
    put(store, "a", "hello again")
    assert (RUNS["search"], w.result) == (2, Success(["hello again"]))


def test_the_last_search_term_matches_as_a_prefix(store: Store) -> None:
    w = store.watch(search, {"text": "hel", "thread": "a"})
    put(store, "a", "help wanted")
    assert (RUNS["search"], w.result) == (2, Success(["help wanted"]))


def test_a_search_result_re_runs_when_a_returned_document_changes(
    store: Store,
) -> None:
    doc = put(store, "a", "hello", n=0)
    w = store.watch(search, {"text": "hello", "thread": "a"})
    change(store, doc, body="hello, edited")
    assert (RUNS["search"], w.result) == (2, Success(["hello, edited"]))


def test_a_page_reads_up_to_its_last_document(store: Store) -> None:
    ids = [put(store, "a", f"m{i}") for i in range(4)]
    w = store.watch(page_of_two, {"thread": "a"})
    change(store, ids[3], body="beyond the page")
    put(store, "a", "after")
    assert RUNS["page"] == 1
    change(store, ids[0], body="m0!")
    assert (RUNS["page"], w.result) == (2, Success(["m0!", "m1"]))


def test_a_re_run_with_an_equal_result_delivers_nothing(store: Store) -> None:
    doc = put(store, "a", "same")
    seen: list[object] = []
    w = store.watch(in_thread, {"thread": "a"}, on_change=seen.append)
    updates = w.updates(timeout=0)
    change(store, doc, n=5)  # in the read set, but the bodies stay the same
    assert RUNS["in_thread"] == 2
    assert seen == []
    with pytest.raises(TimeoutError):
        next(updates)


def test_int_and_float_results_are_different_results(store: Store) -> None:
    @query(args={})
    def number(ctx, args):
        doc = ctx.db.query("other").first()
        return None if doc is None else doc["x"]

    @mutation(args={})
    def set_float(ctx, args):
        doc = ctx.db.query("other").first()
        ctx.db.replace(doc["_id"], {"x": 1})

    store.run(lambda ctx: ctx.db.insert("other", {"x": 1})).unwrap()
    seen: list[object] = []
    store.watch(number, {}, on_change=seen.append)
    store.mutation(set_float, {}).unwrap()
    assert seen == []  # 1 is still 1


# ------------------------------------------------------------------ results, failures, misuse


@query(args={"thread": v.string()})
def fussy(ctx, args):
    if (
        ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .first()
    ):
        return "found"
    raise ValueError("nothing yet")


def test_a_failing_query_holds_a_failure_and_a_later_success_replaces_it(
    store: Store,
) -> None:
    seen: list[object] = []
    w = store.watch(fussy, {"thread": "a"}, on_change=seen.append)
    match w.result:
        case Failure(HandlerError(exception=ValueError())):
            pass
        case other:
            pytest.fail(f"expected a HandlerError, got {other!r}")
    put(store, "a", "x")
    assert w.result == Success("found")
    assert seen == [Success("found")]


def test_unknown_paths_and_bad_args_are_failure_results_not_exceptions(
    store: Store,
) -> None:
    w = store.watch("nowhere:nothing", {})
    assert isinstance(w.result.failure(), FunctionNotFound)
    bad = store.watch(in_thread, {"thread": 3})
    match bad.result:
        case Failure(ArgsInvalid(path=".thread")):
            pass
        case other:
            pytest.fail(f"expected ArgsInvalid at .thread, got {other!r}")
    put(store, "a", "x")
    assert isinstance(bad.result.failure(), ArgsInvalid)
    assert "in_thread" not in RUNS


def test_a_rejected_query_holds_the_rejection(store: Store) -> None:
    from one_store import ConvexError

    @query(args={})
    def no(ctx, args):
        raise ConvexError({"why": "no"})

    assert store.watch(no, {}).result.failure() == Rejected({"why": "no"})


def test_watching_a_mutation_or_an_action_is_misuse(store: Store) -> None:
    @action(args={})
    def act(ctx, args):
        return None

    with pytest.raises(ContextError, match="watches queries only"):
        store.watch(send, {"thread": "a", "body": "x"})
    with pytest.raises(ContextError, match="watches queries only"):
        store.watch(act, {})


def test_a_watch_on_a_closed_store_raises() -> None:
    s = Store.memory(SCHEMA)
    s.close()
    with pytest.raises(ContextError, match="closed"):
        s.watch(in_thread, {"thread": "a"})


def test_an_exception_in_on_change_is_logged_and_never_reaches_the_writer(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(result: object) -> None:
        raise RuntimeError("callback bug")

    w = store.watch(in_thread, {"thread": "a"}, on_change=broken)
    with caplog.at_level(logging.ERROR, logger="one_store"):
        assert isinstance(store.mutation(send, {"thread": "a", "body": "x"}), Success)
    assert w.result == Success(["x"])
    [record] = [r for r in caplog.records if r.name == "one_store"]
    assert "on_change" in record.getMessage()
    assert record.exc_info is not None
    assert "callback bug" in str(record.exc_info[1])


def test_on_change_may_write_to_the_store(store: Store) -> None:
    def echo(result: Any) -> None:
        if result.unwrap() == ["ping"]:
            store.mutation(send, {"thread": "b", "body": "pong"}).unwrap()

    a = store.watch(in_thread, {"thread": "a"}, on_change=echo)
    b = store.watch(in_thread, {"thread": "b"})
    store.mutation(send, {"thread": "a", "body": "ping"}).unwrap()
    assert a.result == Success(["ping"])
    assert b.result == Success(["pong"])


# ------------------------------------------------------------------ updates, async, close


def test_updates_yields_every_later_result_in_order_and_ends_on_close(
    store: Store,
) -> None:
    w = store.watch(everything, {})
    updates = w.updates(timeout=5.0)
    for body in "abc":
        put(store, "t", body)
    w.close()
    assert [r.unwrap() for r in updates] == [1, 2, 3]
    assert list(w.updates()) == []  # closed: ends at once
    assert w.result == Success(3)  # kept after close
    put(store, "t", "after close")
    assert (RUNS["everything"], w.result, w.closed) == (4, Success(3), True)


def test_updates_raises_timeout_error_when_nothing_comes(store: Store) -> None:
    w = store.watch(everything, {})
    with pytest.raises(TimeoutError):
        next(w.updates(timeout=0.01))


def test_closing_the_store_closes_its_watches() -> None:
    s = Store.memory(SCHEMA)
    w = s.watch(everything, {})
    updates = w.updates(timeout=5.0)
    s.close()
    assert w.closed
    assert list(updates) == []
    assert w.result == Success(0)


def test_the_context_manager_closes_the_watch(store: Store) -> None:
    with store.watch(everything, {}) as w:
        assert w.result == Success(0)
    assert w.closed
    put(store, "t", "x")
    assert RUNS["everything"] == 1


def test_async_for_receives_each_update_without_a_thread_per_watch(
    store: Store,
) -> None:
    w = store.watch(everything, {})

    async def consume() -> list[int]:
        got: list[int] = []
        async for r in w:
            got.append(r.unwrap())
            if len(got) == 3:
                break
        return got

    async def main() -> list[int]:
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)  # the consumer subscribes
        for body in "xyz":
            await asyncio.to_thread(put, store, "t", body)
        return await asyncio.wait_for(task, timeout=10)

    assert asyncio.run(main()) == [1, 2, 3]


def test_async_for_ends_when_the_watch_closes(store: Store) -> None:
    w = store.watch(everything, {})

    async def main() -> list[object]:
        got: list[object] = []
        iterator = w.__aiter__()
        w.close()
        async for r in iterator:
            got.append(r)
        return got

    assert asyncio.run(main()) == []


# ------------------------------------------------------------------ scheduler, identity, clock


@internal_mutation(args={"body": v.string()})
def later(ctx, args):
    ctx.db.insert("msgs", {"thread": "a", "body": args["body"]})


@mutation(args={})
def schedule(ctx, args):
    ctx.scheduler.run_after(1000, later, {"body": "scheduled"})


def test_a_scheduled_job_run_by_the_scheduler_re_runs_the_watch() -> None:
    clock = FakeClock(1_000_000.0)
    with Store.memory(SCHEMA, clock=clock) as s:
        w = s.watch(in_thread, {"thread": "a"})
        s.mutation(schedule, {}).unwrap()
        assert w.result == Success([])
        assert s.scheduler.advance(1000) == 1
        assert w.result == Success(["scheduled"])


@query(args={})
def who(ctx, args):
    identity = ctx.auth.get_user_identity()
    count = len(ctx.db.query("other").collect())
    return [None if identity is None else identity["subject"], count]


def test_a_view_with_an_identity_watches_as_it_and_shares_the_parent_s_writes(
    store: Store,
) -> None:
    alice = store.with_identity({"subject": "alice"})
    w = alice.watch(who, {})
    assert w.result == Success(["alice", 0])
    store.run(lambda ctx: ctx.db.insert("other", {"x": 1})).unwrap()
    assert w.result == Success(["alice", 1])
    alice.run(lambda ctx: ctx.db.insert("other", {"x": 2})).unwrap()
    assert w.result == Success(["alice", 2])
    store.close()
    assert w.closed


def test_version_never_decreases_and_moves_with_writes(store: Store) -> None:
    w = store.watch(in_thread, {"thread": "a"})
    other = store.watch(others, {})
    versions = [w.version]
    for i in range(3):
        put(store, "a" if i % 2 else "b", str(i))
        versions.append(w.version)
    assert versions == sorted(versions)
    assert versions[-1] > versions[0]
    assert other.version == w.version  # unaffected watches are current too


def test_version_survives_a_restart_on_the_same_file(tmp_path: Any) -> None:
    path = tmp_path / "v.db"
    with Store.open(path, schema=SCHEMA) as s:
        w = s.watch(everything, {})
        for body in "abc":
            put(s, "t", body)
        before = w.version
    with Store.open(path, schema=SCHEMA) as s:
        w = s.watch(everything, {})
        assert w.version >= before
        put(s, "t", "d")
        assert w.version > before


# ------------------------------------------------------------------ the testing helper


def test_wait_for_returns_at_once_when_the_predicate_already_holds(
    store: Store,
) -> None:
    w = store.watch(everything, {})
    assert wait_for(w, lambda r: r == Success(0), timeout=0.01) == Success(0)


def test_wait_for_wakes_on_a_write_from_another_thread(store: Store) -> None:
    w = store.watch(everything, {})
    writer = threading.Thread(
        target=lambda: [put(store, "t", str(i)) for i in range(3)]
    )
    writer.start()
    assert wait_for(w, lambda r: r == Success(3), timeout=10) == Success(3)
    writer.join()


def test_wait_for_times_out_with_the_last_result(store: Store) -> None:
    w = store.watch(everything, {})
    with pytest.raises(TimeoutError, match="Success: 0"):
        wait_for(w, lambda r: r == Success(99), timeout=0.01)


def test_a_get_that_found_nothing_re_runs_when_an_import_brings_the_id_back(
    store: Store,
) -> None:
    from one_store.snapshot import export_snapshot, import_snapshot

    a = put(store, "t", "a")
    zipped = io.BytesIO()
    export_snapshot(store, zipped)
    store.run(lambda ctx: ctx.db.delete(a)).unwrap()
    w = store.watch(by_id, {"id": a})
    assert w.result == Success(None)
    import_snapshot(store, io.BytesIO(zipped.getvalue()), mode="append").unwrap()
    assert w.result == Success("a")  # the import committed through the store


def test_an_import_replacing_a_table_re_runs_its_watches(store: Store) -> None:
    from one_store.snapshot import export_snapshot, import_snapshot

    a = put(store, "t", "a")
    zipped = io.BytesIO()
    export_snapshot(store, zipped)
    change(store, a, body="a2")
    b = put(store, "u", "b")
    in_t, in_u = store.watch(in_thread, {"thread": "t"}), store.watch(by_id, {"id": b})
    assert (in_t.result, in_u.result) == (Success(["a2"]), Success("b"))
    import_snapshot(store, io.BytesIO(zipped.getvalue()), mode="replace").unwrap()
    # b is gone with no write of its own: only the cleared table says so.
    assert (in_t.result, in_u.result) == (Success(["a"]), Success(None))
