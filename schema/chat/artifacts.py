"""Artifacts (plans, reports) produced in a thread; the backend creates them over HTTP."""

from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, mutation, query, v

from ._rules import (
    by_thread,
    now_ms,
    require_text,
    require_thread,
    visible_child,
    visible_thread,
)


@mutation(
    args={
        "threadId": v.id("threads"),
        "type": v.string(),
        "content": v.string(),
        "fileId": v.optional(v.id("_storage")),
    }
)
def create(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Record an artifact as a draft; returns its ID.

    This is the call the spec's backend makes fire-and-forget through
    ``POST /api/mutation {"path": "artifacts:create", ...}``. ``fileId`` is a
    stored file (uploaded to ``artifacts:generateUploadUrl``'s URL) that goes
    with the artifact.
    """
    require_thread(ctx, args["threadId"])
    now = now_ms(ctx)
    file = {"fileId": args["fileId"]} if "fileId" in args else {}
    if file and ctx.db.system.get(args["fileId"]) is None:
        raise ConvexError("File not found")
    return ctx.db.insert(
        "artifacts",
        {
            "threadId": args["threadId"],
            "type": require_text(args["type"], "Artifact type"),
            "content": args["content"],
            "status": "draft",
            "createdAt": now,
            "updatedAt": now,
            **file,
        },
    )


@mutation(args={}, name="generateUploadUrl")
def generate_upload_url(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """A URL to POST an artifact's file to; it answers ``{"storageId": id}``."""
    return ctx.storage.generate_upload_url()


@query(args={"artifactId": v.id("artifacts")}, name="fileUrl")
def file_url(ctx: QueryCtx, args: dict[str, Any]) -> str | None:
    """The URL serving the artifact's file (null without one, or once deleted)."""
    artifact = visible_child(ctx, ctx.db.get(args["artifactId"]))
    if artifact is None or "fileId" not in artifact:
        return None
    return ctx.storage.get_url(artifact["fileId"])


@query(args={"artifactId": v.id("artifacts")})
def get(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return visible_child(ctx, ctx.db.get(args["artifactId"]))


@query(args={"threadId": v.id("threads")}, name="listByThread")
def list_by_thread(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's artifacts, oldest first."""
    if visible_thread(ctx, args["threadId"]) is None:
        return []
    return by_thread(ctx, "artifacts", args["threadId"]).collect()


@mutation(
    args={
        "artifactId": v.id("artifacts"),
        "content": v.optional(v.string()),
        "status": v.optional(v.string()),
    }
)
def update(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Change an artifact's content and/or status; a superseded one is frozen.

    The status is any non-blank text (the spec does not list them); the app
    creates artifacts as ``"draft"`` and treats ``"superseded"`` as final.
    """
    artifact = visible_child(ctx, ctx.db.get(args["artifactId"]))
    if artifact is None:
        raise ConvexError("Artifact not found")
    if artifact["status"] == "superseded":
        raise ConvexError("A superseded artifact cannot be changed")
    fields: dict[str, Any] = {k: args[k] for k in ("content", "status") if k in args}
    if "status" in fields:
        fields["status"] = require_text(fields["status"], "Artifact status")
    ctx.db.patch(args["artifactId"], {**fields, "updatedAt": now_ms(ctx)})
