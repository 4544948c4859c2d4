"""Tests for one_store.runtime.executor: the one place where a function runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from returns.result import Failure, Success

from one_store import (
    ContextError,
    Store,
    action,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.engine.backend import Bounds, CallObserver
from one_store.model.errors import Busy, Problem
from one_store.runtime.functions import Kind
from one_store.runtime.transaction import Transaction
from one_store.testing import FakeClock

SCHEMA = define_schema(
    {"notes": define_table({"text": v.string()}).index("by_text", ["text"])}
)


@mutation(args={"text": v.string()})
def add(ctx, args):
    return ctx.db.insert("notes", {"text": args["text"]})


@mutation(args={"text": v.string()})
def add_then_fail(ctx, args):
    ctx.db.insert("notes", {"text": args["text"]})
    raise ValueError("no")


@query
def texts(ctx, args):
    return [n["text"] for n in ctx.db.query("notes").collect()]


@pytest.fixture
def db() -> Any:
    with Store.memory(SCHEMA, clock=FakeClock(), seed=1) as store:
        yield store


# ------------------------------------------------------------------ commit hooks


def test_a_commit_listener_sees_each_committed_write_after_commit(db: Store) -> None:
    seen: list[tuple[bool, list[str]]] = []

    def listener(txn: Transaction) -> None:
        # Called after the commit: the write is visible to a new read.
        seen.append((txn.writable, db.query(texts).unwrap()))

    remove = db.executor.add_commit_listener(listener)
    db.mutation(add, {"text": "a"}).unwrap()
    assert isinstance(db.mutation(add_then_fail, {"text": "b"}), Failure)
    db.query(texts).unwrap()
    db.run(lambda ctx: ctx.scheduler.run_after(0, add, {"text": "c"})).unwrap()
    db.scheduler.run_due()
    remove()
    db.mutation(add, {"text": "d"}).unwrap()
    assert seen == [(True, ["a"]), (True, ["a"]), (True, ["a", "c"])]


def test_a_nested_mutation_that_fails_rolls_back_only_its_own_writes(
    db: Store,
) -> None:
    def outer(ctx: Any) -> Any:
        ctx.db.insert("notes", {"text": "kept"})
        inner = ctx.run_mutation(add_then_fail, {"text": "dropped"})
        return inner.failure().code

    assert db.run(outer).unwrap() == "HandlerError"
    assert db.query(texts).unwrap() == ["kept"]


# ------------------------------------------------------------------ instrumentation


class Recorder:
    """An Instrumentation written the way a user would: a fault, then observe."""

    def __init__(self, faults: list[Problem]) -> None:
        self.faults = faults
        self.events: list[tuple[Any, ...]] = []

    def fault(self, path: str) -> Problem | None:
        return self.faults.pop(0) if self.faults else None

    def observer(self, kind: Kind, path: str) -> CallObserver | None:
        events = self.events
        events.append(("call", kind, path))

        class Observer:
            def document_read(self, doc: Any) -> None:
                events.append(("read", doc["text"]))

            def range_read(
                self, table: str, index: str, bounds: Bounds, order: str
            ) -> Callable[[str], None] | None:
                events.append(("range", table, index, bounds, order))
                return None

            def scanned(
                self, table: str, index: str, low: bytes, high: bytes | None
            ) -> None:
                events.append(("scanned", table, index, high is not None))

            def searched(self, scan: Any) -> None:
                events.append(("searched", scan.table))

            def document_written(self, op: str, table: str, doc_id: str) -> None:
                events.append(("write", op, table))

            def finished(self, committed: bool) -> None:
                events.append(("finished", committed))

        return Observer()


def test_an_instrumentation_injects_faults_and_observes_calls(db: Store) -> None:
    recorder = Recorder([Busy()])
    remove = db.executor.instrument(recorder)
    assert db.mutation(add, {"text": "x"}).failure() == Busy()
    db.mutation(add, {"text": "y"}).unwrap()

    @query
    def by_text(ctx, args):
        return (
            ctx.db.query("notes")
            .with_index("by_text", lambda q: q.eq("text", "y"))
            .collect()
        )

    db.query(by_text).unwrap()
    remove()
    db.mutation(add, {"text": "z"}).unwrap()
    path = db.path_of(add)
    assert recorder.events == [
        ("call", "mutation", path),
        ("write", "insert", "notes"),
        ("finished", True),
        ("call", "query", db.path_of(by_text)),
        ("range", "notes", "by_text", (("eq", "text", "y"),), "asc"),
        ("read", "y"),
        ("scanned", "notes", "by_text", True),
        ("finished", False),
    ]


# ------------------------------------------------------------------ call checks


def test_action_async_checks_what_every_call_checks(db: Store) -> None:
    @action
    async def ping(ctx, args):
        return "pong"

    assert asyncio.run(db.action_async(ping)).unwrap() == "pong"
    assert asyncio.run(db.action_async("nope:nothing")).failure().code == (
        "FunctionNotFound"
    )
    db.close()
    with pytest.raises(ContextError, match="closed"):
        asyncio.run(db.action_async(ping))


def test_action_async_counts_towards_the_call_depth_like_every_call(
    db: Store,
) -> None:
    levels: list[int] = []

    @action
    def recurse(ctx, args):
        levels.append(len(levels))
        return ctx.run_action(recurse).unwrap()

    @action
    async def entry(ctx, args):
        return ctx.run_action(recurse).unwrap()

    with pytest.raises(ContextError, match="depth"):
        db.action(recurse)
    direct = len(levels)
    levels.clear()
    with pytest.raises(ContextError, match="depth"):
        asyncio.run(db.action_async(entry))
    assert len(levels) == direct - 1  # the async entry is one level too


# ------------------------------------------------------------------ identity views


def test_with_identity_is_a_view_that_differs_only_in_identity(db: Store) -> None:
    @query
    def who(ctx, args):
        identity = ctx.auth.get_user_identity()
        return None if identity is None else identity["subject"]

    ada = db.with_identity({"subject": "ada"})
    assert isinstance(ada, Store)
    assert (ada.query(who).unwrap(), db.query(who).unwrap()) == ("ada", None)
    ada.mutation(add, {"text": "shared"}).unwrap()
    assert db.query(texts).unwrap() == ["shared"]  # the same file
    assert ada.scheduler is db.scheduler
    db.close()  # closing the store closes its views
    with pytest.raises(ContextError, match="closed"):
        ada.query(who)


# ------------------------------------------------------------------ resources


def test_the_http_client_an_action_made_is_closed_when_it_ends(db: Store) -> None:
    clients: list[httpx.Client] = []

    @action
    def fetch(ctx, args):
        clients.append(ctx.http)
        return clients[0].is_closed

    assert db.action(fetch).unwrap() is False
    assert clients[0].is_closed


def test_an_injected_http_client_is_left_open() -> None:
    injected = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )

    @action
    def fetch(ctx, args):
        return ctx.http.get("https://example.com").status_code

    with Store.memory(SCHEMA, http=injected) as store:
        assert store.action(fetch).unwrap() == 200
        assert store.action(fetch).unwrap() == 200
    assert not injected.is_closed
    injected.close()


def test_a_failed_call_returns_a_result_not_an_exception(db: Store) -> None:
    assert isinstance(db.mutation(add, {"text": 1}), Failure)
    assert isinstance(db.mutation(add, {"text": "ok"}), Success)
