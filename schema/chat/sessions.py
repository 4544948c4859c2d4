"""SDK session state per thread, so an agent run can be resumed after a restart."""

from typing import Any

from one_store import MutationCtx, QueryCtx, mutation, query, v

from ._rules import by_thread, now_ms, require_text, require_thread, visible_thread
from .schema import phase


@mutation(
    args={
        "threadId": v.id("threads"),
        "sdkSessionId": v.string(),
        "phase": phase,
        "plan": v.optional(v.string()),
    }
)
def upsert(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Create or update the thread's one session; returns the session's ID.

    A thread has at most one session: an upsert on a thread that has one patches
    it (``plan`` is kept when not given) instead of inserting a second. ``phase``
    is any non-blank text: the spec names the field but does not list its values.
    """
    require_thread(ctx, args["threadId"], active=False)
    fields = {
        "sdkSessionId": require_text(args["sdkSessionId"], "sdkSessionId"),
        "phase": require_text(args["phase"], "phase"),
        "updatedAt": now_ms(ctx),
        **({"plan": args["plan"]} if "plan" in args else {}),
    }
    existing = by_thread(ctx, "sessions", args["threadId"]).unique()
    if existing is None:
        return ctx.db.insert("sessions", {"threadId": args["threadId"], **fields})
    ctx.db.patch(str(existing["_id"]), fields)
    return str(existing["_id"])


@query(args={"threadId": v.id("threads")}, name="getByThread")
def get_by_thread(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The thread's session, or None."""
    if visible_thread(ctx, args["threadId"]) is None:
        return None
    return by_thread(ctx, "sessions", args["threadId"]).unique()
