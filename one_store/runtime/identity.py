"""Convex's UserIdentity: how a verified token's claims become ``ctx.auth``'s dict.

The mapping is convex-backend's (``crates/keybroker/src/broker.rs``
``UserIdentity::from_token`` for OIDC, ``from_custom_jwt`` for customJwt):
``tokenIdentifier`` is ``"<iss>|<sub>"``; OIDC's standard claims take Convex's
camelCase names (``given_name`` → ``givenName``, ``picture`` → ``pictureUrl``,
``updated_at`` → an RFC 3339 ``updatedAt``); custom claims pass through, and a
customJwt's nested objects are flattened with dots (``{"org": {"id": 1}}`` →
``"org.id": 1``). Registered claims (``aud``, ``exp``, ``iat``, ...) are left out.

Also here: ``get_auth_user_id(ctx)`` for handlers of an app that signs users in
as ``@convex-dev/auth`` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final, Protocol

from returns.result import Failure, Result, Success

from ..model.errors import Unauthenticated
from .context import Auth

_CLAIMS = (
    "Could not verify token claim. Check that the JWT contains valid claims and "
    "matches your auth provider configuration."
)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# --------------------------------------------------------------------------- identities

_OIDC_NAMES: Final = {
    "name": "name",
    "given_name": "givenName",
    "family_name": "familyName",
    "nickname": "nickname",
    "preferred_username": "preferredUsername",
    "profile": "profileUrl",
    "picture": "pictureUrl",
    "website": "websiteUrl",
    "email": "email",
    "email_verified": "emailVerified",
    "gender": "gender",
    "birthdate": "birthday",
    "zoneinfo": "timezone",
    "locale": "language",
    "phone_number": "phoneNumber",
    "phone_number_verified": "phoneNumberVerified",
}
_OIDC_HIDDEN: Final = frozenset(
    [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "at_hash",
        "c_hash",
        "jti",
        "nbf",
        "fva",
        "address",
        "updated_at",
    ]
)
_CUSTOM_HIDDEN: Final = frozenset(
    ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "fva"]
)


def _base(payload: Mapping[str, Any]) -> dict[str, Any]:
    iss, sub = str(payload["iss"]), str(payload["sub"])
    return {"tokenIdentifier": f"{iss}|{sub}", "issuer": iss, "subject": sub}


def oidc_identity(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Convex's UserIdentity of an OIDC token (``UserIdentity::from_token``)."""
    identity = _base(payload)
    for claim, value in payload.items():
        if claim in _OIDC_NAMES:
            identity[_OIDC_NAMES[claim]] = value
        elif claim not in _OIDC_HIDDEN:
            identity[claim] = value
    address = payload.get("address")
    if isinstance(address, Mapping) and isinstance(address.get("formatted"), str):
        identity["address"] = address["formatted"]
    updated = _number(payload.get("updated_at"))
    if updated is not None:
        identity["updatedAt"] = dt.datetime.fromtimestamp(updated, dt.UTC).isoformat()
    return identity


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, into)
    else:
        into[prefix] = value


def custom_jwt_identity(
    payload: Mapping[str, Any],
) -> Result[dict[str, Any], Unauthenticated]:
    """Convex's UserIdentity of a customJwt token (nested claims joined with dots)."""
    if not isinstance(payload.get("sub"), str) or _number(payload.get("exp")) is None:
        return Failure(Unauthenticated("claims", _CLAIMS, "InvalidAuthHeader", 401))
    identity = _base(payload)
    for claim, value in payload.items():
        if claim not in _CUSTOM_HIDDEN:
            _flatten(claim, value, identity)
    return Success(identity)


# --------------------------------------------------------------------------- handlers


class _HasAuth(Protocol):
    @property
    def auth(self) -> Auth: ...


def get_auth_user_id(ctx: _HasAuth) -> str | None:
    """The signed-in user's ``users`` ID (``@convex-dev/auth``'s ``getAuthUserId``).

    ``@convex-dev/auth`` issues tokens whose ``subject`` is
    ``"<userId>|<sessionId>"``; this returns the part before the ``|``, or None
    for an anonymous caller.

    Example:
        >>> from one_store import Store, get_auth_user_id, query
        >>> @query
        ... def me(ctx, args):
        ...     return get_auth_user_id(ctx)
        >>> with Store.memory() as store:
        ...     store.with_identity({"subject": "u1|s1"}).query(me).unwrap()
        'u1'
    """
    identity = ctx.auth.get_user_identity()
    if identity is None:
        return None
    return str(identity.get("subject", "")).split("|")[0]


def get_auth_session_id(ctx: _HasAuth) -> str | None:
    """The session part of the subject (``@convex-dev/auth``'s ``getAuthSessionId``)."""
    identity = ctx.auth.get_user_identity()
    if identity is None:
        return None
    parts = str(identity.get("subject", "")).split("|")
    return parts[1] if len(parts) > 1 else None
