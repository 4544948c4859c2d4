"""Tests for one_store.engine.postgres.vectors on a real PostgreSQL server.

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
from one_store.engine.postgres import vectors
from one_store.engine.postgres.layout import quote
from one_store.engine.postgres.side_tables import VectorSide
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


def insert(connection: Any, d: dict[str, Any]) -> None:
    vectors.write(connection, "docs", INDEX, d["_id"], None, d)


def update(connection: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
    vectors.write(connection, "docs", INDEX, new["_id"], old, new)


def rows(connection: Any) -> Any:
    return connection.execute(
        f"SELECT id, seq, vector IS NOT NULL, f0 FROM {quote(SIDE.name)} ORDER BY id"
    ).fetchall()


def search(
    caches: vectors.VectorCaches,
    connection: Any,
    vector: list[float],
    limit: int = 10,
    *conditions: tuple[str, object],
) -> list[tuple[str, float]]:
    scan = VectorScan("docs", "by_e", tuple(vector), limit, conditions)
    return caches.search(connection, DOCS, scan)


@pytest.fixture
def docs(pg: Any) -> Any:
    vectors.create(pg, "docs", INDEX)
    return pg


def test_writes_keep_the_table_in_step_and_seq_grows(docs: Any) -> None:
    a, b = doc(1, [1.0, 0.0, 0.0]), doc(2, [1.0])
    insert(docs, a)
    insert(docs, b)  # wrong length: not indexed
    assert [(r[0], r[1], r[2]) for r in rows(docs)] == [("id0001", 1, True)]
    b2 = {**b, "e": [0.0, 1.0, 0.0]}
    update(docs, b, b2)
    assert [(r[0], r[1]) for r in rows(docs)] == [("id0001", 1), ("id0002", 2)]
    update(docs, a, {**a, "other": 1})
    assert [r[1] for r in rows(docs)] == [1, 2]  # the same entry: untouched
    update(docs, a, {**a, "tag": "x"})
    assert rows(docs)[0][1] == 3
    vectors.write(docs, "docs", INDEX, "id0001", {"_id": "id0001"}, None)
    tombstone = rows(docs)[0]
    assert tombstone[2] is False  # vector NULL: readers learn of the delete
    assert tombstone[1] == 4
    update(docs, b2, {**b2, "e": None})
    assert rows(docs)[1][2] is False  # no longer a vector: a tombstone too
    vectors.clear(docs, "docs", INDEX)
    assert all(not r[2] for r in rows(docs))


def test_search_follows_writes_and_deletes(docs: Any) -> None:
    caches = vectors.VectorCaches()
    assert search(caches, docs, [1.0, 0.0, 0.0]) == []
    insert(docs, doc(1, [1.0, 0.0, 0.0], "a"))
    insert(docs, doc(2, [0.0, 1.0, 0.0], "b"))
    hits = search(caches, docs, [1.0, 0.1, 0.0])
    assert [h[0] for h in hits] == ["id0001", "id0002"]
    assert hits[0][1] == pytest.approx(1 / math.sqrt(1.01))
    assert search(caches, docs, [1.0, 0.0, 0.0], 10, ("tag", "b")) == [("id0002", 0.0)]
    vectors.write(docs, "docs", INDEX, "id0001", {"_id": "id0001"}, None)
    assert [h[0] for h in search(caches, docs, [1.0, 0.0, 0.0])] == ["id0002"]
    assert len(caches.matrix("docs", "by_e") or ()) == 1


def test_another_connections_commit_is_seen(
    docs: Any, postgres_dsn: str, pg_schema: str
) -> None:
    caches = vectors.VectorCaches()
    insert(docs, doc(1, [1.0, 0.0, 0.0]))
    assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 1
    with connect(postgres_dsn, pg_schema) as other:
        insert(other, doc(2, [0.0, 0.0, 1.0]))
        assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 1  # not committed
        other.commit()
    assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 2


def test_a_rolled_back_write_leaves_the_table_as_it_was(
    docs: Any, postgres_dsn: str, pg_schema: str
) -> None:
    insert(docs, doc(1, [1.0, 0.0, 0.0]))
    before = rows(docs)
    with connect(postgres_dsn, pg_schema) as c:
        insert(c, doc(2, [1.0, 0.0, 0.0]))
        vectors.write(c, "docs", INDEX, "id0001", {"_id": "id0001"}, None)
        c.rollback()
    assert rows(docs) == before


def test_a_remade_table_starts_the_cache_over(docs: Any) -> None:
    caches = vectors.VectorCaches()
    insert(docs, doc(1, [1.0, 0.0, 0.0]))
    assert len(search(caches, docs, [1.0, 0.0, 0.0])) == 1
    vectors.drop(docs, "docs", INDEX)
    vectors.create(docs, "docs", INDEX)
    insert(docs, doc(2, [0.0, 1.0, 0.0]))
    assert [h[0] for h in search(caches, docs, [1.0, 0.0, 0.0])] == ["id0002"]


def test_bad_scans_are_refused_as_on_sqlite(docs: Any) -> None:
    caches = vectors.VectorCaches()
    with pytest.raises(ProblemError, match="IndexNotFoundError"):
        caches.search(docs, DOCS, VectorScan("docs", "nope", (1.0,) * 3, 10))
    with pytest.raises(ProblemError, match="IndexNotFoundError"):
        caches.search(docs, None, VectorScan("docs", "by_e", (1.0,) * 3, 10))
    with pytest.raises(ProblemError, match="VectorDimensionsMismatch"):
        search(caches, docs, [1.0, 0.0])


COMPONENT = st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0, -0.0])
VECTOR = st.lists(COMPONENT, min_size=3, max_size=3)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    entries=st.lists(
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
    entries: list[tuple[Any, object]],
    deleted: set[int],
    query: list[float],
    limit: int,
    tags: list[object],
) -> None:
    docs.execute(f"TRUNCATE {quote(SIDE.name)}")
    scan = VectorScan(
        "docs", "by_e", tuple(query), limit, tuple(("tag", t) for t in tags)
    )
    with Store.memory(SCHEMA, seed=0) as store:
        made = [
            {
                **({} if e is None else {"e": e}),
                **({} if tag is UNSET else {"tag": tag}),
            }
            for e, tag in entries
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
    caches = vectors.VectorCaches()
    for d in stored:
        insert(docs, d)
    assert caches.search(docs, DOCS, scan) == before
    for doc_id in gone:  # applied incrementally to the cached matrix
        vectors.write(docs, "docs", INDEX, doc_id, {"_id": doc_id}, None)
    assert caches.search(docs, DOCS, scan) == after
