"""Users in Convex Auth's ``users`` table, and who is calling.

Convex's ``auth.ts`` configures ``convexAuth({providers})`` and exports
``signIn``/``signOut``. Sign-in flows (passwords, OAuth, JWTs) are not part of
one_store yet, so this file keeps what the app's own code needs: creating users,
finding them, and ``currentUser`` from ``ctx.auth`` — whose identity ``subject`` is
``"<userId>|<sessionId>"``, as Convex Auth issues it. In tests, set the identity
with ``store.with_identity({"subject": f"{user_id}|{session_id}", ...})``.
"""

from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, mutation, query, v

from ._rules import require_text


@mutation(
    args={
        "name": v.optional(v.string()),
        "email": v.optional(v.string()),
        "image": v.optional(v.string()),
    },
    name="createUser",
)
def create_user(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Create a user; an email, when given, must not belong to another user.

    A user with neither name nor email is anonymous (``isAnonymous``), as Convex
    Auth's anonymous provider creates them.
    """
    doc: dict[str, Any] = {}
    if "name" in args:
        doc["name"] = require_text(args["name"], "User name")
    if "image" in args:
        doc["image"] = args["image"]
    if "email" in args:
        email = require_text(args["email"], "Email").lower()
        if "@" not in email:
            raise ConvexError(f"Invalid email address {email!r}")
        if _by_email(ctx, email) is not None:
            raise ConvexError(f"A user with email {email} already exists")
        doc["email"] = email
    if not doc.keys() & {"name", "email"}:
        doc["isAnonymous"] = True
    return ctx.db.insert("users", doc)


def _by_email(ctx: QueryCtx | MutationCtx, email: str) -> dict[str, Any] | None:
    return (
        ctx.db.query("users")
        .with_index("email", lambda q: q.eq("email", email.lower()))
        .first()
    )


@query(args={"userId": v.id("users")}, name="getUser")
def get_user(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["userId"])


@query(args={"email": v.string()}, name="getUserByEmail")
def get_user_by_email(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return _by_email(ctx, args["email"])


@query(args={}, name="currentUser")
def current_user(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The signed-in user (Convex Auth's ``getAuthUserId`` + ``db.get``), or None."""
    identity = ctx.auth.get_user_identity()
    if identity is None:
        return None
    user_id = str(identity.get("subject", "")).split("|")[0]
    if ctx.db.normalize_id("users", user_id) is None:
        return None
    return ctx.db.get(user_id)
