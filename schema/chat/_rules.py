"""Checks shared by the chat app's functions (not a function file: the leading `_`).

Ownership: a signed-in caller (a token from ``auth:signIn``) sees and changes only
the threads whose ``userId`` is theirs, and what hangs off them; another user's
thread looks exactly like a missing one (``None``, an empty list, or "Thread not
found"). An anonymous caller is the spec's backend and sees every thread.
"""

import math
from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, get_auth_user_id
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


def caller_owns(ctx: QueryCtx | MutationCtx, user_id: object) -> bool:
    """Whether the caller may see ``user_id``'s threads (anonymous: the backend, yes)."""
    caller = get_auth_user_id(ctx)
    return caller is None or caller == user_id


def visible_thread(
    ctx: QueryCtx | MutationCtx, thread_id: str
) -> dict[str, Any] | None:
    """The thread, or None when it is missing or another user's."""
    thread = ctx.db.get(thread_id)
    if thread is None or not caller_owns(ctx, thread["userId"]):
        return None
    return thread


def visible_child(
    ctx: QueryCtx | MutationCtx, doc: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A document of a thread's child table, or None when its thread is not visible."""
    if doc is None or visible_thread(ctx, doc["threadId"]) is None:
        return None
    return doc


def require_thread(
    ctx: QueryCtx | MutationCtx, thread_id: str, *, active: bool = True
) -> dict[str, Any]:
    """Return the thread, or reject when it is missing or another user's (or archived, if ``active``)."""
    thread = visible_thread(ctx, thread_id)
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
