"""The queries that sync sockets subscribe to, shared between sockets.

A :class:`Subscription` is one query (a function, its arguments and the
identity it runs as) kept current for every socket that holds it: a thousand
browser tabs showing the same thread share one. Each result it delivers gets a
new ``version``; a socket remembers the version it last sent for each of its
query IDs and sends a result again only when the version moved, so a result that
did not change is never sent twice.

Where results come from: each subscription is a watch (``store.watch``, see
docs/reactive-queries.md), run as the socket's identity (a ``with_identity``
view of the served store). It re-runs only when a committed write touches what
it read, whoever wrote: the HTTP API, a socket's mutation, an HTTP action, a
scheduled job, or another process on the same file. A write through the served
store has re-run the watches it touches before its call returns, so a
mutation's response is always sent after its effect is visible here. The watch
tells the subscription in the writing thread; the subscription hands itself to
the hub's ``wake`` (one hop to the event loop per changed result, however many
sockets hold it), which calls the sockets' listeners on the loop.

Log lines: a query's ``print`` and ``logging`` output reaches the client with
its first result only; the re-runs happen inside the writer's call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from returns.result import Failure, Result

from ..model.errors import FunctionNotFound, HandlerError, OneStoreError, Problem
from ..model.values import Value, from_convex_json, to_convex_json
from ..runtime.functions import FunctionSpec, normalize_path
from ..runtime.watch import Watch
from ..store import Store
from . import logs

Listener = Callable[[], None]
Latest = tuple[int, "Result[Any, Problem] | None", list[str]]


def resolve(store: Store, path: str, kind: str) -> FunctionSpec[Any] | str:
    """The public function at ``path`` of ``kind``, or the error message a client gets.

    An internal function is reported exactly as a missing one, as over HTTP.
    """
    if normalize_path(path) is None:
        return f"{path} is not a valid path to a Convex function."
    found = store.function(path)
    if isinstance(found, Failure) or found.unwrap().visibility != "public":
        return FunctionNotFound(path).message
    spec = found.unwrap()
    if spec.kind != kind:
        return (
            f"Trying to execute {path} as {kind.capitalize()}, "
            f"but it is defined as {spec.kind.capitalize()}."
        )
    return spec


def decode_args(raw: Any) -> Value | str:
    """The arguments object of a message (Convex JSON), or the error message a client gets."""
    try:
        return from_convex_json(raw)
    except RecursionError:
        return "Invalid args: the value is nested too deeply"
    except (ValueError, TypeError, OverflowError) as e:
        return f"Invalid args: {e}"


def encode_value(value: Value) -> str:
    """A value as Convex JSON text (compact; never a bare NaN)."""
    return json.dumps(
        to_convex_json(value),
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def run_call(
    store: Store, spec: FunctionSpec[Any], args: Value
) -> tuple[Result[Any, Problem], list[str]]:
    """Run a function by its kind, as the HTTP API does: its Result and log lines.

    Library misuse inside the handler (``ctx.db`` in an action, a write in a
    query) is the calling function's error over the wire, as over HTTP.
    """
    arguments: Any = args
    result: Result[Any, Problem]
    with logs.capture() as lines:
        try:
            if spec.kind == "query":
                result = store.query(spec, arguments)
            elif spec.kind == "mutation":
                result = store.mutation(spec, arguments)
            else:
                result = store.action(spec, arguments)
        except OneStoreError as e:
            result = Failure(HandlerError(e, store.path_of(spec)))
    return result, lines


class Subscription:
    """One query kept current for the sockets that hold it: a watch.

    ``latest`` is ``(version, result, log lines)``, replaced as one, so a reader
    on another thread never sees a result with another result's version.
    """

    def __init__(
        self,
        key: tuple[str, str, str],
        store: Store,
        spec: FunctionSpec[Any] | None,
        args: Value | None,
        error: str | None,
        wake: Callable[[Subscription], None],
    ) -> None:
        self.key = key
        self._wake = wake
        # The latest result's value as Convex JSON text, made once for all sockets.
        self._text: tuple[int, str] = (0, "")
        # A path that does not resolve, or bad args: a fixed error, never re-run.
        self.error = error
        self.version = 0
        self.latest: Latest = (0, None, [])
        self.listeners: dict[int, Listener] = {}
        self.ready = threading.Event()  # set once the first result is in
        self._lock = threading.Lock()
        self._watch: Watch | None = None
        self._start: tuple[Store, FunctionSpec[Any], Any] | None = None
        if spec is None:
            self._settle(None)
        else:
            self._start = (store, spec, args)

    def start(self) -> None:
        """Open the watch: the query's first run (blocks; outside any shared lock)."""
        if self._start is None:
            return
        store, spec, arguments = self._start
        self._start = None
        with logs.capture() as lines:
            self._watch = store.watch(spec, arguments, on_change=self._changed)
        self._settle(self._watch.result, lines)

    def _settle(
        self, result: Result[Any, Problem] | None, lines: list[str] | None = None
    ) -> None:
        # The first result, unless a write already delivered a later one.
        with self._lock:
            if self.version == 0:
                self.version = 1
                self.latest = (1, result, lines or [])

    def _changed(self, result: Result[Any, Problem]) -> None:
        # Called by the watch in the writing thread, in commit order.
        with self._lock:
            self.version += 1
            self.latest = (self.version, result, [])
        self._wake(self)

    def value_text(self, version: int, value: Any) -> str:
        """``value`` (the result of ``version``) as Convex JSON text, made once."""
        if self._text[0] != version:
            self._text = (version, encode_value(value))
        return self._text[1]

    def close(self) -> None:
        """Stop watching (the last socket let go)."""
        if self._watch is not None:
            self._watch.close()


class Subscriptions:
    """Every subscription of one served store, keyed by query, args and identity."""

    def __init__(self, store: Store, wake: Callable[[Subscription], None]) -> None:
        self._store = store
        self._wake = wake
        self._subs: dict[tuple[str, str, str], Subscription] = {}
        self._lock = threading.Lock()
        self._tokens = iter(range(1, 2**62))

    def open(
        self,
        store: Store,
        identity_key: str,
        path: str,
        raw_args: Any,
        listener: Listener,
    ) -> tuple[Subscription, int]:
        """Hold the query ``path(raw_args)`` as ``store``'s identity; run it if new.

        Blocks while a new query runs for the first time: call it off the event
        loop. Returns the subscription and the token to :meth:`release` it with.
        """
        key = (path, json.dumps(raw_args, sort_keys=True), identity_key)
        with self._lock:
            sub = self._subs.get(key)
            fresh = sub is None
            if sub is None:
                sub = self._make(key, store, path, raw_args)
                self._subs[key] = sub
            token = next(self._tokens)
            sub.listeners[token] = listener
        if fresh:
            # The first run happens outside the lock: other sockets opening other
            # queries do not wait for it (those opening this one wait for ready).
            try:
                sub.start()
            except BaseException:
                with self._lock:
                    if self._subs.get(key) is sub:
                        del self._subs[key]
                raise
            finally:
                sub.ready.set()
        else:
            sub.ready.wait()
        return sub, token

    def _make(
        self, key: tuple[str, str, str], store: Store, path: str, raw_args: Any
    ) -> Subscription:
        found = resolve(store, path, "query")
        if isinstance(found, str):
            return Subscription(key, store, None, None, found, self._wake)
        args = decode_args(raw_args)
        if isinstance(args, str):
            return Subscription(key, store, None, None, args, self._wake)
        return Subscription(key, store, found, args, None, self._wake)

    def release(self, sub: Subscription, token: int) -> None:
        """Let go of a subscription; the last holder's release forgets it."""
        with self._lock:
            sub.listeners.pop(token, None)
            last = not sub.listeners and self._subs.get(sub.key) is sub
            if last:
                del self._subs[sub.key]
        if last:
            sub.close()

    def __len__(self) -> int:
        return len(self._subs)

    def close(self) -> None:
        """Close every subscription's watch."""
        with self._lock:
            subs = list(self._subs.values())
            self._subs.clear()
        for sub in subs:
            sub.close()
