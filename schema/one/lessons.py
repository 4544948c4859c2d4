"""Lessons: what agents learn; create, read, list by agent, ``deleteLesson``, and
find the lessons related to a text by vector search (``learn``, ``relatedLessons``).
"""

from typing import Any

from one_store import (
    ActionCtx,
    ConvexError,
    MutationCtx,
    QueryCtx,
    action,
    internal_query,
    mutation,
    query,
    v,
)

from ._embedding import DIMENSIONS, embed
from ._rules import given, now_ms, require_doc, require_text


@mutation(
    args={
        "title": v.string(),
        "content": v.string(),
        "agentId": v.optional(v.id("agents")),
        "tags": v.optional(v.array(v.string())),
        "meta": v.optional(v.record(v.string(), v.any())),
        "embedding": v.optional(v.array(v.float64())),
    },
    name="createLesson",
)
def create_lesson(ctx: MutationCtx, args: dict[str, Any]) -> str:
    if "agentId" in args:
        require_doc(ctx, args["agentId"], "Agent")
    if "embedding" in args and len(args["embedding"]) != DIMENSIONS:
        # The index would silently skip it (as Convex's does): say so instead.
        raise ConvexError(
            f"A lesson's embedding has {DIMENSIONS} numbers, "
            f"got {len(args['embedding'])}"
        )
    return ctx.db.insert(
        "lessons",
        {
            "title": require_text(args["title"], "Lesson title"),
            "content": args["content"],
            "createdAt": now_ms(ctx),
            **given(args, "agentId", "tags", "meta", "embedding"),
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


# An action, as an embedding model is called over the network in a real app
# (see _embedding.py); the lesson and its embedding are then one mutation.
@action(
    args={
        "title": v.string(),
        "content": v.string(),
        "agentId": v.optional(v.id("agents")),
        "tags": v.optional(v.array(v.string())),
    },
    name="learn",
)
def learn(ctx: ActionCtx, args: dict[str, Any]) -> str:
    embedding = embed(f"{args['title']}\n{args['content']}")
    created = ctx.run_mutation("lessons:createLesson", {**args, "embedding": embedding})
    return str(created.unwrap())


@internal_query(args={"lessonIds": v.array(v.id("lessons"))}, name="getLessons")
def get_lessons(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any] | None]:
    found = [ctx.db.get(lesson_id) for lesson_id in args["lessonIds"]]
    return [
        None if doc is None else {k: x for k, x in doc.items() if k != "embedding"}
        for doc in found
    ]


# Vector search runs in actions (as Convex's ctx.vectorSearch); the hits are
# IDs and scores, and the lessons are read in one query afterwards. A lesson
# deleted in between is left out.
@action(
    args={
        "text": v.string(),
        "agentId": v.optional(v.id("agents")),
        "limit": v.optional(v.int64()),
    },
    name="relatedLessons",
)
def related_lessons(ctx: ActionCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    request: dict[str, Any] = {"vector": embed(args["text"])}
    request["limit"] = args.get("limit", 5)
    if "agentId" in args:
        agent_id = args["agentId"]
        request["filter"] = lambda q: q.eq("agentId", agent_id)
    hits = ctx.vector_search("lessons", "by_embedding", request)
    ids = [hit["_id"] for hit in hits]
    lessons = ctx.run_query("lessons:getLessons", {"lessonIds": ids}).unwrap()
    return [
        {**lesson, "score": hit["_score"]}
        for hit, lesson in zip(hits, lessons, strict=True)
        if lesson is not None
    ]
