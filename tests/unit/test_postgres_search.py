"""Tests for one_store.engine.postgres.text_search on a real PostgreSQL server.

Convex's semantics (convex-backend ``crates/search``, ``search_query.rs``): any of
the terms, the last also as a prefix; filters by equality (type-strict, missing
is its own value); ties newest first, then ``_id``. What holds on both engines is
tested against the SQLite engine on the same documents (the set of matches);
the relevance order is ``ts_rank`` on PostgreSQL, tested on its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from attrs import field, frozen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from one_store import UNSET, Store, define_schema, define_table, v
from one_store.engine.backend import SearchScan
from one_store.engine.postgres import text_search
from one_store.engine.postgres.side_tables import SearchSide, pg_name, quote
from one_store.engine.search import search_entry_matches, search_terms
from one_store.model.keys import sort_key
from one_store.model.schema import Index, SearchIndex, VectorIndex
from one_store.model.values import dumps, loads
from tests.postgres_server import connect

INDEX = SearchIndex("search_body", "body", ("channel", "n"))
SCHEMA = define_schema(
    {
        "posts": define_table(
            {"body": v.optional(v.any()), "channel": v.optional(v.any())}
        ).search_index("search_body", search_field="body", filter_fields=["channel"]),
    }
)


@frozen
class Table:
    """A ``TableInfo`` for the tests (the engine's own comes with its Storage)."""

    name: str
    number: int = 10001
    indexes: dict[str, Index] = field(factory=dict)
    search_indexes: dict[str, SearchIndex] = field(factory=lambda: {INDEX.name: INDEX})
    vector_indexes: dict[str, VectorIndex] = field(factory=dict)


POSTS = Table("posts")


def make_tables(connection: Any, table: Table = POSTS) -> None:
    connection.execute(
        f'CREATE TABLE {quote(table.name)} (_id text COLLATE "C" PRIMARY KEY, '
        '"_creationTime" double precision NOT NULL, _body text NOT NULL)'
    )
    for side in text_search.sides(table):
        text_search.create(connection, side)


def put(connection: Any, *docs: dict[str, Any], table: Table = POSTS) -> None:
    for doc in docs:
        connection.execute(
            f"INSERT INTO {quote(table.name)} VALUES (%s, %s, %s)",
            (doc["_id"], doc["_creationTime"], dumps(doc)),
        )
        text_search.index_document(connection, table, doc)


def doc(
    n: int, body: object, channel: object = UNSET, created: float | None = None
) -> dict[str, Any]:
    d: dict[str, Any] = {"_id": f"id{n:04d}", "_creationTime": created or 1000.0 + n}
    if body is not UNSET:
        d["body"] = body
    if channel is not UNSET:
        d["channel"] = channel
    return d


def scan(text: str, **eqs: object) -> SearchScan:
    filters = tuple((INDEX.filter_fields.index(f), sort_key(x)) for f, x in eqs.items())
    return SearchScan("posts", "search_body", tuple(search_terms(text)), filters)


def ids(connection: Any, s: SearchScan, limit: int = 1024) -> list[str]:
    return [
        loads(body)["_id"] for body, _ in text_search.search_rows(connection, s, limit)
    ]


@pytest.fixture
def posts(pg: Any) -> Any:
    make_tables(pg)
    return pg


def test_any_term_matches_and_the_last_is_a_prefix(posts: Any) -> None:
    put(
        posts,
        doc(1, "the quick brown fox"),
        doc(2, "lazy dogs sleep"),
        doc(3, "quickly now"),
        doc(4, "nothing here"),
    )
    assert set(ids(posts, scan("fox dog"))) == {"id0001", "id0002"}  # dog: prefix
    assert set(ids(posts, scan("dog fox"))) == {"id0001"}  # dog not last: exact only
    assert set(ids(posts, scan("quick"))) == {"id0001", "id0003"}
    assert ids(posts, scan("")) == []  # no terms: nothing, as Convex
    assert ids(posts, scan("zebra")) == []


def test_tokens_are_convex_tokens_not_postgresql_words(posts: Any) -> None:
    # PostgreSQL's parser would keep "foo-bar" and "x@y.com" whole or as
    # compounds; one_store's tokens are runs of letters and digits, lowercased.
    put(posts, doc(1, "Foo-Bar x@y.com ÜBER"), doc(2, "running runs"))
    assert ids(posts, scan("bar")) == ["id0001"]
    assert ids(posts, scan("com")) == ["id0001"]
    assert ids(posts, scan("über")) == ["id0001"]
    assert ids(posts, scan("run")) == ["id0002"]  # a prefix, not a stem
    assert ids(posts, scan("run x")) == ["id0001"]  # "run" not last: no stemming


def test_words_past_the_last_tsvector_position_still_match(posts: Any) -> None:
    # tsvector positions stop at 16,383: a word after that must match all the same.
    long = " ".join(["filler"] * 20_000 + ["needle"])
    put(posts, doc(1, long), doc(2, "needle"))
    assert sorted(ids(posts, scan("needle"))) == ["id0001", "id0002"]
    assert ids(posts, scan("fill")) == ["id0001"]


def test_filters_are_type_strict_equalities(posts: Any) -> None:
    put(
        posts,
        doc(1, "hello", "a"),
        doc(2, "hello", "b"),
        doc(3, "hello", 1),
        doc(4, "hello", 1.0),
        doc(5, "hello"),  # channel missing
        doc(6, "hello", None),
    )
    assert ids(posts, scan("hello", channel="a")) == ["id0001"]
    assert ids(posts, scan("hello", channel=1)) == ["id0003"]
    assert ids(posts, scan("hello", channel=1.0)) == ["id0004"]
    assert ids(posts, scan("hello", channel=UNSET)) == ["id0005"]
    assert ids(posts, scan("hello", channel=None)) == ["id0006"]


def test_ties_go_newest_first_then_by_id(posts: Any) -> None:
    put(
        posts,
        doc(1, "same words", created=5.0),
        doc(2, "same words", created=7.0),
        doc(3, "same words", created=7.0),
        doc(4, "same words", created=6.0),
    )
    assert ids(posts, scan("same")) == ["id0002", "id0003", "id0004", "id0001"]
    keys = [key for _, key in text_search.search_rows(posts, scan("same"), 10)]
    assert keys == sorted(keys)  # the keys are in result order


def test_ts_rank_orders_by_frequency_and_length(posts: Any) -> None:
    # What BM25 (Convex) and ts_rank with length normalisation agree on: more
    # occurrences at the same length rank higher, and so does a shorter
    # document with as many.
    put(
        posts,
        doc(1, "apple pear plum fig", created=9.0),
        doc(2, "apple apple pear plum", created=1.0),
        doc(3, "apple pear", created=5.0),
    )
    found = ids(posts, scan("apple"))
    assert found.index("id0002") < found.index("id0001")
    assert found.index("id0003") < found.index("id0001")
    # A document matching two terms ranks above those matching one.
    assert ids(posts, scan("fig appl"))[0] == "id0001"


def test_ts_rank_weighs_length_more_than_bm25_does(posts: Any) -> None:
    # PostgreSQL-specific (docs/differences-from-convex.md): BM25 (k1 = 1.2,
    # b = 0.75) puts three "apple"s in four words above one in two;
    # ts_rank(tokens, query, 1) puts the shorter document first.
    put(posts, doc(2, "apple apple apple pear"), doc(3, "apple banana"))
    assert ids(posts, scan("apple")) == ["id0003", "id0002"]


def test_limits_and_top(posts: Any) -> None:
    put(posts, *(doc(n, f"word{n % 3} common") for n in range(40)))
    assert len(ids(posts, scan("common"), limit=25)) == 25
    top = text_search.search_top(posts, scan("common"), 5, 1024)
    full = list(text_search.search_rows(posts, scan("common"), 1024))
    assert top == full[:5]
    assert text_search.search_top(posts, scan("zebra"), 5, 1024) == []


def test_writes_keep_the_index_in_step(posts: Any) -> None:
    old = doc(1, "red apple", "a")
    put(posts, old, doc(2, "green apple", "a"))
    new = {**old, "body": "blue sky"}
    text_search.reindex_document(posts, POSTS, old, new)
    assert ids(posts, scan("red")) == []
    assert ids(posts, scan("sky")) == ["id0001"]
    moved = {**new, "channel": "b"}
    text_search.reindex_document(posts, POSTS, new, moved)
    assert ids(posts, scan("sky", channel="b")) == ["id0001"]
    no_text = {**moved, "body": 5}
    text_search.reindex_document(posts, POSTS, moved, no_text)
    assert ids(posts, scan("sky")) == []
    text_search.unindex_document(posts, POSTS, "id0002")
    assert ids(posts, scan("apple")) == []
    text_search.clear(posts, POSTS)
    (count,) = posts.execute(
        f"SELECT count(*) FROM {quote(pg_name('posts$search$search_body'))}"
    ).fetchone()
    assert count == 0


def test_a_rolled_back_write_leaves_no_entry(postgres_dsn: str, pg_schema: str) -> None:
    with connect(postgres_dsn, pg_schema, autocommit=True) as c:
        make_tables(c)
    with connect(postgres_dsn, pg_schema) as c:
        put(c, doc(1, "ghost"))
        c.rollback()
        put(c, doc(2, "kept"))
        c.commit()
        assert ids(c, scan("ghost kept")) == ["id0002"]


def test_long_names_get_distinct_tables(pg: Any) -> None:
    long = "t" * 60
    a = Table(long, search_indexes={"search_body": INDEX})
    b = Table(long, search_indexes={"search_bodz": SearchIndex("search_bodz", "body")})
    names = {s.name for t in (a, b) for s in text_search.sides(t)}
    assert len(names) == 2
    assert all(len(n.encode()) <= 63 for n in names)
    make_tables(pg, a)
    for side in text_search.sides(b):
        text_search.create(pg, side)
    put(pg, doc(1, "hello"), table=a)
    s = SearchScan(long, "search_body", ("hello",))
    assert [loads(b)["_id"] for b, _ in text_search.search_rows(pg, s, 10)] == [
        "id0001"
    ]


def test_backfill_indexes_stored_documents(pg: Any) -> None:
    side = SearchSide.build("posts", INDEX)
    docs = [doc(1, "alpha"), doc(2, 7), doc(3, "beta alpha")]
    pg.execute(
        f'CREATE TABLE {quote("posts")} (_id text COLLATE "C" PRIMARY KEY, '
        '"_creationTime" double precision, _body text)'
    )
    for d in docs:
        pg.execute(
            "INSERT INTO posts VALUES (%s, %s, %s)",
            (d["_id"], d["_creationTime"], dumps(d)),
        )
    text_search.create(pg, side)
    assert text_search.backfill(pg, side, [dumps(d) for d in docs]) == 2
    assert sorted(ids(pg, scan("alpha"))) == ["id0001", "id0003"]


WORDS = ["cat", "car", "cart", "dog", "do", "fish", "Cat", "ünï"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    bodies=st.lists(
        st.tuples(
            st.one_of(
                st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
                st.integers(0, 3),
            ),
            st.sampled_from(["a", "b", 1, UNSET]),
        ),
        max_size=12,
    ),
    query=st.lists(st.sampled_from([*WORDS, "ca", "d", "zzz"]), max_size=4).map(
        " ".join
    ),
    channel=st.sampled_from([None, "a", 1, UNSET]),
)
def test_matches_equal_the_sqlite_engine(
    posts: Any, bodies: list[tuple[object, object]], query: str, channel: object
) -> None:
    posts.execute("TRUNCATE posts, " + quote(pg_name("posts$search$search_body")))
    with Store.open(":memory:", schema=SCHEMA, seed=0) as store:  # SQLite
        rows = [
            {"body": body, **({} if ch is UNSET else {"channel": ch})}
            for body, ch in bodies
        ]
        store.run(lambda ctx: [ctx.db.insert("posts", r) for r in rows]).unwrap()

        def run(ctx: Any) -> Any:
            def build(q: Any) -> Any:
                q = q.search("body", query)
                return q if channel is None else q.eq("channel", channel)

            found = ctx.db.query("posts").with_search_index("search_body", build)
            return [d["_id"] for d in found.collect()], ctx.db.query("posts").collect()

        expected, stored = store.run(run).unwrap()
    put(posts, *stored)
    eqs = {} if channel is None else {"channel": channel}
    got = ids(posts, scan(query, **eqs))
    assert set(got) == set(expected)
    # The change log's rule (reactive queries) agrees with the engine too.
    side = SearchSide.build("posts", INDEX)
    assert {
        d["_id"]
        for d in stored
        if search_entry_matches(scan(query, **eqs), side.entry(d))
    } == set(got)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["red fox", "blue whale"]), st.sampled_from(["a", "b"])
        ),
        max_size=15,
    ),
    channel=st.sampled_from([None, "a", "b"]),
)
def test_equal_scores_come_in_the_sqlite_engines_order(
    posts: Any, rows: list[tuple[str, str]], channel: str | None
) -> None:
    # Equal texts score equal on both engines: the order is then Convex's tie
    # order alone (newest first, then _id), which both engines must follow.
    posts.execute("TRUNCATE posts, " + quote(pg_name("posts$search$search_body")))
    with Store.open(":memory:", schema=SCHEMA, seed=0) as store:  # SQLite
        store.run(
            lambda ctx: [
                ctx.db.insert("posts", {"body": b, "channel": c}) for b, c in rows
            ]
        ).unwrap()

        def run(ctx: Any) -> Any:
            def build(q: Any) -> Any:
                q = q.search("body", "fox")
                return q if channel is None else q.eq("channel", channel)

            found = ctx.db.query("posts").with_search_index("search_body", build)
            return [d["_id"] for d in found.collect()], ctx.db.query("posts").collect()

        expected, stored = store.run(run).unwrap()
    put(posts, *stored)
    eqs = {} if channel is None else {"channel": channel}
    assert ids(posts, scan("fox", **eqs)) == expected
