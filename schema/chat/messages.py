"""Messages of a thread: ``send`` and ``list`` (the spec's one-time history load)."""

from typing import Any

from one_store import MutationCtx, QueryCtx, mutation, query, v

from ._rules import by_thread, now_ms, require_text, require_thread, visible_thread
from .schema import role


@mutation(args={"threadId": v.id("threads"), "role": role, "content": v.string()})
def send(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Append a message to an active thread; returns its ID.

    ``role`` is any non-blank text: the spec does not list the roles.
    """
    require_thread(ctx, args["threadId"])
    role_name = require_text(args["role"], "role")
    now = now_ms(ctx)
    message_id = ctx.db.insert(
        "messages",
        {
            "threadId": args["threadId"],
            "role": role_name,
            "content": args["content"],
            "createdAt": now,
        },
    )
    # The thread's updatedAt is its last activity (a sidebar sorts by it).
    ctx.db.patch(args["threadId"], {"updatedAt": now})
    return message_id


@query(args={"threadId": v.id("threads")}, name="list")
def list_messages(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message of the thread, oldest first (empty for an unknown or another user's thread)."""
    if visible_thread(ctx, args["threadId"]) is None:
        return []
    return by_thread(ctx, "messages", args["threadId"]).collect()


@query(
    args={
        "threadId": v.id("threads"),
        "paginationOpts": v.object(
            {"numItems": v.number(), "cursor": v.union(v.string(), v.null())}
        ),
    },
    name="listPage",
)
def list_page(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any]:
    """One page of the thread's messages, oldest first, for long histories."""
    require_thread(ctx, args["threadId"], active=False)
    return by_thread(ctx, "messages", args["threadId"]).paginate(args["paginationOpts"])


@query(args={"threadId": v.id("threads"), "query": v.string()})
def search(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Messages of the thread matching ``query`` (full text), most relevant first."""
    thread_id, text = args["threadId"], args["query"]
    if visible_thread(ctx, thread_id) is None:
        return []
    return (
        ctx.db.query("messages")
        .with_search_index(
            "search_content",
            lambda q: q.search("content", text).eq("threadId", thread_id),
        )
        .take(20)
    )
