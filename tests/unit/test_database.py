"""Tests for one_store.runtime.database: ``ctx.db`` has Convex's methods only.

Also the return check of one_store.runtime.transaction: a document read by a
function and edited anywhere inside before it is returned is checked again.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from one_store import (
    ContextError,
    LimitExceeded,
    ReturnsInvalid,
    Schema,
    Store,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.model.values import dumps
from one_store.testing import any_value
from tests import engines

# Convex's DatabaseReader / DatabaseWriter (convex-js server/database.ts), in
# Python's case. A reader refuses the writes with a ContextError at once.
CONVEX_DB = {
    "get",
    "query",
    "normalize_id",
    "system",
    "insert",
    "patch",
    "replace",
    "delete",
}


def _public(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


def _dump(store: Store) -> list[Any]:
    return engines.dump(store)  # the file's SQL dump, or every row on PostgreSQL


@pytest.fixture
def agent(store: Store) -> str:
    return str(store.run(lambda ctx: ctx.db.insert("agents", {"name": "Ada"})).unwrap())


def test_a_query_ctx_db_has_convexs_methods_only(store: Store, agent: str) -> None:
    @query
    def names(ctx, args):
        return sorted(_public(ctx.db)), sorted(_public(ctx.db.system))

    assert store.query(names).unwrap() == [sorted(CONVEX_DB), sorted(CONVEX_DB)]


def test_a_query_offers_convexs_query_methods_in_tab_completion(store: Store) -> None:
    @query
    def names(ctx, args):
        built = ctx.db.query("agents").with_index("by_name").order("desc")
        return sorted(_public(ctx.db.query("agents"))), sorted(_public(built))

    convex = [
        "collect",
        "filter",
        "first",
        "order",
        "paginate",
        "take",
        "unique",
        "with_index",
        "with_search_index",
    ]
    assert store.query(names).unwrap() == [convex, convex]


def test_a_mutation_ctx_db_has_convexs_methods_only(store: Store) -> None:
    assert store.run(lambda ctx: sorted(_public(ctx.db))).unwrap() == sorted(CONVEX_DB)


def test_no_public_route_of_a_query_ctx_db_writes(store: Store, agent: str) -> None:
    """Every public attribute of a query's ``ctx.db``, called: the file is unchanged."""
    calls: dict[str, Any] = {
        "get": lambda db: db.get(agent),
        "query": lambda db: db.query("agents").collect(),
        "normalize_id": lambda db: db.normalize_id("agents", agent),
        "system": lambda db: db.system.query("_scheduled_functions").collect(),
        "insert": lambda db: db.insert("agents", {"name": "Eve"}),
        "patch": lambda db: db.patch(agent, {"name": "Eve"}),
        "replace": lambda db: db.replace(agent, {"name": "Eve"}),
        "delete": lambda db: db.delete(agent),
    }
    assert set(calls) == CONVEX_DB
    before = _dump(store)
    refused = []
    for name, call in calls.items():

        @query
        def attempt(ctx, args, call=call):
            return call(ctx.db) is not None

        try:
            assert isinstance(store.query(attempt), Success)
        except ContextError:
            refused.append(name)
    assert sorted(refused) == ["delete", "insert", "patch", "replace"]
    assert _dump(store) == before


def test_sql_through_a_query_ctx_db_fails_and_writes_nothing(
    store: Store, agent: str
) -> None:
    """The issue's reproduction: a query ran UPDATE through ``ctx.db.execute``."""

    @query
    def sneaky(ctx, args):
        ctx.db.execute("UPDATE agents SET _body = '{}'", [])
        return "written"

    before = _dump(store)
    result = store.query(sneaky)
    assert isinstance(result, Failure)
    assert result.failure().code == "HandlerError"
    assert "execute" in result.failure().message
    assert _dump(store) == before
    assert store.run(lambda ctx: ctx.db.get(agent)).unwrap()["name"] == "Ada"


# ------------------------------------------------------------------ return check


@pytest.fixture
def nested(store: Store) -> str:
    return str(
        store.run(
            lambda ctx: ctx.db.insert(
                "notes", {"meta": {"a": 1, "deep": {"b": [1, 2]}}, "tags": ["x"]}
            )
        ).unwrap()
    )


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d["meta"].__setitem__("bad", {1, 2}), ".meta.bad"),
        (lambda d: d["meta"]["deep"]["b"].append({1}), ".meta.deep.b[2]"),
        (lambda d: d["tags"].__setitem__(0, object()), ".tags[0]"),
        (lambda d: d.__setitem__("top", {1}), ".top"),
    ],
)
@pytest.mark.parametrize("shape", ["doc", "list", "wrapped", "page"])
def test_a_nested_edit_of_a_read_document_is_checked(
    store: Store, nested: str, edit: Any, path: str, shape: str
) -> None:
    @query
    def edited(ctx, args):
        if shape == "page":
            page = ctx.db.query("notes").paginate({"numItems": 5, "cursor": None})
            edit(page["page"][0])
            return page
        doc = ctx.db.query("notes").first() if shape == "list" else ctx.db.get(nested)
        edit(doc)
        return {"doc": doc} if shape == "wrapped" else [doc] if shape == "list" else doc

    result = store.query(edited)
    assert isinstance(result, Failure), result
    problem = result.failure()
    assert isinstance(problem, ReturnsInvalid)
    assert problem.path.endswith(path)


@pytest.mark.parametrize("position", [0, 2, 4])
def test_an_edit_of_one_document_in_a_returned_list_is_checked_at_its_index(
    store: Store, nested: str, position: int
) -> None:
    # A list of read documents is checked item by item; the edited one (first,
    # middle or last), or a dict put in a read one's place, is found and named.
    for _ in range(4):
        store.run(lambda ctx: ctx.db.insert("notes", {"meta": {"a": 2}})).unwrap()

    @query
    def edited(ctx, args):
        docs = ctx.db.query("notes").take(5)
        docs[position]["meta"]["bad"] = {1, 2}
        return docs

    @query
    def swapped(ctx, args):
        docs = ctx.db.query("notes").take(5)
        docs[position] = {"fake": object()}
        return docs

    @query
    def untouched(ctx, args):
        return ctx.db.query("notes").take(5)

    @query
    def appended(ctx, args):
        docs = ctx.db.query("notes").take(5)
        docs.append({"bad": {1}})
        return docs

    @query
    def reordered(ctx, args):
        docs = ctx.db.query("notes").take(5)
        docs.reverse()
        return {"docs": docs}

    for fn, path in [(edited, ".meta.bad"), (swapped, ".fake")]:
        problem = store.query(fn).failure()
        assert isinstance(problem, ReturnsInvalid), problem
        assert problem.path == f"[{position}]{path}"
    problem = store.query(appended).failure()
    assert isinstance(problem, ReturnsInvalid)
    assert problem.path == "[5].bad"
    assert [d["meta"] for d in store.query(untouched).unwrap()][1:] == [{"a": 2}] * 4
    forward = store.query(untouched).unwrap()
    backward = store.query(reordered).unwrap()["docs"]
    assert [d["_id"] for d in backward] == [d["_id"] for d in reversed(forward)]


def test_a_valid_nested_edit_comes_back_as_edited(store: Store, nested: str) -> None:
    @query
    def edited(ctx, args):
        doc = ctx.db.get(nested)
        doc["meta"]["deep"]["b"].append(3)
        return doc

    assert store.query(edited).unwrap()["meta"]["deep"]["b"] == [1, 2, 3]


def _containers(value: Any, out: list[Any]) -> list[Any]:
    if isinstance(value, dict | list):
        out.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            _containers(item, out)
    return out


@given(
    body=st.dictionaries(
        st.sampled_from(["a", "b", "c"]), any_value(max_leaves=12), min_size=1
    ),
    data=st.data(),
)
def test_every_edit_anywhere_in_a_read_document_is_checked(
    body: dict[str, Any], data: st.DataObject
) -> None:
    """For any document and any object or array inside it, an edit there is seen."""
    with Store.memory() as store:
        doc_id = store.run(lambda ctx: ctx.db.insert("notes", body)).unwrap()
        stored = store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()
        target = data.draw(st.integers(0, len(_containers(stored, [])) - 1))
        bad = data.draw(st.booleans())

        @mutation
        def edit(ctx, args):
            doc = ctx.db.get(doc_id)
            container = _containers(doc, [])[target]
            item = {1, 2} if bad else "edited"
            if isinstance(container, dict):
                container["zz"] = item
            else:
                container.append(item)
            return doc

        result = store.mutation(edit)
        if bad:
            assert isinstance(result, Failure)
            assert isinstance(result.failure(), ReturnsInvalid)
        else:
            expected = _containers(stored, [])[target]
            if isinstance(expected, dict):
                expected["zz"] = "edited"
            else:
                expected.append("edited")
            assert dumps(result.unwrap()) == dumps(stored)  # NaN-safe equality


@given(
    body=st.dictionaries(
        st.sampled_from(["a", "b", "c"]), any_value(max_leaves=12), min_size=1
    ),
    data=st.data(),
)
def test_every_edit_anywhere_in_a_returned_scan_is_checked(
    body: dict[str, Any], data: st.DataObject
) -> None:
    """The same, for the list a scan returned (checked as one list while as read)."""
    with Store.memory() as store:
        for _ in range(3):
            store.run(lambda ctx: ctx.db.insert("notes", body)).unwrap()
        stored = store.run(lambda ctx: ctx.db.query("notes").collect()).unwrap()
        target = data.draw(st.integers(0, len(_containers(stored, [])) - 1))
        bad = data.draw(st.booleans())

        @query
        def edit(ctx, args):
            docs = ctx.db.query("notes").collect()
            container = _containers(docs, [])[target]
            item = {1, 2} if bad else "edited"
            if isinstance(container, dict):
                container["zz"] = item
            else:
                container.append(item)
            return docs

        result = store.query(edit)
        if bad:
            assert isinstance(result, Failure)
            assert isinstance(result.failure(), ReturnsInvalid)
        else:
            expected = _containers(stored, [])[target]
            if isinstance(expected, dict):
                expected["zz"] = "edited"
            else:
                expected.append("edited")
            assert dumps(result.unwrap()) == dumps(stored)  # NaN-safe equality


# A table's validator says which fields can hold an object or array; the return
# check looks only there, so each kind of field is edited at every depth below.
TYPED = {
    "title": v.string(),
    "tags": v.array(v.string()),
    "meta": v.object({"n": v.int64(), "by": v.string()}),
    "deep": v.array(v.object({"x": v.array(v.number())})),
    "either": v.union(v.string(), v.object({"k": v.array(v.string())})),
    "free": v.any(),
    "rec": v.record(v.string(), v.array(v.string())),
    "opt": v.optional(v.array(v.string())),
}
TYPED_DOCS: list[dict[str, Any]] = [
    {
        "title": "t",
        "tags": ["a", "b"],
        "meta": {"n": 1, "by": "x"},
        "deep": [{"x": [1.0, 2.0]}, {"x": []}],
        "either": {"k": ["p"]},
        "free": {"any": [{"thing": [1]}]},
        "rec": {"r": ["s"]},
        "opt": ["o"],
    },
    {
        "title": "u",
        "tags": [],
        "meta": {"n": 2, "by": "y"},
        "deep": [],
        "either": "plain",
        "free": [[[]]],
        "rec": {},
    },
]
# A union of objects: each member's fields are looked into.
UNION_TABLE = v.union(
    v.object({"kind": v.literal("a"), "a": v.array(v.string())}),
    v.object({"kind": v.literal("b"), "b": v.object({"c": v.any()})}),
)
UNION_DOCS: list[dict[str, Any]] = [
    {"kind": "a", "a": ["x"]},
    {"kind": "b", "b": {"c": {"d": [1]}}},
]
# Stored while the schema did not check writes: nothing matches the validator,
# so the check must look at everything.
LOOSE_DOCS: list[dict[str, Any]] = [
    {"title": {"hidden": ["x"]}, "tags": "no", "meta": [[{"m": 1}]]}
]
CASES: dict[str, tuple[Schema | None, list[dict[str, Any]]]] = {
    "typed": (define_schema({"t": define_table(TYPED)}), TYPED_DOCS),
    "union": (define_schema({"t": define_table(UNION_TABLE)}), UNION_DOCS),
    "schemaless": (define_schema({"t": define_table()}), TYPED_DOCS + LOOSE_DOCS),
    "no schema": (None, TYPED_DOCS),
    "schema_validation=False": (
        define_schema({"t": define_table(TYPED)}, schema_validation=False),
        TYPED_DOCS + LOOSE_DOCS,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("read", ["get", "collect", "filter"])
def test_an_edit_at_any_depth_is_checked_whatever_the_tables_validator(
    case: str, read: str
) -> None:
    """Every object or array inside every document, edited: a bad item fails, a good one comes back."""
    schema, docs = CASES[case]
    with Store.memory(schema) as store:
        for body in docs:

            def insert(ctx: Any, d: dict[str, Any] = body) -> Any:
                return ctx.db.insert("t", d)

            doc_id = store.run(insert).unwrap()

            def get(ctx: Any, i: str = doc_id) -> Any:
                return ctx.db.get(i)

            stored = store.run(get).unwrap()
            for target in range(len(_containers(stored, []))):
                for bad in (True, False):

                    @query
                    def edited(
                        ctx: Any,
                        args: Any,
                        i: str = doc_id,
                        t: int = target,
                        b: bool = bad,
                    ) -> Any:
                        if read == "get":
                            doc = ctx.db.get(i)
                        elif read == "collect":
                            doc = next(
                                d for d in ctx.db.query("t").collect() if d["_id"] == i
                            )
                        else:
                            doc = (
                                ctx.db.query("t")
                                .filter(lambda q: q.eq(q.field("_id"), i))
                                .first()
                            )
                        container = _containers(doc, [])[t]
                        item = {1, 2} if b else "edited"
                        if isinstance(container, dict):
                            container["zz"] = item
                        else:
                            container.append(item)
                        return [doc]

                    result = store.query(edited)
                    where = (doc_id, target, bad)
                    if bad:
                        assert isinstance(result, Failure), where
                        assert isinstance(result.failure(), ReturnsInvalid), where
                    else:
                        expected = _containers(stored, [])[target]
                        if isinstance(expected, dict):
                            expected["zz"] = "edited"
                        else:
                            expected.append("edited")
                        assert dumps(result.unwrap()) == dumps([stored]), where
                        if isinstance(expected, dict):  # as stored, for the next edit
                            del expected["zz"]
                        else:
                            expected.pop()


@pytest.mark.parametrize("case", list(CASES))
def test_a_replaced_top_level_value_is_checked_whatever_the_tables_validator(
    case: str,
) -> None:
    """A scalar field (``v.string()``) replaced by a non-value is seen too."""
    schema, docs = CASES[case]
    with Store.memory(schema) as store:
        store.run(lambda ctx: ctx.db.insert("t", docs[0])).unwrap()

        @query
        def edited(ctx: Any, args: Any) -> Any:
            doc = ctx.db.query("t").first()
            doc[next(iter(docs[0]))] = object()
            return doc

        result = store.query(edited)
        assert isinstance(result, Failure)
        assert isinstance(result.failure(), ReturnsInvalid)


def test_a_stored_document_that_no_longer_matches_its_validator_is_still_returned(
    tmp_path,
) -> None:
    """Another process without validation may have written it: no KeyError then."""
    from one_store import define_schema, define_table, v

    schema = define_schema(
        {"tagged": define_table({"tags": v.array(v.string()), "meta": v.object({})})}
    )
    with Store.open(tmp_path / "t.db", schema=schema) as store:
        doc_id = store.run(
            lambda ctx: ctx.db.insert("tagged", {"tags": ["a"], "meta": {}})
        ).unwrap()
        with store.storage.write():
            store.storage.connection.execute(
                "UPDATE tagged SET _body = json_set(json_remove(_body, '$.tags'), "
                "'$.meta', 7) WHERE _id = ?",
                (doc_id,),
            )

        @query
        def read(ctx, args):
            return [ctx.db.get(doc_id), ctx.db.query("tagged").collect()]

        got, listed = store.query(read).unwrap()
        assert (got["meta"], "tags" in got) == (7, False)
        assert listed == [got]


def test_gets_count_against_the_bytes_read_limit(store: Store) -> None:
    # Each db.get counts its document's stored text; the get that crosses
    # 16 MiB fails with Convex's bytesRead limit, and one get fewer does not.
    big = store.run(lambda ctx: ctx.db.insert("notes", {"text": "x" * 1_000_000}))
    doc_id = big.unwrap()

    @query(args={"n": v.int64()})
    def reread(ctx, args):
        for _ in range(args["n"]):
            ctx.db.get(doc_id)
        return args["n"]

    assert store.query(reread, {"n": 16}).unwrap() == 16
    problem = store.query(reread, {"n": 17}).failure()
    assert isinstance(problem, LimitExceeded), problem
    assert problem.limit == "bytesRead"
