"""Tests for one_store.engine.search (and its FTS5 SQL) text search: Convex's tokeniser, OR-ed terms with a
prefix last term, BM25 order with newest-first ties, equality filters, the 16-term,
8-filter and 1,024-candidate limits, pagination, and the FTS5 table kept in the
document's transaction (convex-backend ``crates/search``, ``search_query.rs``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from one_store import (
    UNSET,
    InvalidIndexRange,
    LimitExceeded,
    Store,
    define_schema,
    define_table,
    v,
)
from one_store.engine.backend import SearchScan
from one_store.engine.query import plan
from one_store.engine.search import MAX_SEARCH_RESULTS, search_terms, search_tokens
from one_store.engine.sqlite.scans import match_expression, search_sql

SCHEMA = define_schema(
    {
        "posts": define_table(
            {"body": v.optional(v.any()), "channel": v.optional(v.any())}
        ).search_index("search_body", search_field="body", filter_fields=["channel"]),
    }
)


@pytest.fixture
def db() -> Iterator[Store]:
    with Store.memory(SCHEMA, seed=0) as store:
        yield store


def add(store: Store, *docs: dict[str, Any]) -> Any:
    return store.run(lambda ctx: [ctx.db.insert("posts", d) for d in docs]).unwrap()


def search(store: Store, text: str, **eqs: object) -> Any:
    """Bodies of the documents a search returns, in result order."""

    def build(q: Any) -> Any:
        q = q.search("body", text)
        for field, value in eqs.items():
            q = q.eq(field, value)
        return q

    return store.run(
        lambda ctx: [
            d["body"]
            for d in ctx.db.query("posts")
            .with_search_index("search_body", build)
            .collect()
        ]
    ).unwrap()


# ------------------------------------------------------------------ tokeniser


def test_tokens_are_alphanumeric_runs_lowercased() -> None:
    assert search_tokens("Hello, World! foo_bar x-1 ABC123") == [
        "hello",
        "world",
        "foo",
        "bar",
        "x",
        "1",
        "abc123",
    ]
    assert search_tokens("Straße ÜBER naïve") == ["straße", "über", "naïve"]


def test_tokens_of_32_bytes_or_more_are_dropped_before_lowercasing() -> None:
    assert search_tokens("a" * 31 + " " + "b" * 32 + " c") == ["a" * 31, "c"]
    # "İ" is 2 bytes but lowercases to 3: 15 of them plus "a" is 31 bytes as written.
    assert search_tokens("İ" * 15 + "a") == [("İ" * 15 + "a").lower()]


def test_only_the_first_16_terms_are_used() -> None:
    words = [f"w{i}" for i in range(20)]
    assert search_terms(" ".join(words)) == words[:16]


def test_match_expression_ors_terms_and_prefixes_the_last() -> None:
    assert match_expression(["deploy", "fail"]) == '"deploy" OR "fail"*'
    assert match_expression(["one"]) == '"one"*'
    assert match_expression([]) == ""


def test_search_sql_is_one_fts5_match(db: Store) -> None:
    def compiled(ctx: Any) -> Any:
        scan = plan(
            ctx.db.query("posts").with_search_index(
                "search_body",
                lambda q: q.search("body", "Deploy fail").eq("channel", 1),
            )
        )
        assert isinstance(scan, SearchScan)
        return list(search_sql(scan, MAX_SEARCH_RESULTS))

    sql, params = db.run(compiled).unwrap()
    assert sql == (
        'SELECT d._body, s.rank, d._creationTime, d._id FROM "posts$search$search_body" s '
        'JOIN "posts" d ON d.rowid = s.rowid WHERE s.text MATCH ? AND s.f0 = ? '
        "ORDER BY s.rank, d._creationTime DESC, d._id LIMIT 1024"
    )
    assert params == ['"deploy" OR "fail"*', b"\x09\x01"]


# ------------------------------------------------------------------ matching


def test_terms_are_ored_and_ranked_by_bm25(db: Store) -> None:
    add(
        db,
        {"body": "deploy failed again"},
        {"body": "the deploy worked"},
        {"body": "lunch"},
    )
    assert search(db, "deploy failed") == ["deploy failed again", "the deploy worked"]


def test_only_the_last_term_is_a_prefix(db: Store) -> None:
    add(db, {"body": "deployment"}, {"body": "depot"})
    assert search(db, "deploym") == ["deployment"]
    assert sorted(search(db, "dep")) == ["deployment", "depot"]
    assert search(db, "dep zzz") == []  # "dep" is not last: exact only


def test_ties_come_newest_first(db: Store) -> None:
    add(db, {"body": "same words"})
    add(db, {"body": "same words", "channel": "newer"})
    got = db.run(
        lambda ctx: [
            d.get("channel")
            for d in ctx.db.query("posts")
            .with_search_index("search_body", lambda q: q.search("body", "same"))
            .collect()
        ]
    ).unwrap()
    assert got == ["newer", None]


def test_terms_past_16_are_ignored(db: Store) -> None:
    add(db, {"body": "w15"}, {"body": "w16"})
    words = " ".join(f"w{i}" for i in range(17))
    assert search(db, words) == ["w15"]


@pytest.mark.parametrize("text", ["", "   ", "!!! ???", "x" * 40])
def test_a_query_without_usable_terms_finds_nothing(db: Store, text: str) -> None:
    add(db, {"body": "anything at all " + "x" * 40})
    assert search(db, text) == []


def test_long_document_tokens_are_not_indexed(db: Store) -> None:
    add(db, {"body": "a" * 40}, {"body": "aaaa"})
    assert search(db, "aaa") == ["aaaa"]  # prefix of both, but the long one is dropped


def test_documents_whose_search_field_is_not_a_string_are_not_indexed(
    db: Store,
) -> None:
    add(db, {"body": ["deploy"]}, {"body": 1}, {}, {"body": "deploy"})
    assert search(db, "deploy") == ["deploy"]


def test_equality_filters_are_type_strict(db: Store) -> None:
    add(
        db,
        {"body": "int", "channel": 1},
        {"body": "float", "channel": 1.0},
        {"body": "bool", "channel": True},
        {"body": "missing"},
        {"body": "null", "channel": None},
    )
    text = "int float bool missing null"
    assert search(db, text, channel=1) == ["int"]
    assert search(db, text, channel=1.0) == ["float"]
    assert search(db, text, channel=True) == ["bool"]
    assert search(db, text, channel=None) == ["null"]
    assert search(db, text, channel=UNSET) == ["missing"]


def test_filter_and_take_work_on_top(db: Store) -> None:
    add(db, *({"body": f"note {i}", "channel": i} for i in range(10)))
    got = db.run(
        lambda ctx: [
            d["channel"]
            for d in ctx.db.query("posts")
            .with_search_index("search_body", lambda q: q.search("body", "note"))
            .filter(lambda q: q.gte(q.field("channel"), 5))
            .take(3)
        ]
    ).unwrap()
    assert got == [9, 8, 7]  # ties newest first


# ------------------------------------------------------------------ bad input


def search_failure(
    store: Store, build: Any, name: str = "search_body"
) -> InvalidIndexRange:
    outcome = store.run(
        lambda ctx: ctx.db.query("posts").with_search_index(name, build).collect()
    )
    assert isinstance(outcome, Failure), outcome
    problem = outcome.failure()
    assert isinstance(problem, InvalidIndexRange)
    assert problem.index == f"posts.{name}"
    return problem


def test_search_mistakes_name_the_index_and_field(db: Store) -> None:
    assert (
        "not found"
        in search_failure(db, lambda q: q.search("body", "x"), "nope").message
    )
    problem = search_failure(db, lambda q: q.eq("channel", 1))
    assert problem.message.startswith("MissingSearchFilterError")
    problem = search_failure(db, lambda q: q.search("channel", "x"))
    assert (problem.field, problem.message.split(":")[0]) == (
        "channel",
        "IncorrectSearchField",
    )
    problem = search_failure(db, lambda q: q.search("body", "x").search("body", "y"))
    assert problem.message.startswith("DuplicateSearchFiltersError")
    problem = search_failure(db, lambda q: q.search("body", "x").eq("body", "x"))
    assert (problem.field, problem.message.split(":")[0]) == (
        "body",
        "IncorrectFilterFieldError",
    )
    problem = search_failure(db, lambda q: q.search("body", "x").eq("channel", {1}))
    assert problem.field == "channel"


def test_at_most_8_equality_filters(db: Store) -> None:
    add(db, {"body": "x", "channel": 1})

    def eqs(n: int) -> Any:
        def build(q: Any) -> Any:
            q = q.search("body", "x")
            for _ in range(n):
                q = q.eq("channel", 1)
            return q

        return build

    assert (
        len(
            db.run(
                lambda ctx: (
                    ctx.db.query("posts")
                    .with_search_index("search_body", eqs(8))
                    .collect()
                )
            ).unwrap()
        )
        == 1
    )
    problem = search_failure(db, eqs(9))
    assert problem.message.startswith("TooManyFilterConditionsInSearchQueryError")
    assert "Max: 8 Actual: 9" in problem.message


def test_order_is_always_relevance(db: Store) -> None:
    outcome = db.run(
        lambda ctx: (
            ctx.db.query("posts")
            .with_search_index("search_body", lambda q: q.search("body", "x"))
            .order("desc")
        )
    )
    assert "relevance order" in outcome.failure().message


# ------------------------------------------------------------------ limits, pages


def fill(store: Store, n: int) -> None:
    store.run(
        lambda ctx: len(
            [ctx.db.insert("posts", {"body": f"word {i}"}) for i in range(n)]
        )
    ).unwrap()


def count(store: Store, take: int | None = None) -> Any:
    def handler(ctx: Any) -> Any:
        q = ctx.db.query("posts").with_search_index(
            "search_body", lambda q: q.search("body", "word")
        )
        return len(q.collect() if take is None else q.take(take))

    return store.run(handler)


def test_1023_candidates_can_be_collected(db: Store) -> None:
    fill(db, 1023)
    assert count(db).unwrap() == 1023


def test_reading_past_1024_candidates_is_limit_exceeded(db: Store) -> None:
    fill(db, 1024)
    assert count(db, take=1024).unwrap() == 1024
    problem = count(db).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.message.startswith(
        "Search query scanned too many documents (fetched 1024)"
    )


def test_search_pages_cover_every_result_once(db: Store) -> None:
    add(db, *({"body": f"word {'word ' * (i % 3)}{i}"} for i in range(25)))
    everything = search(db, "word")

    def page(cursor: str | None) -> Any:
        return db.run(
            lambda ctx: (
                ctx.db.query("posts")
                .with_search_index("search_body", lambda q: q.search("body", "word"))
                .paginate({"numItems": 7, "cursor": cursor})
            )
        ).unwrap()

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        result = page(cursor)
        seen += [d["body"] for d in result["page"]]
        cursor = result["continueCursor"]
        if result["isDone"]:
            break
    assert seen == everything
    assert len(seen) == 25


# ------------------------------------------------------------------ transactions


def test_the_index_follows_writes_in_the_same_transaction(db: Store) -> None:
    def handler(ctx: Any) -> Any:
        doc_id = ctx.db.insert("posts", {"body": "first draft"})
        found = [
            d["_id"]
            for d in ctx.db.query("posts")
            .with_search_index("search_body", lambda q: q.search("body", "draft"))
            .collect()
        ]
        ctx.db.patch(doc_id, {"body": "final copy"})
        old = (
            ctx.db.query("posts")
            .with_search_index("search_body", lambda q: q.search("body", "draft"))
            .collect()
        )
        new = (
            ctx.db.query("posts")
            .with_search_index("search_body", lambda q: q.search("body", "final"))
            .collect()
        )
        return found == [doc_id], old, [d["_id"] for d in new] == [doc_id]

    assert db.run(handler).unwrap() == [True, [], True]
    (doc_id,) = add(db, {"body": "to be deleted"})
    db.run(lambda ctx: ctx.db.delete(doc_id)).unwrap()
    assert search(db, "deleted") == []


def test_a_rolled_back_write_leaves_no_search_entry(db: Store) -> None:
    def handler(ctx: Any) -> Any:
        ctx.db.insert("posts", {"body": "ghost"})
        raise RuntimeError("abort after the insert")

    assert isinstance(db.run(handler), Failure)
    assert search(db, "ghost") == []
    fts = db.storage.connection.execute(
        'SELECT count(*) FROM "posts$search$search_body"'
    ).fetchone()
    assert fts == (0,)


def test_patch_and_replace_move_the_filter_values(db: Store) -> None:
    (doc_id,) = add(db, {"body": "hello", "channel": 1})
    db.run(lambda ctx: ctx.db.patch(doc_id, {"channel": 2})).unwrap()
    assert (search(db, "hello", channel=1), search(db, "hello", channel=2)) == (
        [],
        ["hello"],
    )
    db.run(lambda ctx: ctx.db.replace(doc_id, {"body": "bye"})).unwrap()
    assert search(db, "hello") == []
    assert search(db, "bye", channel=UNSET) == ["bye"]


def test_a_search_index_added_later_is_back_filled(tmp_path: Path) -> None:
    path = tmp_path / "later.db"
    plain = define_schema({"posts": define_table({"body": v.optional(v.any())})})
    with Store.open(path, schema=plain, seed=0) as store:
        add(store, {"body": "written before the index"}, {"body": "other"})
    with Store.open(path, schema=SCHEMA, seed=0) as store:
        assert search(store, "index") == ["written before the index"]


# ------------------------------------------------------------------ top n


WORDS = ("alpha", "beta", "gamma", "alphabet")


@given(
    bodies=st.lists(
        st.tuples(
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
            st.sampled_from(("a", "b")),
        ),
        max_size=30,
    ),
    text=st.sampled_from(("alpha", "beta gam", "gamma alpha", "alph")),
    n=st.integers(min_value=1, max_value=12),
    channel=st.sampled_from((None, "a")),
)
@settings(max_examples=60, deadline=None)
def test_take_n_is_the_first_n_of_the_whole_ranking(
    bodies: list[tuple[list[str], str]], text: str, n: int, channel: str | None
) -> None:
    # take(n) ranks on the FTS table alone and reads only the first n matches
    # and their ties; collect() joins every match. Few words make many ties
    # (same BM25 score), which must still come newest first, then by _id.
    with Store.memory(SCHEMA, seed=0) as store:
        add(store, *({"body": " ".join(w), "channel": c} for w, c in bodies))

        def both(ctx: Any) -> tuple[list[str], list[str]]:
            def build(q: Any) -> Any:
                q = q.search("body", text)
                return q if channel is None else q.eq("channel", channel)

            def query() -> Any:
                return ctx.db.query("posts").with_search_index("search_body", build)

            top = [d["_id"] for d in query().take(n)]
            whole = [d["_id"] for d in query().collect()]
            return top, whole

        top, whole = store.run(both).unwrap()
        assert top == whole[:n]
