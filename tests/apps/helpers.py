"""Helpers shared by the app tests: make documents, read a Failure's Problem."""

from __future__ import annotations

from typing import Any

from returns.result import Failure, Result

from one_store import Problem, Store

AGENT = {
    "name": "Planner",
    "description": "Breaks goals into steps",
    "prompt": "You plan.",
    "tags": ["planning"],
}


def problem_of(result: Result[Any, Problem]) -> Problem:
    """The Problem of a Failure (fails the test on a Success)."""
    assert isinstance(result, Failure), f"expected a Failure, got {result!r}"
    problem: Problem = result.failure()
    return problem


def make_user(store: Store, name: str = "Ada", **extra: Any) -> str:
    user_id: str = store.mutation("users:createUser", {"name": name, **extra}).unwrap()
    return user_id


def make_agent(store: Store, **fields: Any) -> str:
    agent_id: str = store.mutation("agents:createAgent", {**AGENT, **fields}).unwrap()
    return agent_id


def deleted_id(store: Store, table: str, doc: dict[str, Any]) -> str:
    """A well-formed ID of ``table`` whose document no longer exists."""

    def work(ctx: Any) -> str:
        doc_id: str = ctx.db.insert(table, doc)
        ctx.db.delete(doc_id)
        return doc_id

    result: str = store.run(work).unwrap()
    return result


def make_chat_user(store: Store, name: str = "Ada") -> str:
    user_id: str = store.mutation("auth:createUser", {"name": name}).unwrap()
    return user_id


def make_chat_thread(
    store: Store, user_id: str | None = None, title: str = "Trip"
) -> str:
    thread_id: str = store.mutation(
        "threads:create", {"userId": user_id or make_chat_user(store), "title": title}
    ).unwrap()
    return thread_id
