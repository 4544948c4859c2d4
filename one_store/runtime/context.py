"""The ``ctx`` handed to handlers: QueryCtx, MutationCtx, ActionCtx.

- :class:`QueryCtx`: ``db`` (a :class:`~one_store.runtime.database.DatabaseReader`),
  ``auth``, ``now()``, ``random``, ``run_query``, ``storage`` (``get_url``).
- :class:`MutationCtx`: ``db`` (a :class:`~one_store.runtime.database.DatabaseWriter`),
  ``scheduler``, ``auth``, ``now()``, ``random``, ``run_query``, ``run_mutation``
  (a sub-transaction), ``storage`` (in the mutation's transaction).
- :class:`ActionCtx`: ``run_query`` / ``run_mutation`` / ``run_action`` (each its own
  transaction, each returning a ``Result``), ``scheduler``, ``auth``, ``http``,
  ``storage`` (:mod:`one_store.runtime.files`), ``vector_search``; no ``db``.
"""

from __future__ import annotations

import datetime as dt
import random as random_module
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from returns.result import Result

from ..engine.vectors import vector_scan
from ..model.errors import ContextError, Problem
from .ctx_storage import StorageActions, StorageReader, StorageWriter
from .database import DatabaseReader, DatabaseWriter
from .files import Files
from .functions import Kind
from .transaction import Transaction

if TYPE_CHECKING:
    import httpx

    from ..engine.backend import Backend


class Auth:
    """``ctx.auth``: the caller's identity (set with ``store.with_identity``)."""

    def __init__(self, identity: Mapping[str, Any] | None) -> None:
        self._identity = dict(identity) if identity is not None else None

    def get_user_identity(self) -> dict[str, Any] | None:
        """The identity dict (``subject``, ``issuer``, ``tokenIdentifier``, ...) or None."""
        return None if self._identity is None else dict(self._identity)


Runner = Callable[[Kind, object, object], Result[Any, Problem]]


class SchedulerApi(Protocol):
    """What ``ctx.scheduler`` offers (``one_store.runtime.scheduler.Scheduler`` implements it).

    Functions are given as a ``FunctionSpec`` or a ``"file:name"`` path.
    """

    def run_after(
        self, delay_ms: float, fn: object, args: dict[str, Any] | None = None
    ) -> str:
        """Run ``fn`` ``delay_ms`` from now; return the job's ``_scheduled_functions`` ID."""
        ...

    def run_at(
        self,
        timestamp_ms: float | dt.datetime,
        fn: object,
        args: dict[str, Any] | None = None,
    ) -> str:
        """Run ``fn`` at ``timestamp_ms`` (ms since the epoch or an aware datetime)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job (a finished one is left alone)."""
        ...


class BaseCtx:
    """What every context has: ``auth``, ``now()``, ``random``, ``run_query``."""

    # The store's file storage, behind ``ctx.storage`` (set by the executor).
    _files: Files | None = None

    def _file_storage(self) -> Files:
        if self._files is None:
            raise ContextError("ctx.storage needs a Store (this context has none).")
        return self._files

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
    ) -> None:
        self._runner = runner
        self.auth = auth
        self._now = now_ms
        self._seed = seed
        self._random: random_module.Random | None = None

    @property
    def random(self) -> random_module.Random:
        """A random source seeded per call, so a replay with the same seed is identical."""
        if self._random is None:  # built on first use: most handlers never need it
            self._random = random_module.Random(self._seed)
        return self._random

    def now(self) -> float:
        """Milliseconds since the epoch, frozen when the function started."""
        return self._now

    def run_query(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run a query (function or ``"file:name"`` path); returns a Result."""
        return self._runner("query", fn, args)

    def vector_search(
        self, table: str, index: str, request: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """Vector search runs in actions only, as Convex's ``ctx.vectorSearch``."""
        raise ContextError(
            "ctx.vector_search is only available in actions: call it from an action "
            "(and read the documents with ctx.run_query)."
        )


class QueryCtx(BaseCtx):
    """The context of a query: a read-only ``db`` at one snapshot."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
        txn: Transaction,
    ) -> None:
        super().__init__(runner, auth, now_ms, seed)
        self.db: DatabaseReader = DatabaseReader(txn)
        self._txn = txn

    @property
    def storage(self) -> StorageReader:
        """File storage: ``get_url`` (see docs/file-storage.md)."""
        return StorageReader(self._file_storage(), self._txn)

    @property
    def scheduler(self) -> SchedulerApi:
        """Queries cannot schedule."""
        raise ContextError(
            "ctx.scheduler is not available in a query: use a mutation or an action."
        )


class MutationCtx(BaseCtx):
    """The context of a mutation: ``db`` writer, ``scheduler``, ``run_mutation``."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
        txn: Transaction,
        scheduler: SchedulerApi,
    ) -> None:
        super().__init__(runner, auth, now_ms, seed)
        self.db: DatabaseWriter = DatabaseWriter(txn)
        self.scheduler: SchedulerApi = scheduler
        self._txn = txn

    @property
    def storage(self) -> StorageWriter:
        """File storage: ``generate_upload_url``, ``get_url``, ``delete``."""
        return StorageWriter(self._file_storage(), self._txn)

    def run_mutation(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run a mutation inside this one, as a sub-transaction (its writes roll back alone on Failure)."""
        return self._runner("mutation", fn, args)


class ActionCtx(BaseCtx):
    """The context of an action: ``run_query/run_mutation/run_action``, no ``db``."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
        scheduler: SchedulerApi,
        http: httpx.Client | None,
        backend: Backend | None = None,
    ) -> None:
        super().__init__(runner, auth, now_ms, seed)
        self.scheduler: SchedulerApi = scheduler
        self._http = http
        self._own_http: httpx.Client | None = None
        self._backend = backend

    def vector_search(
        self, table: str, index: str, request: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The documents nearest ``request["vector"]`` in vector index ``index``.

        ``request`` is ``{"vector": [...], "limit": 10, "filter": lambda q: ...}``
        (``limit`` 1..256, default 10; ``filter`` of ``q.eq(field, value)`` and
        ``q.or_(...)`` on the index's filter fields, all OR-ed). Exact cosine
        similarity over the latest committed data; ties by internal ID.

        Returns:
            ``[{"_id": id, "_score": cosine similarity}]``, best first.

        Raises:
            ProblemError: a bad request (the action then fails with its Problem:
                ``ArgsInvalid`` or ``InvalidIndexRange``).

        Example:
            >>> # inside an action:
            >>> # ctx.vector_search("docs", "by_embedding", {"vector": v, "limit": 5})
        """
        scan = vector_scan(table, index, request)
        if self._backend is None:
            raise ContextError("This action context has no database to search.")
        return [
            {"_id": doc_id, "_score": score}
            for doc_id, score in self._backend.vector_search(scan)
        ]

    @property
    def storage(self) -> StorageActions:
        """File storage: ``store``, ``get``, ``get_url``, ``delete``, ``generate_upload_url``."""
        return StorageActions(self._file_storage())

    @property
    def db(self) -> Any:
        """Actions have no ``db``: read and write through ``run_query``/``run_mutation``."""
        raise ContextError(
            "ctx.db is not available in an action: use ctx.run_query / ctx.run_mutation."
        )

    @property
    def http(self) -> httpx.Client:
        """The outbound HTTP client (inject one with ``Store.open(..., http=...)``)."""
        if self._http is None:
            import httpx

            # Made for this action and closed when it ends (see ``close``).
            self._http = self._own_http = httpx.Client(timeout=30.0)
        return self._http

    def close(self) -> None:
        """Release what the action opened (its own HTTP client); called when it ends."""
        if self._own_http is not None:
            self._own_http.close()
            self._own_http = None

    def run_mutation(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run a mutation in its own transaction; earlier ones stay committed."""
        return self._runner("mutation", fn, args)

    def run_action(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run another action."""
        return self._runner("action", fn, args)
