"""Run one of an app's HTTP actions (its ``http.py`` routes) for ``one-store serve``.

An HTTP action runs as an action (an ``ActionCtx``) of the caller's store view:
a request with a valid ``Authorization: Bearer`` token sees that user in
``ctx.auth``, as Convex's HTTP actions do, and so do the functions it calls. A
request whose token is refused never gets here: ``serve`` answers it 401.

A failed action is answered 500 ``{"code": "Server Error: <problem>"}`` (plus
``data`` for a ``ConvexError``), a handler that returns something other than an
``HttpResponse`` likewise.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from returns.result import Failure

from ..model.errors import (
    HandlerError,
    OneStoreError,
    Problem,
    Rejected,
)
from ..model.values import Value
from ..runtime.functions import FunctionSpec, action
from ..runtime.router import HttpRequest, HttpResponse
from ..store import Store


def run_http_action(
    store: Store,
    spec: FunctionSpec[Any],
    request: HttpRequest,
    encode: Callable[[Value], Any],
) -> HttpResponse:
    """Run the HTTP action ``spec`` on ``request`` in ``store``; its response.

    Args:
        store: the caller's view of the served store.
        spec: the route's ``@http_action``.
        request: the request as the handler sees it.
        encode: how a ``ConvexError``'s data is written in a 500 body.
    """
    box: list[object] = []
    handler = spec.handler
    wrapper: Callable[[Any, Any], Any]

    if inspect.iscoroutinefunction(handler):

        async def run_async(ctx: Any, _args: Any) -> None:
            box.append(await handler(ctx, request))

        wrapper = run_async
    else:

        def run_sync(ctx: Any, _args: Any) -> None:
            box.append(handler(ctx, request))

        wrapper = run_sync
    try:
        result = store.action(action(wrapper), {})
    except OneStoreError as e:  # misuse inside the handler: its own 500
        result = Failure(HandlerError(e, spec.display_name))
    if isinstance(result, Failure):
        return _server_error(result.failure(), encode)
    if not box or not isinstance(box[0], HttpResponse):
        got = type(box[0]).__name__ if box else "nothing"
        return HttpResponse(
            {
                "code": f"Server Error: an HTTP action must return HttpResponse, got {got}"
            },
            status=500,
        )
    return box[0]


def _server_error(problem: Problem, encode: Callable[[Value], Any]) -> HttpResponse:
    body: dict[str, Any] = {"code": f"Server Error: {problem}"}
    if isinstance(problem, Rejected):
        body["data"] = encode(problem.data)
    return HttpResponse(body, status=500)
