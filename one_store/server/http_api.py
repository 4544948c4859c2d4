"""Convex's HTTP API over a Store: ``one-store serve`` (a Starlette app on uvicorn).

Routes (Convex's HTTP API: docs.convex.dev/http-api, and docs/http-api.md):

- ``POST /api/query``, ``/api/mutation``, ``/api/action`` with ``{"path", "args",
  "format"}``; ``args`` is an object or a one-element array (the npm client's
  form), always decoded as ``convex_encoded_json``; ``format`` chooses the reply's
  encoding (``json``, the default, or ``convex_encoded_json``, or ``export_json``);
- ``POST /api/run/<dir>/<file>/<fn>`` with ``{"args", "format"}`` runs any public
  function (``format`` defaults to ``json``);
- ``OPTIONS /api/*``: CORS preflight answered as Convex's backend does;
- every other path: the app's ``http.py`` router (exact path, then longest prefix;
  404 ``No matching routes found``).

A function that ran answers HTTP 200 ``{"status": "success", "value",
"logLines"?}`` or ``{"status": "error", "errorMessage", "errorData"?, "logLines"?}``
(``errorData`` is a ``ConvexError``'s data; ``logLines`` what the handler printed
or logged, see :mod:`one_store.server.logs`). A malformed request answers 4xx ``{"code", "message"}``.
An unknown path, and an ``internal_*`` function's path, answer 404
``FunctionNotFound`` alike, so a client cannot tell that an internal function
exists; only an admin (``Authorization: Convex <key>``) may call internal ones.
``Authorization: Bearer <jwt>`` runs the call as that user, and a refused token
is a 401 (:mod:`one_store.server.auth`). No answer ever carries a traceback, and bad input never writes.

Concurrency: the function calls are answered by
:class:`~one_store.server.call_endpoint.CallEndpoint` before the router, queries
and mutations on the event loop's thread, actions on worker threads (see there);
HTTP actions, file uploads and downloads run on worker threads too. All of them
share one :class:`Store`: its storage lock serialises transactions on the single
SQLite connection, so mutations never interleave. Measured against one Store
(connection) per worker thread, the shared store was as fast for queries and
faster for mutations under 8 concurrent clients (664 vs 404 mutations/s, 854 vs
785 queries/s on 2 busy cores): the GIL bounds the Python work either way, and
separate connections only add SQLite lock waits between writers.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NoReturn, TypeAlias

from returns.result import Failure
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..runtime.functions import FunctionSpec
from ..runtime.router import NO_ROUTE, HttpRequest, HttpResponse
from ..store import Store
from . import files, logs
from .auth import ADMIN_KEY_ENV, Caller, Gate
from .call_endpoint import CallEndpoint, run_in_thread
from .cors import cors_headers, preflight
from .http_actions import run_http_action
from .sync import WEBSOCKETS, SyncHub
from .sync import routes as sync_routes
from .wire import (
    FORMATS,
    MAX_BODY,
    ConvexJSONResponse,
    Format,
    RequestError,
    encode,
    envelope,
    parse_args,
    parse_call,
    parse_format,
    parse_json,
    to_clean_json,
    too_large,
)

__all__ = [  # the wire's names stay importable from here, where they were
    "FORMATS",
    "MAX_BODY",
    "Api",
    "ConvexJSONResponse",
    "Format",
    "RequestError",
    "bind",
    "create_app",
    "encode",
    "envelope",
    "parse_args",
    "parse_call",
    "parse_format",
    "parse_json",
    "read_body",
    "run_in_thread",
    "serve",
    "to_clean_json",
    "url_of",
]


# --------------------------------------------------------------------------- requests


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class Api:
    """The request handlers, bound to one store."""

    def __init__(
        self, store: Store, max_body: int = MAX_BODY, admin_key: str | None = None
    ) -> None:
        self.store = store
        self.max_body = max_body
        self.gate = Gate(store, admin_key)

    def caller(self, request: Request) -> Caller:
        """Who the request runs as (its ``Authorization``); a refusal is a 4xx."""
        found = self.gate.from_header(
            request.headers.get("authorization"), request.query_params.get("adminKey")
        )
        if isinstance(found, Failure):
            refused = found.failure()
            raise RequestError(refused.status, refused.convex_code, refused.message)
        return found.unwrap()

    async def upload(self, request: Request) -> Response:
        """``POST /api/storage/upload``: see :mod:`one_store.server.files`."""
        return await files.upload(self.store, request)

    async def serve_file(self, request: Request) -> Response:
        """``GET /api/storage/<uuid>``: see :mod:`one_store.server.files`."""
        return await files.serve_file(self.store, request)

    async def http_action(self, request: Request) -> Response:
        """Any path outside ``/api/``: the app's ``http.py`` router."""
        router = self.store.app.http if self.store.app else None
        route = router.lookup(request.url.path, request.method) if router else None
        if route is None:
            return Response(NO_ROUTE, status_code=404, media_type="text/plain")
        has_body = request.method not in ("GET", "HEAD", "OPTIONS")
        body = await read_body(request, self.max_body) if has_body else b""
        incoming = HttpRequest(
            "GET" if request.method == "HEAD" else request.method,
            _public_url(request),
            list(request.headers.items()),
            body,
        )
        # A refused token is answered 401 before the action runs (never anonymous).
        caller = self.caller(request)
        answer = await run_in_thread(
            run_http_action, caller.store, route.handler, incoming, to_clean_json
        )
        if request.method == "HEAD":
            return Response(b"", answer.status, headers=answer.headers)
        return Response(answer.content, answer.status, headers=answer.headers)

    def run_http(self, spec: FunctionSpec[Any], request: HttpRequest) -> HttpResponse:
        """Run an HTTP action anonymously (:func:`.http_actions.run_http_action`)."""
        return run_http_action(self.store, spec, request, to_clean_json)


def _public_url(request: Request) -> str:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    host = request.headers.get("host", request.url.netloc)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{proto}://{host}{request.url.path}{query}"


# --------------------------------------------------------------------------- app

Endpoint: TypeAlias = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint, cors: bool) -> Endpoint:
    """Turn RequestError into its 4xx answer and add CORS headers on ``/api``."""

    async def handle(request: Request) -> Response:
        if cors and request.method == "OPTIONS":
            return preflight(request)
        try:
            response = await endpoint(request)
        except RequestError as e:
            response = e.response()
        if cors:
            response.headers.update(cors_headers(request))
        return response

    return handle


def _method_not_allowed() -> NoReturn:
    raise RequestError(405, "MethodNotAllowed", "Use POST for the function API")


async def _unknown_api(request: Request) -> Response:
    raise RequestError(404, "NotFound", f"Unknown API route {request.url.path}")


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Last resort: a bug must not leak a traceback to the client.
    return JSONResponse(
        {
            "code": "InternalServerError",
            "message": "Your request couldn't be completed.",
        },
        status_code=500,
    )


def create_app(
    store: Store,
    *,
    max_body: int = MAX_BODY,
    admin_key: str | None = None,
    sync: SyncHub | None = None,
) -> Starlette:
    """The ASGI app serving ``store``'s app over Convex's HTTP API.

    ``admin_key`` is what ``Authorization: Convex <key>`` must carry (None: no
    admin). ``app.state.gate`` is the :class:`~one_store.server.auth.Gate` that
    checks credentials (the sync protocol's ``Authenticate`` uses it too).
    ``/api/sync`` speaks Convex's sync protocol (live queries) through ``sync``.

    Example:
        >>> from starlette.testclient import TestClient  # doctest: +SKIP
        >>> client = TestClient(create_app(Store.open("app.db", app="schema/chat")))  # doctest: +SKIP
        >>> client.post("/api/query", json={"path": "threads:list", "args": {}}).json()  # doctest: +SKIP
    """
    api = Api(store, max_body, admin_key)
    logs.install()  # print/logging in handlers -> the replies' logLines
    every = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"]

    async def not_post(request: Request) -> Response:
        # POST is answered by the CallEndpoint middleware, before the router.
        _method_not_allowed()

    hub = sync or SyncHub(store)
    hub.gate = api.gate  # Authenticate verifies tokens as the HTTP API does
    routes: list[BaseRoute] = sync_routes(hub)
    routes += [
        Route(f"/api/{kind}", _guarded(not_post, True), methods=every)
        for kind in ("query", "mutation", "action")
    ]
    routes += [
        Route("/api/run/{identifier:path}", _guarded(not_post, True), methods=every),
        # File storage (server/files.py): upload URLs and file URLs.
        Route("/api/storage/upload", _guarded(api.upload, True), methods=every),
        Route("/api/storage/{key}", _guarded(api.serve_file, True), methods=every),
        Route("/api/{rest:path}", _guarded(_unknown_api, True), methods=every),
        Route("/{rest:path}", _guarded(api.http_action, False), methods=every),
    ]
    # The function calls take the lean path (server/call_endpoint.py): inside
    # Starlette's last-resort 500 handler, before its router.
    calls = Middleware(CallEndpoint, store=store, gate=api.gate, max_body=max_body)
    app = Starlette(
        routes=routes,
        middleware=[calls],
        exception_handlers={Exception: _internal_error},
    )
    app.state.gate = api.gate
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, so that asyncio sets TCP_NODELAY on accepted connections: without
    # it a keep-alive client waits ~40 ms (Nagle + delayed ACK) on every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(
    store: Store,
    *,
    host: str = "127.0.0.1",
    port: int = 3210,
    on_ready: Callable[[str], None] = print,
    log_level: str = "warning",
    access_log: bool = False,
    admin_key: str | None = None,  # None: ONE_STORE_ADMIN_KEY, if set
) -> None:
    """Serve ``store`` until interrupted; calls ``on_ready(url)`` once listening.

    SIGTERM stops gracefully (requests in progress finish). Ctrl-C (SIGINT) stops
    at once: connections are closed, requests in progress abandoned, and the
    KeyboardInterrupt reaches the caller. ``access_log``: one line per request
    (client, method, path, status, duration) to the ``one_store.access`` logger.

    Raises:
        OSError: the address cannot be bound (port in use, bad host).
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # uvicorn's first Ctrl-C waits for open connections and requests in
            # progress (a second one forces): a user pressing Ctrl-C means now.
            if sig == signal.SIGINT:
                self.force_exit = True
                _abort(self.server_state.connections)
            super().handle_exit(sig, frame)

    sock = bind(host, port)
    files.configure(store, url_of(sock))  # file URLs point here; the upload cap
    served = create_app(store, admin_key=admin_key or os.environ.get(ADMIN_KEY_ENV))
    asgi: Any = logs.AccessLog(served) if access_log else served
    from .http_protocol import HttpProtocol  # imports uvicorn's httptools protocol

    config = uvicorn.Config(
        asgi,
        http=HttpProtocol,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        **WEBSOCKETS,
    )
    server = Server(config)
    on_ready(url_of(sock))
    # uvicorn stops gracefully on SIGTERM and then re-raises the signal with the
    # previous handler; make that handler a normal exit, so that the caller's
    # ``with`` blocks still close the store (and checkpoint its WAL).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    server.run(sockets=[sock])


def _abort(connections: Iterable[Any]) -> None:
    """Close connections now, without waiting for them.

    A keep-alive client or a request in progress would otherwise hold up the
    server's close (Python 3.12's ``Server.wait_closed`` waits for every one).
    """
    for connection in list(connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
