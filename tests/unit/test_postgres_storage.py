"""The PostgreSQL engine against a real server: every Backend method, transactions, order.

The server is the session's (``tests/postgres_server.py``: a throwaway cluster,
or ``ONE_STORE_TEST_POSTGRES``); each test's tables live in a fresh schema.
Behaviour is Convex's as the SQLite engine already implements it, so most checks
compare with what a SQLite store answers for the same calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure

from one_store import (
    UNSET,
    Store,
    StoreOpenError,
    action,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.engine.backend import Backend, IndexScan, Scanner
from one_store.engine.postgres.storage import PgStorage
from one_store.model.errors import Busy, SchemaMismatchError, StorageError
from one_store.model.keys import prefix_end, sort_key
from one_store.model.values import loads
from tests.strategies import convex_values


def in_schema(dsn: str, schema: str) -> str:
    """``dsn`` with its tables in ``schema`` (libpq's ``options``)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def dsn(postgres_dsn: str, pg_schema: str) -> str:
    return in_schema(postgres_dsn, pg_schema)


SCHEMA = define_schema(
    {
        "jobs": define_table({"state": v.string(), "at": v.number()}).index(
            "by_state", ["state", "at"]
        ),
        "t": define_table({"v": v.optional(v.any()), "i": v.int64()}).index(
            "by_v", ["v"]
        ),
    }
)


@pytest.fixture
def pg_store(dsn: str) -> Iterator[Store]:
    with Store.open(dsn, schema=SCHEMA, seed=0) as s:
        yield s


def accepts_backend(backend: Backend) -> Scanner:
    return backend


def test_pg_storage_has_every_member_of_the_protocol(pg_store: Store) -> None:
    storage: PgStorage = pg_store.storage
    assert accepts_backend(storage) is storage
    members = {n for cls in (Backend, Scanner) for n in vars(cls) if n[0] != "_"}
    assert sorted(n for n in members if not hasattr(storage, n)) == []
    assert storage.features.vendor == "postgresql"
    assert storage.follows_others
    assert storage.location.startswith("postgresql://")


def add_jobs(store: Store) -> list[str]:
    jobs = [("pending", 3.0), ("done", 1.0), ("pending", 2.0), ("pending", 5.0)]
    ids: list[str] = store.run(
        lambda ctx: [ctx.db.insert("jobs", {"state": s, "at": at}) for s, at in jobs]
    ).unwrap()
    return ids


def test_ranges_scans_counts_and_rows(pg_store: Store) -> None:
    ids = add_jobs(pg_store)
    pending = sort_key("pending")
    s: PgStorage = pg_store.storage
    with s.read():
        first = s.first_in_range("jobs", "by_state", pending, prefix_end(pending))
        due = s.first_in_range(
            "jobs", "by_state", pending, prefix_end(pending + sort_key(1.0))
        )
        in_range = s.range_documents("jobs", "by_state", pending, prefix_end(pending))
        everything = [d["_id"] for d in s.scan("jobs")]
        rows = dict(s.rows("jobs", batch=3))
        assert (s.count("jobs"), s.count("nothing")) == (4, 0)
        assert s.first_in_range("nothing", "by_state", b"", None) is None
        assert s.range_documents("nothing", "by_state", b"", None) == []
        assert list(s.scan("nothing")) == []
    assert first is not None
    assert first["_id"] == ids[2]
    assert due is None
    assert [d["_id"] for d in in_range] == [ids[2], ids[0], ids[3]]
    assert everything == ids
    assert sorted(rows) == sorted(ids)
    with s.write():
        s.clear("jobs")
    with s.read():
        assert s.count("jobs") == 0


def test_index_rows_stop_early_and_go_backwards(pg_store: Store) -> None:
    ids = pg_store.run(
        lambda ctx: [
            ctx.db.insert("jobs", {"state": "x", "at": float(i)}) for i in range(300)
        ]
    ).unwrap()
    s: PgStorage = pg_store.storage
    with s.read():
        rows = s.index_rows(IndexScan("jobs", "by_creation_time", limit=2))
        two = [row[1] for row in rows]
        desc = list(s.index_rows(IndexScan("jobs", "by_state", order="desc")))
        by_id = list(s.index_rows(IndexScan("jobs", "by_id")))
        bodies = list(
            s.index_rows(IndexScan("jobs", "by_id", bodies_only=True, limit=5))
        )
    assert len(two) == 2
    assert two[0] < two[1]
    assert len(desc) == 300
    assert [k for _, k in desc] == sorted((k for _, k in desc), reverse=True)
    assert [k for _, k in by_id] == sorted(sort_key(i) for i in ids)
    assert len(bodies) == 5
    assert all(len(row) == 1 for row in bodies)


def test_get_insert_update_delete_through_functions(pg_store: Store) -> None:
    doc_id = pg_store.run(
        lambda ctx: ctx.db.insert("jobs", {"state": "a", "at": 1.0})
    ).unwrap()
    pg_store.run(lambda ctx: ctx.db.patch(doc_id, {"state": "b"})).unwrap()
    got = pg_store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()
    assert (got["state"], got["at"]) == ("b", 1.0)
    found = pg_store.run(
        lambda ctx: (
            ctx.db.query("jobs")
            .with_index("by_state", lambda q: q.eq("state", "b"))
            .collect()
        )
    ).unwrap()
    assert [d["_id"] for d in found] == [doc_id]
    stale = pg_store.run(
        lambda ctx: (
            ctx.db.query("jobs")
            .with_index("by_state", lambda q: q.eq("state", "a"))
            .collect()
        )
    ).unwrap()
    assert stale == []
    pg_store.run(lambda ctx: ctx.db.replace(doc_id, {"state": "c", "at": 2.0})).unwrap()
    pg_store.run(lambda ctx: ctx.db.delete(doc_id)).unwrap()
    assert pg_store.run(lambda ctx: ctx.db.get(doc_id)).unwrap() is None


# ------------------------------------------------------------------ order, as on SQLite

values: st.SearchStrategy[Any] = st.one_of(
    st.just(UNSET),
    convex_values(max_leaves=4),
    st.sampled_from(
        [
            None,
            0,
            1,
            -1,
            0.0,
            -0.0,
            1.0,
            math.inf,
            False,
            True,
            "",
            "x",
            "x\x00",
            b"",
            b"x",
            [],
            {},
        ]
    ),
)
OPS = ["eq", "gt", "gte", "lt", "lte"]


def positions(store: Store, op: str | None, bound: Any, order: str) -> list[int]:
    def run(ctx: Any) -> list[int]:
        q = ctx.db.query("t")
        q = (
            q.with_index("by_v")
            if op is None
            else q.with_index("by_v", lambda r: getattr(r, op)("v", bound))
        )
        return [d["i"] for d in q.order(order).collect()]

    found: list[int] = store.run(run).unwrap()
    return found


def load(store: Store, vals: list[Any]) -> None:
    def insert(ctx: Any) -> None:
        for i, value in enumerate(vals):
            ctx.db.insert("t", {"i": i} if value is UNSET else {"i": i, "v": value})

    store.run(insert).unwrap()


@settings(
    max_examples=40,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(values, max_size=12),
    st.one_of(st.none(), st.sampled_from(OPS)),
    values,
    st.sampled_from(["asc", "desc"]),
)
def test_index_ranges_come_in_the_same_order_as_on_sqlite(
    pg_store: Store, vals: list[Any], op: str | None, bound: Any, order: str
) -> None:
    with pg_store.storage.write():
        pg_store.storage.clear("t")
    load(pg_store, vals)
    with Store.open(":memory:", schema=SCHEMA, seed=0) as lite:  # SQLite
        load(lite, vals)
        assert positions(pg_store, op, bound, order) == positions(
            lite, op, bound, order
        )
        assert pages(pg_store, order) == pages(lite, order)
        assert filtered(pg_store, op or "eq", bound) == filtered(
            lite, op or "eq", bound
        )


def filtered(store: Store, op: str, operand: Any) -> list[int]:
    """Positions a ``.filter()`` comparison keeps (the engine prefilters or not)."""

    def run(ctx: Any) -> list[int]:
        q = ctx.db.query("t").filter(lambda f: getattr(f, op)(f.field("v"), operand))
        return [d["i"] for d in q.collect()]

    found: list[int] = store.run(run).unwrap()
    return found


def pages(store: Store, order: str) -> list[list[int]]:
    """Positions page by page, walking ``by_v`` with cursors three at a time."""

    def page(cursor: str | None) -> Callable[[Any], dict[str, Any]]:
        def run(ctx: Any) -> dict[str, Any]:
            q = ctx.db.query("t").with_index("by_v").order(order)
            found: dict[str, Any] = q.paginate({"numItems": 3, "cursor": cursor})
            return found

        return run

    walked: list[list[int]] = []
    cursor = None
    while True:
        got = store.run(page(cursor)).unwrap()
        walked.append([d["i"] for d in got["page"]])
        if got["isDone"]:
            return walked
        cursor = got["continueCursor"]


# ------------------------------------------------------------------ transactions


@mutation(args={"n": v.int64()})
def add_then_fail(ctx: Any, args: dict[str, Any]) -> None:
    for i in range(args["n"]):
        ctx.db.insert("t", {"i": i})
    raise ValueError("no")


def test_a_failed_mutation_leaves_no_trace(pg_store: Store) -> None:
    before = pg_store.storage.last_creation_time
    result = pg_store.mutation(add_then_fail, {"n": 3})
    assert isinstance(result, Failure)
    with pg_store.storage.read():
        assert pg_store.storage.count("t") == 0
    assert pg_store.storage.last_creation_time == before


def test_a_savepoint_rolls_back_only_its_writes(pg_store: Store) -> None:
    s: PgStorage = pg_store.storage
    layout = s.layouts["t"]
    doc = {"_id": "k" * 32, "_creationTime": 1.0, "i": 1}
    with s.write():
        s.insert(layout, {"_id": "j" * 32, "_creationTime": 2.0, "i": 2})

        def undone() -> None:
            with s.savepoint():
                s.insert(layout, doc)
                s.ensure_table("made_inside")
                raise RuntimeError("undo")

        with pytest.raises(RuntimeError):
            undone()
        assert "made_inside" not in s.layouts
    with s.read():
        assert [d["i"] for d in s.scan("t")] == [2]


def test_waiting_for_the_write_lock_past_the_timeout_is_busy(dsn: str) -> None:
    import psycopg

    with Store.open(dsn, schema=SCHEMA, busy_timeout=0.2) as s:
        key = s.storage._lock_key
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute(f"BEGIN; SELECT pg_advisory_xact_lock({key})")
            result = s.run(lambda ctx: ctx.db.insert("t", {"i": 1}))
            other.execute("ROLLBACK")
        assert result.failure() == Busy()
        assert s.run(lambda ctx: ctx.db.insert("t", {"i": 1})).unwrap()


def test_reads_see_one_snapshot(dsn: str, pg_store: Store) -> None:
    with Store.open(dsn) as other:
        s: PgStorage = pg_store.storage
        with s.read():
            assert s.count("t") == 0
            other.run(lambda ctx: ctx.db.insert("t", {"i": 1})).unwrap()
            assert s.count("t") == 0  # the snapshot began before that commit
        with s.read():
            assert s.count("t") == 1


# ------------------------------------------------------------------ schema, meta, tables


def test_a_schema_the_stored_documents_break_is_refused(dsn: str) -> None:
    with Store.open(dsn, schema=SCHEMA) as s:
        s.run(lambda ctx: ctx.db.insert("t", {"i": 1, "v": "text"})).unwrap()
    stricter = define_schema({"t": define_table({"v": v.int64(), "i": v.int64()})})
    with pytest.raises(SchemaMismatchError, match="t"):
        Store.open(dsn, schema=stricter)
    with Store.open(dsn, schema=SCHEMA) as s:  # nothing changed
        assert s.storage.schema_fingerprint() == SCHEMA.fingerprint()


def test_a_new_index_is_back_filled_and_seen_by_other_stores(dsn: str) -> None:
    with Store.open(dsn, schema=SCHEMA) as first:
        first.run(
            lambda ctx: [ctx.db.insert("t", {"i": i, "v": -i}) for i in range(3)]
        ).unwrap()
        wider = define_schema(
            {
                **SCHEMA.tables,
                "t": define_table({"v": v.optional(v.any()), "i": v.int64()})
                .index("by_v", ["v"])
                .index("by_i", ["i"]),
            }
        )
        with Store.open(dsn, schema=wider) as second:
            got = second.run(
                lambda ctx: [
                    d["i"]
                    for d in ctx.db.query("t")
                    .with_index("by_i")
                    .order("desc")
                    .collect()
                ]
            ).unwrap()
            assert got == [2, 1, 0]
        with first.storage.read():  # the first store reloads its layouts
            assert "by_i" in first.storage.layouts["t"].indexes


def test_meta_table_numbers_write_raw_and_renumber(pg_store: Store) -> None:
    s: PgStorage = pg_store.storage
    with s.write():
        s.set_meta("k", "v1")
        s.set_meta("k", "v2")
        made = s.ensure_table("extra")
        s.write_raw("raw", {"_id": "r" * 32, "_creationTime": 5e12, "x": 1})
    assert s.meta("k") == "v2"
    assert s.table_of(made.number) == "extra"
    assert s.table_number("extra") == made.number
    assert {"extra", "jobs", "raw", "t"} <= set(s.tables())
    assert s.last_creation_time == 5e12
    assert s.next_creation_time(0.0) > 5e12
    free = 1 + max(layout.number for layout in s.layouts.values())
    with s.write():
        s.renumber({"extra": free})
    assert s.table_number("extra") == free
    with pytest.raises(KeyError):
        s.table_number("nothing")


# ------------------------------------------------------------------ opening


def test_a_wrong_dsn_is_a_clear_error_without_the_password() -> None:
    with pytest.raises(StoreOpenError) as info:
        Store.open("postgresql://me:secret@127.0.0.1:1/db", busy_timeout=1)
    assert isinstance(info.value.problem, StorageError)
    text = str(info.value)
    assert "127.0.0.1:1/db" in text
    assert "secret" not in text


@query(args={})
def newest(ctx: Any, args: dict[str, Any]) -> list[int]:
    return [d["i"] for d in ctx.db.query("t").order("desc").take(1)]


def test_a_watch_sees_another_stores_commit(dsn: str, pg_store: Store) -> None:
    with Store.open(dsn) as other, pg_store.watch(newest) as w:
        assert w.result.unwrap() == []
        updates = w.updates(timeout=10.0)
        other.run(lambda ctx: ctx.db.insert("t", {"i": 7})).unwrap()
        assert next(updates).unwrap() == [7]


def test_a_connection_lost_mid_mutation_writes_nothing_and_the_next_call_reconnects(
    dsn: str, pg_store: Store
) -> None:
    import psycopg

    pid = pg_store.storage.connection.info.backend_pid

    def cut_off(ctx: Any) -> None:
        ctx.db.insert("t", {"i": 1})
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        ctx.db.insert("t", {"i": 2})

    failed = pg_store.run(cut_off)
    assert isinstance(failed.failure(), StorageError)
    assert pg_store.run(lambda ctx: ctx.db.insert("t", {"i": 3})).unwrap()
    got = pg_store.read(lambda ctx: [d["i"] for d in ctx.db.query("t").collect()])
    assert got.unwrap() == [3]


def test_a_read_only_open_of_an_empty_schema_says_so(dsn: str) -> None:
    with pytest.raises(StoreOpenError, match="no one_store tables"):
        Store.open(dsn, readonly=True)


SEARCHED = define_schema(
    {
        "notes": define_table(
            {
                "body": v.string(),
                "tag": v.string(),
                "e": v.optional(v.array(v.float64())),
            }
        )
        .search_index("search_body", search_field="body", filter_fields=["tag"])
        .vector_index("by_e", vector_field="e", dimensions=2, filter_fields=["tag"]),
    }
)


@query(args={"text": v.string()})
def find(ctx: Any, args: dict[str, Any]) -> list[str]:
    found = (
        ctx.db.query("notes")
        .with_search_index(
            "search_body", lambda q: q.search("body", args["text"]).eq("tag", "a")
        )
        .take(10)
    )
    return [n["body"] for n in found]


@action(args={})
def nearest(ctx: Any, args: dict[str, Any]) -> list[str]:
    hits = ctx.vector_search("notes", "by_e", {"vector": [1.0, 0.0], "limit": 2})
    return [h["_id"] for h in hits]


def test_search_and_vector_indexes_are_kept_by_every_write(dsn: str) -> None:
    with Store.open(dsn, schema=SEARCHED) as store:
        ids = store.run(
            lambda ctx: [
                ctx.db.insert(
                    "notes", {"body": "deploy failed", "tag": "a", "e": [1.0, 0.1]}
                ),
                ctx.db.insert(
                    "notes", {"body": "deploy done", "tag": "b", "e": [0.0, 1.0]}
                ),
                ctx.db.insert("notes", {"body": "lunch?", "tag": "a", "e": [0.9, 0.0]}),
            ]
        ).unwrap()
        assert store.query(find, {"text": "deploy"}).unwrap() == ["deploy failed"]
        assert store.action(nearest, {}).unwrap() == [ids[2], ids[0]]
        store.run(
            lambda ctx: ctx.db.patch(ids[1], {"tag": "a", "e": [1.0, 0.0]})
        ).unwrap()
        store.run(lambda ctx: ctx.db.delete(ids[2])).unwrap()
        assert sorted(store.query(find, {"text": "deploy"}).unwrap()) == [
            "deploy done",
            "deploy failed",
        ]
        assert store.action(nearest, {}).unwrap() == [ids[1], ids[0]]


def test_a_cleared_table_reruns_the_watches_that_read_it(
    dsn: str, pg_store: Store
) -> None:
    pg_store.run(lambda ctx: ctx.db.insert("t", {"i": 4})).unwrap()
    with Store.open(dsn) as other, pg_store.watch(newest) as w:
        assert w.result.unwrap() == [4]
        updates = w.updates(timeout=10.0)
        with other.storage.write():
            other.storage.clear("t")
        assert next(updates).unwrap() == []


def test_a_connection_lost_between_calls_is_replaced_without_a_failure(
    dsn: str, pg_store: Store
) -> None:
    import psycopg

    pid = pg_store.storage.connection.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert pg_store.run(lambda ctx: ctx.db.insert("t", {"i": 1})).unwrap()
    second_pid = pg_store.storage.connection.info.backend_pid
    assert second_pid != pid
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (second_pid,))
    assert pg_store.read(lambda ctx: len(ctx.db.query("t").collect())).unwrap() == 1


def test_two_schemas_of_one_database_never_share_a_lock_or_a_channel(
    postgres_dsn: str, dsn: str
) -> None:
    import secrets

    import psycopg

    other = "t_" + secrets.token_hex(6)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {other}")
        try:
            # postgres:// is the same scheme to libpq, and opens the same engine.
            second_dsn = in_schema(postgres_dsn, other).replace(
                "postgresql://", "postgres://", 1
            )
            with (
                Store.open(dsn, schema=SCHEMA, busy_timeout=0.2) as first,
                Store.open(second_dsn, schema=SCHEMA, busy_timeout=0.2) as second,
            ):
                assert second.storage.schema == other
                assert first.storage._lock_key != second.storage._lock_key
                assert first.storage._channel != second.storage._channel
                with first.storage.write():  # holds the first schema's lock
                    assert second.run(lambda ctx: ctx.db.insert("t", {"i": 1})).unwrap()
                with first.storage.read():
                    assert first.storage.count("t") == 0
        finally:
            admin.execute(f"DROP SCHEMA {other} CASCADE")


def test_a_dsn_naming_a_missing_schema_says_so(postgres_dsn: str) -> None:
    with pytest.raises(
        StoreOpenError, match="no schema of the connection's search_path"
    ):
        Store.open(in_schema(postgres_dsn, "no_such_schema_here"))


def test_rows_failing_the_prefilter_come_back_undecoded_with_their_length(
    pg_store: Store,
) -> None:
    docs: list[dict[str, Any]] = [
        {"i": 0, "v": "k"},
        {"i": 1, "v": "other"},
        {"i": 2, "v": 1},
        {"i": 3, "v": 1.0},
        {"i": 4, "v": "nul\x00inside"},  # a \u0000 escape: always sent whole
        {"i": 5},
        {"i": 6, "v": {"k": True}},
    ]
    pg_store.run(lambda ctx: [ctx.db.insert("t", d) for d in docs]).unwrap()
    s: PgStorage = pg_store.storage

    def sent(value: Any) -> list[bool]:
        scan = IndexScan("t", "by_creation_time", equalities=((("v",), value),))
        with s.read():
            rows = list(s.index_rows(scan))
        assert all(len(row) == 3 and row[2] > 0 for row in rows)
        return [row[0] is not None for row in rows]

    assert s.features.equality_prefilter
    assert sent("k") == [True, False, False, False, True, False, False]
    assert sent(1) == [False, False, True, False, True, False, False]
    assert sent(UNSET) == [False, False, False, False, True, True, False]
    nested = IndexScan("t", "by_id", equalities=((("v", "k"), True),))
    with s.read():
        passing = [row for row in s.index_rows(nested) if row[0] is not None]
    assert sorted(loads(row[0])["i"] for row in passing) == [4, 6]
