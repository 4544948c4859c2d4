"""``Store``: open a file (or memory) and run queries, mutations and actions.

Every call returns a ``Result``. A mutation is one SQLite transaction, begun with
``BEGIN IMMEDIATE`` so that concurrent writers (threads or processes) serialise and
never lose an update; any Failure rolls it back completely. A query reads one
snapshot. An action runs outside any transaction and composes the others.
"""

from __future__ import annotations

import asyncio
import difflib
import inspect
import itertools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, overload

from returns.primitives.exceptions import UnwrapFailedError
from returns.result import Failure, Result, Success

from .engine import migration
from .engine.sqlite.storage import DEFAULT_CACHE_MIB, Storage, classify
from .model.errors import (
    ArgsInvalid,
    ContextError,
    ConvexError,
    FunctionNotFound,
    HandlerError,
    OneStoreError,
    Problem,
    ProblemError,
    Rejected,
    ReturnsInvalid,
    StorageFailure,
    StoreOpenError,
    is_problem,
)
from .model.ids import IdGenerator
from .model.schema import Schema
from .model.validators import error_text
from .model.values import (
    MAX_FUNCTION_VALUE_SIZE,
    InvalidValue,
    Value,
    check_value,
    convex_size,
    mebibytes,
    show,
)
from .runtime.context import (
    ActionCtx,
    Auth,
    BaseCtx,
    MutationCtx,
    QueryCtx,
    Runner,
    Transaction,
)
from .runtime.functions import FunctionSpec, Kind, normalize_path
from .runtime.scheduler import StoreScheduler

if TYPE_CHECKING:
    import httpx

    from .app import App

T = TypeVar("T")
Clock = Callable[[], float]
MAX_CALL_DEPTH = 8
# Exact types a handler's plain return value usually has (skips the Result checks).
_PLAIN = frozenset({dict, list, str, int, float, bool, bytes, type(None)})


def system_clock() -> float:
    """Milliseconds since the epoch from the wall clock."""
    return time.time() * 1000.0


class _Abort(Exception):  # noqa: N818 - internal control flow: roll back with a Problem
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _problem_of(error: Exception, function: str | None) -> Problem:
    """Turn an exception out of handler code into the Problem it stands for."""
    if isinstance(error, ConvexError):
        return Rejected(error.data)
    if isinstance(error, ProblemError | _Abort | StorageFailure):
        return error.problem
    if type(error) in (sqlite3.OperationalError, sqlite3.DatabaseError):
        # SQLite failed under the handler's reads/writes (disk full, corrupt page,
        # I/O error, lock): StorageError or Busy, not a fault in the user's code.
        return classify(error)  # type: ignore[arg-type]
    if isinstance(error, UnwrapFailedError):
        inner = error.halted_container.failure()
        if is_problem(inner):
            return inner  # type: ignore[no-any-return]
        return Rejected(inner) if _is_value(inner) else HandlerError(error, function)
    return HandlerError(error, function)


def _is_value(x: object) -> bool:
    try:
        check_value(x)
    except InvalidValue:
        return False
    return True


class Store:
    """A one_store database: a SQLite file (or memory) plus a schema and functions.

    Open with :meth:`open` or :meth:`memory`; use as a context manager to close.

    Example:
        >>> from one_store import Store, define_schema, define_table, mutation, v
        >>> schema = define_schema({"notes": define_table({"text": v.string()})})
        >>> @mutation(args={"text": v.string()})
        ... def add(ctx, args):
        ...     return ctx.db.insert("notes", {"text": args["text"]})
        >>> with Store.memory(schema) as store:
        ...     store.mutation(add, {"text": "hi"}).map(len).unwrap()
        32
    """

    def __init__(
        self,
        storage: Storage,
        *,
        schema: Schema | None = None,
        app: App | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        http: httpx.Client | None = None,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self.storage = storage
        self.app = app
        self.schema = schema if schema is not None else (app.schema if app else None)
        self.clock: Clock = clock or system_clock
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(8), "big")
        self.http = http
        self._identity = identity
        self._auth = Auth(identity)
        self._ids = IdGenerator(seed)
        # Call numbers for ctx.random seeds; next() on a count is atomic under the GIL.
        self._calls = itertools.count(1)
        self._local = threading.local()
        self._closed = False
        # one_store.testing hooks ("fault", "trace"); shared with with_identity views.
        self._testing: dict[str, Any] = {}
        # What ctx.run_query/run_mutation/run_action call (one bound method, not
        # a new closure per call).
        self._run_fn = cast("Runner", self._call)
        if self.schema is not None:
            self._sync_schema(self.schema)
        self.scheduler = StoreScheduler(self)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        schema: Schema | None = None,
        app: str | os.PathLike[str] | App | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        busy_timeout: float = 5.0,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL",
        cache_mib: int = DEFAULT_CACHE_MIB,
        http: httpx.Client | None = None,
    ) -> Store:
        """Open (or create) a store in a SQLite file, in WAL mode.

        Args:
            path: the database file.
            schema: the schema; new tables and indexes are created and back-filled.
            app: an app folder (or dotted module) whose ``schema.py`` and function
                files are loaded; functions are then callable by ``"file:name"``.
            clock: a zero-argument callable giving milliseconds since the epoch.
            seed: seeds ``ctx.random`` and ID generation, for replayable tests.
            busy_timeout: seconds a writer waits for another's lock before ``Busy``.
            synchronous: SQLite durability setting (``"FULL"`` survives power loss).
            cache_mib: SQLite's page cache for this store, in MiB (default 64;
                pages are allocated only as they are read).
            http: the ``httpx.Client`` actions use as ``ctx.http``.

        Raises:
            ValueError: ``synchronous`` or ``cache_mib`` is not a valid setting.
            SchemaMismatchError: existing documents do not match ``schema``.
            StoreOpenError: the file cannot be opened as a database (``.problem``
                says why).
        """
        loaded = _load(app)
        try:
            storage = Storage(
                os.fspath(path),
                busy_timeout=busy_timeout,
                synchronous=synchronous,
                cache_mib=cache_mib,
            )
        except StorageFailure as e:
            raise StoreOpenError(e.problem) from e
        try:
            return cls(
                storage, schema=schema, app=loaded, clock=clock, seed=seed, http=http
            )
        except StorageFailure as e:
            storage.close()
            raise StoreOpenError(e.problem) from e
        except BaseException:
            storage.close()
            raise

    @classmethod
    def memory(
        cls,
        schema: Schema | None = None,
        *,
        app: str | os.PathLike[str] | App | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        http: httpx.Client | None = None,
    ) -> Store:
        """Open a store in memory (for tests and notebooks)."""
        return cls(
            Storage(":memory:"),
            schema=schema,
            app=_load(app),
            clock=clock,
            seed=seed,
            http=http,
        )

    def _sync_schema(self, schema: Schema) -> None:
        # Checks the stored documents of every table whose validator changed,
        # then creates tables and indexes: one transaction, or nothing changes.
        migration.sync(self.storage, schema)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the scheduler worker (if running) and close the file."""
        if self._closed:
            return
        self._closed = True
        self.scheduler.stop()
        self.storage.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_identity(self, identity: Mapping[str, Any] | None) -> Store:
        """A view of this store whose calls see ``identity`` in ``ctx.auth``.

        ``tokenIdentifier`` defaults to ``"<issuer>|<subject>"`` as in Convex.
        """
        view = object.__new__(Store)
        view.__dict__.update(self.__dict__)
        if identity is not None:
            ident = dict(identity)
            ident.setdefault("issuer", "https://one-store.local")
            ident.setdefault("subject", ident.get("tokenIdentifier", "user"))
            ident.setdefault("tokenIdentifier", f"{ident['issuer']}|{ident['subject']}")
            identity = ident
        view._identity = identity
        view._auth = Auth(identity)
        view._run_fn = cast("Runner", view._call)
        return view

    # ------------------------------------------------------------------ functions

    def function(self, path: str) -> Result[FunctionSpec[Any], FunctionNotFound]:
        """Find a function of the loaded app by its ``"file:name"`` path."""
        functions = self.app.functions if self.app else {}
        key = normalize_path(path)
        spec = functions.get(key) if key is not None else None
        if spec is None:
            close = tuple(difflib.get_close_matches(str(path), list(functions), n=3))
            return Failure(FunctionNotFound(str(path), close))
        return Success(spec)

    def path_of(self, spec: FunctionSpec[Any]) -> str:
        """The ``"file:name"`` path of a function of the app (or its Python name)."""
        if self.app:
            for path, candidate in self.app.functions.items():
                if candidate is spec:
                    return path
        return spec.display_name

    def _resolve(self, kind: Kind, fn: object) -> Result[FunctionSpec[Any], Problem]:
        if isinstance(fn, str):
            found = self.function(fn)
            if isinstance(found, Success) and found.unwrap().kind != kind:
                spec = found.unwrap()
                return Failure(
                    FunctionNotFound(fn, (f"{fn} is a {spec.kind}, not a {kind}",))
                )
            return found
        if isinstance(fn, FunctionSpec):
            if fn.kind != kind:
                raise ContextError(
                    f"{fn.display_name} is a {fn.kind}; call it with store.{fn.kind}() / ctx.run_{fn.kind}()"
                )
            return Success(fn)
        raise ContextError(
            f"Expected a function registered with @{kind} or a 'file:name' path, got {fn!r}"
        )

    # ------------------------------------------------------------------ running

    @overload
    def query(
        self, fn: FunctionSpec[T], args: Mapping[str, Any] | None = None
    ) -> Result[T, Problem]: ...
    @overload
    def query(
        self, fn: str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]: ...
    def query(
        self, fn: FunctionSpec[Any] | str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]:
        """Run a query (function or ``"file:name"`` path) at one snapshot."""
        return self._call("query", fn, args)

    @overload
    def mutation(
        self, fn: FunctionSpec[T], args: Mapping[str, Any] | None = None
    ) -> Result[T, Problem]: ...
    @overload
    def mutation(
        self, fn: str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]: ...
    def mutation(
        self, fn: FunctionSpec[Any] | str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]:
        """Run a mutation as one transaction; any Failure leaves no trace."""
        return self._call("mutation", fn, args)

    @overload
    def action(
        self, fn: FunctionSpec[T], args: Mapping[str, Any] | None = None
    ) -> Result[T, Problem]: ...
    @overload
    def action(
        self, fn: str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]: ...
    def action(
        self, fn: FunctionSpec[Any] | str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]:
        """Run an action (sync or ``async def``); each step it runs is its own transaction."""
        return self._call("action", fn, args)

    async def action_async(
        self, fn: FunctionSpec[Any] | str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]:
        """Run an action from async code (an ``async def`` handler runs on this loop)."""
        spec_result = self._resolve("action", fn)
        if isinstance(spec_result, Failure):
            return spec_result
        spec = spec_result.unwrap()
        if inspect.iscoroutinefunction(spec.handler):
            prepared = self._prepare(spec, args)
            if isinstance(prepared, Failure):
                return prepared
            ctx = self._action_ctx(spec)
            try:
                value = await spec.handler(ctx, prepared.unwrap())
            except Exception as e:
                if isinstance(e, OneStoreError):
                    raise
                return Failure(_problem_of(e, self.path_of(spec)))
            return self._finish(spec, value)
        return await asyncio.to_thread(self._call, "action", spec, args)

    def run(self, fn: Callable[[MutationCtx], Any]) -> Result[Any, Problem]:
        """Run ``fn(ctx)`` as an ad-hoc mutation (convex-test's ``t.run``)."""
        from .runtime.functions import mutation

        return self._call("mutation", mutation(lambda ctx, _args: fn(ctx)), None)

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    def _call(self, kind: Kind, fn: object, args: object) -> Result[Any, Problem]:
        if self._closed:
            raise ContextError("This store is closed.")
        # The common case, a spec of the right kind, skips _resolve's Result.
        if type(fn) is FunctionSpec and fn.kind == kind:
            spec: FunctionSpec[Any] = fn
        else:
            resolved = self._resolve(kind, fn)
            if isinstance(resolved, Failure):
                return resolved
            spec = resolved.unwrap()
        local = self._local
        depth = getattr(local, "depth", 0)
        if depth >= MAX_CALL_DEPTH:
            raise ContextError(
                f"Nested function calls are limited to depth {MAX_CALL_DEPTH}."
            )
        checked = self._checked_args(spec, args)
        if not isinstance(checked, dict):
            return Failure(checked)
        local.depth = depth + 1
        try:
            if kind == "action":
                return self._run_action(spec, checked)
            return self._run_transaction(spec, checked)
        finally:
            local.depth -= 1

    def _prepare(
        self, spec: FunctionSpec[Any], args: object
    ) -> Result[dict[str, Any], Problem]:
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
                checked = spec.args.check(args, self.storage.table_of)
            else:
                checked = check_value(args)
        except InvalidValue as e:
            return ArgsInvalid(e.path_text(), error_text(e))
        size = convex_size(checked)
        if size > MAX_FUNCTION_VALUE_SIZE:
            return ArgsInvalid(
                "",
                f"Arguments for {spec.display_name} are too large (actual: "
                f"{mebibytes(size)}, limit: {mebibytes(MAX_FUNCTION_VALUE_SIZE)})",
            )
        return cast("dict[str, Any]", checked)

    def _next_rng(self) -> int:
        """The seed of the next call's ``ctx.random`` (store seed + call number)."""
        return (self.seed * 1_000_003 + next(self._calls)) & 0xFFFFFFFFFFFFFFFF

    def _run_transaction(
        self, spec: FunctionSpec[Any], args: dict[str, Any]
    ) -> Result[Any, Problem]:
        outer: Transaction | None = getattr(self._local, "txn", None)
        if outer is not None:
            return self._run_nested(spec, args, outer)
        if spec.kind != "mutation":
            return self._run_read(spec, args)
        if self._testing and "fault" in self._testing:
            fault: Problem | None = self._testing["fault"](self.path_of(spec))
            if fault is not None:  # one_store.testing.inject_faults
                return Failure(fault)
        storage = self.storage
        now = float(self.clock())
        txn = Transaction(storage, self.schema, now, self._ids, True)
        if self._testing and "trace" in self._testing:
            self._testing["trace"](txn, spec.kind, self.path_of(spec))
        rng = self._next_rng()
        last_known = storage.last_creation_time
        self._local.txn = txn
        try:
            with storage.write():
                ctx = MutationCtx(
                    self._run_fn,
                    self._auth,
                    now,
                    rng,
                    txn,
                    self.scheduler.for_transaction(txn),
                )
                try:
                    value = spec.handler(ctx, args)
                    outcome = self._finish(spec, value, txn)
                except Exception as e:
                    if isinstance(e, OneStoreError):
                        raise
                    raise _Abort(_problem_of(e, self.path_of(spec))) from e
                if isinstance(outcome, Failure):
                    raise _Abort(outcome.failure())
                if txn.inserted:
                    storage.record_creation_time(txn.last_creation_time)
            for hook in txn.on_commit:
                hook()
            return outcome
        except _Abort as abort:
            storage.note_rollback(last_known)
            return Failure(abort.problem)
        except StorageFailure as failure:
            storage.note_rollback(last_known)
            return Failure(failure.problem)
        except BaseException:
            storage.note_rollback(last_known)
            raise
        finally:
            self._local.txn = None

    def _run_read(
        self, spec: FunctionSpec[Any], args: dict[str, Any]
    ) -> Result[Any, Problem]:
        """A query in its own read transaction: one snapshot, nothing to roll back.

        Kept apart from the write path, which every ``store.query`` used to
        take: it skips what only writes need (fault injection, creation-time
        bookkeeping, the rollback note).
        """
        storage = self.storage
        txn = Transaction(storage, self.schema, float(self.clock()), self._ids, False)
        if self._testing and "trace" in self._testing:
            self._testing["trace"](txn, spec.kind, self.path_of(spec))
        local = self._local
        local.txn = txn
        try:
            with storage.read():
                ctx = QueryCtx(
                    self._run_fn, self._auth, txn.now_ms, self._next_rng(), txn
                )
                try:
                    value = spec.handler(ctx, args)
                except Exception as e:
                    if isinstance(e, OneStoreError):
                        raise
                    return Failure(_problem_of(e, self.path_of(spec)))
                return self._finish(spec, value, txn)
        except StorageFailure as failure:
            return Failure(failure.problem)
        finally:
            local.txn = None

    def _run_nested(
        self,
        spec: FunctionSpec[Any],
        args: dict[str, Any],
        outer: Transaction,
        path: str | None = None,
    ) -> Result[Any, Problem]:
        """``ctx.run_query`` / ``ctx.run_mutation`` inside a mutation: same transaction.

        A nested mutation is a sub-transaction (a SAVEPOINT): on Failure only its
        own writes roll back, as Convex's ``runMutation`` inside a mutation.
        """
        writable = spec.kind == "mutation"
        if writable and not outer.writable:
            raise ContextError("A query cannot run a mutation.")
        conn = self.storage.connection
        auth = self._auth
        rng = self._next_rng()
        ctx: BaseCtx
        if writable:
            ctx = MutationCtx(
                self._run_fn,
                auth,
                outer.now_ms,
                rng,
                outer,
                self.scheduler.for_transaction(outer),
            )
        else:
            ctx = QueryCtx(self._run_fn, auth, outer.now_ms, rng, outer)
        conn.execute("SAVEPOINT nested")
        try:
            value = spec.handler(ctx, args)
            outcome = self._finish(spec, value, outer)
        except Exception as e:
            if isinstance(e, OneStoreError):
                raise
            outcome = Failure(_problem_of(e, path or self.path_of(spec)))
        if isinstance(outcome, Failure):
            conn.execute("ROLLBACK TO nested")
            # A table created inside it is gone again: forget its layout too.
            self.storage.reload_layouts()
        conn.execute("RELEASE nested")
        return outcome

    def _finish(
        self, spec: FunctionSpec[Any], value: object, txn: Transaction | None = None
    ) -> Result[Any, Problem]:
        """Check a handler's outcome: a Result or a plain value, against ``returns``."""
        if (
            type(value) not in _PLAIN
        ):  # a plain value is neither a Result nor a coroutine
            if isinstance(value, Failure):
                problem = value.failure()
                if is_problem(problem):
                    return value
                return Failure(
                    Rejected(problem)
                    if _is_value(problem)
                    else HandlerError(
                        TypeError(f"handler returned Failure({problem!r})")
                    )
                )
            if isinstance(value, Success):
                value = value.unwrap()
            if inspect.iscoroutine(value):
                value.close()
                raise ContextError(
                    f"{spec.display_name} is async: only actions may be async def."
                )
        checked: Value
        try:
            if spec.returns is not None:
                checked = spec.returns.check(value, self.storage.table_of)
                size = convex_size(checked)
            elif txn is not None:
                # Documents read by the transaction are sized by a bound from
                # their stored text; measure exactly only when the bound is over.
                checked, size = txn.check_result(value)
            else:
                checked = check_value(value)
                size = convex_size(checked)
        except InvalidValue as e:
            return Failure(ReturnsInvalid(e.path_text(), error_text(e)))
        if size > MAX_FUNCTION_VALUE_SIZE:
            size = convex_size(checked)
        if size > MAX_FUNCTION_VALUE_SIZE:
            return Failure(
                ReturnsInvalid(
                    "",
                    f"Function {spec.display_name} return value is too large "
                    f"(actual: {mebibytes(size)}, limit: "
                    f"{mebibytes(MAX_FUNCTION_VALUE_SIZE)})",
                )
            )
        return Success(checked)

    def _action_ctx(self, spec: FunctionSpec[Any]) -> ActionCtx:
        return ActionCtx(
            self._run_fn,
            self._auth,
            float(self.clock()),
            self._next_rng(),
            self.scheduler.for_action(),
            self.http,
        )

    def _run_action(
        self, spec: FunctionSpec[Any], args: dict[str, Any]
    ) -> Result[Any, Problem]:
        if getattr(self._local, "txn", None) is not None:
            raise ContextError("Actions cannot be run from inside a query or mutation.")
        ctx = self._action_ctx(spec)
        try:
            value = spec.handler(ctx, args)
            if inspect.iscoroutine(value):
                value = _run_coroutine(value)
        except Exception as e:
            if isinstance(e, OneStoreError):
                raise
            return Failure(_problem_of(e, self.path_of(spec)))
        return self._finish(spec, value)

    def _system_write(self, work: Callable[[Transaction], T]) -> Result[T, Problem]:
        """Run library code (the scheduler, imports) in its own write transaction."""
        outer = getattr(self._local, "txn", None)
        txn = Transaction(
            self.storage, self.schema, float(self.clock()), self._ids, True
        )
        last_known = self.storage.last_creation_time
        self._local.txn = txn
        try:
            with self.storage.write():
                value = work(txn)
                if txn.inserted:
                    self.storage.record_creation_time(txn.last_creation_time)
        except (ProblemError, StorageFailure) as e:
            self.storage.note_rollback(last_known)
            return Failure(e.problem)
        except BaseException:
            self.storage.note_rollback(last_known)
            raise
        finally:
            self._local.txn = outer
        for hook in txn.on_commit:
            hook()
        return Success(value)

    # ------------------------------------------------------------------ reading helpers

    def documents(self, table: str) -> Iterator[dict[str, Value]]:
        """Every document of ``table`` in ``_creationTime`` order (outside any function)."""
        with self.storage.read():
            yield from list(self.storage.scan(table))


def _run_coroutine(coro: Any) -> Any:
    """Run an ``async def`` handler to completion from synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running loop (e.g. a notebook): run on a fresh thread.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # re-raised below in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _load(app: object) -> App | None:
    if app is None:
        return None
    from .app import App, load_app

    return app if isinstance(app, App) else load_app(app)  # type: ignore[arg-type]
