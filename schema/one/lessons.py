"""Lessons: what agents learn; create, read, list by agent, and ``deleteLesson``."""

from typing import Any

from one_store import MutationCtx, QueryCtx, mutation, query, v

from ._rules import given, now_ms, require_doc, require_text


@mutation(
    args={
        "title": v.string(),
        "content": v.string(),
        "agentId": v.optional(v.id("agents")),
        "tags": v.optional(v.array(v.string())),
        "meta": v.optional(v.record(v.string(), v.any())),
    },
    name="createLesson",
)
def create_lesson(ctx: MutationCtx, args: dict[str, Any]) -> str:
    if "agentId" in args:
        require_doc(ctx, args["agentId"], "Agent")
    return ctx.db.insert(
        "lessons",
        {
            "title": require_text(args["title"], "Lesson title"),
            "content": args["content"],
            "createdAt": now_ms(ctx),
            **given(args, "agentId", "tags", "meta"),
        },
    )


# The spec's mutation. Deleting a lesson that does not exist is
# Failure(DocumentNotFound), not a silent no-op, as Convex's db.delete.
@mutation(args={"lessonId": v.id("lessons")}, name="deleteLesson")
def delete_lesson(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.delete(args["lessonId"])


@query(args={"lessonId": v.id("lessons")}, name="getLesson")
def get_lesson(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["lessonId"])


@query(args={"agentId": v.optional(v.id("agents"))}, name="listLessons")
def list_lessons(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    if "agentId" not in args:
        return ctx.db.query("lessons").collect()
    agent_id = args["agentId"]
    return (
        ctx.db.query("lessons")
        .with_index("by_agent", lambda q: q.eq("agentId", agent_id))
        .collect()
    )
