"""Users: the humans of the ONE system (authors, reviewers, conversation members)."""

from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, mutation, query, v

from ._rules import given, now_ms, require_text


@mutation(
    args={
        "name": v.string(),
        "email": v.optional(v.string()),
        "meta": v.optional(v.record(v.string(), v.any())),
    },
    name="createUser",
)
def create_user(ctx: MutationCtx, args: dict[str, Any]) -> str:
    doc: dict[str, Any] = {
        "name": require_text(args["name"], "User name"),
        "createdAt": now_ms(ctx),
        **given(args, "meta"),
    }
    if "email" in args:
        email = require_text(args["email"], "User email").lower()
        taken = (
            ctx.db.query("users")
            .with_index("by_email", lambda q: q.eq("email", email))
            .first()
        )
        if taken is not None:
            raise ConvexError(f"A user with email {email} already exists")
        doc["email"] = email
    return ctx.db.insert("users", doc)


@query(args={"userId": v.id("users")}, name="getUser")
def get_user(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["userId"])


@query(args={}, name="listUsers")
def list_users(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    return ctx.db.query("users").collect()
