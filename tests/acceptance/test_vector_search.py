"""Vector search: ``ctx.vector_search`` in actions, as Convex's ``ctx.vectorSearch``.

The expected behaviour is convex-backend's (``crates/vector/src/query.rs``
``QdrantSchema::compile`` for the checks and their texts, ``qdrant_index.rs``
``QdrantSchema::index`` for what is indexed, ``compile_search_and_truncate``
for the order) and convex-js's ``src/server/impl/vector_search_impl.ts`` (actions
only). Where one_store differs (``limit: 0``, non-finite vectors, an unknown
table) the test says so; docs/differences-from-convex.md lists the same.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Result, Success

from one_store import (
    UNSET,
    ArgsInvalid,
    ContextError,
    ConvexError,
    InvalidIndexRange,
    Problem,
    SchemaError,
    Store,
    action,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.model.ids import decode_id

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = define_schema(
    {
        "docs": define_table(
            {
                "embedding": v.optional(v.array(v.float64())),
                "user": v.optional(v.any()),
                "kind": v.optional(v.string()),
                "text": v.optional(v.string()),
            }
        )
        .index("by_user", ["user"])
        .vector_index(
            "by_embedding",
            vector_field="embedding",
            dimensions=3,
            filter_fields=["user", "kind"],
        ),
        "loose": define_table().vector_index(
            "by_vec", vector_field="meta.vec", dimensions=2
        ),
    }
)


@pytest.fixture
def store():
    with Store.memory(SCHEMA, seed=1) as s:
        yield s


def insert(store: Store, doc: dict[str, Any], table: str = "docs") -> str:
    return str(store.run(lambda ctx: ctx.db.insert(table, doc)).unwrap())


def delete(store: Store, doc_id: str) -> None:
    store.run(lambda ctx: ctx.db.delete(doc_id)).unwrap()


def search(
    store: Store,
    request: Any,
    table: str = "docs",
    index: str = "by_embedding",
) -> Result[Any, Problem]:
    @action(args={})
    def run(ctx, args):
        return ctx.vector_search(table, index, request)

    return store.action(run, {})


def ids(result: Result[Any, Problem]) -> list[str]:
    return [hit["_id"] for hit in result.unwrap()]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def problem(result: Result[Any, Problem]) -> Any:
    assert isinstance(result, Failure), result
    return result.failure()


# ---------------------------------------------------------------- results


def test_hits_are_ids_and_cosine_scores_best_first(store):
    vectors = {
        "x": [1.0, 0.0, 0.0],
        "xy": [1.0, 1.0, 0.0],
        "y": [0.0, 1.0, 0.0],
        "minus_x": [-2.0, 0.0, 0.0],
    }
    made = {name: insert(store, {"embedding": vec}) for name, vec in vectors.items()}
    query_vector = [0.9, 0.2, 0.0]
    hits = search(store, {"vector": query_vector}).unwrap()
    assert [set(hit) for hit in hits] == [{"_id", "_score"}] * 4
    assert [hit["_id"] for hit in hits] == [
        made["x"],
        made["xy"],
        made["y"],
        made["minus_x"],
    ]
    for hit, name in zip(hits, ["x", "xy", "y", "minus_x"], strict=True):
        assert hit["_score"] == pytest.approx(cosine(vectors[name], query_vector))
    assert hits[-1]["_score"] < 0


def test_limit_defaults_to_10_and_fewer_matches_return_all(store):
    for i in range(12):
        insert(store, {"embedding": [1.0, float(i), 0.0]})
    assert len(search(store, {"vector": [1.0, 0.0, 0.0]}).unwrap()) == 10
    assert len(search(store, {"vector": [1.0, 0.0, 0.0], "limit": 3}).unwrap()) == 3
    assert len(search(store, {"vector": [1.0, 0.0, 0.0], "limit": 256}).unwrap()) == 12


def test_an_identical_vector_scores_one_and_a_zero_vector_scores_zero(store):
    same = insert(store, {"embedding": [0.1, 0.2, 0.3]})
    zero = insert(store, {"embedding": [0.0, 0.0, 0.0]})
    hits = search(store, {"vector": [0.1, 0.2, 0.3]}).unwrap()
    assert hits[0]["_id"] == same
    assert hits[0]["_score"] == pytest.approx(1.0, abs=1e-6)
    assert hits[1] == {"_id": zero, "_score": 0.0}
    # A zero query vector scores 0 against everything.
    assert {h["_score"] for h in search(store, {"vector": [0, 0, 0]}).unwrap()} == {0.0}


def test_ties_go_to_the_higher_internal_id_first(store):
    # Convex: score descending, then the internal ID (the 16 bytes inside _id)
    # descending (VectorSearchQueryResult::cmp, reversed).
    made = [insert(store, {"embedding": [3.0, 4.0, 0.0]}) for _ in range(8)]
    made += [insert(store, {"embedding": [6.0, 8.0, 0.0]}) for _ in range(4)]
    hits = search(store, {"vector": [1.0, 2.0, 3.0], "limit": 12}).unwrap()
    assert len({h["_score"] for h in hits}) == 1
    expected = sorted(made, key=lambda i: decode_id(i)[1], reverse=True)  # type: ignore[index]
    assert [h["_id"] for h in hits] == expected
    # The same order at every limit: the first n are the first n of the whole.
    for n in (1, 5, 11):
        assert (
            ids(search(store, {"vector": [1.0, 2.0, 3.0], "limit": n}))
            == (expected[:n])
        )


def test_what_is_not_indexed_is_never_returned(store):
    kept = insert(store, {"embedding": [1.0, 0.0, 0.0]})
    insert(store, {"text": "no embedding"})
    insert(store, {"embedding": [1.0, 0.0]})  # wrong length
    insert(store, {"embedding": [1.0, 0.0, 0.0, 0.0]})
    insert(store, {"embedding": [1.0, math.nan, 0.0]})  # not finite
    insert(store, {"embedding": [math.inf, 0.0, 0.0]})
    insert(store, {"embedding": [1e39, 0.0, 0.0]})  # beyond float32
    insert(store, {"embedding": [1.0, 2.0, 3.0]}, table="loose")
    insert(store, {"meta": {"vec": [1, 2]}}, table="loose")  # int64 elements
    insert(store, {"meta": {"vec": [True, 2.0]}}, table="loose")
    insert(store, {"meta": {"vec": "1,2"}}, table="loose")
    nested = insert(store, {"meta": {"vec": [1.0, 2.0]}}, table="loose")
    assert ids(search(store, {"vector": [1, 0, 0], "limit": 256})) == [kept]
    found = search(store, {"vector": [1, 2]}, table="loose", index="by_vec")
    assert ids(found) == [nested]


def test_large_finite_vectors_are_scored_by_direction(store):
    big = insert(store, {"embedding": [3e38, 0.0, 0.0]})
    small = insert(store, {"embedding": [0.0, 1e-30, 0.0]})
    hits = search(store, {"vector": [1e-20, 0.0, 0.0]}).unwrap()
    assert hits[0] == {"_id": big, "_score": pytest.approx(1.0, abs=1e-6)}
    assert hits[1]["_id"] == small
    assert hits[1]["_score"] == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- filters


@pytest.fixture
def people(store):
    rows = {
        "a1": ("a", "note", [1.0, 0.0, 0.0]),
        "a2": ("a", "task", [0.9, 0.1, 0.0]),
        "b1": ("b", "note", [0.8, 0.2, 0.0]),
        "c1": ("c", "task", [0.7, 0.3, 0.0]),
        "int1": (1, "note", [0.6, 0.4, 0.0]),
        "float1": (1.0, "note", [0.5, 0.5, 0.0]),
        "null": (None, "note", [0.4, 0.6, 0.0]),
        "missing": (UNSET, "note", [0.3, 0.7, 0.0]),
    }
    made = {}
    for name, (user, kind, vec) in rows.items():
        doc: dict[str, Any] = {"kind": kind, "embedding": vec}
        if user is not UNSET:
            doc["user"] = user
        made[name] = insert(store, doc)
    return made


def filtered(store, fn) -> list[str]:
    return ids(search(store, {"vector": [1.0, 0.0, 0.0], "filter": fn}))


def test_eq_keeps_one_value(store, people):
    assert filtered(store, lambda q: q.eq("user", "a")) == [people["a1"], people["a2"]]


def test_or_is_any_condition_within_and_across_fields(store, people):
    within = filtered(store, lambda q: q.or_(q.eq("user", "b"), q.eq("user", "c")))
    assert within == [people["b1"], people["c1"]]
    # No AND in Convex's vector filters: conditions on two fields are OR-ed too.
    across = filtered(store, lambda q: q.or_(q.eq("user", "b"), q.eq("kind", "task")))
    assert across == [people["a2"], people["b1"], people["c1"]]
    nested = filtered(
        store,
        lambda q: q.or_(q.or_(q.eq("user", "c"), q.or_(q.eq("user", "b"))), q.or_()),
    )
    assert nested == [people["b1"], people["c1"]]


def test_an_empty_or_means_no_filter(store, people):
    assert len(filtered(store, lambda q: q.or_())) == len(people)


def test_values_compare_as_convex_values(store, people):
    assert filtered(store, lambda q: q.eq("user", 1)) == [people["int1"]]
    assert filtered(store, lambda q: q.eq("user", 1.0)) == [people["float1"]]
    assert filtered(store, lambda q: q.eq("user", None)) == [people["null"]]
    assert filtered(store, lambda q: q.eq("user", UNSET)) == [people["missing"]]
    assert filtered(store, lambda q: q.eq("user", "nobody")) == []


def test_duplicate_conditions_collapse(store, people):
    many = [("user", "a")] * 100
    assert filtered(store, lambda q: q.or_(*(q.eq(f, x) for f, x in many))) == [
        people["a1"],
        people["a2"],
    ]


def test_a_filter_on_a_field_not_in_filter_fields_fails(store, people):
    found = problem(
        search(store, {"vector": [1, 0, 0], "filter": lambda q: q.eq("text", "x")})
    )
    assert isinstance(found, InvalidIndexRange)
    assert found.field == "text"
    assert found.message == (
        "IncorrectVectorFilterField: Vector query against docs.by_embedding "
        'contains a filter on "text" but that field isn\'t indexed for filtering '
        "in `filterFields`."
    )


def test_more_than_64_conditions_fail(store, people):
    def many(n):
        return lambda q: q.or_(*(q.eq("user", f"u{i}") for i in range(n)))

    assert search(store, {"vector": [1, 0, 0], "filter": many(64)}).unwrap() == []
    found = problem(search(store, {"vector": [1, 0, 0], "filter": many(65)}))
    assert isinstance(found, InvalidIndexRange)
    assert found.message.endswith("has too many conditions. Max: 64 Actual: 65")


@pytest.mark.parametrize(
    "fn",
    [
        lambda q: True,
        lambda q: None,
        lambda q: q.or_(q.eq("user", "a"), "user"),
        lambda q: q.eq(1, "a"),
    ],
)
def test_a_filter_that_is_not_eq_and_or_fails(store, fn):
    found = problem(search(store, {"vector": [1, 0, 0], "filter": fn}))
    assert isinstance(found, ArgsInvalid)
    assert found.path == ".filter"


# ---------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("request_", "path", "text"),
    [
        (
            {"vector": [1.0, 0.0]},
            ".vector",
            "VectorDimensionsMismatch: Expected a vector with dimensions 3, received 2.",
        ),
        (
            {"vector": [0.5] * 4097},
            ".vector",
            "VectorDimensionsMismatch: Expected a vector with dimensions 4096, "
            "received 4097.",
        ),
        (
            {"vector": [1, 0, 0], "limit": 257},
            ".limit",
            "VectorLimitTooLargeError: Vector queries can fetch at most 256 results, "
            "requested 257.",
        ),
        (
            {"vector": [1, 0, 0], "limit": 0},
            ".limit",
            "`limit` must be between 1 and 256, requested 0.",
        ),
        ({"vector": [1, 0, 0], "limit": -1}, ".limit", None),
        ({"vector": [1, 0, 0], "limit": 2.5}, ".limit", None),
        ({"vector": [1, 0, 0], "limit": True}, ".limit", None),
        ({"vector": []}, ".vector", None),
        ({"vector": "1,0,0"}, ".vector", None),
        ({}, ".vector", None),
        ({"vector": [1, None, 0]}, ".vector[1]", None),
        ({"vector": [1, True, 0]}, ".vector[1]", None),
        ({"vector": [1, math.nan, 0]}, ".vector[1]", None),
        ({"vector": [1, 0, -math.inf]}, ".vector[2]", None),
        ({"vector": [1, 0, 0], "limt": 3}, ".limt", None),
        ([1, 0, 0], ".", None),
    ],
)
def test_a_bad_request_fails_with_what_and_where(store, request_, path, text):
    insert(store, {"embedding": [1.0, 0.0, 0.0]})
    found = problem(search(store, request_))
    assert isinstance(found, ArgsInvalid)
    assert found.path == path
    if text is not None:
        assert found.message == text


def test_the_check_order_is_convex_s(store):
    # compile(): length > 4096, then limit, then filter fields, then dimensions.
    bad_all = {
        "vector": [1.0, 0.0],
        "limit": 300,
        "filter": lambda q: q.eq("text", "x"),
    }
    assert problem(search(store, bad_all)).path == ".limit"
    del bad_all["limit"]
    assert isinstance(problem(search(store, bad_all)), InvalidIndexRange)
    del bad_all["filter"]
    assert problem(search(store, bad_all)).path == ".vector"


@pytest.mark.parametrize(
    ("table", "index"),
    [("docs", "nope"), ("docs", "by_user"), ("nope", "by_embedding")],
)
def test_an_unknown_vector_index_fails(store, table, index):
    found = problem(search(store, {"vector": [1, 0, 0]}, table=table, index=index))
    assert isinstance(found, InvalidIndexRange)
    assert found.message == f"IndexNotFoundError: Index {table}.{index} not found."


def test_vector_search_in_a_query_or_mutation_is_misuse(store):
    request = {"vector": [1.0, 0.0, 0.0]}

    @query(args={})
    def in_query(ctx, args):
        return ctx.vector_search("docs", "by_embedding", request)

    @mutation(args={})
    def in_mutation(ctx, args):
        return ctx.vector_search("docs", "by_embedding", request)

    with pytest.raises(ContextError, match="only available in actions"):
        store.query(in_query, {})
    with pytest.raises(ContextError, match="only available in actions"):
        store.mutation(in_mutation, {})


def test_a_failed_search_fails_the_action_with_its_problem(store):
    @action(args={})
    def caught(ctx, args):
        ctx.vector_search("docs", "by_embedding", {"vector": [1.0]})
        return "unreachable"

    assert isinstance(store.action(caught, {}), Failure)


# ---------------------------------------------------------------- kept in step


def test_patch_replace_and_delete_are_seen_by_the_next_search(store):
    a = insert(store, {"embedding": [1.0, 0.0, 0.0], "user": "a"})
    b = insert(store, {"embedding": [0.0, 1.0, 0.0], "user": "b"})
    top = {"vector": [0.0, 1.0, 0.0], "limit": 1}
    assert ids(search(store, top)) == [b]
    store.run(lambda ctx: ctx.db.patch(a, {"embedding": [0.0, 2.0, 0.1]}))
    store.run(lambda ctx: ctx.db.patch(b, {"embedding": [1.0, 0.0, 0.0]}))
    assert ids(search(store, top)) == [a]
    by_b = {"vector": [0.0, 1.0, 0.0], "filter": lambda q: q.eq("user", "b")}
    assert ids(search(store, by_b)) == [b]
    store.run(lambda ctx: ctx.db.patch(b, {"user": "c"}))  # only a filter value
    assert ids(search(store, by_b)) == []
    store.run(lambda ctx: ctx.db.replace(a, {"embedding": [1.0, 2.0]}))  # not indexed
    assert ids(search(store, {"vector": [1, 1, 1]})) == [b]
    store.run(lambda ctx: ctx.db.patch(a, {"embedding": [0.0, 1.0, 0.0]}))
    assert ids(search(store, {"vector": [1, 1, 1]})) == [a, b]
    store.run(lambda ctx: ctx.db.delete(b))
    assert ids(search(store, {"vector": [1, 1, 1]})) == [a]
    store.run(lambda ctx: ctx.db.patch(a, {"embedding": UNSET}))
    assert ids(search(store, {"vector": [1, 1, 1]})) == []


def test_a_rolled_back_mutation_leaves_search_unchanged(store):
    a = insert(store, {"embedding": [1.0, 0.0, 0.0]})
    b = insert(store, {"embedding": [0.0, 1.0, 0.0]})
    request = {"vector": [0.3, 0.4, 0.5], "limit": 10}
    before = search(store, request).unwrap()

    @mutation(args={})
    def churn(ctx, args):
        ctx.db.insert("docs", {"embedding": [0.3, 0.4, 0.5]})
        ctx.db.patch(a, {"embedding": [0.0, 0.0, 1.0]})
        ctx.db.delete(b)
        raise ConvexError("changed my mind")

    assert isinstance(store.mutation(churn, {}), Failure)
    assert search(store, request).unwrap() == before


def test_an_action_sees_its_own_mutations_at_once(store):
    @mutation(args={"vec": v.array(v.float64())})
    def add(ctx, args):
        return ctx.db.insert("docs", {"embedding": args["vec"]})

    @action(args={})
    def add_then_search(ctx, args):
        made = ctx.run_mutation(add, {"vec": [0.0, 0.0, 1.0]}).unwrap()
        hits = ctx.vector_search(
            "docs", "by_embedding", {"vector": [0.0, 0.0, 1.0], "limit": 1}
        )
        return made == hits[0]["_id"]

    insert(store, {"embedding": [1.0, 0.0, 0.0]})
    assert store.action(add_then_search, {}) == Success(True)


def test_a_new_vector_index_indexes_what_the_file_holds(tmp_path):
    path = tmp_path / "grow.db"
    plain = define_schema(
        {"docs": define_table({"embedding": v.array(v.float64()), "tag": v.string()})}
    )
    with Store.open(path, schema=plain) as before:
        first = insert(before, {"embedding": [1.0, 0.0], "tag": "x"})
        second = insert(before, {"embedding": [0.0, 1.0], "tag": "y"})
        insert(before, {"embedding": [1.0, 0.0, 0.0], "tag": "x"})  # 3 numbers
    indexed = define_schema(
        {
            "docs": define_table(
                {"embedding": v.array(v.float64()), "tag": v.string()}
            ).vector_index(
                "by_embedding",
                vector_field="embedding",
                dimensions=2,
                filter_fields=["tag"],
            )
        }
    )
    with Store.open(path, schema=indexed) as after:
        assert ids(search(after, {"vector": [1, 0.1]})) == [first, second]
        only_y = {"vector": [1, 0.1], "filter": lambda q: q.eq("tag", "y")}
        assert ids(search(after, only_y)) == [second]
    # A changed index (now on three numbers) is rebuilt from the documents.
    three = define_schema(
        {
            "docs": define_table(
                {"embedding": v.array(v.float64()), "tag": v.string()}
            ).vector_index("by_embedding", vector_field="embedding", dimensions=3)
        }
    )
    with Store.open(path, schema=three) as changed:
        assert len(search(changed, {"vector": [1, 0, 0]}).unwrap()) == 1


def test_another_store_s_writes_and_index_changes_are_seen(tmp_path):
    path = tmp_path / "two.db"
    with Store.open(path, schema=SCHEMA) as one, Store.open(path, schema=SCHEMA) as two:
        a = insert(one, {"embedding": [1.0, 0.0, 0.0], "user": "a"})
        assert ids(search(two, {"vector": [1, 0, 0]})) == [a]
        b = insert(one, {"embedding": [1.0, 0.1, 0.0], "user": "b"})
        one.run(lambda ctx: ctx.db.delete(a))
        assert ids(search(two, {"vector": [1, 0, 0]})) == [b]
        # A third store changes the index (new filter fields): its table is
        # made again; the others' matrices start over instead of mixing the two.
        changed = define_schema(
            {
                **SCHEMA.tables,
                "docs": SCHEMA.tables["docs"]
                .__class__(
                    SCHEMA.tables["docs"].document,
                    SCHEMA.tables["docs"].indexes,
                    (),
                    (),
                )
                .vector_index("by_embedding", vector_field="embedding", dimensions=3),
            }
        )
        with Store.open(path, schema=changed) as three:
            c = insert(three, {"embedding": [1.0, 0.2, 0.0]})
        assert ids(search(two, {"vector": [1, 0, 0]})) == [b, c]


def test_another_process_s_writes_are_seen_on_the_next_search(tmp_path):
    path = tmp_path / "shared.db"
    with Store.open(path, schema=SCHEMA) as store:
        mine = insert(store, {"embedding": [0.0, 1.0, 0.0]})
        assert ids(search(store, {"vector": [1, 0, 0]})) == [mine]
        code = textwrap.dedent(
            f"""
            from tests.acceptance.test_vector_search import SCHEMA
            from one_store import Store
            with Store.open({str(path)!r}, schema=SCHEMA) as s:
                doc_id = s.run(
                    lambda ctx: ctx.db.insert("docs", {{"embedding": [1.0, 0.0, 0.0]}})
                ).unwrap()
                s.run(lambda ctx: ctx.db.delete({mine!r})).unwrap()
                print(doc_id)
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": ""},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        theirs = done.stdout.strip()
        assert ids(search(store, {"vector": [1, 0, 0]})) == [theirs]


def test_a_vector_index_on_the_same_field_and_dimensions_twice_is_refused():
    table = define_table({"e": v.array(v.float64())}).vector_index(
        "one", vector_field="e", dimensions=4
    )
    with pytest.raises(SchemaError, match="VectorIndexFieldNotUnique"):
        table.vector_index("two", vector_field="e", dimensions=4)
    table.vector_index("three", vector_field="e", dimensions=8)


def test_a_snapshot_import_is_searchable(tmp_path, store):
    from one_store.snapshot import export_snapshot, import_snapshot

    kept = insert(store, {"embedding": [1.0, 0.0, 0.0], "user": "a"})
    insert(store, {"embedding": [0.0, 1.0, 0.0], "user": "b"})
    export_snapshot(store, tmp_path / "snap.zip")
    with Store.memory(SCHEMA, seed=2) as other:
        insert(other, {"embedding": [1.0, 0.0, 0.0], "user": "a"})  # replaced below
        import_snapshot(other, tmp_path / "snap.zip", mode="replace").unwrap()
        only_a = {"vector": [1, 0, 0], "filter": lambda q: q.eq("user", "a")}
        assert ids(search(other, only_a)) == [kept]
        assert len(search(other, {"vector": [1, 0, 0]}).unwrap()) == 2


def test_searches_and_writes_from_several_threads(tmp_path):
    import threading

    with Store.open(tmp_path / "threads.db", schema=SCHEMA) as shared:
        errors: list[BaseException] = []

        def writer(k: int) -> None:
            try:
                for i in range(30):
                    made = insert(shared, {"embedding": [1.0, float(k), float(i)]})
                    if i % 3 == 0:
                        delete(shared, made)
            except BaseException as e:  # reported below
                errors.append(e)

        def searcher() -> None:
            try:
                for _ in range(30):
                    search(shared, {"vector": [1, 0, 0], "limit": 256}).unwrap()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
        threads += [threading.Thread(target=searcher) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(search(shared, {"vector": [1, 0, 0], "limit": 256}).unwrap()) == 40
