"""Convex's "Uploading files" tutorial, in Python (docs.convex.dev/file-storage/upload-files).

``generateUploadUrl`` and ``sendImage`` are the tutorial's mutations under its
names; ``list`` adds each image's URL as the tutorial's ``list`` query does.
"""

from typing import Any

from one_store import MutationCtx, QueryCtx, mutation, query, v


@mutation(args={}, name="generateUploadUrl")
def generate_upload_url(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.storage.generate_upload_url()


@mutation(args={"storageId": v.id("_storage"), "author": v.string()}, name="sendImage")
def send_image(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.db.insert(
        "messages",
        {"body": args["storageId"], "author": args["author"], "format": "image"},
    )


@query(name="list")
def list_messages(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**m, "url": ctx.storage.get_url(m["body"])}
        for m in ctx.db.query("messages").collect()
    ]


@query(args={"storageId": v.id("_storage")})
def metadata(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.system.get(args["storageId"])


@mutation(args={"messageId": v.id("messages")})
def remove(ctx: MutationCtx, args: dict[str, Any]) -> None:
    message = ctx.db.get(args["messageId"])
    if message is not None:
        ctx.storage.delete(message["body"])
        ctx.db.delete(args["messageId"])
