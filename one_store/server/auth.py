"""Who is calling ``one-store serve``: a user token, an admin key, or nobody.

The ``Authorization`` header is read as Convex's backend reads it
(convex-backend ``crates/local_backend/src/authentication.rs``
``ExtractAuthenticationToken``):

=====================================  ===========================================
Header                                 Caller
=====================================  ===========================================
none                                   anonymous (``?adminKey=<key>`` makes an admin)
``Bearer <jwt>``                       the token's user, verified by the store's
                                       :class:`~one_store.runtime.auth.Authenticator`
``Convex <key>[:<base64 JSON>]``       an admin, acting as that UserIdentity if given
not visible ASCII                      400 ``HeaderParseFailure``
shorter than 7 characters              400 ``InvalidHeaderFailure``
any other scheme, ``Bearer`` alone     400 ``InvalidAdminKey``
=====================================  ===========================================

A refused token is 401 with Convex's code (``InvalidAuthHeader``,
``NoAuthProvider``, ``Unauthenticated``), a wrong admin key 401 ``BadAdminKey``:
never a silent anonymous call. Only an admin may call internal functions.

The admin key is the ``ONE_STORE_ADMIN_KEY`` environment variable, or one
:func:`new_admin_key` made when ``serve`` starts (printed once beside the URL).
Convex's keys are encrypted ``instance|hex`` strings; here the key is an opaque
secret compared in constant time.

The sync protocol's ``Authenticate`` message is checked by
:meth:`Gate.authenticate`, with the same rules.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any, Final

from attrs import frozen
from returns.result import Failure, Result, Success

from ..model.errors import Unauthenticated
from ..store import Store

ADMIN_KEY_ENV: Final = "ONE_STORE_ADMIN_KEY"
_BAD_ADMIN_KEY: Final = "The provided admin key was invalid for this instance"


def new_admin_key() -> str:
    """A fresh admin key: ``one-store|<64 hex digits>`` (no ``:``, as Convex's)."""
    return f"one-store|{secrets.token_hex(32)}"


def serving_admin_key() -> str:
    """Make sure ``serve`` has an admin key; return how to show it beside the URL.

    The operator's own key (``ONE_STORE_ADMIN_KEY``) is not echoed. Without one, a
    fresh key is put in this process's ``ONE_STORE_ADMIN_KEY`` (where ``serve``
    reads it) and returned to be shown, once, since nothing else tells it.
    """
    if os.environ.get(ADMIN_KEY_ENV):
        return f"from {ADMIN_KEY_ENV}"
    key = os.environ[ADMIN_KEY_ENV] = new_admin_key()
    return key


@frozen
class Caller:
    """Who a request runs as: the store view to call, and whether it is an admin.

    ``expires_ms`` is when a user's token expires (its ``exp``, in ms), for a
    connection that outlives one request: Convex's sync worker checks
    ``now >= exp`` whenever it needs the identity and then answers ``AuthError``
    "Convex token identity expired". None for anonymous callers and admins.
    """

    store: Store
    admin: bool = False
    expires_ms: float | None = None


def _bad_request(code: str, message: str) -> Failure[Unauthenticated]:
    return Failure(Unauthenticated("malformed", message, code, 400))


def _visible_ascii(text: str) -> bool:
    return all(c in " \t" or "!" <= c <= "~" for c in text)


def _claim(token: str, name: str) -> object:
    """A claim of a token already verified (its payload is well-formed JSON)."""
    payload = token.strip().split(".")[1]
    return json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    ).get(name)


def _strip_type_prefix(key: str) -> str:
    """Convex's ``AdminKey::remove_type_prefix``: ``prod:``/``dev:`` or ``preview:…|``."""
    for prefix in ("prod:", "dev:"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    if key.startswith(("preview:", "project:")) and "|" in key:
        return key[key.index("|") + 1 :]
    return key


class Gate:
    """Turns a request's credentials into a :class:`Caller` of ``store``.

    Args:
        store: the served store; users get ``store.with_token(...)`` views.
        admin_key: the key admins present (None: no one is an admin).
    """

    def __init__(self, store: Store, admin_key: str | None) -> None:
        self.store = store
        self._admin_key = _strip_type_prefix(admin_key) if admin_key else None

    def from_header(
        self, header: str | None, admin_key_param: str | None = None
    ) -> Result[Caller, Unauthenticated]:
        """The caller of an HTTP request with this ``Authorization`` header.

        ``admin_key_param`` is the ``?adminKey=`` query parameter, read only when
        there is no header (as Convex). A Failure carries the HTTP status and
        Convex's code to answer with.
        """
        if header is None:
            if admin_key_param is not None:
                return self._admin(admin_key_param, None)
            return Success(Caller(self.store))
        if not _visible_ascii(header):
            return _bad_request("HeaderParseFailure", "Malformed Authorization header.")
        if len(header) < 7:
            return _bad_request("InvalidHeaderFailure", "Invalid authentication header")
        scheme, _, rest = header.partition(" ")
        if scheme.lower() == "convex":
            # Convex's extract_admin_key: the type prefix goes, then the first ':'.
            key, colon, acting = _strip_type_prefix(rest.strip()).partition(":")
            return self._admin(key, acting if colon else None)
        if scheme.lower() == "bearer" and rest.strip():
            return self.user(rest.strip())
        return _bad_request("InvalidAdminKey", "Invalid admin key")

    def user(self, token: str) -> Result[Caller, Unauthenticated]:
        """The caller a JWT stands for, verified by the store's authenticator."""
        verified = self.store.authenticator.verify(token)
        if isinstance(verified, Failure):
            return verified
        exp = _claim(token, "exp")
        expires = float(exp) * 1000 if isinstance(exp, int | float) else None
        return Success(
            Caller(self.store.with_identity(verified.unwrap()), False, expires)
        )

    def _admin(
        self, key: str, acting_as: str | None
    ) -> Result[Caller, Unauthenticated]:
        expected = self._admin_key
        given = _strip_type_prefix(key.strip())
        if expected is None or not hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode("utf-8")
        ):
            return Failure(
                Unauthenticated("admin_key", _BAD_ADMIN_KEY, "BadAdminKey", 401)
            )
        if acting_as is None:
            return Success(Caller(self.store, admin=True))
        try:
            identity = json.loads(base64.b64decode(acting_as, validate=True))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return _bad_request("HeaderParseFailure", "Malformed Authorization header.")
        return self._acting(identity)

    def _acting(self, identity: object) -> Result[Caller, Unauthenticated]:
        """An admin acting as ``identity`` (Convex's ``impersonating`` / ``acting_as``)."""
        if not isinstance(identity, Mapping) or not (
            "issuer" in identity
            or "subject" in identity
            or "tokenIdentifier" in identity
        ):
            return _bad_request(
                "HeaderParseFailure",
                "Malformed Authorization header: the identity to act as needs a "
                "subject, an issuer or a tokenIdentifier.",
            )
        return Success(Caller(self.store.with_identity(dict(identity)), admin=True))

    def authenticate(
        self, message: Mapping[str, Any]
    ) -> Result[Caller, Unauthenticated]:
        """Check the sync protocol's ``Authenticate`` message; the caller it makes.

        ``{"type": "Authenticate", "tokenType": "User", "value": jwt}`` verifies the
        JWT as ``Authorization: Bearer`` does; ``"Admin"`` takes the admin key in
        ``value`` and an optional ``impersonating`` UserIdentity; ``"None"`` signs
        out (an anonymous caller). A refusal's ``message`` is the text of the
        ``AuthError`` frame the server sends before closing the socket.

        Example:
            >>> gate = Gate(Store.memory(), admin_key="k")
            >>> gate.authenticate({"tokenType": "Admin", "value": "k"}).unwrap().admin
            True
            >>> gate.authenticate({"tokenType": "User", "value": "x"}).failure().reason
            'malformed'
        """
        kind, value = message.get("tokenType"), message.get("value")
        if kind == "None":
            return Success(Caller(self.store))
        if not isinstance(value, str):
            return _bad_request(
                "InvalidAuthHeader", "Authenticate needs a string value"
            )
        if kind == "User":
            return self.user(value)
        if kind == "Admin":
            impersonating = message.get("impersonating")
            found = self._admin(value, None)
            if isinstance(found, Failure) or impersonating is None:
                return found
            return self._acting(impersonating)
        return _bad_request("InvalidAuthHeader", f"Unknown tokenType {kind!r}")
