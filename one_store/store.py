"""``Store``: open a file (or memory) and run queries, mutations and actions.

Every call returns a ``Result``. A mutation is one SQLite transaction, begun with
``BEGIN IMMEDIATE`` so that concurrent writers (threads or processes) serialise and
never lose an update; any Failure rolls it back completely. A query reads one
snapshot. An action runs outside any transaction and composes the others. A
``postgresql://`` DSN opens the PostgreSQL engine instead
(:mod:`one_store.engine.postgres`), with the same guarantees across machines.

``Store`` opens the file and syncs the schema; running a function is the
executor's job (:mod:`one_store.runtime.executor`), to which every call goes.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from returns.result import Result

from . import data
from .engine import migration
from .engine.postgres.connection import is_dsn
from .engine.sqlite.storage import DEFAULT_CACHE_MIB, Storage
from .model.display import html_table, text_table
from .model.errors import (
    FunctionNotFound,
    Problem,
    StorageFailure,
    StoreOpenError,
    Unauthenticated,
    as_user_result,
)
from .model.schema import Schema
from .model.values import Value
from .runtime.auth import Authenticator
from .runtime.context import MutationCtx, QueryCtx
from .runtime.executor import Executor
from .runtime.file_store import FileStore
from .runtime.files import DEFAULT_SITE_URL, Files
from .runtime.functions import FunctionSpec
from .runtime.jobs import StoreScheduler
from .runtime.watch import Watch, Watches

if TYPE_CHECKING:
    import httpx

    from .app import App
    from .engine.postgres.storage import PgStorage

T = TypeVar("T")
Clock = Callable[[], float]


def system_clock() -> float:
    """Milliseconds since the epoch from the wall clock."""
    return time.time() * 1000.0


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
        storage: Storage | PgStorage,
        *,
        schema: Schema | None = None,
        app: App | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
        http: httpx.Client | None = None,
        identity: Mapping[str, Any] | None = None,
        site_url: str = DEFAULT_SITE_URL,
    ) -> None:
        # The engine: a SQLite Storage or a PgStorage. Typed Any so that code
        # (tests, tools) reaching one engine's own members (a SQLite connection's
        # iterdump) needs no cast; the runtime holds it as a Backend.
        self.storage: Any = storage
        self.app = app
        self.schema = schema if schema is not None else (app.schema if app else None)
        self.executor = Executor(
            storage,
            schema=self.schema,
            functions=app.functions if app else None,
            clock=clock or system_clock,
            seed=seed,
            http=http,
            identity=identity,
        )
        # A read-only store reads the file as it is: its own tables and indexes.
        if self.schema is not None and not storage.readonly:
            self._sync_schema(self.schema)
        # A read-only store records no crons.
        crons = app.crons if app is not None and not storage.readonly else None
        self.scheduler = StoreScheduler(self.executor, crons)
        self.executor.use_scheduler(self.scheduler)
        data.show_results_in_notebooks()  # a dict lookup outside IPython
        # Verifies tokens (with_token, serve) against the app's auth_config.py.
        self.authenticator = Authenticator(
            app.auth_providers if app is not None else (),
            self.executor.clock,
            root=app.root if app is not None else None,
            http=http,
        )
        # Shared with with_identity views (copied by reference); idle until a watch.
        self._watches = Watches(self.executor, follow=storage.follows_others)
        # File storage (docs/file-storage.md): ctx.storage and store.files.
        files = Files(self.executor, site_url)
        self.executor.use_files(files)
        self.files = FileStore(files)

    @property
    def clock(self) -> Clock:
        """The clock ``ctx.now()`` reads: milliseconds since the epoch."""
        return self.executor.clock

    @property
    def seed(self) -> int:
        """The seed of ``ctx.random`` and of ID generation."""
        return self.executor.seed

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
        readonly: bool = False,
        site_url: str = DEFAULT_SITE_URL,
    ) -> Store:
        """Open (or create) a store in a SQLite file (WAL mode) or a PostgreSQL database.

        Args:
            path: the database file, or a ``postgresql://`` / ``postgres://``
                DSN (docs/postgresql.md): the tables then live in the
                connection's current schema, shared by every process and
                machine that opens it (``synchronous`` and ``cache_mib`` are
                SQLite's and do not apply).
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
            readonly: open an existing file read-only (SQLite's ``mode=ro``): the
                file is never changed, and keeps its own tables and indexes (a
                ``schema`` or ``app`` only provides functions; nothing is created,
                migrated or checked, and an app's crons are not recorded). Queries
                run; a mutation, ``store.run`` or a scheduler run raises
                ``ContextError``.
            site_url: the origin file URLs (``ctx.storage.get_url``) and upload
                URLs are made under (``serve`` sets its own address).

        Raises:
            ValueError: ``synchronous`` or ``cache_mib`` is not a valid setting.
            SchemaMismatchError: existing documents do not match ``schema``.
            StoreOpenError: the file cannot be opened as a database; the message
                names the path and, when the system can tell, why (a missing
                folder, permissions). ``.problem`` is the ``StorageError``.

        Example:
            >>> with Store.open("notes.db", readonly=True) as store:  # doctest: +SKIP
            ...     print(store.storage.tables())
        """
        loaded = _load(app)
        target = os.fspath(path)
        storage: Storage | PgStorage
        try:
            if is_dsn(target):
                from .engine.postgres.storage import PgStorage

                storage = PgStorage(
                    target, busy_timeout=busy_timeout, readonly=readonly
                )
            else:
                storage = Storage(
                    target,
                    busy_timeout=busy_timeout,
                    synchronous=synchronous,
                    cache_mib=cache_mib,
                    readonly=readonly,
                )
        except StorageFailure as e:
            raise StoreOpenError(e.problem) from e
        try:
            return cls(
                storage,
                schema=schema,
                app=loaded,
                clock=clock,
                seed=seed,
                http=http,
                site_url=site_url,
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
        site_url: str = DEFAULT_SITE_URL,
    ) -> Store:
        """Open a store in memory (for tests and notebooks); files in a temporary folder."""
        return cls(
            Storage(":memory:"),
            schema=schema,
            app=_load(app),
            clock=clock,
            seed=seed,
            http=http,
            site_url=site_url,
        )

    def _sync_schema(self, schema: Schema) -> None:
        # Checks the stored documents of every table whose validator changed,
        # then creates tables and indexes: one transaction, or nothing changes.
        migration.sync(self.storage, schema)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop the scheduler worker (if running) and close the file."""
        if self.executor.closed:
            return
        self._watches.close()
        self.executor.close()
        self.authenticator.close()
        self.scheduler.stop()
        self.storage.close()

    @property
    def readonly(self) -> bool:
        """Whether the store was opened with ``readonly=True`` (it never writes)."""
        return bool(self.storage.readonly)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_identity(self, identity: Mapping[str, Any] | None) -> Store:
        """A view of this store whose calls see ``identity`` in ``ctx.auth``.

        The view shares the file, the scheduler and every other setting; only
        the identity differs. ``tokenIdentifier`` defaults to
        ``"<issuer>|<subject>"`` as in Convex.
        """
        if identity is not None:
            ident = dict(identity)
            ident.setdefault("issuer", "https://one-store.local")
            ident.setdefault("subject", ident.get("tokenIdentifier", "user"))
            ident.setdefault("tokenIdentifier", f"{ident['issuer']}|{ident['subject']}")
            identity = ident
        view = copy.copy(self)
        view.executor = self.executor.with_identity(identity)
        return view

    def with_token(self, token: str) -> Result[Store, Problem]:
        """A view of this store whose calls run as the signed-in user of ``token``.

        The JWT is verified as ``one-store serve`` verifies ``Authorization:
        Bearer``: against the providers of the app's ``auth_config.py``, with
        Convex's rules per provider kind and times read from this store's clock
        (see :mod:`one_store.runtime.auth`).

        Returns:
            ``Success(view)``, or ``Failure(Unauthenticated)`` saying why (expired,
            not yet valid, signature, issuer, audience, malformed, ...).

        Example:
            >>> with Store.memory() as store:  # no auth_config.py: no provider
            ...     store.with_token("a.b.c").failure().reason
            'malformed'
        """
        verified: Result[dict[str, Any], Unauthenticated] = self.authenticator.verify(
            token
        )
        return as_user_result(verified.map(self.with_identity))

    # ------------------------------------------------------------------ functions

    def function(self, path: str) -> Result[FunctionSpec[Any], FunctionNotFound]:
        """Find a function of the loaded app by its ``"file:name"`` path."""
        return self.executor.function(path)

    def path_of(self, spec: FunctionSpec[Any]) -> str:
        """The ``"file:name"`` path of a function of the app (or its Python name)."""
        return self.executor.path_of(spec)

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
        return self.executor.call("query", fn, args)

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
        return self.executor.call("mutation", fn, args)

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
        return self.executor.call("action", fn, args)

    async def action_async(
        self, fn: FunctionSpec[Any] | str, args: Mapping[str, Any] | None = None
    ) -> Result[Any, Problem]:
        """Run an action from async code (an ``async def`` handler runs on this loop)."""
        return await self.executor.call_async(fn, args)

    def run(self, fn: Callable[[MutationCtx], Any]) -> Result[Any, Problem]:
        """Run ``fn(ctx)`` as an ad-hoc mutation (convex-test's ``t.run``)."""
        from .runtime.functions import mutation

        return self.executor.call(
            "mutation", mutation(lambda ctx, _args: fn(ctx)), None
        )

    def read(self, fn: Callable[[QueryCtx], T]) -> Result[T, Problem]:
        """Run ``fn(ctx)`` as an ad-hoc query: one snapshot, never the write lock.

        ``ctx`` is a query's (``ctx.db`` reads; a write raises ``ContextError``)
        and what ``fn`` returns is checked as a query's return value.

        Example:
            >>> from one_store import Store, define_schema, define_table, v
            >>> store = Store.memory(define_schema({"n": define_table({"x": v.int64()})}))
            >>> store.read(lambda ctx: ctx.db.query("n").collect())
            <Success: []>
        """
        from .runtime.functions import query

        return self.executor.call("query", query(lambda ctx, _args: fn(ctx)), None)

    def table(self, name: str) -> data.TableView:
        """A live, read-only view of table ``name`` for notebooks and DataFrames.

        Raises:
            ContextError: no such table (neither in the schema nor in the file).
        """
        return data.TableView(self.executor, self.schema, name)

    def __repr__(self) -> str:
        return text_table(*data.store_summary(self.executor, self.storage.location))

    def _repr_html_(self) -> str:
        return html_table(*data.store_summary(self.executor, self.storage.location))

    def watch(
        self,
        fn: FunctionSpec[Any] | str,
        args: Mapping[str, Any] | None = None,
        on_change: Callable[[Result[Any, Problem]], object] | None = None,
    ) -> Watch:
        """Watch a query: re-run it when a committed write changes what it read.

        The first run happens here (``w.result``); ``on_change(result)`` is
        called for each later result that differs from the last one. Writes
        through this store have re-run the watches they touch when the call
        returns; writes of other connections are noticed within 100 ms. See
        docs/reactive-queries.md.

        Raises:
            ContextError: the store is closed, or ``fn`` is a mutation or action.
        """
        return self._watches.watch(self.executor, fn, args, on_change)

    # ------------------------------------------------------------------ reading helpers

    def documents(self, table: str) -> Iterator[dict[str, Value]]:
        """Every document of ``table`` in ``_creationTime`` order (outside any function)."""
        with self.storage.read():
            yield from list(self.storage.scan(table))


def _load(app: str | os.PathLike[str] | App | None) -> App | None:
    if app is None:
        return None
    from .app import App, load_app

    return app if isinstance(app, App) else load_app(app)
