"""Checks shared by the chat app's functions (not a function file: the leading `_`)."""

import math
from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx
from one_store.engine.query import Query


def now_ms(ctx: QueryCtx | MutationCtx) -> float:
    """``Date.now()`` of the spec's code: the call's time in whole milliseconds.

    ``ctx.now()`` has sub-millisecond digits; ``Date.now()`` never does. The
    value stays a float, the type of the ``v.number()`` timestamp fields.
    """
    return float(math.floor(ctx.now()))


def require_text(value: str, what: str) -> str:
    """Return ``value`` stripped, or reject when it is blank."""
    text = value.strip()
    if not text:
        raise ConvexError(f"{what} must not be empty")
    return text


def require_thread(
    ctx: QueryCtx | MutationCtx, thread_id: str, *, active: bool = True
) -> dict[str, Any]:
    """Return the thread, or reject when it is missing (or archived, if ``active``)."""
    thread = ctx.db.get(thread_id)
    if thread is None:
        raise ConvexError("Thread not found")
    if active and thread["status"] == "archived":
        raise ConvexError(f"Thread {thread['title']!r} is archived")
    return thread


def by_thread(ctx: QueryCtx | MutationCtx, table: str, thread_id: str) -> Query:
    """The query over ``table``'s ``by_thread`` index for one thread (oldest first)."""
    return ctx.db.query(table).with_index(
        "by_thread", lambda q: q.eq("threadId", thread_id)
    )
