"""A rolled-back mutation leaves the file's content exactly as it was.

Hypothesis draws a run of writes (inserts, patches, replaces, deletes, even an insert
that creates a new table) and an ending that fails the mutation: returning
``Failure``, raising ``ConvexError``, raising any other exception, a write that breaks
the schema, or a write to a missing document. The file, read by a separate
``sqlite3`` connection with ``iterdump()``, must be the same before and after, and
the store must keep working.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure

from one_store import (
    UNSET,
    ConvexError,
    DocumentInvalid,
    DocumentNotFound,
    HandlerError,
    MutationCtx,
    Rejected,
    Store,
    mutation,
    v,
)
from tests.conftest import SCHEMA
from tests.strategies import documents, user_field_names

ENDINGS = ["failure", "convex_error", "exception", "bad_write", "missing_doc"]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("insert_note"), documents(6)),
        st.tuples(st.just("insert_agent"), st.text(max_size=4)),
        st.tuples(st.just("insert_new_table"), documents(4)),
        st.tuples(
            st.just("patch"),
            st.integers(0, 5),
            st.dictionaries(
                user_field_names,
                st.one_of(st.just(UNSET), st.integers(-(2**63), 2**63 - 1)),
                max_size=3,
            ),
        ),
        st.tuples(st.just("replace"), st.integers(0, 5), documents(4)),
        st.tuples(st.just("delete"), st.integers(0, 5)),
    ),
    max_size=8,
)


def file_dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[tuple[Store, Path, list[str]]]:
    path = Path(tmp_path_factory.mktemp("rollback")) / "r.db"
    with Store.open(path, schema=SCHEMA, seed=0) as store:
        notes = store.run(
            lambda ctx: [ctx.db.insert("notes", {"i": i}) for i in range(6)]
        ).unwrap()
        yield store, path, notes


def apply(ctx: MutationCtx, op: tuple[Any, ...], notes: list[str]) -> None:
    match op:
        case ("insert_note", doc):
            ctx.db.insert("notes", doc)
        case ("insert_agent", name):
            ctx.db.insert("agents", {"name": name})
        case ("insert_new_table", doc):
            ctx.db.insert("created_then_rolled_back", doc)
        case ("patch", i, fields):
            if ctx.db.get(notes[i]) is not None:
                ctx.db.patch(notes[i], fields)
        case ("replace", i, doc):
            if ctx.db.get(notes[i]) is not None:
                ctx.db.replace(notes[i], doc)
        case ("delete", i):
            if ctx.db.get(notes[i]) is not None:
                ctx.db.delete(notes[i])


def end(ctx: MutationCtx, ending: str, notes: list[str]) -> Any:
    match ending:
        case "failure":
            return Failure(Rejected("refused"))
        case "convex_error":
            raise ConvexError({"why": "refused"})
        case "exception":
            raise RuntimeError("handler bug")
        case "bad_write":
            ctx.db.insert("agents", {"name": 1})
        case "missing_doc":
            ctx.db.delete(notes[0])
            ctx.db.patch(notes[0], {"x": 1})
    raise AssertionError(ending)


EXPECTED = {
    "failure": Rejected,
    "convex_error": Rejected,
    "exception": HandlerError,
    "bad_write": DocumentInvalid,
    "missing_doc": DocumentNotFound,
}


@given(ops, st.sampled_from(ENDINGS))
def test_failed_mutation_leaves_the_file_unchanged(seeded, writes, ending):
    store, path, notes = seeded
    before = file_dump(path)

    @mutation
    def work(ctx, args):
        for op in writes:
            apply(ctx, op, notes)
        return end(ctx, ending, notes)

    result = store.mutation(work)
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), EXPECTED[ending])
    assert file_dump(path) == before
    assert list(store.storage.connection.iterdump()) == before
    assert "created_then_rolled_back" not in store.storage.tables()


def test_store_keeps_working_after_a_rolled_back_table_creation(seeded):
    store = seeded[0]

    def create_then_fail(ctx: MutationCtx) -> None:
        ctx.db.insert("brand_new", {"a": 1})
        raise ConvexError("no")

    assert isinstance(store.run(create_then_fail), Failure)
    doc_id = store.run(lambda ctx: ctx.db.insert("brand_new", {"a": 2})).unwrap()
    assert store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()["a"] == 2
    assert "brand_new" in store.storage.tables()


def test_failed_nested_mutation_rolls_back_only_its_own_writes(tmp_path: Path):
    @mutation(args={"name": v.string()})
    def inner(ctx, args):
        ctx.db.insert("agents", {"name": args["name"]})
        raise ConvexError("inner refused")

    @mutation
    def outer(ctx, args):
        ctx.db.insert("agents", {"name": "kept"})
        result = ctx.run_mutation(inner, {"name": "dropped"})
        return result.failure().code

    with Store.open(tmp_path / "n.db", schema=SCHEMA, seed=0) as store:
        assert store.mutation(outer).unwrap() == "Rejected"
        names = store.run(
            lambda ctx: [d["name"] for d in ctx.db.query("agents").collect()]
        ).unwrap()
        assert names == ["kept"]
