"""Verify a JWT against an app's auth providers and turn it into Convex's UserIdentity.

An app's ``auth_config.py`` holds ``providers = [...]``, the Python form of
Convex's ``auth.config.ts``:

- customJwt ``{"type": "customJwt", "issuer", "jwks", "algorithm", "applicationID"?}``
  (``jwks`` a ``data:`` URI, an ``https://`` URL or a file path; ``algorithm``
  ``"RS256"`` or ``"ES256"``);
- OIDC ``{"domain", "applicationID"}`` (keys found through the issuer's
  ``/.well-known/openid-configuration``).

The rules are Convex's (convex-backend ``crates/authentication/src/lib.rs``
``validate_id_token``; ``crates/common/src/auth.rs``; ``crates/keybroker``):

1. The payload is read unverified; no ``iss`` is ``InvalidAuthHeader``.
2. The first provider whose issuer equals ``iss`` (``https://`` added when there
   is no scheme, trailing ``/`` trimmed) and, when it has an ``applicationID``,
   whose id is in ``aud``, is chosen; none is ``NoAuthProvider``.
3. OIDC: RS256 or EdDSA; ``kid`` optional when one key fits; ``iss``, ``sub``,
   ``exp``, ``iat`` required; ``aud`` exactly the ``applicationID``; expired when
   ``now >= exp`` (no leeway). Failures are ``Unauthenticated``.
4. customJwt: the configured algorithm; a ``kid`` is required; ``sub`` and ``exp``
   required; 5 s of leeway on ``exp``, ``nbf`` and ``iat``. Failures are
   ``InvalidAuthHeader``.

Times are read from the store's clock, so a test with a ``FakeClock`` can expire
a token. A provider whose issuer is the app's own ``CONVEX_SITE_URL`` (how
``@convex-dev/auth`` sets itself up) is verified with the ``JWKS`` environment
variable, without fetching the app's own ``/.well-known`` routes.

PyJWT (with ``cryptography``) checks signatures; it is imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from attrs import frozen
from returns.result import Failure, Result, Success

from ..model.errors import DefinitionError, Unauthenticated
from .identity import custom_jwt_identity, oidc_identity
from .jwks import KeyCache, Keys, parse_jwks

if TYPE_CHECKING:
    import httpx

DEFAULT_SITE_URL: Final = "http://127.0.0.1:3211"  # Convex's local CONVEX_SITE_URL
CUSTOM_JWT_LEEWAY_S: Final = 5  # biscuit's epsilon
CUSTOM_JWT_ALGORITHMS: Final = ("RS256", "ES256")
OIDC_ALGORITHMS: Final = ("RS256", "EdDSA")
KTY_OF: Final = {"RS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
_NO_KID = "Could not decode token. JWT may be missing a 'kid' (key ID) header."
_OIDC_PARSE = (
    "Could not parse as OIDC ID token. Token might not be an OIDC-compliant JWT."
)
_OIDC_VERIFY = (
    "Could not verify OIDC token claim. Check that the token signature is valid "
    "and the token hasn't expired."
)
_MALFORMED = (
    "Could not parse JWT payload. Check that the token is a valid JWT format with "
    "three base64-encoded parts separated by dots."
)
_NO_ISS = (
    "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' "
    "claim that matches one of your configured auth providers."
)


# --------------------------------------------------------------------------- providers


@frozen
class CustomJwtProvider:
    """``{"type": "customJwt", "issuer", "jwks", "algorithm", "applicationID"?}``."""

    issuer: str
    jwks: str
    algorithm: str
    application_id: str | None = None

    def describe(self) -> str:
        """As Convex lists providers in ``NoAuthProvider``."""
        return (
            f"CustomJWT(issuer={self.issuer}, app_id={self.application_id or 'none'})"
        )


@frozen
class OidcProvider:
    """``{"domain", "applicationID"}``: an OpenID Connect issuer."""

    domain: str
    application_id: str

    def describe(self) -> str:
        """As Convex lists providers in ``NoAuthProvider``."""
        return f"OIDC(domain={self.domain}, app_id={self.application_id})"


Provider = CustomJwtProvider | OidcProvider


def issuer_url(value: str) -> str:
    """A provider's issuer as Convex compares it: ``https://`` added, ``/`` trimmed."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    return text.rstrip("/")


def parse_providers(raw: object, where: str = "auth_config.py") -> tuple[Provider, ...]:
    """Check ``providers`` from an ``auth_config.py`` (Convex's ``auth.config.ts`` rules).

    Raises:
        DefinitionError: not a list of provider dicts, a misspelt key
            (``applicationId``), an unknown ``type``, a customJwt with ``domain``,
            an OIDC provider with ``issuer``, or an algorithm other than RS256/ES256.
    """
    if not isinstance(raw, list | tuple):
        raise DefinitionError(f"{where}: `providers` must be a list of dicts")
    return tuple(_provider(p, f"{where}: providers[{i}]") for i, p in enumerate(raw))


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{where}: `{key}` must be a non-empty string")
    return value


def _provider(entry: object, where: str) -> Provider:
    if not isinstance(entry, Mapping):
        raise DefinitionError(f"{where} must be a dict")
    if "applicationId" in entry:
        raise DefinitionError(f"{where}: `applicationId` should be `applicationID`")
    kind = entry.get("type")
    if kind not in (None, "customJwt", "oidc"):
        raise DefinitionError(f"{where}: `type` must be 'customJwt' or 'oidc'")
    app_id = entry.get("applicationID")
    if app_id is not None and not isinstance(app_id, str):
        raise DefinitionError(f"{where}: `applicationID` must be a string")
    if kind == "customJwt":
        if "domain" in entry:
            raise DefinitionError(
                f"{where}: a customJwt provider has `issuer`, not `domain`"
            )
        algorithm = _text(entry, "algorithm", where)
        if algorithm not in CUSTOM_JWT_ALGORITHMS:
            raise DefinitionError(f"{where}: `algorithm` must be 'RS256' or 'ES256'")
        return CustomJwtProvider(
            _text(entry, "issuer", where),
            _text(entry, "jwks", where),
            algorithm,
            app_id,
        )
    if "issuer" in entry:
        raise DefinitionError(f"{where}: an OIDC provider has `domain`, not `issuer`")
    domain = _text(entry, "domain", where)
    if not re.match(r"^(https?://)?[^\s/]+", domain):
        raise DefinitionError(f"{where}: `domain` {domain!r} is not a URL")
    return OidcProvider(domain, _text(entry, "applicationID", where))


# --------------------------------------------------------------------------- tokens


def _b64json(part: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and payload of a compact JWS, unverified (None if it is not one)."""
    if not _COMPACT.fullmatch(token):
        return None
    parts = token.split(".")
    header, payload = _b64json(parts[0]), _b64json(parts[1])
    if header is None or payload is None:
        return None
    return header, payload


def _audiences(payload: Mapping[str, Any]) -> list[str]:
    aud = payload.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _refused(reason: str, message: str, code: str) -> Failure[Unauthenticated]:
    return Failure(Unauthenticated(reason, message, code, 401))


class Authenticator:
    """Verifies tokens for one store: its providers, its clock, its key cache.

    Args:
        providers: the app's providers (``parse_providers``); none refuses every token.
        clock: milliseconds since the epoch (the store's clock).
        root: the app folder, against which a relative JWKS file path is read.
        http: an ``httpx.Client`` to fetch keys with (None: one made on first fetch).
        environ: where ``CONVEX_SITE_URL`` and ``JWKS`` are read, at each check.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        clock: Callable[[], float],
        *,
        root: Path | None = None,
        http: httpx.Client | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.providers = tuple(providers)
        self._clock = clock
        self._root = root
        self._environ = environ
        self.keys = KeyCache(
            lambda: http if http is not None else _new_client(),
            owns_client=http is None,
            clock=clock,
        )

    def verify(self, token: str) -> Result[dict[str, Any], Unauthenticated]:
        """The UserIdentity of a valid token, or why it was refused.

        Example:
            >>> Authenticator([], lambda: 0.0).verify("not a jwt").failure().convex_code
            'InvalidAuthHeader'
        """
        parsed = _unverified(token.strip())
        if parsed is None:
            return _refused("malformed", _MALFORMED, "InvalidAuthHeader")
        header, payload = parsed
        iss = payload.get("iss")
        if not isinstance(iss, str):
            return _refused("malformed", _NO_ISS, "InvalidAuthHeader")
        provider = self._provider_for(iss, _audiences(payload))
        if provider is None:
            listed = ", ".join(p.describe() for p in self.providers)
            # Convex answers NoAuthProvider either way; the reason tells which.
            known_issuer = any(
                issuer_url(_url(p)) == issuer_url(iss) for p in self.providers
            )
            return _refused(
                "audience" if known_issuer else "issuer",
                "No auth provider found matching the given token. Check that your "
                "JWT's issuer and audience match one of your configured providers: "
                f"[{listed}]",
                "NoAuthProvider",
            )
        if isinstance(provider, OidcProvider):
            return self._verify_oidc(provider, token.strip(), header, payload)
        return self._verify_custom(provider, token.strip(), header, payload)

    def _provider_for(self, iss: str, audiences: list[str]) -> Provider | None:
        wanted = issuer_url(iss)
        for provider in self.providers:
            if (
                provider.application_id is not None
                and provider.application_id not in audiences
            ):
                continue
            if issuer_url(_url(provider)) == wanted:
                return provider
        return None

    def _now(self) -> float:
        return self._clock() / 1000.0

    # ------------------------------------------------------------------ OIDC

    def _own_keys(self, iss: str) -> Keys | None:
        """The app's own keys (``JWKS``) when ``iss`` is its ``CONVEX_SITE_URL``."""
        site = self._environ.get("CONVEX_SITE_URL", DEFAULT_SITE_URL)
        jwks = self._environ.get("JWKS")
        if jwks is None or iss.rstrip("/") != site.rstrip("/"):
            return None
        parsed = parse_jwks(jwks, "the JWKS environment variable")
        return parsed.unwrap() if isinstance(parsed, Success) else []

    def _verify_oidc(
        self,
        provider: OidcProvider,
        token: str,
        header: dict[str, Any],
        payload: dict[str, Any],
    ) -> Result[dict[str, Any], Unauthenticated]:
        if any(_number(payload.get(k)) is None for k in ("exp", "iat")) or not all(
            isinstance(payload.get(k), str) for k in ("iss", "sub")
        ):
            return _refused("claims", _OIDC_PARSE, "InvalidAuthHeader")
        iss = str(payload["iss"])
        typ = header.get("typ")
        if typ is not None and str(typ).lower() not in (
            "jwt",
            "jose",
            "application/jwt",
            "application/jose",
        ):
            return self._oidc_refused("malformed", f"unsupported typ {typ!r}")
        if "cty" in header or "crit" in header:
            return self._oidc_refused("malformed", "a 'cty' or 'crit' header")
        alg = header.get("alg")
        if alg not in OIDC_ALGORITHMS:
            return self._oidc_refused(
                "signature", f"algorithm {alg!r} is not RS256 or EdDSA"
            )
        own = self._own_keys(iss)
        for refresh in (False, True):
            if own is not None:
                keys = own
            else:
                fetched = self.keys.oidc_keys(iss, refresh=refresh)
                if isinstance(fetched, Failure):
                    return fetched
                keys = fetched.unwrap()
            candidates = [k for k in keys if _fits(k, str(alg), header.get("kid"))]
            if len(candidates) == 1 or own is not None:
                break
        if len(candidates) != 1:
            why = "No matching key" if not candidates else "Ambiguous key"
            return self._oidc_refused("kid", why)
        if not _signature_ok(token, candidates[0], str(alg)):
            return self._oidc_refused("signature", "the signature does not verify")
        if _audiences(payload) != [provider.application_id]:
            return self._oidc_refused(
                "audience",
                f"audience {payload.get('aud')!r} is not [{provider.application_id!r}]",
            )
        now, exp = self._now(), float(payload["exp"])
        if now >= exp:
            return self._oidc_refused("expired", f"the token expired {_ago(now - exp)}")
        return Success(oidc_identity(payload))

    @staticmethod
    def _oidc_refused(reason: str, detail: str) -> Failure[Unauthenticated]:
        return _refused(reason, f"{_OIDC_VERIFY} ({detail})", "Unauthenticated")

    # ------------------------------------------------------------------ customJwt

    def _verify_custom(
        self,
        provider: CustomJwtProvider,
        token: str,
        header: dict[str, Any],
        payload: dict[str, Any],
    ) -> Result[dict[str, Any], Unauthenticated]:
        kid = header.get("kid")
        if not isinstance(kid, str):
            return _refused("kid", _NO_KID, "InvalidAuthHeader")
        alg = header.get("alg")
        bad_kid = (
            f"Could not decode token. The JWT's 'kid' (key ID) header is '{kid}', "
            "does this key match any key in the provider's JWKS?"
        )
        if alg != provider.algorithm:
            return _refused(
                "signature",
                f"{bad_kid} (algorithm {alg!r} is not {provider.algorithm})",
                "InvalidAuthHeader",
            )
        key: dict[str, Any] | None = None
        for refresh in (False, True):
            fetched = self.keys.custom_jwt_keys(
                provider.jwks, self._root, refresh=refresh
            )
            if isinstance(fetched, Failure):
                return fetched
            key = next((k for k in fetched.unwrap() if k.get("kid") == kid), None)
            if key is not None or provider.jwks.startswith("data:"):
                break
        if key is None:
            return _refused("kid", bad_kid, "InvalidAuthHeader")
        if key.get("alg") not in (None, provider.algorithm):
            return _refused("signature", bad_kid, "InvalidAuthHeader")
        if not _signature_ok(token, key, provider.algorithm):
            return _refused(
                "signature",
                f"{bad_kid} (the signature does not verify)",
                "InvalidAuthHeader",
            )
        iss = str(payload["iss"])
        if issuer_url(iss) != issuer_url(provider.issuer):
            return _refused(
                "issuer",
                f"Invalid issuer: {iss} != {provider.issuer}",
                "InvalidAuthHeader",
            )
        if provider.application_id is not None:
            audiences = _audiences(payload)
            if not audiences:
                return _refused(
                    "audience",
                    "Missing audience claim ('aud') in JWT payload.",
                    "InvalidAuthHeader",
                )
            if provider.application_id not in audiences:
                return _refused(
                    "audience",
                    f"Invalid audience: {provider.application_id} not in {json.dumps(audiences)}",
                    "InvalidAuthHeader",
                )
        return self._custom_times(payload).bind(lambda _: custom_jwt_identity(payload))

    def _custom_times(
        self, payload: Mapping[str, Any]
    ) -> Result[None, Unauthenticated]:
        now = self._now()
        exp, nbf, iat = (_number(payload.get(k)) for k in ("exp", "nbf", "iat"))
        if exp is not None and now - exp > CUSTOM_JWT_LEEWAY_S:
            return _refused(
                "expired",
                f"Could not validate token: Token expired {int(now - exp)} seconds ago",
                "InvalidAuthHeader",
            )
        if nbf is not None and nbf - now > CUSTOM_JWT_LEEWAY_S:
            return _refused(
                "not_yet_valid",
                f"Could not validate token: Token will be valid in {int(nbf - now)} seconds",
                "InvalidAuthHeader",
            )
        if iat is not None and iat - now > CUSTOM_JWT_LEEWAY_S:
            return _refused(
                "issued_in_future",
                f"Could not validate token: Token issued {int(iat - now)} seconds in the future",
                "InvalidAuthHeader",
            )
        return Success(None)

    def close(self) -> None:
        """Close the HTTP client the key cache made, if any."""
        self.keys.close()


def _url(provider: Provider) -> str:
    return provider.domain if isinstance(provider, OidcProvider) else provider.issuer


def _new_client() -> httpx.Client:
    import httpx

    return httpx.Client(timeout=10.0, follow_redirects=True)


def _ago(seconds: float) -> str:
    return f"{int(seconds)} seconds ago" if seconds >= 1 else "just now"


def _fits(key: Mapping[str, Any], alg: str, kid: object) -> bool:
    """openidconnect-rs's key choice: same kid (if any), kty for alg, use sig, alg."""
    if kid is not None and key.get("kid") != kid:
        return False
    if key.get("kty") != KTY_OF.get(alg):
        return False
    if key.get("use") not in (None, "sig"):
        return False
    return key.get("alg") in (None, alg)


def _signature_ok(token: str, jwk: Mapping[str, Any], alg: str) -> bool:
    """Whether ``token``'s signature verifies with ``jwk`` under ``alg``.

    The algorithm object is called directly: PyJWT's ``PyJWS.decode`` checks
    each base64 character in Python, which cost more than the RSA check itself.
    ``_unverified`` has already required the strict base64url alphabet.
    """
    import jwt  # PyJWT: only a store that verifies tokens pays for its import

    key = _public_key(json.dumps(jwk, sort_keys=True), alg)
    if key is None:
        return False
    signing_input, _, encoded = token.rpartition(".")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        verified: bool = jwt.get_algorithm_by_name(alg).verify(
            signing_input.encode("ascii"), key, signature
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return False
    return verified


@functools.lru_cache(maxsize=64)
def _public_key(jwk_json: str, alg: str) -> Any:
    """A JWK as a ``cryptography`` key, made once per key (it costs ~0.4 ms)."""
    import jwt

    try:
        return jwt.PyJWK(json.loads(jwk_json), algorithm=alg).key
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
