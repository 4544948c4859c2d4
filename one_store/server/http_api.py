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

Concurrency: handlers run on Starlette's worker threads over one shared
:class:`Store`. Its storage lock serialises transactions on the single SQLite
connection, so mutations never interleave. Measured against one Store (connection)
per worker thread, the shared store was as fast for queries and faster for
mutations under 8 concurrent clients (664 vs 404 mutations/s, 854 vs 785 queries/s
on 2 busy cores): the GIL bounds the Python work either way, and separate
connections only add SQLite lock waits between writers.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, Literal, NoReturn, TypeAlias, TypeVar

import anyio.to_thread
from returns.result import Failure, Result, Success
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..model.errors import (
    FunctionNotFound,
    Problem,
    Rejected,
)
from ..model.values import Value, b64, from_convex_json, to_convex_json
from ..runtime.functions import FunctionSpec, normalize_path
from ..runtime.router import NO_ROUTE, HttpRequest, HttpResponse
from ..store import Store
from . import files, logs
from .auth import ADMIN_KEY_ENV, Caller, Gate
from .cors import cors_headers, preflight
from .http_actions import run_http_action
from .sync import WEBSOCKETS, SyncHub
from .sync import routes as sync_routes
from .sync_subscriptions import run_call

T = TypeVar("T")
MAX_BODY: Final = 20 << 20  # Convex's HTTP_ACTION_BODY_LIMIT; above its 16 MiB args cap
Format: TypeAlias = Literal["json", "convex_encoded_json", "export_json"]
FORMATS: Final[dict[str, Format]] = {
    "json": "json",
    "convex_clean_json": "json",
    "convex_encoded_json": "convex_encoded_json",
    "convex_json": "convex_encoded_json",
    "export_json": "export_json",
}


class RequestError(Exception):
    """A malformed request: answered with ``status`` and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        """The 4xx answer."""
        return JSONResponse(
            {"code": self.code, "message": self.message}, status_code=self.status
        )


# --------------------------------------------------------------------------- values


def to_clean_json(value: Value) -> Any:
    """Convex's lossy ``json`` format: int64 as a decimal string, bytes as base64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return b64(value)
    if isinstance(value, list):
        return [to_clean_json(v) for v in value]
    return {k: to_clean_json(v) for k, v in value.items()}


def encode(value: Value, fmt: Format) -> Any:
    """Encode a value for a reply in ``fmt``."""
    if fmt == "json":
        return to_clean_json(value)
    if fmt == "convex_encoded_json":
        return to_convex_json(value)
    from ..snapshot import to_export_json

    return to_export_json(value)


def _dumps(obj: object) -> bytes:
    # Python writes a float 5.0 as "5.0", as serde_json does: the Python client needs it.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ConvexJSONResponse(JSONResponse):
    """A JSON response rendered compactly (floats keep their ``.0``)."""

    def render(self, content: Any) -> bytes:
        """Render ``content`` as compact UTF-8 JSON."""
        return _dumps(content)


# --------------------------------------------------------------------------- requests


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking store work on a worker thread (Starlette's ``run_in_threadpool``).

    Unlike Starlette's, the wait is abandoned when the server is stopped at once
    (Ctrl-C): a long handler then cannot keep the event loop from closing; it
    ends with the process.
    """
    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> RequestError:
    return RequestError(
        413, "PayloadTooLarge", f"Request body is larger than {limit} bytes"
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Parse a request body as strict JSON (no NaN/Infinity literals), or raise 400."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as e:
        raise RequestError(
            400, "BadJsonBody", f"Failed to deserialize the JSON body: {e}"
        ) from None


def parse_format(raw: object) -> Format:
    """The reply format of a request (missing means clean ``json``, as Convex)."""
    if raw is None:
        return "json"
    if isinstance(raw, str) and raw in FORMATS:
        return FORMATS[raw]
    raise RequestError(
        400, "BadFormat", f"format param must be one of [`json`]. Got {raw}"
    )


def parse_args(raw: object) -> Value:
    """Decode ``args`` (an object, or the npm client's one-element array)."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise RequestError(
                400,
                "BadJsonBody",
                f"args must be an object or an array of one object, got {len(raw)} items",
            )
        raw = raw[0]
    try:
        return from_convex_json(raw)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, TypeError, OverflowError) as e:
        raise RequestError(400, "BadJsonBody", f"Invalid args: {e}") from None


def _too_deep() -> RequestError:
    # Convex values nest at most 64 levels; Python's parser gives up long after that.
    return RequestError(400, "BadJsonBody", "The JSON body is nested too deeply")


def parse_call(body: bytes, *, need_path: bool) -> tuple[str, Value, Format]:
    """``(path, args, format)`` of a ``/api/<kind>`` body (path is "" for /api/run)."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise RequestError(400, "BadJsonBody", "The JSON body must be an object")
    path = data.get("path")
    if need_path and not isinstance(path, str):
        raise RequestError(400, "BadJsonBody", "missing field `path` (a string)")
    if "args" not in data:
        raise RequestError(400, "BadJsonBody", "missing field `args`")
    fmt = parse_format(data.get("format"))
    return (path if isinstance(path, str) else ""), parse_args(data["args"]), fmt


# --------------------------------------------------------------------------- replies


def envelope(
    result: Result[Any, Problem], fmt: Format, log_lines: list[str] | None = None
) -> dict[str, Any]:
    """The 200 body for a function that ran: success or error envelope.

    ``logLines`` is left out when empty, as Convex does.
    """
    out: dict[str, Any]
    match result:
        case Success(value):
            out = {"status": "success", "value": encode(value, fmt)}
        case Failure(problem):
            out = {"status": "error", "errorMessage": str(problem)}
            if isinstance(problem, Rejected):
                out["errorData"] = encode(problem.data, fmt)
    if log_lines:
        out["logLines"] = log_lines
    return out


def _not_found(path: str) -> RequestError:
    return RequestError(404, "FunctionNotFound", FunctionNotFound(path).message)


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

    def lookup(self, path: str, admin: bool = False) -> FunctionSpec[Any]:
        """The function at ``path``; internal ones are missing except to an admin."""
        if normalize_path(path) is None:
            raise RequestError(
                400,
                "BadConvexFunctionIdentifier",
                f"{path} is not a valid path to a Convex function.",
            )
        found = self.store.function(path)
        if isinstance(found, Failure) or (
            found.unwrap().visibility != "public" and not admin
        ):
            raise _not_found(path)
        return found.unwrap()

    def run(
        self, spec: FunctionSpec[Any], args: Value, store: Store | None = None
    ) -> tuple[Result[Any, Problem], list[str]]:
        """Run a function by its kind (on a worker thread); its result and log lines.

        Library misuse inside the handler (``ctx.db`` in an action, a write in a
        query) raises ``OneStoreError`` in process; over HTTP it is the calling
        function's error, so it comes back as an error envelope like any other.
        """
        return run_call(store or self.store, spec, args)

    async def call(self, request: Request, kind: str) -> Response:
        """``POST /api/query|mutation|action``."""
        caller = self.caller(request)
        path, args, fmt = parse_call(
            await read_body(request, self.max_body), need_path=True
        )
        spec = self.lookup(path, caller.admin)
        if spec.kind != kind:
            message = (
                f"Trying to execute {path} as {kind.capitalize()}, "
                f"but it is defined as {spec.kind.capitalize()}."
            )
            return ConvexJSONResponse({"status": "error", "errorMessage": message})
        result, lines = await run_in_thread(self.run, spec, args, caller.store)
        return ConvexJSONResponse(envelope(result, fmt, lines))

    async def run_by_url(self, request: Request) -> Response:
        """``POST /api/run/<module path>/<fn>``: any public function, by URL."""
        parts = request.path_params["identifier"].strip("/").split("/")
        if len(parts) < 2 or not all(parts):
            raise RequestError(
                400,
                "MissingIdentifier",
                "Expected /api/run/<module path>/<function name>",
            )
        path = "/".join(parts[:-1]) + ":" + parts[-1]
        caller = self.caller(request)
        _, args, fmt = parse_call(
            await read_body(request, self.max_body), need_path=False
        )
        spec = self.lookup(path, caller.admin)
        result, lines = await run_in_thread(self.run, spec, args, caller.store)
        return ConvexJSONResponse(envelope(result, fmt, lines))

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

    def kind_endpoint(kind: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            if request.method != "POST":
                _method_not_allowed()
            return await api.call(request, kind)

        return endpoint

    async def run_endpoint(request: Request) -> Response:
        if request.method != "POST":
            _method_not_allowed()
        return await api.run_by_url(request)

    hub = sync or SyncHub(store)
    hub.gate = api.gate  # Authenticate verifies tokens as the HTTP API does
    routes: list[BaseRoute] = sync_routes(hub)
    routes += [
        Route(f"/api/{kind}", _guarded(kind_endpoint(kind), True), methods=every)
        for kind in ("query", "mutation", "action")
    ]
    routes += [
        Route(
            "/api/run/{identifier:path}", _guarded(run_endpoint, True), methods=every
        ),
        # File storage (server/files.py): upload URLs and file URLs.
        Route("/api/storage/upload", _guarded(api.upload, True), methods=every),
        Route("/api/storage/{key}", _guarded(api.serve_file, True), methods=every),
        Route("/api/{rest:path}", _guarded(_unknown_api, True), methods=every),
        Route("/{rest:path}", _guarded(api.http_action, False), methods=every),
    ]
    app = Starlette(routes=routes, exception_handlers={Exception: _internal_error})
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
    config = uvicorn.Config(
        asgi, log_level=log_level, access_log=False, lifespan="off", **WEBSOCKETS
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
