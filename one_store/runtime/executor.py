"""The one place where a function runs.

:class:`Executor` resolves a function (an object or a ``"file:name"`` path),
checks its arguments, runs its handler in a transaction, checks what it returns,
and turns every outcome into a ``Result``. All of a call's bookkeeping happens in
one transaction primitive, :meth:`Executor.transaction`:

- at the top level a mutation takes the write lock at once (``BEGIN IMMEDIATE``)
  and a query reads one snapshot; inside a running transaction (``ctx.run_query``,
  ``ctx.run_mutation``, a scheduled job) the same primitive opens a SAVEPOINT, so
  a nested Failure rolls back only its own writes, as Convex's ``runMutation``;
- ``_creationTime`` values handed out by a write that rolls back are forgotten;
- when a write commits, the transaction's ``on_commit`` hooks and the executor's
  commit listeners run, after the lock is released (watches hang off them);
- an :class:`Instrumentation` (fault injection, call traces: ``one_store.testing``)
  is asked for a fault before a mutation and for a
  :class:`~one_store.engine.backend.CallObserver` of each call. None is installed
  by default.

``Store`` is a thin façade over it; the scheduler and the testing kit use its
public methods.
"""

from __future__ import annotations

import inspect
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from returns.result import Failure, Result, Success

from ..engine.backend import NO_OBSERVER, Backend, CallObserver
from ..model.errors import (
    ArgsInvalid,
    ContextError,
    FunctionNotFound,
    OneStoreError,
    Problem,
    ProblemError,
    StorageFailure,
    as_user_result,
)
from ..model.ids import IdGenerator
from ..model.schema import Schema
from ..model.validators import error_text
from ..model.values import (
    MAX_FUNCTION_VALUE_SIZE,
    InvalidValue,
    Value,
    check_value,
    mebibytes,
    show,
    size_within,
)
from . import outcome
from .context import ActionCtx, Auth, BaseCtx, MutationCtx, QueryCtx
from .functions import FunctionIndex, FunctionSpec, Kind
from .instrumentation import Instrumentation, Observers
from .outcome import Abort, Refused, checked_value, problem_of, run_coroutine
from .transaction import Transaction

if TYPE_CHECKING:
    import httpx

    from .context import SchedulerApi
    from .files import Files

T = TypeVar("T")
Clock = Callable[[], float]
MAX_CALL_DEPTH = 8


class SchedulerPort(Protocol):
    """What the executor needs from the scheduler: each context's ``ctx.scheduler``."""

    def for_transaction(self, txn: Transaction) -> SchedulerApi:
        """The ``ctx.scheduler`` of a mutation (writes inside ``txn``)."""

    def for_action(self) -> SchedulerApi:
        """The ``ctx.scheduler`` of an action (each call commits on its own)."""


class _Shared:
    """What every view of one store shares (``with_identity`` views differ in auth)."""

    def __init__(
        self,
        backend: Backend,
        schema: Schema | None,
        functions: Mapping[str, FunctionSpec[Any]] | None,
        clock: Clock,
        seed: int,
        http: httpx.Client | None,
    ) -> None:
        self.backend = backend
        self.schema = schema
        self.functions = FunctionIndex(functions)
        self.clock = clock
        self.seed = seed
        self.http = http
        self.ids = IdGenerator(seed)
        # Call numbers for ctx.random seeds; next() on a count is atomic under the GIL.
        self.calls = itertools.count(1)
        self.local = threading.local()
        self.instruments: tuple[Instrumentation, ...] = ()
        self.listeners: tuple[Callable[[Transaction], None], ...] = ()
        self.scheduler: SchedulerPort | None = None
        self.files: Files | None = None  # ctx.storage (runtime/files.py)
        self.closed = False


class Executor:
    """Runs queries, mutations and actions against one backend.

    Args:
        backend: the engine the store opened (the SQLite ``Storage``).
        schema: the schema documents are checked against (None: any document).
        functions: the app's functions by ``"file:name"`` path (None: no app).
        clock: milliseconds since the epoch.
        seed: seeds ``ctx.random`` and ID generation (None: random).
        http: the ``httpx.Client`` actions get as ``ctx.http`` (None: their own).
        identity: what ``ctx.auth.get_user_identity()`` returns.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        schema: Schema | None,
        functions: Mapping[str, FunctionSpec[Any]] | None,
        clock: Clock,
        seed: int | None,
        http: httpx.Client | None,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        seed = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
        self._shared = _Shared(backend, schema, functions, clock, seed, http)
        self._auth = Auth(identity)

    # ------------------------------------------------------------ state

    @property
    def backend(self) -> Backend:
        """The engine under this executor."""
        return self._shared.backend

    @property
    def clock(self) -> Clock:
        """The clock calls read ``ctx.now()`` from."""
        return self._shared.clock

    @property
    def seed(self) -> int:
        """The seed of ``ctx.random`` and ID generation."""
        return self._shared.seed

    def with_identity(self, identity: Mapping[str, Any] | None) -> Executor:
        """A view that shares everything but the identity calls run as."""
        view = object.__new__(Executor)
        view._shared = self._shared
        view._auth = Auth(identity)
        return view

    def use_scheduler(self, scheduler: SchedulerPort) -> None:
        """Give contexts their ``ctx.scheduler`` (the store's scheduler)."""
        self._shared.scheduler = scheduler

    def use_files(self, files: Files) -> None:
        """Give contexts their ``ctx.storage`` (the store's file storage)."""
        self._shared.files = files

    def close(self) -> None:
        """Refuse further calls (the store closes the backend)."""
        self._shared.closed = True

    @property
    def closed(self) -> bool:
        """Whether the store was closed."""
        return self._shared.closed

    def instrument(self, instrumentation: Instrumentation) -> Callable[[], None]:
        """Install ``instrumentation`` on every view of this store; return its remover."""
        shared = self._shared
        shared.instruments = (*shared.instruments, instrumentation)

        def remove() -> None:
            shared.instruments = tuple(
                i for i in shared.instruments if i is not instrumentation
            )

        return remove

    def fault(self, path: str) -> Problem | None:
        """The fault an installed instrumentation injects into ``path``, if any."""
        for instrument in self._shared.instruments:
            fault = instrument.fault(path)
            if fault is not None:
                return fault
        return None

    def add_commit_listener(
        self, listener: Callable[[Transaction], None]
    ) -> Callable[[], None]:
        """Call ``listener(txn)`` after each committed write; return its remover."""
        shared = self._shared
        shared.listeners = (*shared.listeners, listener)

        def remove() -> None:
            shared.listeners = tuple(x for x in shared.listeners if x is not listener)

        return remove

    # ------------------------------------------------------------ functions

    def function(self, path: str) -> Result[FunctionSpec[Any], FunctionNotFound]:
        """Find a function of the loaded app by its ``"file:name"`` path."""
        return as_user_result(self._shared.functions.find(path))

    def path_of(self, spec: FunctionSpec[Any]) -> str:
        """The ``"file:name"`` path of a function of the app (or its Python name)."""
        return self._shared.functions.path_of(spec)

    def resolve(self, kind: Kind, fn: object) -> Result[FunctionSpec[Any], Problem]:
        """The function ``fn`` names (a spec or a path), which must be a ``kind``."""
        return self._shared.functions.resolve(kind, fn)

    def prepare(
        self, spec: FunctionSpec[Any], args: object
    ) -> Result[dict[str, Any], Problem]:
        """``args`` checked against the function's argument validators."""
        checked = self._checked_args(spec, args)
        return Success(checked) if isinstance(checked, dict) else Failure(checked)

    def _checked_args(
        self, spec: FunctionSpec[Any], args: object
    ) -> dict[str, Any] | Problem:
        """The checked arguments (always a dict), or the Problem with them."""
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return ArgsInvalid(
                "",
                "Expected to receive an object as the function's argument. "
                f"Instead received: {show(args)}",
            )
        try:
            if spec.args is not None:
                checked = spec.args.check(args, self._shared.backend.table_of)
            else:
                checked = check_value(args)
        except InvalidValue as e:
            return ArgsInvalid(e.path_text(), error_text(e))
        size = size_within(checked, MAX_FUNCTION_VALUE_SIZE)  # exact if over
        if size > MAX_FUNCTION_VALUE_SIZE:
            return ArgsInvalid(
                "",
                f"Arguments for {spec.display_name} are too large (actual: "
                f"{mebibytes(size)}, limit: {mebibytes(MAX_FUNCTION_VALUE_SIZE)})",
            )
        return cast("dict[str, Any]", checked)

    # ------------------------------------------------------------ calls

    def call(self, kind: Kind, fn: object, args: object) -> Result[Any, Problem]:
        """Run a function of ``kind`` (what ``store.query/mutation/action`` and ``ctx.run_*`` do).

        Its Failure is a :class:`~one_store.model.errors.ProblemFailure`, whose
        ``unwrap()`` names the Problem and chains its exception.
        """
        begun = self._begin(kind, fn, args)
        if not isinstance(begun, tuple):
            return as_user_result(Failure(begun))
        spec, checked = begun
        return as_user_result(self._dispatch(spec, checked))

    def _dispatch(
        self, spec: FunctionSpec[Any], checked: dict[str, Any]
    ) -> Result[Any, Problem]:
        """Run a resolved function with checked arguments, one call level deeper."""
        local = self._shared.local  # no context manager: ~1 us of a 20 us get
        local.depth = getattr(local, "depth", 0) + 1
        try:
            if spec.kind == "action":
                return self.run_action(spec, checked)
            return self.run(spec, checked)
        finally:
            local.depth -= 1

    async def call_async(self, fn: object, args: object) -> Result[Any, Problem]:
        """Run an action from async code (an ``async def`` handler runs on this loop)."""
        return as_user_result(await self._call_async(fn, args))

    async def _call_async(self, fn: object, args: object) -> Result[Any, Problem]:
        begun = self._begin("action", fn, args)
        if not isinstance(begun, tuple):
            return Failure(begun)
        spec, checked = begun
        if not inspect.iscoroutinefunction(spec.handler):
            import asyncio  # not at import: most programs never run an async action

            # Already resolved and checked: the worker thread only runs it.
            return await asyncio.to_thread(self._dispatch, spec, checked)
        ctx = self._action_ctx()
        local = self._shared.local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            value = await spec.handler(ctx, checked)
        except Exception as e:
            if isinstance(e, OneStoreError):
                raise
            return Failure(problem_of(e, self.path_of(spec)))
        finally:
            ctx.close()
            local.depth -= 1
        return self.finish(spec, value)

    def _begin(
        self, kind: Kind, fn: object, args: object
    ) -> tuple[FunctionSpec[Any], dict[str, Any]] | Problem:
        """The function and its checked args, or the Problem (no ``Result``: ~0.5 us)."""
        if self._shared.closed:
            raise ContextError("This store is closed.")
        spec = fn if type(fn) is FunctionSpec and fn.kind == kind else None
        if spec is None:  # not the common case: a path, or the wrong kind
            resolved = self.resolve(kind, fn)
            if isinstance(resolved, Failure):
                return cast("Problem", resolved.failure())
            spec = resolved.unwrap()
        if getattr(self._shared.local, "depth", 0) >= MAX_CALL_DEPTH:
            raise ContextError(
                f"Nested function calls are limited to depth {MAX_CALL_DEPTH}."
            )
        checked = self._checked_args(spec, args)
        if not isinstance(checked, dict):
            return checked
        return spec, checked

    def run(
        self,
        spec: FunctionSpec[Any],
        args: dict[str, Any],
        *,
        path: str | None = None,
        observe: bool = False,
    ) -> Result[Any, Problem]:
        """Run a query or mutation with checked ``args`` in :meth:`transaction`.

        Args:
            spec: the function.
            args: its checked arguments.
            path: the name its failures carry (default: its app path).
            observe: give it an observer of its own even inside a transaction
                (a scheduled job runs inside the scheduler's bookkeeping write).
        """
        writable = spec.kind == "mutation"

        def work(txn: Transaction) -> Value:
            ctx = self._ctx(writable, txn)
            try:
                value = spec.handler(ctx, args)
                out = checked_value(spec, value, txn, self._shared.backend.table_of)
            except Exception as e:
                if isinstance(e, OneStoreError):
                    raise
                raise Abort(problem_of(e, path or self.path_of(spec))) from e
            if type(out) is Refused:
                raise Abort(out.problem)
            return cast("Value", out)

        return self.transaction(
            work,
            writable=writable,
            kind=spec.kind,
            path=path,
            spec=spec,
            observe=observe,
        )

    def _next_seed(self) -> int:
        """The seed of the next call's ``ctx.random`` (store seed + call number)."""
        shared = self._shared
        return (shared.seed * 1_000_003 + next(shared.calls)) & 0xFFFFFFFFFFFFFFFF

    def _ctx(self, writable: bool, txn: Transaction) -> BaseCtx:
        shared = self._shared
        rng = self._next_seed()
        ctx: BaseCtx
        if writable:
            assert shared.scheduler is not None
            scheduler = shared.scheduler.for_transaction(txn)
            ctx = MutationCtx(self.call, self._auth, txn.now_ms, rng, txn, scheduler)
        else:
            ctx = QueryCtx(self.call, self._auth, txn.now_ms, rng, txn)
        ctx._files = shared.files
        return ctx

    # ------------------------------------------------------------ the primitive

    def transaction(
        self,
        work: Callable[[Transaction], T],
        *,
        writable: bool,
        kind: Kind = "mutation",
        path: str | None = None,
        spec: FunctionSpec[Any] | None = None,
        observe: bool = True,
    ) -> Result[T, Problem]:
        """Run ``work(txn)`` in a transaction; commit its writes only if it returns.

        At the top level a write begins with ``BEGIN IMMEDIATE`` and a read
        takes one snapshot; inside a running transaction on this thread it is a
        SAVEPOINT of that one. ``work`` ends it early by raising: a
        :class:`~one_store.model.errors.ProblemError` (or a storage failure)
        rolls back and becomes a ``Failure``; a ``OneStoreError`` (library
        misuse) rolls back and propagates.

        Args:
            work: what runs inside; its return value is the Success.
            writable: a write (mutation, library bookkeeping) or a read.
            kind: what an observer is told the call is.
            path: the call's path, for faults and observers (default: ``spec``'s).
            spec: the function it runs, if any (for its path, lazily).
            observe: ask the instrumentation for an observer of this call (a
                top-level call of a function; nested calls share their caller's).
        """
        shared = self._shared
        outer: Transaction | None = getattr(shared.local, "txn", None)
        if outer is not None:
            return self._nested(work, outer, writable, kind, path, spec, observe)
        backend = shared.backend
        instruments = shared.instruments
        observer: CallObserver = NO_OBSERVER
        if instruments and spec is not None:
            name = path or self.path_of(spec)
            fault = self.fault(name) if writable else None
            if fault is not None:
                return Failure(fault)
            observer = self._observer(kind, name)
        txn = Transaction(
            backend, shared.schema, float(shared.clock()), shared.ids, writable
        )
        txn.observer = observer
        shared.local.txn = txn
        if not writable:
            try:
                with backend.read():
                    value = work(txn)
            except (Abort, ProblemError, StorageFailure) as e:
                observer.finished(False)
                return Failure(e.problem)
            finally:
                shared.local.txn = None
            observer.finished(False)
            return Success(value)
        last_known = backend.last_creation_time
        try:
            with backend.write():
                value = work(txn)
                if txn.inserted:
                    backend.record_creation_time(txn.last_creation_time)
        except (Abort, ProblemError, StorageFailure) as e:
            backend.note_rollback(last_known)
            observer.finished(False)
            return Failure(e.problem)
        except BaseException:
            backend.note_rollback(last_known)
            observer.finished(False)
            raise
        finally:
            shared.local.txn = None
        observer.finished(True)
        for hook in txn.on_commit:
            hook()
        for listener in shared.listeners:
            listener(txn)
        return Success(value)

    def _observer(self, kind: Kind, path: str) -> CallObserver:
        observers = [
            o
            for o in (i.observer(kind, path) for i in self._shared.instruments)
            if o is not None
        ]
        if not observers:
            return NO_OBSERVER
        return observers[0] if len(observers) == 1 else Observers(observers)

    def _nested(
        self,
        work: Callable[[Transaction], T],
        outer: Transaction,
        writable: bool,
        kind: Kind,
        path: str | None,
        spec: FunctionSpec[Any] | None,
        observe: bool,
    ) -> Result[T, Problem]:
        """``work`` as a sub-transaction (SAVEPOINT) of ``outer``.

        A nested mutation's Failure rolls back only its own writes, as Convex's
        ``runMutation`` inside a mutation.
        """
        if writable and not outer.writable:
            raise ContextError("A query cannot run a mutation.")
        before = outer.observer
        observer = before
        if observe and spec is not None and self._shared.instruments:
            observer = self._observer(kind, path or self.path_of(spec))
            outer.observer = observer
        try:
            with self._shared.backend.savepoint():
                value = work(outer)
        except (Abort, ProblemError) as e:
            if observer is not before:
                observer.finished(False)
            return Failure(e.problem)
        finally:
            outer.observer = before
        if observer is not before:
            outer.on_commit.append(lambda: observer.finished(True))
        return Success(value)

    def system_write(self, work: Callable[[Transaction], T]) -> Result[T, Problem]:
        """Run library code (the scheduler, imports) in a write transaction of its own."""
        local = self._shared.local
        outer = getattr(local, "txn", None)
        local.txn = None  # never a savepoint of a caller's transaction
        try:
            return self.transaction(work, writable=True, observe=False)
        finally:
            local.txn = outer

    # ------------------------------------------------------------ outcomes

    def finish(
        self, spec: FunctionSpec[Any], value: object, txn: Transaction | None = None
    ) -> Result[Any, Problem]:
        """Check a handler's outcome: a Result or a plain value, against ``returns``."""
        return outcome.checked_outcome(spec, value, txn, self._shared.backend.table_of)

    # ------------------------------------------------------------ actions

    def _action_ctx(self) -> ActionCtx:
        shared = self._shared
        assert shared.scheduler is not None
        rng = self._next_seed()
        ctx = ActionCtx(
            self.call,
            self._auth,
            float(shared.clock()),
            rng,
            shared.scheduler.for_action(),
            shared.http,
            shared.backend,
        )
        ctx._files = shared.files
        return ctx

    def run_action(
        self, spec: FunctionSpec[Any], args: dict[str, Any]
    ) -> Result[Any, Problem]:
        """Run an action with checked ``args``, outside any transaction."""
        if getattr(self._shared.local, "txn", None) is not None:
            raise ContextError("Actions cannot be run from inside a query or mutation.")
        ctx = self._action_ctx()
        try:
            value = spec.handler(ctx, args)
            if inspect.iscoroutine(value):
                value = run_coroutine(value)
        except Exception as e:
            if isinstance(e, OneStoreError):
                raise
            return Failure(problem_of(e, self.path_of(spec)))
        finally:
            ctx.close()
        return self.finish(spec, value)

    # ------------------------------------------------------------ jobs

    @contextmanager
    def running_job(self, job_id: str, kind: Kind) -> Iterator[None]:
        """Mark this thread as running scheduled job ``job_id`` (a mutation or action)."""
        local = self._shared.local
        attr = "action_job" if kind == "action" else "job"
        setattr(local, attr, job_id)
        try:
            yield
        finally:
            setattr(local, attr, None)

    def current_job(self, kind: Kind) -> str | None:
        """The scheduled job of ``kind`` this thread runs, if any."""
        attr = "action_job" if kind == "action" else "job"
        return getattr(self._shared.local, attr, None)
