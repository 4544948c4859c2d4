"""Sign-in as ``@convex-dev/auth`` does it, and the app's own user functions.

Convex's ``auth.ts`` is ``export const { auth, signIn, signOut, store,
isAuthenticated } = convexAuth({ providers: [Password] })``. Here the same paths
do the same (get-convex/convex-auth ``src/server/implementation/index.ts``):

- ``auth:signIn`` (action) ``{provider: "password", params: {flow: "signUp" |
  "signIn", email, password}}`` or ``{refreshToken}`` → ``{"tokens": {"token",
  "refreshToken"}}`` (``{"tokens": None}`` for a refresh token that no longer
  works). A wrong password fails with ``InvalidSecret``, an unknown email with
  ``InvalidAccountId``, the eleventh failure within an hour with
  ``TooManyFailedAttempts``.
- ``auth:signOut`` (action) ends the caller's session; its refresh tokens stop
  working.
- ``auth:store`` (internal mutation) does all the database work, by ``type``.
- ``auth:isAuthenticated`` (query).

The tokens are JWTs signed with ``JWT_PRIVATE_KEY`` (issuer ``CONVEX_SITE_URL``,
audience ``convex``); ``auth_config.py`` trusts them and ``http.py`` publishes the
keys. ``currentUser``, ``createUser``, ``getUser`` and ``getUserByEmail`` are the
app's own (the last two internal: for admins and server code).
"""

from typing import Any

from one_store import (
    ActionCtx,
    ConvexError,
    MutationCtx,
    QueryCtx,
    action,
    get_auth_user_id,
    internal_mutation,
    internal_query,
    mutation,
    query,
    v,
)

from . import _convex_auth as lib
from ._auth_store import HANDLERS
from ._rules import require_text


@action(
    args={
        "provider": v.optional(v.string()),
        "params": v.optional(v.any()),
        "verifier": v.optional(v.string()),
        "refreshToken": v.optional(v.string()),
        "calledBy": v.optional(v.string()),
    },
    name="signIn",
)
def sign_in(ctx: ActionCtx, args: dict[str, Any]) -> dict[str, Any]:
    """Sign up, sign in or refresh; returns ``{"tokens": {...} | None}``."""
    provider = args.get("provider")
    params = args.get("params") or {}
    if provider is None and "refreshToken" in args:
        refreshed = _store(ctx, "refreshSession", refreshToken=args["refreshToken"])
        return {"tokens": None if refreshed is None else refreshed["tokens"]}
    if provider is None:
        raise lib.Error(
            "Cannot sign in: Missing `provider`, `params.code` or `refreshToken`"
        )
    if provider != lib.PASSWORD_PROVIDER:
        raise lib.Error(
            f"Provider `{provider}` is not configured, available providers are "
            f"{lib.PASSWORD_PROVIDER}."
        )
    if not isinstance(params, dict):
        raise lib.Error("`params` must be an object")
    user_id = _password(ctx, params)
    signed = _store(ctx, "signIn", userId=user_id)
    return {"tokens": signed["tokens"]}


def _password(ctx: ActionCtx, params: dict[str, Any]) -> str:
    """The Password provider's ``authorize``: the user it signs in."""
    flow, email = params.get("flow"), params.get("email")
    if flow not in ("signUp", "signIn"):
        raise lib.Error('Missing `flow` param, it must be one of "signUp" or "signIn"!')
    if not isinstance(email, str) or not email:
        raise lib.Error(f"Missing `email` param for `{flow}` flow")
    password = params.get("password")
    if not isinstance(password, str):
        raise lib.Error(f"Missing `password` param for `{flow}` flow")
    account = {"id": email, "secret": password}
    if flow == "signUp":
        if len(password) < 8:
            raise lib.Error("Invalid password")
        created = _store(
            ctx,
            "createAccountFromCredentials",
            provider=lib.PASSWORD_PROVIDER,
            account=account,
            profile={"email": email},
        )
        return str(created["user"]["_id"])
    found = _store(
        ctx,
        "retrieveAccountWithCredentials",
        provider=lib.PASSWORD_PROVIDER,
        account=account,
    )
    if isinstance(found, str):
        raise lib.Error(found)
    return str(found["user"]["_id"])


def _store(ctx: ActionCtx, kind: str, **args: Any) -> Any:
    # As the library, actions reach the database through `auth:store` by name.
    return ctx.run_mutation("auth:store", {"args": {"type": kind, **args}}).unwrap()


@action(args={}, name="signOut")
def sign_out(ctx: ActionCtx, args: dict[str, Any]) -> None:
    """End the caller's session (and its refresh tokens); anonymous: nothing."""
    _store(ctx, "signOut")


@internal_mutation(args={"args": v.any()})
def store(ctx: MutationCtx, args: dict[str, Any]) -> Any:
    """Every database write of sign-in, by ``type`` (internal: only actions call it)."""
    inner = args["args"]
    kind = inner.get("type") if isinstance(inner, dict) else None
    handler = HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        raise ConvexError(f"Unknown auth:store type {kind!r}")
    return handler(ctx, inner)


@query(args={}, name="isAuthenticated")
def is_authenticated(ctx: QueryCtx, args: dict[str, Any]) -> bool:
    """Whether the caller is signed in."""
    return ctx.auth.get_user_identity() is not None


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


# Internal (admins and server code only): any caller could otherwise read any
# user's record, or learn who has an account by email.
@internal_query(args={"userId": v.id("users")}, name="getUser")
def get_user(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["userId"])


@internal_query(args={"email": v.string()}, name="getUserByEmail")
def get_user_by_email(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return _by_email(ctx, args["email"])


@query(args={}, name="currentUser")
def current_user(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The signed-in user (Convex Auth's ``getAuthUserId`` + ``db.get``), or None."""
    user_id = get_auth_user_id(ctx)
    if user_id is None or ctx.db.normalize_id("users", user_id) is None:
        return None
    return ctx.db.get(user_id)
