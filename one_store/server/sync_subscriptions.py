"""The queries that sync sockets subscribe to, shared between sockets.

A :class:`Subscription` is one query (a function, its arguments and the
identity it runs as) kept current for every socket that holds it: a thousand
browser tabs showing the same thread share one. Each result it delivers gets a
new ``version``; a socket remembers the version it last sent for each of its
query IDs and sends a result again only when the version moved, so a result that
did not change is never sent twice.

Where results come from: the subscription re-runs its query after every write
committed through the served store (the HTTP API, a socket's mutation, an HTTP
action, a scheduled job), in the writing thread, before that write's call
returns, so a mutation's response is always sent after its effect is visible
here. It then tells its sockets, which may live on another thread (the event
loop): a listener must only schedule work, never block.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from returns.result import Failure, Result

from ..model.errors import FunctionNotFound, HandlerError, OneStoreError, Problem
from ..model.values import Value, from_convex_json
from ..runtime.functions import FunctionSpec, normalize_path
from ..runtime.transaction import Transaction
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
    """One query kept current for the sockets that hold it."""

    def __init__(
        self,
        key: tuple[str, str, str],
        store: Store,
        spec: FunctionSpec[Any] | None,
        args: Value | None,
        error: str | None,
    ) -> None:
        self.key = key
        self._store = store
        self._spec = spec
        self._args = args
        # A path that does not resolve, or bad args: a fixed error, never re-run.
        self.error = error
        self.result: Result[Any, Problem] | None = None
        self.log_lines: list[str] = []
        self.version = 0
        # (version, result, log lines), replaced as one: a reader on another
        # thread never sees a result with another result's version.
        self.latest: Latest = (0, None, [])
        self.listeners: dict[int, Listener] = {}
        self.ready = threading.Event()  # set once the first result is in
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Re-run the query; whether its result changed (listeners are told)."""
        if self._spec is None:
            return False
        with self._lock:
            result, lines = run_call(self._store, self._spec, self._args)
            if self.version and _same(result, self.result) and lines == self.log_lines:
                return False
            self.result, self.log_lines = result, lines
            self.version += 1
            self.latest = (self.version, result, lines)
            listeners = list(self.listeners.values())
        for listener in listeners:
            listener()
        return True


def _same(a: Result[Any, Problem] | None, b: Result[Any, Problem] | None) -> bool:
    # Results hold plain values and frozen Problems; == compares them deeply.
    # (1 == 1.0 == True in Python: compare types as the client would see them.)
    return a is not None and b is not None and _typed(a) == _typed(b)


def _typed(result: Result[Any, Problem]) -> object:
    if isinstance(result, Failure):
        return ("failure", repr(result.failure()))
    return ("success", _shape(result.unwrap()))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, float):
        return ("f", repr(value))  # NaN equals itself, -0.0 differs from 0.0
    return (type(value).__name__, value)


class Subscriptions:
    """Every subscription of one served store, keyed by query, args and identity."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._subs: dict[tuple[str, str, str], Subscription] = {}
        self._lock = threading.Lock()
        self._tokens = iter(range(1, 2**62))
        self._remove = store.executor.add_commit_listener(self._on_commit)

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
            try:
                self._first_run(sub)
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
            return Subscription(key, store, None, None, found)
        args = decode_args(raw_args)
        if isinstance(args, str):
            return Subscription(key, store, None, None, args)
        return Subscription(key, store, found, args, None)

    def _first_run(self, sub: Subscription) -> None:
        if sub.error is not None:
            sub.version = 1
            sub.latest = (1, None, [])
            return
        sub.refresh()

    def release(self, sub: Subscription, token: int) -> None:
        """Let go of a subscription; the last holder's release forgets it."""
        with self._lock:
            sub.listeners.pop(token, None)
            if not sub.listeners and self._subs.get(sub.key) is sub:
                del self._subs[sub.key]

    def __len__(self) -> int:
        return len(self._subs)

    def _on_commit(self, _txn: Transaction) -> None:
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            sub.refresh()

    def close(self) -> None:
        """Stop following the store's writes."""
        self._remove()
        with self._lock:
            self._subs.clear()
