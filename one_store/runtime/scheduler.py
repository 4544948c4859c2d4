"""``ctx.scheduler`` and the ``_scheduled_functions`` table it writes.

Jobs live in the system table ``_scheduled_functions`` with Convex's document shape
(``name``, ``args: [args]``, ``scheduledTime``, ``state: {kind}``, ``completedTime?``),
readable through ``ctx.db.system``. From a mutation, scheduling is part of the
mutation's transaction: a rolled-back mutation schedules nothing. From an action,
scheduling commits at once.

:class:`Scheduler` is ``ctx.scheduler`` (``run_after``, ``run_at``, ``cancel``);
:class:`ScheduledFunctions` names jobs' functions and writes their documents, for
``ctx.scheduler`` and for the job runner (``store.scheduler``,
:mod:`one_store.runtime.jobs`), which runs them when they are due.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from returns.result import Failure, Success

from ..engine.backend import TableInfo
from ..model.errors import (
    ArgsInvalid,
    ContextError,
    InvalidId,
    LimitExceeded,
    ProblemError,
)
from ..model.ids import table_number_of
from ..model.schema import TableDefinition, define_table
from ..model.validators import v
from ..model.values import Document, convex_size
from .functions import FunctionSpec, normalize_path

if TYPE_CHECKING:
    from .executor import Executor
    from .transaction import Transaction

TABLE = "_scheduled_functions"
CRON_TABLE = "_cron_jobs"
CRON_TABLE_NUMBER = 9003
MAX_DELAY_MS = 5 * 366 * 24 * 3600 * 1000
MAX_SCHEDULED_PER_MUTATION = 1000
# Convex's limit on the args of everything one call schedules (BE knob; 16 MiB).
MAX_SCHEDULED_ARGS_BYTES = 16 * 1024 * 1024
DEFINITION = define_table(
    {
        "name": v.string(),
        "args": v.array(v.any()),
        "scheduledTime": v.number(),
        "state": v.object({"kind": v.string(), "error": v.optional(v.string())}),
        "completedTime": v.optional(v.number()),
    }
).index("by_state", ["state.kind", "scheduledTime"])
CRON_DEFINITION = define_table(
    {
        "name": v.string(),  # the cron identifier
        "function": v.string(),  # "file:name"
        "args": v.array(v.any()),
        "schedule": v.any(),  # Convex's schedule object, e.g. {"type": "interval", ...}
        "nextRun": v.number(),
        "lastJob": v.optional(v.string()),
    }
).index("by_name", ["name"])


def job_kind(job: Document) -> str:
    """A job's ``state.kind``."""
    state = job["state"]
    return str(state.get("kind")) if isinstance(state, dict) else ""


def job_args(job: Document) -> dict[str, Any]:
    """The args object of a job or cron row (stored as ``[args]``, as Convex)."""
    return cast(dict[str, Any], cast(list[Any], job["args"])[0])


def _bad(message: str, path: str = "") -> ProblemError:
    return ProblemError(ArgsInvalid(path, message))


class Scheduler:
    """``ctx.scheduler``: ``run_after``, ``run_at``, ``cancel``.

    In a mutation it writes inside the mutation's transaction; in an action each
    call commits on its own.
    """

    def __init__(
        self,
        owner: ScheduledFunctions,
        txn: Transaction | None,
        parent: str | None = None,
    ) -> None:
        self._owner = owner
        self._txn = txn
        # The scheduled action job this ctx runs in: once it is canceled, what it
        # schedules is born canceled (Convex: it keeps running, its children don't).
        self._parent = parent
        self._count = 0
        self._args_bytes = 0

    def run_after(
        self, delay_ms: float, fn: object, args: dict[str, Any] | None = None
    ) -> str:
        """Run ``fn`` (a function or ``"file:name"``) ``delay_ms`` from now; return the job ID.

        Raises:
            ProblemError: ``ArgsInvalid`` for a negative or non-finite delay or bad
                args, ``FunctionNotFound`` for an unknown path (the calling
                function then fails with that Problem).
        """
        if (
            isinstance(delay_ms, bool)
            or not isinstance(delay_ms, int | float)
            or not math.isfinite(delay_ms)
            or delay_ms < 0
        ):
            raise _bad(
                f"`delayMs` must be a non-negative finite number, got {delay_ms!r}",
                "delayMs",
            )
        return self._schedule(self._now() + float(delay_ms), fn, args)

    def run_at(
        self,
        timestamp_ms: float | dt.datetime,
        fn: object,
        args: dict[str, Any] | None = None,
    ) -> str:
        """Run ``fn`` at ``timestamp_ms`` (ms since the epoch, or an aware ``datetime``, as Convex's ``runAt(msOrDate)``); a past time means now."""
        if isinstance(timestamp_ms, dt.datetime):
            if timestamp_ms.tzinfo is None:
                raise _bad(
                    "`timestamp` datetime must be timezone-aware (e.g. tzinfo=datetime.UTC)",
                    "timestamp",
                )
            timestamp_ms = timestamp_ms.timestamp() * 1000
        if (
            isinstance(timestamp_ms, bool)
            or not isinstance(timestamp_ms, int | float)
            or not math.isfinite(timestamp_ms)
        ):
            raise _bad(
                f"`timestamp` must be a finite number of ms, got {timestamp_ms!r}",
                "timestamp",
            )
        return self._schedule(float(timestamp_ms), fn, args)

    def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job; a finished job is left as it is (as Convex).

        Raises:
            ProblemError: ``InvalidId`` when ``job_id`` is not a scheduled job's ID.
            ContextError: a scheduled mutation cancelling itself.
        """
        if not isinstance(job_id, str) or table_number_of(job_id) is None:
            raise ProblemError(
                InvalidId(repr(job_id), f"Invalid scheduled function ID: {job_id!r}")
            )

        def work(txn: Transaction) -> None:
            layout = self._owner.layout(txn)
            if table_number_of(job_id) != layout.number:
                raise ProblemError(
                    InvalidId(
                        job_id,
                        f"Invalid scheduled function ID: {job_id!r} is not an ID of "
                        "_scheduled_functions",
                    )
                )
            job = txn.storage.get(layout, job_id)
            if job is None:
                raise ProblemError(
                    InvalidId(job_id, f"No scheduled function with ID {job_id}")
                )
            if job_kind(job) in ("pending", "inProgress"):
                if self._owner.executor.current_job("mutation") == job_id:
                    raise ContextError("A mutation cannot cancel itself")
                job["state"] = {"kind": "canceled"}
                job["completedTime"] = txn.now_ms
                txn.storage.update(layout, job)

        self._in_transaction(work)

    def _now(self) -> float:
        return (
            self._txn.now_ms
            if self._txn is not None
            else float(self._owner.executor.clock())
        )

    def _schedule(self, when: float, fn: object, args: dict[str, Any] | None) -> str:
        name, spec = self._owner.name_of(fn)
        if spec.kind not in ("mutation", "action"):
            raise _bad(
                f"Only mutations and actions can be scheduled; {name} is a {spec.kind}"
            )
        if abs(when - self._now()) > MAX_DELAY_MS:
            raise _bad(
                "Scheduled time is more than 5 years away (InvalidScheduledFunctionDelay)"
            )
        prepared = self._owner.executor.prepare(spec, args)
        if isinstance(prepared, Failure):
            raise ProblemError(prepared.failure())
        self._count += 1
        if self._count > MAX_SCHEDULED_PER_MUTATION and self._txn is not None:
            raise ProblemError(
                LimitExceeded(
                    "functionsScheduled",
                    MAX_SCHEDULED_PER_MUTATION,
                    "Too many functions scheduled by this mutation (limit: 1000)",
                )
            )
        self._args_bytes += convex_size(prepared.unwrap())
        if self._args_bytes > MAX_SCHEDULED_ARGS_BYTES:
            raise ProblemError(
                LimitExceeded(
                    "scheduledFunctionArgsBytes",
                    MAX_SCHEDULED_ARGS_BYTES,
                    "Too many bytes of arguments in the functions scheduled by this "
                    f"function call (limit: {MAX_SCHEDULED_ARGS_BYTES} bytes)",
                )
            )
        return str(
            self._in_transaction(
                lambda txn: self._owner.insert_job(
                    txn, name, prepared.unwrap(), when, self._parent
                )
            )
        )

    def _in_transaction(self, work: Callable[[Transaction], Any]) -> Any:
        if self._txn is not None:
            return work(self._txn)
        result = self._owner.executor.system_write(work)
        if isinstance(result, Failure):
            raise ProblemError(result.failure())
        return result.unwrap()


class ScheduledFunctions:
    """The ``_scheduled_functions`` table: naming jobs' functions and writing jobs.

    What ``ctx.scheduler`` (:class:`Scheduler`) and the job runner share; the
    runner (``store.scheduler``) is :class:`one_store.runtime.jobs.StoreScheduler`.
    """

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._by_name: dict[str, FunctionSpec[Any]] = {}
        self._wake = threading.Event()

    def for_transaction(self, txn: Transaction) -> Scheduler:
        """The ``ctx.scheduler`` of a mutation."""
        return Scheduler(self, txn)

    def for_action(self) -> Scheduler:
        """The ``ctx.scheduler`` of an action (of the scheduled job it runs in, if any)."""
        return Scheduler(self, None, self.executor.current_job("action"))

    def layout(self, txn: Transaction) -> TableInfo:
        """The ``_scheduled_functions`` table (created on first use)."""
        return self.system_table(txn, TABLE, DEFINITION, None)

    def system_table(
        self,
        txn: Transaction,
        name: str,
        definition: TableDefinition,
        number: int | None,
    ) -> TableInfo:
        """The system table ``name`` (created in ``txn`` on first use)."""
        backend = txn.storage
        layout = backend.layouts.get(name)
        if layout is not None:
            return layout
        return backend.ensure_table(name, definition, number)

    def name_of(self, fn: object) -> tuple[str, FunctionSpec[Any]]:
        """A job's ``name`` for a function or path (functions without an app are remembered)."""
        if isinstance(fn, str):
            found = self.executor.function(fn)
            if isinstance(found, Failure):
                raise ProblemError(found.failure())
            return normalize_path(fn) or fn, found.unwrap()
        if isinstance(fn, FunctionSpec):
            path = self.executor.path_of(fn)
            if ":" not in path:
                module = getattr(fn.handler, "__module__", "local")
                path = f"{module}:{fn.display_name}"
            self._by_name[path] = fn
            return path, fn
        raise ContextError(
            f"Only functions or 'file:name' paths can be scheduled, got {fn!r}"
        )

    def spec_of(self, name: str) -> FunctionSpec[Any] | None:
        """The function a job's ``name`` stands for, if this process knows it."""
        if name in self._by_name:
            return self._by_name[name]
        found = self.executor.function(name)
        if isinstance(found, Success):
            spec: FunctionSpec[Any] = found.unwrap()
            return spec
        return _imported_function(name)

    def insert_job(
        self,
        txn: Transaction,
        name: str,
        args: dict[str, Any],
        when: float,
        parent: str | None = None,
    ) -> str:
        """Write a pending job (inside ``txn``); return its ID.

        A job scheduled by an action whose own job (``parent``) has been canceled
        is written already ``canceled``, as Convex does.
        """
        layout = self.layout(txn)
        job_id = txn.ids.new(layout.number, txn.now_ms)
        doc: Document = {
            "_id": job_id,
            "_creationTime": txn.creation_time(),
            "name": name,
            "args": [args],
            "scheduledTime": when,
            "state": {"kind": "pending"},
        }
        owner = txn.storage.get(layout, parent) if parent is not None else None
        if owner is not None and job_kind(owner) == "canceled":
            doc["state"] = {"kind": "canceled"}
            doc["completedTime"] = txn.now_ms
        txn.storage.insert(layout, doc)
        txn.observer.document_written("schedule", TABLE, job_id)
        txn.on_commit.append(self.wake)
        return job_id

    def wake(self) -> None:
        """Tell the background worker that new work may be due."""
        self._wake.set()

    def wait_for_work(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for :meth:`wake` (the worker's sleep)."""
        self._wake.wait(timeout)
        self._wake.clear()


def _imported_function(name: str) -> FunctionSpec[Any] | None:
    """A function scheduled by object (``"module:name"``) from a module already imported.

    Lets another store in this process (or a worker script that imports the same
    module) run jobs scheduled with function objects. Modules are never imported
    here: job names come from the file, and importing by name could run code.
    """
    module_name, _, attr = name.rpartition(":")
    module = sys.modules.get(module_name)
    if module is None:
        return None
    candidate = getattr(module, attr, None)
    if isinstance(candidate, FunctionSpec) and candidate.display_name == attr:
        return candidate
    for value in vars(module).values():
        if isinstance(value, FunctionSpec) and value.display_name == attr:
            return value
    return None


__all__ = ["ScheduledFunctions", "Scheduler"]
