"""The lean path of ``POST /api/query|mutation|action`` and ``POST /api/run/...``.

These four routes are nearly every request a Convex client sends, so they are
answered straight from the ASGI messages, before Starlette's router: no
``Request`` object, no route matching over every route, no response class; the
headers the call needs (``authorization``, ``origin``, ``content-length``) are
read in one pass. Everything else (other methods, the CORS preflight, file
storage, the sync socket, HTTP actions) goes on to the Starlette app, and an
unexpected exception still reaches Starlette's last-resort 500 handler, which
sits outside this middleware.

What a request runs on: a query or a mutation runs on the event loop's thread
itself, an action on a worker thread (:func:`run_in_thread`). A query or a
mutation of a few documents is short (~0.1-0.2 ms of CPU), and the hop to a
worker thread and back cost more than that: measured on 2 cores, the server's
CPU per ``notes:add`` mutation was ~590 µs with the hop and ~425 µs without it,
paired in one run (benchmarks/RESULTS.md, "HTTP API"). The Python work of two
calls never ran at once on worker threads either (the GIL), and mutations wait
for the store's write lock in turn. An action waits on the network or on
``time.sleep`` and must not hold up other requests, so it keeps its thread. The
answers are the same either way: the same Result, log lines (captured per
thread, and one call at a time on the loop's thread), CORS headers and errors as
the Starlette routes gave. The price: a long query or mutation holds up the
other requests while it runs (docs/http-api.md, "Concurrency and limits").
That holds for a local engine only (``Features.local``, SQLite): on PostgreSQL
every call waits on the network, so every call takes a worker thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

import anyio.to_thread
from returns.result import Failure, Result

from ..model.errors import Problem
from ..model.values import Value
from ..runtime.functions import FunctionSpec, normalize_path
from ..store import Store
from .auth import Caller, Gate
from .sync_subscriptions import run_call
from .wire import (
    MAX_BODY,
    RequestError,
    dumps_reply,
    envelope,
    not_found,
    parse_call,
    too_large,
)

T = TypeVar("T")
Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KINDS: Final = {
    "/api/query": "query",
    "/api/mutation": "mutation",
    "/api/action": "action",
}
RUN_PREFIX: Final = "/api/run/"
JSON_TYPE: Final = (b"content-type", b"application/json")
VARY: Final = b"origin, access-control-request-method, access-control-request-headers"


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking store work on a worker thread (Starlette's ``run_in_threadpool``).

    Unlike Starlette's, the wait is abandoned when the server is stopped at once
    (Ctrl-C): a long handler then cannot keep the event loop from closing; it
    ends with the process.
    """
    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


class CallEndpoint:
    """ASGI middleware that answers Convex's function calls itself.

    Args:
        app: the app every other request goes to (the Starlette router).
        store: the served store.
        gate: checks the ``Authorization`` header (and ``?adminKey=``).
        max_body: the largest request body accepted (413 above it).
    """

    def __init__(
        self, app: ASGIApp, store: Store, gate: Gate, max_body: int = MAX_BODY
    ) -> None:
        self.app = app
        self.store = store
        self.gate = gate
        self.max_body = max_body
        # The functions found so far by path: an app's functions are fixed once
        # the store is open, and a client calls the same few paths again and again.
        self._found: dict[str, FunctionSpec[Any]] = {}
        self._anonymous = Caller(store)  # what the gate makes of no credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a function call, or hand the request on to the app."""
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            kind = KINDS.get(path)
            if kind is not None or path.startswith(RUN_PREFIX):
                await self.answer(scope, receive, send, kind)
                return
        await self.app(scope, receive, send)

    async def answer(
        self, scope: Scope, receive: Receive, send: Send, kind: str | None
    ) -> None:
        """Run the call of one request (``kind`` None: ``/api/run/<path>``); reply."""
        authorization = origin = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = authorization or value
            elif name == b"origin":
                origin = origin or value
            elif name == b"content-length":
                length = length or value
        try:
            body = await self.call(scope, receive, kind, authorization, length)
            status = 200
        except RequestError as e:
            body, status = e.content(), e.status
        if body is None:  # the client went away before its body arrived
            return
        headers = [(b"content-length", str(len(body)).encode()), JSON_TYPE]
        if origin is not None:  # cors.cors_headers, as bytes
            headers += [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", VARY),
            ]
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    async def call(
        self,
        scope: Scope,
        receive: Receive,
        kind: str | None,
        authorization: bytes | None,
        length: bytes | None,
    ) -> bytes | None:
        """The 200 body of a call; a malformed request raises :class:`RequestError`."""
        # Convex's order (local_backend's public_api.rs): the credentials, the
        # body, then /api/run's URL (public_function_post_with_path).
        caller = self.caller(scope, authorization)
        raw = await self.read_body(receive, length)
        if raw is None:
            return None
        path, args, fmt = parse_call(raw, need_path=kind is not None)
        if kind is None:
            path = _run_path(scope["path"])
        spec = self._found.get(path)
        if spec is None:
            spec = self._found[path] = lookup(self.store, path, admin=True)
        if spec.visibility != "public" and not caller.admin:
            raise not_found(path)
        if kind is not None and spec.kind != kind:
            message = (
                f"Trying to execute {path} as {kind.capitalize()}, "
                f"but it is defined as {spec.kind.capitalize()}."
            )
            return dumps_reply({"status": "error", "errorMessage": message})
        result, lines = await run(spec, args, caller.store)
        return dumps_reply(envelope(result, fmt, lines))

    def caller(self, scope: Scope, authorization: bytes | None) -> Caller:
        """Who the request runs as; a refusal is a 4xx (as ``Api.caller``)."""
        if authorization is None and not scope["query_string"]:
            return self._anonymous  # most calls: no credentials at all
        header = None if authorization is None else authorization.decode("latin-1")
        admin_key = None
        if header is None:
            query = scope["query_string"].decode("latin-1")
            admin_key = dict(parse_qsl(query, keep_blank_values=True)).get("adminKey")
        found = self.gate.from_header(header, admin_key)
        if isinstance(found, Failure):
            refused = found.failure()
            raise RequestError(refused.status, refused.convex_code, refused.message)
        return found.unwrap()

    async def read_body(self, receive: Receive, length: bytes | None) -> bytes | None:
        """The body, refusing more than ``max_body`` bytes (413); None if the client left."""
        limit = self.max_body
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def run(
    spec: FunctionSpec[Any], args: Value, store: Store
) -> tuple[Result[Any, Problem], list[str]]:
    """Run a call: a query or mutation right here, an action on a worker thread.

    On an engine that is not local (PostgreSQL) every call waits on the
    network, so every call runs on a worker thread.
    """
    if spec.kind == "action" or not store.storage.features.local:
        return await run_in_thread(run_call, store, spec, args)
    return run_call(store, spec, args)


def lookup(store: Store, path: str, admin: bool = False) -> FunctionSpec[Any]:
    """The function at ``path``; internal ones are missing except to an admin."""
    if normalize_path(path) is None:
        raise RequestError(
            400,
            "BadConvexFunctionIdentifier",
            f"{path} is not a valid path to a Convex function.",
        )
    found = store.function(path)
    if isinstance(found, Failure) or (
        found.unwrap().visibility != "public" and not admin
    ):
        raise not_found(path)
    return found.unwrap()


def _run_path(url_path: str) -> str:
    """The function path of ``/api/run/<module path>/<fn>``."""
    parts = url_path[len(RUN_PREFIX) :].strip("/").split("/")
    if len(parts) < 2 or not all(parts):
        raise RequestError(
            400, "MissingIdentifier", "Expected /api/run/<module path>/<function name>"
        )
    return "/".join(parts[:-1]) + ":" + parts[-1]
