"""Reactive queries: ``store.watch(query, args, on_change)`` and its :class:`Watch`.

A watch runs its query once inside ``watch()`` and again only when a committed
write intersects what the last run read (its read set: documents by ID, the key
interval each index scan reached, text searches; see
:mod:`one_store.runtime.read_sets`). A re-run whose result equals the last one
delivered delivers nothing. This is Convex's subscription model (convex-backend
``crates/database/src/subscription.rs``: a subscription is invalidated when a
commit's writes overlap its read set, and the query is re-run).

How writes are noticed
    Every write of every connection on the file appends what it touched (table,
    ID, the document's old and new key in each index and its old and new search
    entries) to the change log, in the writing transaction
    (:mod:`one_store.engine.sqlite.changes`). The log is turned on by the first
    watch of any process on the file. One :class:`Watches` per store (shared by
    its ``with_identity`` views) follows it from a cursor, the log ``seq`` it has
    read up to:

    - after each commit through this store (a commit listener of the executor:
      ``store.mutation / run / action``, and jobs run by ``store.scheduler``) the
      writing thread reads the new entries and re-runs the watches they touch,
      before the call returns. ``w.result`` is then current and ``on_change``
      has been called: tests need no sleeps.
    - a background thread (one per store with open watches on a file) asks
      SQLite's ``PRAGMA data_version`` every :data:`POLL_SECONDS`; when another
      connection (another Store, thread or process) committed, it does the same.

    Re-runs and deliveries happen under one lock, in log order, so two writers
    never deliver out of order; a writer that finds its entries already handled
    by another thread still waits for that delivery to finish before returning.
    A follower that fell more than the log's length behind (entries pruned
    before it read them) re-runs every watch: nothing is missed.

Positions (for a server that numbers its updates)
    :attr:`Watch.version` is the change-log ``seq`` up to which ``w.result`` is
    known to be current. It never decreases; it is durable across restarts on
    the same file (the log's AUTOINCREMENT never reuses a ``seq``), so it can
    stand for Convex's Transition timestamps. Within ``on_change`` it is the
    position of the result being delivered. A memory store starts at 0.

Async code and servers
    ``async for r in w`` needs no thread of its own: a delivery hands the result
    to the loop with ``loop.call_soon_threadsafe``. A server with many watches
    can do the same with ``on_change`` (it runs in the delivering thread, under
    the store's delivery lock, in order). ``store.with_identity(...)`` views
    watch with their identity and share their parent's :class:`Watches`.

Callbacks
    An exception in ``on_change`` is logged (logger ``one_store``) and never
    reaches the writer. ``on_change`` may call the store (a write in it is
    delivered, re-entrantly, before it returns); it must not wait for another
    thread that is itself writing to the store.
"""

from __future__ import annotations

import itertools
import logging
import queue
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from returns.result import Failure, Result, Success

from ..model.display import result_html
from ..model.errors import (
    ContextError,
    HandlerError,
    OneStoreError,
    Problem,
    StorageFailure,
    as_user_result,
)
from .functions import FunctionSpec
from .read_sets import ReadIndex, ReadSet

if TYPE_CHECKING:
    from .executor import Executor
    from .functions import Kind

logger = logging.getLogger("one_store")

# How often the background thread asks SQLite whether another connection committed.
POLL_SECONDS = 0.01
_CLOSED = object()
_numbers = itertools.count()  # watches re-run in the order they were opened


class Watch:
    """A query that re-runs when a write changes what it read.

    Made by ``store.watch(fn_or_path, args, on_change=None)``; see
    :mod:`one_store.runtime.watch` for when it re-runs.

    Example:
        >>> from one_store import Store, define_schema, define_table, query, v
        >>> schema = define_schema({"notes": define_table({"text": v.string()})})
        >>> @query(args={})
        ... def count(ctx, args):
        ...     return len(ctx.db.query("notes").collect())
        >>> with Store.memory(schema) as store, store.watch(count, {}) as w:
        ...     _ = store.run(lambda ctx: ctx.db.insert("notes", {"text": "hi"}))
        ...     w.result.unwrap()
        1
    """

    def __init__(
        self,
        watches: Watches,
        executor: Executor,
        spec: FunctionSpec[Any] | None,
        args: dict[str, Any] | None,
        on_change: Callable[[Result[Any, Problem]], object] | None,
    ) -> None:
        self._watches = watches
        self._executor = executor
        self._spec = spec
        self._args = args
        self._on_change = on_change
        self._result: Result[Any, Problem] = Success(None)
        self._pending: Result[Any, Problem] = Success(None)
        self._version = 0
        self._feeds: list[Callable[[object], None]] = []
        self._closed = False
        self._number = next(_numbers)

    # ------------------------------------------------------------------ reading

    @property
    def result(self) -> Result[Any, Problem]:
        """The Result of the latest run delivered (kept after :meth:`close`)."""
        return self._result

    @property
    def version(self) -> int:
        """The change-log position up to which :attr:`result` is known current.

        Never decreases, and survives a restart on the same file: a server can
        number its updates with it.
        """
        if self._closed:
            return self._version
        return max(self._version, self._watches.settled)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the store closed)."""
        return self._closed

    def updates(self, timeout: float | None = None) -> Updates:
        """Each Result delivered from now on, in order; ends when the watch closes.

        Args:
            timeout: seconds to wait for each one (None: for ever).

        Raises:
            TimeoutError: (from iterating) nothing was delivered within
                ``timeout`` seconds.
        """
        return Updates(self, timeout)

    def __aiter__(self) -> AsyncIterator[Result[Any, Problem]]:
        """``async for r in w``: each Result delivered from now on, until close."""
        import asyncio  # not at import: most programs never iterate asynchronously

        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[object] = asyncio.Queue()

        def feed(item: object) -> None:
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening
                self._unfeed(feed)

        with self._watches.lock:
            if self._closed:
                feed(_CLOSED)
            else:
                self._feeds.append(feed)
        return self._async_drain(inbox, feed)

    async def _async_drain(
        self, inbox: Any, feed: Callable[[object], None]
    ) -> AsyncIterator[Result[Any, Problem]]:
        try:
            while True:
                item = await inbox.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            self._unfeed(feed)

    def _unfeed(self, feed: Callable[[object], None]) -> None:
        with self._watches.lock:
            if feed in self._feeds:
                self._feeds.remove(feed)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop watching: no more re-runs; :attr:`result` keeps the last Result."""
        self._watches.forget(self)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repr_html_(self) -> str:
        # In a notebook: the latest result as a table (documents) or its Problem.
        name = self._spec.display_name if self._spec is not None else "?"
        state = "closed" if self._closed else f"version {self.version}"
        return result_html(self._result, f"Watch {name} ({state})")

    def __repr__(self) -> str:
        name = self._spec.display_name if self._spec is not None else "?"
        state = "closed" if self._closed else f"version {self.version}"
        return f"<Watch {name} ({state}): {self._result!r}>"

    # ------------------------------------------------------------------ running (under the lock)

    def _run(self, first: bool = False) -> ReadSet | None:
        """Run the query into ``_pending`` (not yet delivered); its read set.

        Misuse inside the query (a ``OneStoreError``) raises from ``watch()``;
        on a re-run, in some writer's thread, it becomes the watch's Failure.
        """
        if self._spec is None or self._args is None:
            return None  # a Failure result that no write can change
        reads = ReadSet()
        with self._watches.observing(reads):
            try:
                result = self._executor.run(self._spec, self._args)
            except OneStoreError as e:
                if first:
                    raise
                path = self._executor.path_of(self._spec)
                result = Failure(HandlerError(e, path))
        self._pending = as_user_result(result)
        return reads

    def _deliver(self, version: int, first: bool = False) -> None:
        result = self._pending
        self._version = max(self._version, version)
        if not first and same_result(result, self._result):
            return
        self._result = result
        if first:
            return
        for feed in list(self._feeds):
            feed(result)
        if self._on_change is not None:
            try:
                self._on_change(result)
            except Exception:
                logger.exception("on_change of %r raised", self)

    def _closing(self) -> None:
        self._closed = True
        feeds, self._feeds = self._feeds, []
        for feed in feeds:
            feed(_CLOSED)


class Updates(Iterator[Result[Any, Problem]]):
    """What :meth:`Watch.updates` returns: an iterator over delivered Results.

    It listens from the moment it is made (not from the first ``next``), so no
    Result delivered in between is lost. ``close()`` (or the end of a ``for``
    loop over it, or garbage collection) stops listening.
    """

    def __init__(self, watch: Watch, timeout: float | None) -> None:
        self._watch = watch
        self._timeout = timeout
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._done = False
        with watch._watches.lock:
            if watch._closed:
                self._done = True
            else:
                watch._feeds.append(self._inbox.put)

    def __iter__(self) -> Updates:
        return self

    def __next__(self) -> Result[Any, Problem]:
        result = self.wait(self._timeout)
        if result is None:
            raise StopIteration
        return result

    def wait(self, timeout: float | None) -> Result[Any, Problem] | None:
        """The next delivered Result; None once the watch closed.

        Raises:
            TimeoutError: nothing was delivered within ``timeout`` seconds.
        """
        if self._done:
            return None
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no update of the watch within {timeout} s") from None
        if item is _CLOSED:
            self.close()
            return None
        return item  # type: ignore[return-value]  # only Results and _CLOSED come in

    def close(self) -> None:
        """Stop listening."""
        self._done = True
        self._watch._unfeed(self._inbox.put)

    def __del__(self) -> None:
        self.close()


class _Observing:
    """The Instrumentation that gives a watched run its read set (this thread only)."""

    def __init__(self) -> None:
        self.local = threading.local()

    def fault(self, path: str) -> Problem | None:
        return None

    def observer(self, kind: Kind, path: str) -> ReadSet | None:
        return getattr(self.local, "reads", None)


class Watches:
    """The open watches of one store, the log cursor, and the background thread.

    Internal: made by the store; ``store.watch`` adds to it, ``store.close``
    closes it. See the module docstring.
    """

    def __init__(self, executor: Executor, follow: bool) -> None:
        self.lock = threading.RLock()
        self._executor = executor
        self._follow = follow
        self._open: dict[Watch, None] = {}  # in creation order
        self._index: ReadIndex[Watch] = ReadIndex()
        self._observing = _Observing()
        self._cursor = 0
        self.settled = 0
        self._started = False
        self._closed = False
        self._log = True
        self._removers: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ watches

    def watch(
        self,
        executor: Executor,
        fn: object,
        args: object,
        on_change: Callable[[Result[Any, Problem]], object] | None,
    ) -> Watch:
        """Open a watch of ``fn(args)`` run by ``executor`` (a view of this store's)."""
        if self._closed or executor.closed:
            raise ContextError("This store is closed: it cannot watch.")
        if on_change is not None and not callable(on_change):
            raise TypeError(f"on_change must be callable, got {on_change!r}")
        spec, checked, problem = _prepare(executor, fn, args)
        watch = Watch(self, executor, spec, checked, on_change)
        with self.lock:
            self._start()
            if problem is not None:
                watch._pending = Failure(problem)
                watch._deliver(self._cursor, first=True)
            else:
                reads = watch._run(first=True)
                watch._deliver(self._cursor, first=True)
                if reads is not None:
                    self._index.add(watch, reads)
            self._open[watch] = None
        if self._thread is None and self._follow:
            self._start_thread()
        return watch

    def forget(self, watch: Watch) -> None:
        """Close ``watch``."""
        with self.lock:
            if watch._closed:
                return
            self._index.discard(watch)
            self._open.pop(watch, None)
            watch._version = max(watch._version, self.settled)
            watch._closing()

    def close(self) -> None:
        """Close every watch, stop the thread, unhook from the executor."""
        with self.lock:
            self._closed = True
            for watch in list(self._open):
                self.forget(watch)
            removers, self._removers = self._removers, []
        for remove in removers:
            remove()
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    # ------------------------------------------------------------------ following the log

    def _start(self) -> None:
        """Turn the change log on and hook into the executor (first watch only)."""
        if self._started:
            return
        backend = self._executor.backend
        if backend.readonly:
            # A read-only store cannot turn the log on: any commit of another
            # connection re-runs every watch.
            self._log = False
        else:
            self._cursor = self.settled = backend.enable_change_log()
        self._removers.append(self._executor.instrument(self._observing))
        self._removers.append(self._executor.add_commit_listener(self._committed))
        self._started = True

    def _committed(self, txn: object) -> None:
        self.catch_up(own=True)

    def observing(self, reads: ReadSet) -> _Reads:
        """Run a watched query with ``reads`` as its observer (this thread)."""
        return _Reads(self._observing.local, reads)

    def catch_up(self, own: bool = False) -> None:
        """Read the log past the cursor and re-run the watches its writes touch.

        ``own``: called after a commit of this store, whose entries its
        connection still holds (no need to read them back, usually).
        """
        with self.lock:
            if not self._open:
                return
            backend = self._executor.backend
            try:
                if self._log:
                    changes = backend.recent_changes(self._cursor) if own else None
                    if changes is None:
                        changes = backend.changes_since(self._cursor)
                    if not changes:
                        return
                    complete = changes[0].seq == self._cursor + 1
                    position = max(self._cursor, changes[-1].seq)
                    touched = self._index.touched(changes) if complete else self._open
                else:
                    position, touched = self._cursor, self._open
            except StorageFailure:
                logger.exception("watches could not read the change log")
                return
            self._cursor = position
            for watch in sorted(touched, key=_opened):
                if watch in self._open:
                    self._rerun(watch, position)
            self.settled = max(self.settled, position)

    def _rerun(self, watch: Watch, position: int) -> None:
        reads = watch._run()
        if watch._closed:  # closed by a callback during its own run
            return
        if reads is not None:
            self._index.add(watch, reads)
        watch._deliver(position)

    def _start_thread(self) -> None:
        with self.lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._poll, name="one_store-watches", daemon=True
            )
            self._thread.start()

    def _poll(self) -> None:
        """Ask SQLite whether another connection committed; catch up when so."""
        backend = self._executor.backend
        seen: int | None = None
        while not self._stop.wait(POLL_SECONDS):
            if not self._open:
                continue  # nothing to keep current: no statement either
            try:
                # One statement (SQLite) or none (a PostgreSQL LISTEN): no read
                # transaction, which on a server costs two round trips a look.
                version = backend.data_version()
                if version != seen:  # the first look too: a commit may precede it
                    seen = version
                    self.catch_up()
            except StorageFailure:
                continue  # busy or failing now; the next look tries again
            except Exception:
                if self._closed:  # the store closed under us
                    return
                # Never let the thread die silently: the watches would go stale.
                logger.exception("the watch thread could not catch up; retrying")


class _Reads:
    """Context manager: this thread's watched run records into ``reads``."""

    def __init__(self, local: threading.local, reads: ReadSet) -> None:
        self._local = local
        self._reads = reads

    def __enter__(self) -> None:
        self._before = getattr(self._local, "reads", None)
        self._local.reads = self._reads

    def __exit__(self, *exc: object) -> None:
        self._local.reads = self._before


def _opened(watch: Watch) -> int:
    return watch._number


def _prepare(
    executor: Executor, fn: object, args: object
) -> tuple[FunctionSpec[Any] | None, dict[str, Any] | None, Problem | None]:
    """The query, its checked arguments, or the Problem that makes the watch a Failure.

    Raises:
        ContextError: ``fn`` is a mutation or an action (watch a query).
    """
    if isinstance(fn, FunctionSpec) and fn.kind != "query":
        raise ContextError(
            f"{fn.display_name} is a {fn.kind}: store.watch() watches queries only"
        )
    if isinstance(fn, str):
        found = executor.function(fn)
        if isinstance(found, Success) and found.unwrap().kind != "query":
            kind = found.unwrap().kind
            raise ContextError(f"{fn} is a {kind}: store.watch() watches queries only")
    resolved = executor.resolve("query", fn)
    if isinstance(resolved, Failure):
        return None, None, resolved.failure()
    spec = resolved.unwrap()
    checked = executor.prepare(spec, args)
    if isinstance(checked, Failure):
        return spec, None, checked.failure()
    return spec, checked.unwrap(), None


def same_result(a: Result[Any, Problem], b: Result[Any, Problem]) -> bool:
    """Whether two Results are the same to a subscriber (Convex value equality).

    ``1`` (int64), ``1.0`` (float64) and ``True`` differ, as do ``0.0`` and
    ``-0.0``; NaN equals NaN. Failures are the same when their Problems are equal.
    """
    if isinstance(a, Success) and isinstance(b, Success):
        return _same_value(a.unwrap(), b.unwrap())
    if isinstance(a, Failure) and isinstance(b, Failure):
        return bool(a.failure() == b.failure())
    return False


_pack_d = struct.Struct(">d").pack


def _same_value(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(map(_same_value, a, b))
    if isinstance(a, float):
        assert isinstance(b, float)
        return _pack_d(a) == _pack_d(b) or (a != a and b != b)
    return a == b
