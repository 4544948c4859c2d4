"""Convex's WebSocket sync protocol on ``one-store serve``: live queries.

``GET /api/sync`` (the Python and Rust clients) and ``GET /api/{version}/sync``
(the npm clients: ``ConvexClient``, ``ConvexReactClient`` and ``useQuery``)
upgrade to a WebSocket that speaks the protocol of Convex's sync worker
(convex-backend ``crates/sync/src/worker.rs``; convex-js
``src/browser/sync/client.ts``). docs/sync.md explains it from the user's side.

One :class:`Session` per socket, four tasks:

- the **reader** parses each frame (:mod:`.sync_messages`) and acts on it:
  ``Connect`` (session ID, clock skew, the highest ts the client saw),
  ``ModifyQuerySet`` and ``Authenticate`` (checked by :mod:`.sync_state`, then a
  Transition is due), ``Mutation`` (queued), ``Action`` (run at once,
  concurrently), ``Event`` (ignored). A frame that breaks the protocol (not
  JSON, an unknown type, a wrong base version, over the size cap) gets a
  ``FatalError`` and the socket closes; other sockets never notice.
- the **transitions** task sends one Transition at a time, whenever something is
  due: it subscribes added queries (:mod:`.sync_subscriptions`, shared by every
  socket), releases removed ones, and sends each held query's result whose
  version moved since it was last sent. Its ``ts`` is taken before the results
  are read, so every result it carries includes every write whose ts is at or
  below it.
- the **mutations** task runs the socket's mutations one at a time, in arrival
  order, as Convex does; each answer carries the ts handed out after its commit
  (and after the subscriptions re-ran), then a Transition is due, so the
  client's promise resolves with the write already in its query results. A
  successful mutation is remembered by ``(sessionId, requestId)``: a client that
  reconnects and sends it again gets the same answer, and it does not run twice.
- the **writer** sends the socket's queue, and a ``Ping`` after 15 s of silence.
  The queue is bounded: a client so far behind that it fills is dropped (close
  code 1013, which every client answers by reconnecting), so a slow client never
  holds up the writers or the other sockets.

Tokens: :func:`authenticated` verifies ``Authenticate`` with the server's
:class:`~one_store.server.auth.Gate` (the same checks as ``Authorization:
Bearer`` and admin keys on the HTTP API); a refused token is an ``AuthError``,
then close, as Convex does.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import anyio.to_thread
import attrs
from returns.result import Failure, Result, Success
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..model.errors import Problem, Rejected
from ..model.values import to_convex_json
from ..store import Store
from .auth import Gate
from .sync_messages import (
    Action,
    Authenticate,
    AuthError,
    ClientMessage,
    Connect,
    FatalError,
    FunctionResponse,
    ModifyQuerySet,
    Mutation,
    Ping,
    ProtocolError,
    QueryFailed,
    QueryRemoved,
    QueryUpdated,
    Remove,
    ServerMessage,
    StateModification,
    Transition,
    parse,
    render,
)
from .sync_state import Pending, SocketState, Timestamps
from .sync_subscriptions import (
    Subscription,
    Subscriptions,
    decode_args,
    resolve,
    run_call,
)

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

LOG: Final = logging.getLogger("one_store")
MAX_FRAME: Final = 20 << 20  # as the HTTP API's body cap: above Convex's 16 MiB args
MAX_QUEUE: Final = 256  # messages waiting for one socket before it is dropped
PING_AFTER: Final = (
    15.0  # seconds of silence before a Ping (Convex's HEARTBEAT_INTERVAL)
)
REMEMBERED: Final = 10_000  # answered mutations kept for re-sends after a reconnect
# uvicorn's WebSocket settings for `serve`: the `websockets` package's sans-I/O
# implementation; a frame over MAX_FRAME gets the sync endpoint's FatalError.
WEBSOCKETS: Final[dict[str, Any]] = {
    "ws": "websockets-sansio",
    "ws_max_size": MAX_FRAME + 1024,
}
NO_PROVIDER: Final = (
    "No auth provider found matching the given token (no providers configured). "
    "Check auth_config.py."
)


def authenticated(
    store: Store, message: Authenticate, gate: Gate | None = None
) -> Result[tuple[Store, str], str]:
    """The store a socket's calls run on after ``message``, and its identity key.

    ``gate`` (the server's :class:`~one_store.server.auth.Gate`) verifies a ``User``
    token as ``Authorization: Bearer`` is verified, and an ``Admin`` key; the
    socket then runs as that caller, and sockets presenting the same token share
    their queries. ``None`` logs out. A refusal is the ``AuthError`` text; without
    a gate every token is refused with Convex's message for a token that matches
    no provider.
    """
    if message.token_type == "None":
        return Success((store, ""))
    if gate is None:
        return Failure(NO_PROVIDER)
    request = {"tokenType": message.token_type, "value": message.value}
    match gate.authenticate(request):
        case Success(caller):
            return Success((caller.store, f"{message.token_type}:{message.value}"))
        case Failure(problem):
            return Failure(problem.message)
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.define
class _Held:
    """A query the client holds: its subscription and the version last sent."""

    sub: Subscription
    token: int
    sent: int = 0


@attrs.frozen
class _Close:
    """The writer's last item: close the socket with ``code``."""

    code: int
    reason: str = ""


class SyncHub:
    """What every socket of one served store shares.

    Args:
        store: the served store.
        max_frame: the largest frame accepted, in bytes (a larger one is refused
            with a FatalError and close code 1009).
        max_queue: how many messages may wait for one socket before it is dropped.
        ping_after: seconds of silence before a Ping.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_frame: int = MAX_FRAME,
        max_queue: int = MAX_QUEUE,
        ping_after: float = PING_AFTER,
    ) -> None:
        self.store = store
        self.gate: Gate | None = None  # set by create_app: verifies tokens
        self.subscriptions = Subscriptions(store, self._wake)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clock = Timestamps()
        self.max_frame = max_frame
        self.max_queue = max_queue
        self.ping_after = ping_after
        self.answered: collections.OrderedDict[tuple[str, int], FunctionResponse] = (
            collections.OrderedDict()
        )
        self.sockets = 0

    def remember(self, key: tuple[str, int], response: FunctionResponse) -> None:
        """Keep a successful mutation's answer for a client that sends it again."""
        self.answered[key] = response
        while len(self.answered) > REMEMBERED:
            self.answered.popitem(last=False)

    def _wake(self, sub: Subscription) -> None:
        # Called in the writing thread: one hop to the loop for all of sub's sockets.
        if self.loop is None:
            return
        try:
            self.loop.call_soon_threadsafe(_wake_holders, sub)
        except RuntimeError:  # the loop is gone: the server is stopping
            LOG.debug("sync update after the event loop closed")

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ASGI endpoint of ``/api/sync`` and ``/api/{version}/sync``."""
        self.loop = asyncio.get_running_loop()
        self.sockets += 1
        try:
            await Session(self, websocket).run()
        finally:
            self.sockets -= 1


def _wake_holders(sub: Subscription) -> None:
    for listener in list(sub.listeners.values()):
        listener()


def routes(hub: SyncHub) -> list[BaseRoute]:
    """The sync routes, to mount before the HTTP API's catch-all routes."""
    from starlette.routing import WebSocketRoute

    return [
        WebSocketRoute("/api/sync", hub.endpoint),
        WebSocketRoute("/api/{version}/sync", hub.endpoint),
    ]


def _response(
    kind: Any, request_id: int, result: Result[Any, Problem], lines: list[str]
) -> FunctionResponse:
    if isinstance(result, Success):
        return FunctionResponse(
            kind, request_id, True, to_convex_json(result.unwrap()), tuple(lines)
        )
    problem = result.failure()
    if isinstance(problem, Rejected):
        return FunctionResponse(
            kind,
            request_id,
            False,
            str(problem),
            tuple(lines),
            error_data=to_convex_json(problem.data),
            has_error_data=True,
        )
    return FunctionResponse(kind, request_id, False, str(problem), tuple(lines))


class Session:
    """One socket: its protocol state, its held queries and its four tasks."""

    def __init__(self, hub: SyncHub, websocket: WebSocket) -> None:
        self.hub = hub
        self.ws = websocket
        self.state = SocketState()
        self.store = hub.store
        self.identity_key = ""
        self.session_id = ""
        self.skew = 0
        self.held: dict[int, _Held] = {}
        self.outbox: asyncio.Queue[str | _Close] = asyncio.Queue(hub.max_queue)
        self.due = asyncio.Event()
        self.answer_pending = False  # a response went out: the next Transition is due
        self.mutations: asyncio.Queue[Mutation] = asyncio.Queue()
        # Cleared while one of this socket's mutations runs: its Transition waits
        # for its MutationResponse, as Convex orders them (no optimistic flicker).
        self.no_mutation = asyncio.Event()
        self.no_mutation.set()
        self.actions: set[asyncio.Task[None]] = set()
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[_Close] = self.loop.create_future()

    # ------------------------------------------------------------------ life

    async def run(self) -> None:
        """Serve the socket until it closes (the client's doing, or ours)."""
        await self.ws.accept()
        tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._write()),
            asyncio.create_task(self._transitions()),
            asyncio.create_task(self._mutations()),
        ]
        try:
            waiting: list[asyncio.Future[Any]] = [*tasks, self.closed]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception():
                    LOG.error("sync socket failed", exc_info=task.exception())
                    self._finish(_Close(1011, "InternalServerError"))
        finally:
            for task in [*tasks, *self.actions]:
                task.cancel()
            await asyncio.gather(*tasks, *self.actions, return_exceptions=True)
            await self._close_socket()
            await anyio.to_thread.run_sync(self._release_all)

    async def _close_socket(self) -> None:
        if not self.closed.done():
            return  # the client went away
        close = self.closed.result()
        try:
            # A client that stopped reading never takes the close frame either.
            await asyncio.wait_for(self.ws.close(close.code, close.reason), 1.0)
        except Exception:
            LOG.debug("sync socket closed before its close frame")

    def _release_all(self) -> None:
        for held in self.held.values():
            self.hub.subscriptions.release(held.sub, held.token)
        self.held.clear()

    def _finish(self, close: _Close) -> None:
        if not self.closed.done():
            self.closed.set_result(close)

    def send(self, message: ServerMessage) -> None:
        """Queue a message; a client whose queue is full is dropped."""
        try:
            self.outbox.put_nowait(render(message))
        except asyncio.QueueFull:
            LOG.warning(
                "sync client %s dropped: %d messages waiting",
                self.session_id or "(no session)",
                self.outbox.qsize(),
            )
            self._finish(_Close(1013, "ClientTooFarBehind"))

    async def _fail(self, message: ServerMessage, code: int = 1000) -> None:
        """Send ``message`` (FatalError or AuthError), then close; wait for the close."""
        self.send(message)
        try:
            self.outbox.put_nowait(_Close(code))
        except asyncio.QueueFull:
            self._finish(_Close(code))
        await asyncio.shield(self.closed)

    # ------------------------------------------------------------------ reader

    async def _read(self) -> None:
        while True:
            frame = await self.ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            text = frame.get("text")
            if text is None:
                await self._fail(FatalError("Binary frames are not supported"))
                return
            if len(text) > self.hub.max_frame // 4 and (
                len(text.encode("utf-8")) > self.hub.max_frame
            ):
                await self._fail(
                    FatalError(
                        f"MessageTooLarge: a message is limited to "
                        f"{self.hub.max_frame} bytes"
                    ),
                    1009,
                )
                return
            try:
                self._handle(parse(text))
            except ProtocolError as e:
                await self._fail(FatalError(str(e)))
                return
            except _Refused as refused:
                await self._fail(refused.message)
                return

    def _handle(self, message: ClientMessage) -> None:
        if isinstance(message, Connect):
            self._connect(message)
        elif isinstance(message, ModifyQuerySet):
            self.state.modify(message)
            self.due.set()
        elif isinstance(message, Authenticate):
            self._authenticate(message)
        elif isinstance(message, Mutation):
            self.mutations.put_nowait(message)
        elif isinstance(message, Action):
            task = asyncio.create_task(self._action(message))
            self.actions.add(task)
            task.add_done_callback(self.actions.discard)

    def _connect(self, message: Connect) -> None:
        self.session_id = message.session_id
        if message.client_ts:
            self.skew = round(message.client_ts - time.time() * 1000)
        if message.max_observed_timestamp is not None:
            self.hub.clock.observe(message.max_observed_timestamp)

    def _authenticate(self, message: Authenticate) -> None:
        self.state.authenticate(message)
        match authenticated(self.hub.store, message, self.hub.gate):
            case Success((store, key)):
                self.store, self.identity_key = store, key
                self.state.identity_changed()
                self.due.set()
            case Failure(error):
                raise _Refused(AuthError(error, message.base_version, True))

    # ------------------------------------------------------------------ writer

    async def _write(self) -> None:
        # One pending get() across pings: wait_for() could drop an item that
        # arrives as the timeout fires, and a lost Transition breaks the chain.
        getter: asyncio.Task[str | _Close] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.create_task(self.outbox.get())
                done, _ = await asyncio.wait({getter}, timeout=self.hub.ping_after)
                if done:
                    item, getter = getter.result(), None
                else:
                    item = render(Ping())
                if not await self._send(item):
                    return
        finally:
            if getter is not None:
                getter.cancel()

    async def _send(self, item: str | _Close) -> bool:
        """Send one item; False once the socket is done."""
        if isinstance(item, _Close):
            self._finish(item)
            return False
        try:
            await self.ws.send_text(item)
        except WebSocketDisconnect:
            return False  # the client went away; the reader sees it too
        return True

    # ------------------------------------------------------------------ transitions

    async def _transitions(self) -> None:
        while True:
            await self.due.wait()
            await self.no_mutation.wait()
            self.due.clear()
            await self._transition()

    async def _transition(self) -> None:
        pending = self.state.take()
        out: list[StateModification] = []
        if pending.identity != self.state.current.identity:
            await self._reopen_all()
        for mod in pending.modifications:
            if isinstance(mod, Remove):
                held = self.held.pop(mod.query_id, None)
                if held is not None:
                    self.hub.subscriptions.release(held.sub, held.token)
                out.append(QueryRemoved(mod.query_id))
            else:
                await self._open(mod.query_id, mod.udf_path, mod.args)
        # No await from here on: the ts is taken before the results are read,
        # and nothing else on this socket runs in between.
        ts = self.hub.clock.tick()
        for query_id, held in self.held.items():
            version, result, lines = held.sub.latest
            if version != held.sent:
                held.sent = version
                out.append(_modification(query_id, held.sub, version, result, lines))
        if not out and self._quiet(pending):
            return
        self.answer_pending = False
        start, end = self.state.advance(pending, ts)
        self.send(Transition(start, end, tuple(out), self.skew, time.time_ns()))

    def _quiet(self, pending: Pending) -> bool:
        """Nothing for the client: no new versions and no answer waiting for a ts."""
        current = self.state.current
        return (
            not self.answer_pending
            and pending.query_set == current.query_set
            and pending.identity == current.identity
        )

    def _replace(self, query_id: int, held: _Held) -> None:
        old = self.held.pop(query_id, None)
        if old is not None:
            self.hub.subscriptions.release(old.sub, old.token)
        self.held[query_id] = held

    async def _reopen_all(self) -> None:
        """The identity changed: every held query runs again as the new one."""
        for query_id, old in list(self.held.items()):
            await self._open(query_id, old.sub.key[0], json.loads(old.sub.key[1]))

    async def _open(self, query_id: int, path: str, raw_args: Any) -> None:
        """Hold ``path(raw_args)`` as ``query_id`` (its first run off the loop).

        The worker thread records it in ``held`` itself, so a socket that closes
        meanwhile still releases it (this task waits for the thread either way).
        """

        def open_and_hold() -> None:
            sub, token = self.hub.subscriptions.open(
                self.store, self.identity_key, path, raw_args, self.due.set
            )
            self._replace(query_id, _Held(sub, token))

        await anyio.to_thread.run_sync(open_and_hold)

    # ------------------------------------------------------------------ calls

    async def _mutations(self) -> None:
        while True:
            message = await self.mutations.get()
            self.no_mutation.clear()
            key = (self.session_id, message.request_id)
            answer = self.hub.answered.get(key) if self.session_id else None
            if answer is None:
                # Not abandoned when the socket closes: the answer is remembered
                # (in the thread) for the client's re-send after it reconnects.
                answer = await anyio.to_thread.run_sync(self._run_mutation, message)
            self.send(answer)
            self.answer_pending = True
            self.due.set()
            self.no_mutation.set()

    def _run_mutation(self, message: Mutation) -> FunctionResponse:
        response = self._call("MutationResponse", message)
        if response.success:
            # After the commit and after the subscriptions re-ran (in this thread).
            response = attrs.evolve(response, ts=self.hub.clock.tick())
            if self.session_id:
                self.hub.remember((self.session_id, message.request_id), response)
        return response

    async def _action(self, message: Action) -> None:
        answer = await anyio.to_thread.run_sync(
            self._call, "ActionResponse", message, abandon_on_cancel=True
        )
        self.send(answer)
        self.answer_pending = True
        self.due.set()

    def _call(self, kind: Any, message: Mutation | Action) -> FunctionResponse:
        what = "mutation" if isinstance(message, Mutation) else "action"
        found = resolve(self.store, message.udf_path, what)
        if isinstance(found, str):
            return FunctionResponse(kind, message.request_id, False, found)
        args = decode_args(message.args)
        if isinstance(args, str):
            return FunctionResponse(kind, message.request_id, False, args)
        result, lines = run_call(self.store, found, args)
        return _response(kind, message.request_id, result, lines)


class _Refused(Exception):  # noqa: N818 - internal signal: answer, then close
    def __init__(self, message: AuthError) -> None:
        super().__init__(message.error)
        self.message = message


def _modification(
    query_id: int,
    sub: Subscription,
    version: int,
    result: Result[Any, Problem] | None,
    lines: list[str],
) -> StateModification:
    if sub.error is not None:
        return QueryFailed(query_id, sub.error)
    assert result is not None
    if isinstance(result, Success):
        text = sub.value_text(version, result.unwrap())
        return QueryUpdated(query_id, text, tuple(lines))
    problem = result.failure()
    if isinstance(problem, Rejected):
        return QueryFailed(
            query_id,
            str(problem),
            tuple(lines),
            to_convex_json(problem.data),
            has_error_data=True,
        )
    return QueryFailed(query_id, str(problem), tuple(lines))
