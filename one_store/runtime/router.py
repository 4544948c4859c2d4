"""HTTP actions: ``HttpRouter``, ``HttpRequest`` and ``HttpResponse`` (Convex's ``http.ts``).

An app's ``http.py`` holds ``http = HttpRouter()`` and routes requests to handlers
registered with ``@http_action``; ``one-store serve`` answers every path outside
``/api/`` with it. The rules are Convex's (``convex/server`` ``router.ts``):

- methods ``GET POST PUT DELETE OPTIONS PATCH``; ``HEAD`` is routed as ``GET``;
- ``path`` starts with ``/``; ``path_prefix`` starts and ends with ``/``;
- a lookup tries the exact path first, then the longest matching prefix;
- no match is answered ``404 text/plain`` ``No matching routes found``.

Convex's ``Request``/``Response`` become two small Python classes: the handler gets
an :class:`HttpRequest` (method, full URL, headers, body bytes, ``json()``) and
returns an :class:`HttpResponse` whose body is JSON for a ``dict``/``list``, text
for a ``str``, and raw for ``bytes``. This module has no server dependency, so an
app's ``http.py`` imports nothing heavier than ``one_store``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from attrs import field, frozen

from ..model.errors import DefinitionError
from .functions import FunctionSpec

Method: TypeAlias = Literal["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
ROUTABLE_METHODS: Final = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
NO_ROUTE: Final = "No matching routes found"


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive HTTP headers (the last value wins on repeats)."""

    def __init__(
        self, items: Mapping[str, str] | list[tuple[str, str]] | None = None
    ) -> None:
        pairs = items.items() if isinstance(items, Mapping) else (items or [])
        self._items = {k.lower(): v for k, v in pairs}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _headers(value: Mapping[str, str] | list[tuple[str, str]] | Headers) -> Headers:
    return value if isinstance(value, Headers) else Headers(value)


@frozen
class HttpRequest:
    """The request an ``@http_action`` handler receives (Convex's Fetch ``Request``).

    Attributes:
        method: the HTTP method, upper case (``HEAD`` arrives as ``GET``).
        url: the full URL, ``http://host/path?query`` as Convex gives it.
        headers: case-insensitive header mapping.
        body: the raw body (empty for ``GET``, ``HEAD`` and ``OPTIONS``).

    Example:
        >>> r = HttpRequest("POST", "http://127.0.0.1/ingest?x=1", {}, b'{"a": 1}')
        >>> (r.path, r.query, r.json())
        ('/ingest', {'x': '1'}, {'a': 1})
    """

    method: str
    url: str
    headers: Headers = field(converter=_headers)
    body: bytes = b""

    @property
    def path(self) -> str:
        """The URL's path, e.g. ``/threads/abc/messages``."""
        return urlsplit(self.url).path or "/"

    @property
    def query(self) -> dict[str, str]:
        """The URL's query parameters (the last value wins on repeats)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes become U+FFFD)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not valid JSON (``json.JSONDecodeError``).
        """
        return json.loads(self.body)


_JSON_TYPE: Final = "application/json"


class HttpResponse:
    """What an ``@http_action`` handler returns (Convex's Fetch ``Response``).

    Args:
        body: a ``dict``/``list`` (sent as JSON), a ``str`` (UTF-8 text), ``bytes``
            (as given) or ``None`` (no body).
        status: the HTTP status code.
        headers: extra headers; a ``Content-Type`` here overrides the default.

    Raises:
        TypeError: ``body`` is of another type or not JSON-serialisable.
        ValueError: ``status`` is not between 100 and 599.

    Example:
        >>> r = HttpResponse({"ok": True}, status=201)
        >>> (r.status, r.content, r.headers["content-type"])
        (201, b'{"ok":true}', 'application/json')
    """

    __slots__ = ("content", "headers", "status")

    def __init__(
        self,
        body: Any = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"status must be an int, got {status!r}")
        if not 100 <= status <= 599:
            raise ValueError(f"status must be between 100 and 599, got {status}")
        content, media_type = _encode_body(body)
        merged = {} if media_type is None else {"content-type": media_type}
        merged.update({k.lower(): str(v) for k, v in (headers or {}).items()})
        self.status = status
        self.content = content
        self.headers: dict[str, str] = merged

    def json(self) -> Any:
        """The body parsed as JSON (for tests of handlers)."""
        return json.loads(self.content)

    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, content={self.content[:60]!r})"


def _encode_body(body: Any) -> tuple[bytes, str | None]:
    if body is None:
        return b"", None
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    if isinstance(body, dict | list):
        try:
            text = json.dumps(body, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"HttpResponse body is not JSON-serialisable: {e}") from e
        return text.encode("utf-8"), _JSON_TYPE
    raise TypeError(
        "HttpResponse body must be dict, list, str, bytes or None, "
        f"got {type(body).__name__}"
    )


@frozen
class Route:
    """One registered route: an exact ``path`` or a ``path_prefix`` ending in ``/``."""

    method: str
    path: str
    prefix: bool
    handler: FunctionSpec[Any]

    @property
    def pattern(self) -> str:
        """``/path`` or ``/prefix/*`` (as Convex's dashboard lists routes)."""
        return f"{self.path}*" if self.prefix else self.path


class HttpRouter:
    """Routes HTTP requests to ``@http_action`` handlers (Convex's ``httpRouter()``).

    Example:
        >>> from one_store import HttpResponse, HttpRouter, http_action
        >>> @http_action
        ... def hello(ctx, request):
        ...     return HttpResponse({"hello": request.query.get("name", "world")})
        >>> http = HttpRouter()
        >>> http.route(path="/hello", method="GET", handler=hello)
        >>> http.lookup("/hello", "HEAD").pattern
        '/hello'
    """

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Route] = {}
        self._prefixes: dict[tuple[str, str], Route] = {}

    def route(
        self,
        *,
        method: str,
        handler: FunctionSpec[Any],
        path: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Send ``method`` requests for ``path`` (or under ``path_prefix``) to ``handler``.

        Raises:
            DefinitionError: a bad method, path or prefix, both or neither of
                ``path``/``path_prefix``, a handler not made with ``@http_action``,
                or a route already taken.
        """
        if not isinstance(handler, FunctionSpec) or handler.kind != "http_action":
            raise DefinitionError(
                f"route handler must be made with @http_action, got {handler!r}"
            )
        if method not in ROUTABLE_METHODS:
            raise DefinitionError(
                f"'{method}' is not an allowed HTTP method (like GET, POST, PUT etc.)"
            )
        if (path is None) == (path_prefix is None):
            raise DefinitionError("route needs exactly one of path= or path_prefix=")
        if path is not None:
            self._add(self._exact, Route(method, _check_path(path), False, handler))
        elif path_prefix is not None:
            prefix = _check_path(path_prefix)
            if not prefix.endswith("/"):
                raise DefinitionError(f"path_prefix {prefix} must end with a /")
            self._add(self._prefixes, Route(method, prefix, True, handler))

    @staticmethod
    def _add(table: dict[tuple[str, str], Route], route: Route) -> None:
        key = (route.method, route.path)
        if key in table:
            raise DefinitionError(
                f"Path '{route.pattern}' for method {route.method} already in use"
            )
        table[key] = route

    def lookup(self, path: str, method: str) -> Route | None:
        """The route for ``method`` on ``path``: exact first, then the longest prefix."""
        method = "GET" if method == "HEAD" else method
        exact = self._exact.get((method, path))
        if exact is not None:
            return exact
        matches = [
            route
            for (m, prefix), route in self._prefixes.items()
            if m == method and path.startswith(prefix)
        ]
        return max(matches, key=lambda r: len(r.path), default=None)

    def routes(self) -> list[Route]:
        """Every route: exact paths, then prefixes, each sorted by path and method."""
        exact = sorted(self._exact.values(), key=lambda r: (r.path, r.method))
        prefixes = sorted(self._prefixes.values(), key=lambda r: (r.path, r.method))
        return exact + prefixes


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise DefinitionError(f"path '{path}' does not start with a /")
    if path == "/.files" or path.startswith("/.files/"):
        raise DefinitionError(f"path '{path}' is reserved (/.files)")
    return path


__all__ = ["NO_ROUTE", "Headers", "HttpRequest", "HttpResponse", "HttpRouter", "Route"]
