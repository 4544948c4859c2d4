"""Tests for one_store.engine.postgres.vector_tables on a real PostgreSQL server.

The table of a vector index is kept in the document's transaction (``seq`` grows,
a delete leaves a tombstone, a rollback leaves nothing), other connections'
writes are seen by the next search, and results equal the SQLite engine's on
the same documents exactly (IDs, scores and the order of ties).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from attrs import field, frozen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from one_store import UNSET, Store, define_schema, define_table, v
from one_store.engine.backend import VectorScan
from one_store.engine.postgres import vector_tables
from one_store.engine.postgres.side_tables import VectorSide, quote
from one_store.model.errors import ProblemError
from one_store.model.schema import Index, SearchIndex, VectorIndex
from tests.postgres_server import connect

INDEX = VectorIndex("by_e", "e", 3, ("tag",))
SCHEMA = define_schema(
    {
        "docs": define_table(
            {"e": v.optional(v.any()), "tag": v.optional(v.any())}
        ).vector_index("by_e", vector_field="e", dimensions=3, filter_fields=["tag"])
    }
)
SIDE = VectorSide.build("docs", INDEX)


@frozen
class Table:
    """A ``TableInfo`` for the tests (the engine's own comes with its Storage)."""

    name: str = "docs"
    number: int = 10001
    indexes: dict[str, Index] = field(factory=dict)
    search_indexes: dict[str, SearchIndex] = field(factory=dict)
    vector_indexes: dict[str, VectorIndex] = field(factory=lambda: {"by_e": INDEX})


DOCS = Table()


def doc(n: int, e: object = UNSET, tag: object = UNSET) -> dict[str, Any]:
    d: dict[str, Any] = {"_id": f"id{n:04d}", "_creationTime": 1000.0 + n}
    if e is not UNSET:
        d["e"] = e
    if tag is not UNSET:
        d["tag"] = tag
    return d


def rows(connection: Any) -> Any:
    return connection.execute(
        f"SELECT id, seq, vector IS NOT NULL, f0 FROM {quote(SIDE.name)} ORDER BY id"
    ).fetchall()


def search(
    caches: vector_tables.VectorCaches,
    connection: Any,
    vector: list[float],
    limit: int = 10,
    *conditions: tuple[str, object],
) -> list[tuple[str, float]]:
    scan = VectorScan("docs", "by_e", tuple(vector), limit, conditions)
    return in_snapshot(caches, connection, scan)


def in_snapshot(
    caches: vector_tables.VectorCaches, connection: Any, scan: VectorScan
) -> list[tuple[str, float]]:
    """A search in a read transaction, as the engine runs it (``storage.read()``)."""
    with connection.transaction():
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return caches.search(connection, DOCS, scan)


@pytest.fixture
def docs(pg: Any) -> Any:
    vector_tables.create(pg, SIDE)
    return pg


def test_writes_keep_the_table_in_step_and_seq_grows(docs: Any) -> None:
    a, b = doc(1, [1.0, 0.0, 0.0]), doc(2, [1.0])
    vector_tables.index_document(docs, DOCS, a)
    vector_tables.index_document(docs, DOCS, b)  # wrong length: not indexed
    assert [(r[0], r[1], r[2]) for r in rows(docs)] == [("id0001", 1, True)]
    b2 = {**b, "e": [0.0, 1.0, 0.0]}
    vector_tables.reindex_document(docs, DOCS, b, b2)
    assert [(r[0], r[1]) for r in rows(docs)] == [("id0001", 1), ("id0002", 2)]
    vector_tables.reindex_document(docs, DOCS, a, {**a, "other": 1})
    assert [r[1] for r in rows(docs)] == [1, 2]  # the same entry: untouched
    vector_tables.reindex_document(docs, DOCS, a, {**a, "tag": "x"})
    assert rows(docs)[0][1] == 3
    vector_tables.unindex_document(docs, DOCS, "id0001")
    tombstone = rows(docs)[0]
    assert tombstone[2] is False  # vector NULL: readers learn of the delete
    assert tombstone[1] == 4
    vector_tables.reindex_document(docs, DOCS, b2, {**b2, "e": None})
    assert rows(docs)[1][2] is False  # no longer a vector: a tombstone too
    vector_tables.clear(docs, DOCS)
    assert all(not r[2] for r in rows(docs))


def test_search_follows_writes_and_deletes(docs: Any) -> None:
    caches = vector_tables.VectorCaches()
    assert search(caches, docs, [1.0, 0.0, 0.0]) == []
    vector_tables.index_document(docs, DOCS, doc(1, [1.0, 0.0, 0.0], "a"))
    vector_tables.index_document(docs, DOCS, doc(2, [0.0, 1.0, 0.0], "b"))
    hits = search(caches, docs, [1.0, 0.1, 0.0])
    assert [h[0] for h in hits] == ["id0001", "id0002"]
    assert hits[0][1] == pytest.approx(1 / math.sqrt(1.01))
    assert search(caches, docs, [1.0, 0.0, 0.0], 10, ("tag", "b")) == [("id0002", 0.0)]
    vector_tables.unindex_document(docs, DOCS, "id0001")
    assert [h[0] for h in search(caches, docs, [1.0, 0.0, 0.0])] == ["id0002"]
    assert len(caches.matrix("docs", "by_e") or ()) == 1


def test_another_connections_commit_is_seen(
    docs: Any, postgres_dsn: str, pg_schema: str
) -> None:
    caches = vector_tables.VectorCaches()
    vector_tables.index_document(docs, DOCS, doc(1, [1.0, 0.0, 0.0]))
    assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 1
    with connect(postgres_dsn, pg_schema) as other:
        vector_tables.index_document(other, DOCS, doc(2, [0.0, 0.0, 1.0]))
        assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 1  # not committed
        other.commit()
    assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 2


def test_a_rolled_back_write_leaves_the_table_as_it_was(
    docs: Any, postgres_dsn: str, pg_schema: str
) -> None:
    vector_tables.index_document(docs, DOCS, doc(1, [1.0, 0.0, 0.0]))
    before = rows(docs)
    with connect(postgres_dsn, pg_schema) as c:
        vector_tables.index_document(c, DOCS, doc(2, [1.0, 0.0, 0.0]))
        vector_tables.unindex_document(c, DOCS, "id0001")
        c.rollback()
    assert rows(docs) == before


def test_a_remade_table_starts_the_cache_over(docs: Any) -> None:
    caches = vector_tables.VectorCaches()
    vector_tables.index_document(docs, DOCS, doc(1, [1.0, 0.0, 0.0]))
    assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 1
    vector_tables.drop(docs, SIDE)
    vector_tables.create(docs, SIDE)
    vector_tables.index_document(docs, DOCS, doc(2, [0.0, 1.0, 0.0]))
    assert [h[0] for h in search(caches, docs, [1.0, 0.0, 0.0])] == ["id0002"]


def test_bad_scans_are_refused_as_on_sqlite(docs: Any) -> None:
    caches = vector_tables.VectorCaches()
    with pytest.raises(ProblemError, match="IndexNotFoundError"):
        caches.search(docs, DOCS, VectorScan("docs", "nope", (1.0,) * 3, 10))
    with pytest.raises(ProblemError, match="IndexNotFoundError"):
        caches.search(docs, None, VectorScan("docs", "by_e", (1.0,) * 3, 10))
    with pytest.raises(ProblemError, match="VectorDimensionsMismatch"):
        search(caches, docs, [1.0, 0.0])


def test_backfill_indexes_stored_documents(pg: Any) -> None:
    from one_store.model.values import dumps

    vector_tables.create(pg, SIDE)
    bodies = [dumps(doc(1, [1.0, 2.0, 3.0])), dumps(doc(2, [1, 2, 3])), dumps(doc(3))]
    assert vector_tables.backfill(pg, SIDE, bodies) == 1


COMPONENT = st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0, -0.0])
VECTOR = st.lists(COMPONENT, min_size=3, max_size=3)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    vectors=st.lists(
        st.tuples(
            st.one_of(VECTOR, st.just([1.0, 2.0]), st.none()),
            st.sampled_from(["a", "b", 1, UNSET]),
        ),
        max_size=14,
    ),
    deleted=st.sets(st.integers(0, 13), max_size=4),
    query=VECTOR,
    limit=st.integers(1, 8),
    tags=st.lists(st.sampled_from(["a", "b", 1, 1.0, UNSET]), max_size=2),
)
def test_results_equal_the_sqlite_engine(
    docs: Any,
    vectors: list[tuple[Any, object]],
    deleted: set[int],
    query: list[float],
    limit: int,
    tags: list[object],
) -> None:
    docs.execute(f"TRUNCATE {quote(SIDE.name)}")
    scan = VectorScan(
        "docs", "by_e", tuple(query), limit, tuple(("tag", t) for t in tags)
    )
    with Store.open(":memory:", schema=SCHEMA, seed=0) as store:  # SQLite
        made = [
            {
                **({} if e is None else {"e": e}),
                **({} if tag is UNSET else {"tag": tag}),
            }
            for e, tag in vectors
        ]
        ids = store.run(lambda ctx: [ctx.db.insert("docs", d) for d in made]).unwrap()
        stored = store.run(lambda ctx: ctx.db.query("docs").collect()).unwrap()
        before = store.storage.vector_search(scan)
        gone = [ids[i] for i in sorted(deleted) if i < len(ids)]

        def remove(ctx: Any) -> None:
            for doc_id in gone:
                ctx.db.delete(doc_id)

        store.run(remove).unwrap()
        after = store.storage.vector_search(scan)
    caches = vector_tables.VectorCaches()
    for d in stored:
        vector_tables.index_document(docs, DOCS, d)
    assert in_snapshot(caches, docs, scan) == before
    for doc_id in gone:  # applied incrementally to the cached matrix
        vector_tables.unindex_document(docs, DOCS, doc_id)
    assert in_snapshot(caches, docs, scan) == after
