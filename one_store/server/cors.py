"""CORS on ``/api/*``, answered as Convex's backend answers it.

A request with an ``Origin`` gets that origin back, with credentials allowed; a
preflight (``OPTIONS``) also gets the methods Convex lists, a day's ``max-age``
and whatever headers it asked for (``Authorization`` included), so a browser
page on another origin can call ``one-store serve`` with a token.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

CORS_METHODS: Final = "GET,POST,OPTIONS,PATCH,DELETE,PUT"


def cors_headers(request: Request) -> dict[str, str]:
    """The CORS headers of an answer to ``request`` (none without an ``Origin``)."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "vary": "origin, access-control-request-method, access-control-request-headers",
    }


def preflight(request: Request) -> Response:
    """The answer to a CORS preflight (``OPTIONS``) on ``/api/*``."""
    headers = cors_headers(request)
    if headers:
        headers["access-control-allow-methods"] = CORS_METHODS
        headers["access-control-max-age"] = "86400"
        requested = request.headers.get("access-control-request-headers")
        if requested:
            headers["access-control-allow-headers"] = requested
    return Response(b"", status_code=200, headers=headers)
