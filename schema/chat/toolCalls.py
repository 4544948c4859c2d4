"""Tool-call audit trail. The file is named ``toolCalls.py`` so that its paths are
``toolCalls:record`` / ``toolCalls:list``, as a Convex ``toolCalls.ts`` gives."""

from typing import Any

from one_store import MutationCtx, QueryCtx, mutation, query, v

from ._rules import by_thread, now_ms, require_text, require_thread, visible_thread


@mutation(
    args={
        "threadId": v.id("threads"),
        "toolName": v.string(),
        "input": v.any(),
        "output": v.optional(v.any()),
    }
)
def record(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Append one tool call (its input, and its output when known); returns its ID."""
    require_thread(ctx, args["threadId"], active=False)
    return ctx.db.insert(
        "toolCalls",
        {
            "threadId": args["threadId"],
            "toolName": require_text(args["toolName"], "toolName"),
            "input": args["input"],
            "createdAt": now_ms(ctx),
            **({"output": args["output"]} if "output" in args else {}),
        },
    )


@query(
    args={"threadId": v.id("threads"), "toolName": v.optional(v.string())}, name="list"
)
def list_calls(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's tool calls, oldest first; only ``toolName``'s when given."""
    thread_id = args["threadId"]
    if visible_thread(ctx, thread_id) is None:
        return []
    if "toolName" not in args:
        return by_thread(ctx, "toolCalls", thread_id).collect()
    tool = args["toolName"]
    return (
        ctx.db.query("toolCalls")
        .with_index(
            "by_thread_tool", lambda q: q.eq("threadId", thread_id).eq("toolName", tool)
        )
        .collect()
    )
