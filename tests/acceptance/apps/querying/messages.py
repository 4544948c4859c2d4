"""Functions over threads and messages: every query shape of docs/querying.md."""

from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, mutation, query, v

page_opts = v.object({"numItems": v.number(), "cursor": v.union(v.string(), v.null())})


@mutation(args={"title": v.string()})
def start(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Open a thread."""
    return ctx.db.insert("threads", {"title": args["title"]})


@mutation(
    args={
        "threadId": v.id("threads"),
        "author": v.string(),
        "body": v.string(),
        "likes": v.optional(v.int64()),
    }
)
def send(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Post a message; a body saying "forbidden" is refused after the insert."""
    message_id = ctx.db.insert(
        "messages",
        {
            "threadId": args["threadId"],
            "author": args["author"],
            "body": args["body"],
            "likes": args.get("likes", 0),
        },
    )
    if "forbidden" in args["body"]:
        raise ConvexError("forbidden words")  # rolls the insert back
    return message_id


@mutation(args={"messageId": v.id("messages")})
def remove(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Delete a message."""
    ctx.db.delete(args["messageId"])


@query(args={"threadId": v.id("threads"), "since": v.float64(), "limit": v.int64()})
def recent(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's messages created at or after ``since``, newest first."""
    tid, since = args["threadId"], args["since"]
    return (
        ctx.db.query("messages")
        .with_index(
            "by_thread", lambda q: q.eq("threadId", tid).gte("_creationTime", since)
        )
        .order("desc")
        .take(args["limit"])
    )


@query(args={"threadId": v.id("threads"), "paginationOpts": page_opts})
def page(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any]:
    """One page of the thread, oldest first."""
    tid = args["threadId"]
    return (
        ctx.db.query("messages")
        .with_index("by_thread", lambda q: q.eq("threadId", tid))
        .paginate(args["paginationOpts"])
    )


@query(args={"threadId": v.id("threads"), "minLikes": v.int64()})
def popular(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Messages with at least ``minLikes`` likes, most liked first."""
    tid, least = args["threadId"], args["minLikes"]
    return (
        ctx.db.query("messages")
        .with_index(
            "by_thread_likes", lambda q: q.eq("threadId", tid).gte("likes", least)
        )
        .order("desc")
        .collect()
    )


@query(args={"threadId": v.id("threads"), "author": v.string()})
def by_author(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The author's messages in the thread (an index prefix plus a filter)."""
    tid, author = args["threadId"], args["author"]
    return (
        ctx.db.query("messages")
        .with_index("by_thread", lambda q: q.eq("threadId", tid))
        .filter(lambda q: q.eq(q.field("author"), author))
        .collect()
    )


@query(args={"threadId": v.id("threads"), "author": v.string()})
def only_post(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The author's single message in the thread (NotUnique when there are several)."""
    tid, author = args["threadId"], args["author"]
    return (
        ctx.db.query("messages")
        .with_index("by_thread", lambda q: q.eq("threadId", tid))
        .filter(lambda q: q.eq(q.field("author"), author))
        .unique()
    )


@query(args={"threadId": v.id("threads")})
def first_post(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The oldest message of the thread, or None."""
    tid = args["threadId"]
    return (
        ctx.db.query("messages")
        .with_index("by_thread", lambda q: q.eq("threadId", tid))
        .first()
    )


@query(
    args={
        "threadId": v.id("threads"),
        "text": v.string(),
        "author": v.optional(v.string()),
    }
)
def search(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Full-text search in one thread (optionally one author), most relevant first."""
    tid, text, author = args["threadId"], args["text"], args.get("author")

    def build(q: Any) -> Any:
        q = q.search("body", text).eq("threadId", tid)
        return q if author is None else q.eq("author", author)

    return ctx.db.query("messages").with_search_index("search_body", build).take(10)


@query(args={"index": v.string(), "field": v.string()})
def by_any_index(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Query any index with an equality on any field (to show the Failures)."""
    field = args["field"]
    return (
        ctx.db.query("messages")
        .with_index(args["index"], lambda q: q.eq(field, 1))
        .collect()
    )
