"""Threads: a user's chat conversations (create, get, list, rename, archive, remove)."""

from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, mutation, query, v

from ._rules import (
    by_thread,
    caller_owns,
    now_ms,
    require_text,
    require_thread,
    visible_thread,
)

# Tables whose rows belong to one thread; `remove` deletes them with it.
CHILD_TABLES = ("messages", "artifacts", "sessions", "toolCalls", "approvalRequests")


@mutation(args={"userId": v.id("users"), "title": v.string()})
def create(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """A new thread of ``userId``; a signed-in caller creates only their own."""
    if ctx.db.get(args["userId"]) is None:
        raise ConvexError("User not found")
    if not caller_owns(ctx, args["userId"]):
        raise ConvexError("A signed-in user can only create their own threads")
    now = now_ms(ctx)
    return ctx.db.insert(
        "threads",
        {
            "userId": args["userId"],
            "title": require_text(args["title"], "Thread title"),
            "status": "active",
            "createdAt": now,
            "updatedAt": now,
        },
    )


@query(args={"threadId": v.id("threads")})
def get(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The thread, or None when there is none or it is another user's."""
    return visible_thread(ctx, args["threadId"])


@query(args={"userId": v.id("users"), "status": v.optional(v.string())}, name="list")
def list_threads(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """A user's threads, newest first; only those with ``status`` when given.

    A signed-in caller asking for another user's threads gets an empty list.
    """
    user_id = args["userId"]
    if not caller_owns(ctx, user_id):
        return []
    if "status" in args:
        status = args["status"]
        index = ctx.db.query("threads").with_index(
            "by_user_status", lambda q: q.eq("userId", user_id).eq("status", status)
        )
    else:
        index = ctx.db.query("threads").with_index(
            "by_user", lambda q: q.eq("userId", user_id)
        )
    return index.order("desc").collect()


@mutation(args={"threadId": v.id("threads"), "title": v.string()})
def update(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Rename a thread."""
    require_thread(ctx, args["threadId"], active=False)
    ctx.db.patch(
        args["threadId"],
        {
            "title": require_text(args["title"], "Thread title"),
            "updatedAt": now_ms(ctx),
        },
    )


@mutation(args={"threadId": v.id("threads")})
def archive(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Archive a thread: it keeps its history but takes no new messages.

    Archiving an archived thread changes nothing (idempotent, like a UI toggle).
    """
    thread = require_thread(ctx, args["threadId"], active=False)
    if thread["status"] != "archived":
        ctx.db.patch(args["threadId"], {"status": "archived", "updatedAt": now_ms(ctx)})


@mutation(args={"threadId": v.id("threads")})
def unarchive(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Make an archived thread active again."""
    thread = require_thread(ctx, args["threadId"], active=False)
    if thread["status"] != "active":
        ctx.db.patch(args["threadId"], {"status": "active", "updatedAt": now_ms(ctx)})


@mutation(args={"threadId": v.id("threads")})
def remove(ctx: MutationCtx, args: dict[str, Any]) -> int:
    """Delete a thread and everything recorded in it, in one transaction.

    The stored files of its artifacts are deleted too (with the transaction: if
    it fails, every file is still there).

    Returns:
        How many documents were deleted, the thread included.
    """
    require_thread(ctx, args["threadId"], active=False)
    deleted = 0
    for table in CHILD_TABLES:
        for doc in by_thread(ctx, table, args["threadId"]).collect():
            ctx.db.delete(str(doc["_id"]))
            deleted += 1
            # An artifact's stored file goes with it (unless already deleted).
            if "fileId" in doc and ctx.db.system.get(doc["fileId"]) is not None:
                ctx.storage.delete(doc["fileId"])
    ctx.db.delete(args["threadId"])
    return deleted + 1
