"""Text search, vector search and file storage through ``Store.open("postgresql://...")``.

The engine-level behaviour is in test_postgres_search.py, test_postgres_vectors.py
and test_postgres_blobs.py; here the features run end to end on a real server:
a search index and a vector index kept by mutations (a failed one leaves no
entry), a search index added to a table that holds documents, files stored
and read by two stores on one database (as two machines would), and a failed
upload leaving no body.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import ConvexError, Store, action, define_schema, define_table, v
from one_store.engine.postgres.blobs import CHUNK
from one_store.testing import FakeClock

BASE = {
    "body": v.string(),
    "channel": v.string(),
    "e": v.optional(v.array(v.float64())),
}


def schema(search: bool = True) -> Any:
    table = define_table(BASE).vector_index(
        "by_e", vector_field="e", dimensions=2, filter_fields=["channel"]
    )
    if search:
        table = table.search_index(
            "search_body", search_field="body", filter_fields=["channel"]
        )
    return define_schema({"posts": table})


def store_dsn(postgres_dsn: str, pg_schema: str) -> str:
    joiner = "&" if "?" in postgres_dsn else "?"
    return f"{postgres_dsn}{joiner}options=-csearch_path%3D{pg_schema}"


@pytest.fixture
def dsn(postgres_dsn: str, pg_schema: str) -> str:
    return store_dsn(postgres_dsn, pg_schema)


@pytest.fixture
def db(dsn: str) -> Iterator[Store]:
    with Store.open(dsn, schema=schema(), clock=FakeClock()) as store:
        yield store


def found(store: Store, text: str, n: int | None = None, **eqs: object) -> list[str]:
    def build(q: Any) -> Any:
        q = q.search("body", text)
        for field, value in eqs.items():
            q = q.eq(field, value)
        return q

    def run(ctx: Any) -> Any:
        query = ctx.db.query("posts").with_search_index("search_body", build)
        docs = query.collect() if n is None else query.take(n)
        return [d["body"] for d in docs]

    result: list[str] = store.run(run).unwrap()
    return result


def add(store: Store, *docs: dict[str, Any]) -> list[str]:
    ids: list[str] = store.run(
        lambda ctx: [ctx.db.insert("posts", d) for d in docs]
    ).unwrap()
    return ids


def test_search_through_the_store(db: Store) -> None:
    assert db.storage.features.ranked_search_top
    a, b, _ = add(
        db,
        {"body": "hello world", "channel": "x"},
        {"body": "hello there", "channel": "y"},
        {"body": "goodbye", "channel": "x"},
    )
    assert set(found(db, "hello")) == {"hello world", "hello there"}
    assert found(db, "hel", channel="y") == ["hello there"]
    assert found(db, "world hello", n=1) == ["hello world"]  # two terms rank first
    db.run(lambda ctx: ctx.db.patch(a, {"body": "changed"})).unwrap()
    db.run(lambda ctx: ctx.db.delete(b)).unwrap()
    assert found(db, "hello") == []
    assert found(db, "chan") == ["changed"]


def test_a_failed_mutation_leaves_no_entry(db: Store) -> None:
    def fail(ctx: Any) -> None:
        ctx.db.insert("posts", {"body": "ghost", "channel": "x", "e": [1.0, 0.0]})
        raise ConvexError("no")

    assert isinstance(db.run(fail), Failure)
    assert found(db, "ghost") == []
    assert db.storage.vector_search(_scan([1.0, 0.0])) == []


def test_vector_search_through_the_store(db: Store) -> None:
    a, b, _ = add(
        db,
        {"body": "a", "channel": "x", "e": [1.0, 0.0]},
        {"body": "b", "channel": "y", "e": [0.0, 1.0]},
        {"body": "c", "channel": "y"},
    )
    hits = db.storage.vector_search(_scan([1.0, 0.2]))
    assert [h[0] for h in hits] == [a, b]
    only_y = db.storage.vector_search(_scan([1.0, 0.2], ("channel", "y")))
    assert [h[0] for h in only_y] == [b]
    db.run(lambda ctx: ctx.db.delete(a)).unwrap()
    assert [h[0] for h in db.storage.vector_search(_scan([1.0, 0.2]))] == [b]

    @action(args={})
    def nearest(ctx: Any, args: Any) -> Any:
        return ctx.vector_search("posts", "by_e", {"vector": [0.0, 2.0], "limit": 1})

    assert db.action(nearest, {}) == Success([{"_id": b, "_score": 1.0}])


def _scan(vector: list[float], *conditions: tuple[str, object]) -> Any:
    from one_store.engine.backend import VectorScan

    return VectorScan("posts", "by_e", tuple(vector), 10, conditions)


def test_a_search_index_added_later_indexes_stored_documents(dsn: str) -> None:
    with Store.open(dsn, schema=schema(search=False), clock=FakeClock()) as first:
        add(first, {"body": "early bird", "channel": "x"})
    with Store.open(dsn, schema=schema(), clock=FakeClock()) as second:
        assert found(second, "bird") == ["early bird"]


def test_files_are_seen_by_every_store_on_the_database(db: Store, dsn: str) -> None:
    data = bytes(range(256)) * (CHUNK // 256) * 2 + b"tail"
    sid = db.files.store(io.BytesIO(data), content_type="application/x-test").unwrap()
    with Store.open(dsn, schema=schema(), clock=FakeClock()) as other:
        assert other.files.get(sid).unwrap() == data
        stream = other.files.open(sid).unwrap()
        with stream:
            assert stream.read() == data
        assert other.files.delete(sid) == Success(None)
    assert db.files.get(sid) == Success(None)
    assert db.storage.blobs.names() == []


def test_a_file_whose_row_rolls_back_leaves_no_body(db: Store) -> None:
    sid = db.files.store(b"keep").unwrap()

    def fail(ctx: Any) -> None:
        ctx.storage.delete(sid)
        raise ConvexError("undo")

    assert isinstance(db.run(fail), Failure)
    assert db.files.get(sid) == Success(b"keep")
    assert db.storage.blobs.names() == [sid]


def test_search_limits_and_pages_as_on_sqlite(db: Store) -> None:
    from one_store import LimitExceeded

    add(db, *({"body": f"common w{i}", "channel": "x"} for i in range(1030)))
    assert len(found(db, "common", n=10)) == 10  # a take(n) reads n documents

    def everything(ctx: Any) -> Any:
        index = ctx.db.query("posts").with_search_index(
            "search_body", lambda q: q.search("body", "common")
        )
        return index.collect()

    result = db.run(everything)
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), LimitExceeded)

    def page(cursor: str | None) -> Any:
        def run(ctx: Any) -> Any:
            index = ctx.db.query("posts").with_search_index(
                "search_body", lambda q: q.search("body", "w1")
            )
            return index.paginate({"numItems": 40, "cursor": cursor})

        return db.run(run).unwrap()

    seen: list[str] = []
    cursor = None
    while True:
        p = page(cursor)
        seen += [d["body"] for d in p["page"]]
        if p["isDone"]:
            break
        cursor = p["continueCursor"]
    expected = {f"common w{i}" for i in range(1030) if str(i).startswith("1")}
    assert len(seen) == len(expected) == 141  # every match once, over 4 pages
    assert set(seen) == expected
