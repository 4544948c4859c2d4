"""The database work of ``auth:store``, as ``@convex-dev/auth`` does it.

Not a function file (the leading ``_``). Each ``store_*`` function is one
``type`` of the library's ``store`` internal mutation (get-convex/convex-auth
``src/server/implementation/mutations/``): ``signIn`` (a new session and its
tokens), ``signOut``, ``refreshSession``, ``createAccountFromCredentials`` and
``retrieveAccountWithCredentials`` (with the sign-in rate limit of
``implementation/rateLimit.ts``), and ``invalidateSessions``.
"""

from typing import Any

from one_store import MutationCtx, get_auth_user_id

from . import _convex_auth as lib


def _session_id(ctx: MutationCtx) -> str | None:
    identity = ctx.auth.get_user_identity()
    if identity is None:
        return None
    parts = str(identity.get("subject", "")).split("|")
    if len(parts) < 2:
        return None
    return ctx.db.normalize_id("authSessions", parts[1])


# --------------------------------------------------------------------------- sessions


def _delete_session(ctx: MutationCtx, session_id: str) -> None:
    for token in (
        ctx.db.query("authRefreshTokens")
        .with_index("sessionId", lambda q: q.eq("sessionId", session_id))
        .collect()
    ):
        ctx.db.delete(str(token["_id"]))
    if ctx.db.get(session_id) is not None:
        ctx.db.delete(session_id)


def _new_refresh_token(
    ctx: MutationCtx, session_id: str, parent: str | None = None
) -> str:
    expires = ctx.now() + lib.duration(
        "AUTH_SESSION_INACTIVE_DURATION_MS", lib.SESSION_INACTIVE_DURATION_MS
    )
    doc: dict[str, Any] = {"sessionId": session_id, "expirationTime": expires}
    if parent is not None:
        doc["parentRefreshTokenId"] = parent
    token_id = ctx.db.insert("authRefreshTokens", doc)
    return f"{token_id}|{session_id}"


def _tokens(
    ctx: MutationCtx, user_id: str, session_id: str, refresh_token: str
) -> dict[str, Any]:
    return {
        "userId": user_id,
        "sessionId": session_id,
        "tokens": {
            "token": lib.make_token(user_id, session_id, ctx.now()),
            "refreshToken": refresh_token,
        },
    }


def store_sign_in(ctx: MutationCtx, args: dict[str, Any]) -> dict[str, Any]:
    """A new session for ``userId`` (replacing the caller's own), with tokens."""
    user_id = ctx.db.normalize_id("users", str(args.get("userId", "")))
    if user_id is None or ctx.db.get(user_id) is None:
        raise lib.Error("Invalid `userId`")
    current = _session_id(ctx)
    if current is not None:
        _delete_session(ctx, current)
    expires = ctx.now() + lib.duration(
        "AUTH_SESSION_TOTAL_DURATION_MS", lib.SESSION_TOTAL_DURATION_MS
    )
    session_id = ctx.db.insert(
        "authSessions", {"userId": user_id, "expirationTime": expires}
    )
    return _tokens(ctx, user_id, session_id, _new_refresh_token(ctx, session_id))


def store_sign_out(ctx: MutationCtx, _args: dict[str, Any]) -> dict[str, Any] | None:
    """Delete the caller's session and all of its refresh tokens."""
    session_id = _session_id(ctx)
    if session_id is None:
        return None
    session = ctx.db.get(session_id)
    _delete_session(ctx, session_id)
    return (
        None
        if session is None
        else {"userId": session["userId"], "sessionId": session_id}
    )


def store_invalidate_sessions(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Delete every session of ``userId`` except those in ``except``."""
    keep = set(args.get("except") or [])
    for session in (
        ctx.db.query("authSessions")
        .with_index("userId", lambda q: q.eq("userId", args["userId"]))
        .collect()
    ):
        if session["_id"] not in keep:
            _delete_session(ctx, str(session["_id"]))


def store_refresh_session(
    ctx: MutationCtx, args: dict[str, Any]
) -> dict[str, Any] | None:
    """Rotate a refresh token (``refreshSession.ts``): new tokens, or None if invalid."""
    parts = str(args.get("refreshToken", "")).split("|")
    if len(parts) != 2:
        raise lib.Error(f"Can't parse refresh token: {args.get('refreshToken')}")
    token_id = ctx.db.normalize_id("authRefreshTokens", parts[0])
    session_id = ctx.db.normalize_id("authSessions", parts[1])
    now = ctx.now()
    token = ctx.db.get(token_id) if token_id else None
    session = ctx.db.get(session_id) if session_id else None
    if (
        token_id is None
        or session_id is None
        or token is None
        or session is None
        or token["sessionId"] != session_id
        or token["expirationTime"] < now
        or session["expirationTime"] < now
    ):
        if session_id is not None:
            _delete_session(ctx, session_id)
        return None
    user_id = str(session["userId"])
    if "firstUsedTime" not in token:
        ctx.db.patch(token_id, {"firstUsedTime": now})
        return _tokens(
            ctx, user_id, session_id, _new_refresh_token(ctx, session_id, token_id)
        )
    newest = _newest_unused(ctx, session_id)
    if newest is not None and newest.get("parentRefreshTokenId") == token_id:
        return _tokens(ctx, user_id, session_id, f"{newest['_id']}|{session_id}")
    if now < token["firstUsedTime"] + lib.REFRESH_TOKEN_REUSE_WINDOW_MS:
        return _tokens(
            ctx, user_id, session_id, _new_refresh_token(ctx, session_id, token_id)
        )
    _invalidate_descendants(
        ctx, session_id, token_id, now - lib.REFRESH_TOKEN_REUSE_WINDOW_MS
    )
    return None


def _newest_unused(ctx: MutationCtx, session_id: str) -> dict[str, Any] | None:
    for token in (
        ctx.db.query("authRefreshTokens")
        .with_index("sessionId", lambda q: q.eq("sessionId", session_id))
        .order("desc")
        .collect()
    ):
        if "firstUsedTime" not in token:
            return token
    return None


def _invalidate_descendants(
    ctx: MutationCtx, session_id: str, token_id: str, used_at: float
) -> None:
    """A reused token: it and every token rotated from it are marked used."""
    pending = [token_id]
    while pending:
        current = pending.pop()
        doc = ctx.db.get(current)
        if doc is not None and doc.get("firstUsedTime", used_at + 1) > used_at:
            ctx.db.patch(current, {"firstUsedTime": used_at})
        pending += [
            str(child["_id"])
            for child in ctx.db.query("authRefreshTokens")
            .with_index(
                "sessionIdAndParentRefreshTokenId",
                lambda q, c=current: q.eq("sessionId", session_id).eq(  # type: ignore[misc]
                    "parentRefreshTokenId", c
                ),
            )
            .collect()
        ]


# --------------------------------------------------------------------------- accounts


def _account(ctx: MutationCtx, provider: str, account_id: str) -> dict[str, Any] | None:
    return (
        ctx.db.query("authAccounts")
        .with_index(
            "providerAndAccountId",
            lambda q: q.eq("provider", provider).eq("providerAccountId", account_id),
        )
        .unique()
    )


def store_create_account(ctx: MutationCtx, args: dict[str, Any]) -> dict[str, Any]:
    """``createAccountFromCredentials``: a new user and account, or the existing one.

    An existing account with a different secret is ``Account <id> already exists``.
    """
    provider, account = args["provider"], args["account"]
    existing = _account(ctx, provider, account["id"])
    if existing is not None:
        if "secret" in account and not lib.verify_password(
            account["secret"], existing.get("secret", "")
        ):
            raise lib.Error(f"Account {account['id']} already exists")
        return {"account": existing, "user": ctx.db.get(existing["userId"])}
    profile = {
        k: v
        for k, v in dict(args.get("profile") or {}).items()
        if k in ("email", "name")
    }
    user_id = get_auth_user_id(ctx)
    if user_id is None or ctx.db.normalize_id("users", user_id) is None:
        user_id = ctx.db.insert("users", profile)
    doc: dict[str, Any] = {
        "userId": user_id,
        "provider": provider,
        "providerAccountId": account["id"],
    }
    if "secret" in account:
        doc["secret"] = lib.hash_password(account["secret"])
    account_id = ctx.db.insert("authAccounts", doc)
    return {"account": ctx.db.get(account_id), "user": ctx.db.get(user_id)}


def _attempts_left(ctx: MutationCtx, row: dict[str, Any]) -> float:
    per_ms = lib.MAX_FAILED_ATTEMPTS_PER_HOUR / 3_600_000
    elapsed = ctx.now() - float(row["lastAttemptTime"])
    refilled = float(row["attemptsLeft"]) + elapsed * per_ms
    return min(float(lib.MAX_FAILED_ATTEMPTS_PER_HOUR), refilled)


def _rate_limit_row(ctx: MutationCtx, identifier: str) -> dict[str, Any] | None:
    return (
        ctx.db.query("authRateLimits")
        .with_index("identifier", lambda q: q.eq("identifier", identifier))
        .unique()
    )


def store_retrieve_account(ctx: MutationCtx, args: dict[str, Any]) -> Any:
    """``retrieveAccountWithCredentials``: the account, or why not, as a string.

    ``"InvalidAccountId"``, ``"TooManyFailedAttempts"`` (10 failures an hour per
    account, refilled continuously) or ``"InvalidSecret"``; a failure is
    recorded in ``authRateLimits`` and a success clears it.
    """
    account = _account(ctx, args["provider"], args["account"]["id"])
    if account is None:
        return "InvalidAccountId"
    secret = args["account"].get("secret")
    if secret is not None:
        identifier = str(account["_id"])
        row = _rate_limit_row(ctx, identifier)
        if row is not None and _attempts_left(ctx, row) < 1:
            return "TooManyFailedAttempts"
        if not lib.verify_password(secret, account.get("secret", "")):
            if row is None:
                ctx.db.insert(
                    "authRateLimits",
                    {
                        "identifier": identifier,
                        "attemptsLeft": lib.MAX_FAILED_ATTEMPTS_PER_HOUR - 1,
                        "lastAttemptTime": ctx.now(),
                    },
                )
            else:
                ctx.db.patch(
                    str(row["_id"]),
                    {
                        "attemptsLeft": _attempts_left(ctx, row) - 1,
                        "lastAttemptTime": ctx.now(),
                    },
                )
            return "InvalidSecret"
        if row is not None:
            ctx.db.delete(str(row["_id"]))
    return {"account": account, "user": ctx.db.get(account["userId"])}


HANDLERS = {
    "signIn": store_sign_in,
    "signOut": store_sign_out,
    "refreshSession": store_refresh_session,
    "createAccountFromCredentials": store_create_account,
    "retrieveAccountWithCredentials": store_retrieve_account,
    "invalidateSessions": store_invalidate_sessions,
}
