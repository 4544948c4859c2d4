"""Where a provider's signing keys come from: JWKS documents, fetched and cached.

A customJwt provider names its JWKS as a ``data:`` URI (decoded, never fetched),
an ``http(s)://`` URL (fetched, as Convex's ``fetch_jwks`` in
convex-backend's ``crates/authentication/src/lib.rs``) or a file path (read; a
one_store addition for keys kept beside the app). An OIDC provider's keys come
from its discovery document (``<issuer>/.well-known/openid-configuration``, then
its ``jwks_uri``), as openidconnect-rs does for Convex.

Fetched documents are kept in a :class:`KeyCache` and fetched again when a token
names a key the cached set does not have (a provider that rotated its keys), at
most once per :data:`REFRESH_INTERVAL_MS` of the store's clock, so a steady
stream of requests costs no network round trip and tokens with made-up key IDs
cannot make the server hammer the provider. Convex keeps fetched
replies in an HTTP cache instead; the effect for a rotating provider is the same.

Errors are :class:`~one_store.model.errors.Unauthenticated` values with Convex's
codes and messages: ``InvalidAuthHeader`` for a customJwt JWKS,
``AuthProviderDiscoveryFailed`` (400, or the provider's own 4xx/503) for OIDC
discovery.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from returns.result import Failure, Result, Success

from ..model.errors import Unauthenticated

if TYPE_CHECKING:
    import httpx

JWKS_TYPES = ("application/json", "application/jwk-set+json")
REFRESH_INTERVAL_MS = 10_000  # a URL is fetched again at most this often
Keys = list[dict[str, Any]]


def _jwks_problem(message: str) -> Unauthenticated:
    return Unauthenticated("jwks", message, "InvalidAuthHeader", 401)


def parse_jwks(text: str | bytes, where: str) -> Result[Keys, Unauthenticated]:
    """The ``keys`` of a JWKS document (keys that are not objects are skipped)."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        return Failure(
            _jwks_problem(
                f"Invalid JWKS response body from '{where}': {e}. "
                "Check that the JWKS is a JSON object with a 'keys' array."
            )
        )
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        return Failure(
            _jwks_problem(
                f"Invalid JWKS response body from '{where}': missing field `keys`. "
                "Check that the JWKS is a JSON object with a 'keys' array."
            )
        )
    return Success([k for k in keys if isinstance(k, dict)])


def decode_data_uri(uri: str) -> Result[bytes, Unauthenticated]:
    """The bytes of a ``data:[<type>][;base64],<data>`` URI (RFC 2397)."""
    head, comma, data = uri.partition(",")
    if not comma or not head.startswith("data:"):
        return Failure(_bad_data_uri("no ',' after the media type"))
    if head.endswith(";base64"):
        try:
            return Success(base64.b64decode(urllib.parse.unquote(data), validate=True))
        except ValueError as e:
            return Failure(_bad_data_uri(str(e)))
    return Success(urllib.parse.unquote_to_bytes(data))


def _bad_data_uri(why: str) -> Unauthenticated:
    return _jwks_problem(
        f"Invalid JWKS data URL: {why}. Check that the data URL is correctly formatted."
    )


def _media_type(response: httpx.Response) -> str | None:
    value: str | None = response.headers.get("content-type")
    if value is None:
        return None
    kind, _, params = value.partition(";")
    charset = params.strip().lower()
    if charset and charset not in ("charset=utf-8", 'charset="utf-8"'):
        return value
    return kind.strip().lower()


class KeyCache:
    """JWKS and discovery documents by URL, fetched on first use and on a miss.

    Args:
        client: makes the ``httpx.Client`` used to fetch (called once, lazily,
            so a store that never verifies a fetched key never imports httpx).
        owns_client: whether :meth:`close` closes that client.
        clock: milliseconds since the epoch, which spaces out fetches.
    """

    def __init__(
        self,
        client: Callable[[], httpx.Client],
        *,
        owns_client: bool = True,
        clock: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._client_factory = client
        self._owns_client = owns_client
        self._clock = clock
        self._fetched_at: dict[str, float] = {}
        self._client: httpx.Client | None = None
        self._keys: dict[str, Keys] = {}
        self._discovered: dict[str, str] = {}
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def custom_jwt_keys(
        self, source: str, root: Path | None, *, refresh: bool
    ) -> Result[Keys, Unauthenticated]:
        """The keys of a customJwt provider's ``jwks`` (a data: URI, URL or file).

        Read once and kept; ``refresh`` reads a URL or a file again (a data: URI
        cannot change).
        """
        cached = self._keys.get(source)
        if cached is not None and (
            not refresh or source.startswith("data:") or self._recent(source)
        ):
            return Success(cached)
        if source.startswith("data:"):
            found = decode_data_uri(source).bind(lambda b: parse_jwks(b, "data URL"))
        elif source.startswith(("https://", "http://")):
            return self._fetch_jwks(source, "InvalidAuthHeader")
        else:
            found = self._read_file(source, root)
        if isinstance(found, Success):
            self._keys[source] = found.unwrap()
        return found

    def _recent(self, url: str) -> bool:
        """Whether ``url`` was fetched less than ``REFRESH_INTERVAL_MS`` ago."""
        last = self._fetched_at.get(url)
        return last is not None and self._clock() - last < REFRESH_INTERVAL_MS

    @staticmethod
    def _read_file(source: str, root: Path | None) -> Result[Keys, Unauthenticated]:
        path = Path(source)
        if not path.is_absolute() and root is not None:
            path = root / path
        try:
            text = path.read_bytes()
        except OSError as e:
            return Failure(
                _jwks_problem(
                    f"Could not read JWKS from file '{path}': {e.strerror or e}. "
                    "Check that the path is correct."
                )
            )
        return parse_jwks(text, str(path))

    def _fetch_jwks(self, url: str, code: str) -> Result[Keys, Unauthenticated]:
        import httpx

        try:
            response = self._http().get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as e:
            return Failure(
                _fetch_problem(
                    code,
                    f"Could not fetch JWKS from URL '{url}': {e}. "
                    "Check that the URL is correct and accessible.",
                )
            )
        if response.status_code != 200:
            return Failure(
                _fetch_problem(
                    code,
                    f"Could not fetch JWKS from URL '{url}': HTTP "
                    f"{response.status_code} {response.reason_phrase}. "
                    "Check that the URL is correct and accessible.",
                )
            )
        media = _media_type(response)
        # Convex's customJwt fetch requires a JSON type; OIDC accepts a missing one.
        if (media is None and code == "InvalidAuthHeader") or (
            media is not None and media not in JWKS_TYPES
        ):
            return Failure(
                _fetch_problem(
                    code,
                    f"Invalid Content-Type '{media or 'unknown'}' when fetching JWKS "
                    f"from '{url}'. Expected 'application/json' or "
                    "'application/jwk-set+json'.",
                )
            )
        parsed = parse_jwks(response.content, url)
        if isinstance(parsed, Success):
            self._keys[url] = parsed.unwrap()
            self._fetched_at[url] = self._clock()
        elif code != "InvalidAuthHeader":
            return Failure(_fetch_problem(code, parsed.failure().message))
        return parsed

    def oidc_keys(self, issuer: str, *, refresh: bool) -> Result[Keys, Unauthenticated]:
        """The keys an OIDC issuer publishes, found through its discovery document."""
        jwks_uri = self._discovered.get(issuer)
        if refresh and jwks_uri is not None and self._recent(jwks_uri):
            refresh = False  # fetched a moment ago: what it had is all there is
        if jwks_uri is None or refresh:
            found = self._discover(issuer)
            if isinstance(found, Failure):
                return found
            jwks_uri = found.unwrap()
            self._discovered[issuer] = jwks_uri
        if not refresh and jwks_uri in self._keys:
            return Success(self._keys[jwks_uri])
        return self._fetch_jwks(jwks_uri, "AuthProviderDiscoveryFailed").alt(
            lambda p: _discovery_failed(issuer, p.message, p.status)
        )

    def _discover(self, issuer: str) -> Result[str, Unauthenticated]:
        import httpx

        sep = "" if issuer.endswith("/") else "/"
        url = f"{issuer}{sep}.well-known/openid-configuration"
        try:
            response = self._http().get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as e:
            return Failure(_discovery_failed(issuer, f"Request failed: {e}"))
        if response.status_code != 200:
            return Failure(
                _discovery_failed(
                    issuer,
                    f"{response.status_code} {response.reason_phrase} {response.text[:200]}",
                    _status_like(response.status_code),
                )
            )
        media = _media_type(response)
        if media is not None and media != "application/json":
            return Failure(
                _discovery_failed(issuer, f"unexpected Content-Type '{media}'")
            )
        try:
            document = json.loads(response.content)
        except ValueError as e:
            return Failure(_discovery_failed(issuer, f"bad JSON: {e}"))
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            got = document.get("issuer") if isinstance(document, dict) else None
            return Failure(
                _discovery_failed(
                    issuer,
                    f"the document's issuer {got!r} is not the token's {issuer!r}",
                )
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            return Failure(_discovery_failed(issuer, "the document has no jwks_uri"))
        return Success(jwks_uri)

    def close(self) -> None:
        """Close the HTTP client, if this cache made it (an injected one is the caller's)."""
        if self._client is not None and self._owns_client:
            self._client.close()
        self._client = None


def _fetch_problem(code: str, message: str) -> Unauthenticated:
    return Unauthenticated(
        "jwks", message, code, 401 if code == "InvalidAuthHeader" else 400
    )


def _status_like(status: int) -> int:
    """Convex's ``from_http_status_code``: some 4xx are kept, others 400, 5xx 503."""
    if status in (401, 403, 404, 421, 425, 429):
        return status
    return 503 if status >= 500 else 400


def _discovery_failed(issuer: str, detail: str, status: int = 400) -> Unauthenticated:
    return Unauthenticated(
        "discovery",
        f"Auth provider discovery of {issuer} failed: {detail}",
        "AuthProviderDiscoveryFailed",
        status,
    )
