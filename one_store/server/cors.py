"""CORS for Convex's HTTP API: answers a browser's preflight, mirrors its origin.

Convex's HTTP API accepts calls from any origin (a web app's frontend calls
``/api/query`` from its own origin), so the answer mirrors the request's
``Origin`` with credentials allowed; HTTP actions set their own headers.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

CORS_METHODS: Final = "GET,POST,OPTIONS,PATCH,DELETE,PUT"


def cors_headers(request: Request) -> dict[str, str]:
    """The headers that let ``request``'s origin read the answer (none without one)."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    return {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "vary": "origin, access-control-request-method, access-control-request-headers",
    }


def preflight(request: Request) -> Response:
    """The answer to a browser's ``OPTIONS`` preflight."""
    headers = cors_headers(request)
    if headers:
        headers["access-control-allow-methods"] = CORS_METHODS
        headers["access-control-max-age"] = "86400"
        requested = request.headers.get("access-control-request-headers")
        if requested:
            headers["access-control-allow-headers"] = requested
    return Response(b"", status_code=200, headers=headers)
