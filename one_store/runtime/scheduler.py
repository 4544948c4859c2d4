"""Scheduled functions and crons: ``ctx.scheduler`` and ``store.scheduler``.

Jobs live in the system table ``_scheduled_functions`` with Convex's document shape
(``name``, ``args: [args]``, ``scheduledTime``, ``state: {kind}``, ``completedTime?``),
readable through ``ctx.db.system``.

- From a mutation, scheduling is part of the mutation's transaction: a rolled-back
  mutation schedules nothing. From an action, scheduling commits at once.
- A scheduled **mutation** runs exactly once: the job's state is re-read, the
  mutation runs as a sub-transaction and the job's final state is written, all in
  one SQLite write transaction (``BEGIN IMMEDIATE``), so two workers (threads or
  processes) can never both run it. If the transaction cannot commit (``Busy``, a
  storage error) the job stays ``pending`` and is tried again, as Convex retries
  internal errors.
- A scheduled **action** runs at most once: the job is marked ``inProgress`` (with
  the ``host:pid`` running it) and committed before the action starts; it is never
  re-run. If that process dies, the next ``run_due`` anywhere marks it ``failed``
  with Convex's "Transient error while executing action".
- A handler that fails (a Failure, ``ConvexError``, any exception, even misuse of
  the library) marks its job ``failed`` with the error text; the worker goes on.
- Crons (``one_store.runtime.crons``) are kept in the system table ``_cron_jobs``: each
  row holds the job's schedule and ``nextRun``. When a run is due it is turned into
  an ordinary ``_scheduled_functions`` job (inside one write transaction, so two
  workers never fire the same run twice).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from returns.result import Failure, Success

from ..engine.sqlite.storage import TableLayout, quote
from ..model.errors import (
    ArgsInvalid,
    ContextError,
    DefinitionError,
    InvalidId,
    LimitExceeded,
    OneStoreError,
    ProblemError,
)
from ..model.ids import table_number_of
from ..model.schema import define_table
from ..model.validators import v
from ..model.values import Document, convex_size, dumps, loads, prefix_end, sort_key
from .crons import CronJob, Crons
from .functions import FunctionSpec, normalize_path

if TYPE_CHECKING:
    from ..store import Store
    from .context import Transaction

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
_PENDING = sort_key("pending")
_IN_PROGRESS = sort_key("inProgress")
INTERRUPTED = "Transient error while executing action"
# Action jobs running in this process (any store), so that one store never takes
# another's running action for an interrupted one.
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()


def _executor() -> str:
    """``host:pid`` of this process, recorded on the action jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _interrupted(job: Document) -> bool:
    """Whether an ``inProgress`` action job's process is gone (or no longer running it)."""
    state = job["state"]
    execution = state.get("executionId") if isinstance(state, dict) else None
    if not isinstance(execution, str):
        return False
    host, _, pid_text = execution.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's process: nothing to know about it here
    pid = int(pid_text)
    if pid == os.getpid():
        with _RUNNING_LOCK:
            return str(job["_id"]) not in _RUNNING
    return not _alive(pid)


def _kind(job: Document) -> str:
    """A job's ``state.kind``."""
    state = job["state"]
    return str(state.get("kind")) if isinstance(state, dict) else ""


def _number(value: object) -> float:
    return float(cast(float, value))


def _args(job: Document) -> dict[str, Any]:
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
        self, owner: StoreScheduler, txn: Transaction | None, parent: str | None = None
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
            if _kind(job) in ("pending", "inProgress"):
                running = getattr(self._owner.store._local, "job", None)
                if running == job_id:
                    raise ContextError("A mutation cannot cancel itself")
                job["state"] = {"kind": "canceled"}
                job["completedTime"] = txn.now_ms
                txn.storage.update(layout, job)

        self._in_transaction(work)

    def _now(self) -> float:
        return (
            self._txn.now_ms
            if self._txn is not None
            else float(self._owner.store.clock())
        )

    def _schedule(self, when: float, fn: object, args: dict[str, Any] | None) -> str:
        store = self._owner.store
        name, spec = self._owner.name_of(fn)
        if spec.kind not in ("mutation", "action"):
            raise _bad(
                f"Only mutations and actions can be scheduled; {name} is a {spec.kind}"
            )
        if abs(when - self._now()) > MAX_DELAY_MS:
            raise _bad(
                "Scheduled time is more than 5 years away (InvalidScheduledFunctionDelay)"
            )
        prepared = store._prepare(spec, args)
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
        result = self._owner.store._system_write(work)
        if isinstance(result, Failure):
            raise ProblemError(result.failure())
        return result.unwrap()


class StoreScheduler:
    """``store.scheduler``: run due jobs and crons, move a fake clock, a background worker.

    - :meth:`run_due` runs what is due by the store's clock, earliest first.
    - :meth:`advance` moves a :class:`~one_store.testing.FakeClock` forward and runs
      every job and cron run as it becomes due, each at its own time.
    - :meth:`run_all` advances until no job is pending (crons alone do not keep it going).
    - :meth:`start` / :meth:`stop`: a background worker thread.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_name: dict[str, FunctionSpec[Any]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.crons: Crons | None = None
        app_crons = store.app.crons if store.app is not None else None
        if app_crons is not None and not store.readonly:  # read-only: records nothing
            self.use_crons(app_crons)

    # ------------------------------------------------------------ contexts

    def for_transaction(self, txn: Transaction) -> Scheduler:
        """The ``ctx.scheduler`` of a mutation."""
        return Scheduler(self, txn)

    def for_action(self) -> Scheduler:
        """The ``ctx.scheduler`` of an action (of the scheduled job it runs in, if any)."""
        return Scheduler(self, None, getattr(self.store._local, "action_job", None))

    def layout(self, txn: Transaction) -> TableLayout:
        """The ``_scheduled_functions`` table (created on first use)."""
        return self._system_table(txn, TABLE, DEFINITION, None)

    def _system_table(
        self, txn: Transaction, name: str, definition: Any, number: int | None
    ) -> TableLayout:
        storage = txn.storage
        layout = storage.layouts.get(name)
        if layout is not None:
            return layout
        return storage.ensure_table(name, definition, number)

    def name_of(self, fn: object) -> tuple[str, FunctionSpec[Any]]:
        """A job's ``name`` for a function or path (functions without an app are remembered)."""
        if isinstance(fn, str):
            found = self.store.function(fn)
            if isinstance(found, Failure):
                raise ProblemError(found.failure())
            return normalize_path(fn) or fn, found.unwrap()
        if isinstance(fn, FunctionSpec):
            path = self.store.path_of(fn)
            if ":" not in path:
                module = getattr(fn.handler, "__module__", "local")
                path = f"{module}:{fn.display_name}"
            self._by_name[path] = fn
            return path, fn
        raise ContextError(
            f"Only functions or 'file:name' paths can be scheduled, got {fn!r}"
        )

    def _spec(self, name: str) -> FunctionSpec[Any] | None:
        if name in self._by_name:
            return self._by_name[name]
        found = self.store.function(name)
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
        if owner is not None and _kind(owner) == "canceled":
            doc["state"] = {"kind": "canceled"}
            doc["completedTime"] = txn.now_ms
        txn.storage.insert(layout, doc)
        if txn.tracer is not None:
            txn.tracer.write("schedule", TABLE, job_id)
        txn.on_commit.append(self.wake)
        return job_id

    def wake(self) -> None:
        """Tell the background worker that new work may be due."""
        self._wake.set()

    # ------------------------------------------------------------ crons

    def use_crons(self, crons: Crons) -> None:
        """Run ``crons`` with this store (done for an app's ``crons.py`` on open).

        Checks every job's function and args now, and records new or changed jobs
        in ``_cron_jobs`` (jobs no longer declared are removed). An interval job
        first runs at once; a calendar job at its next matching minute.

        Raises:
            DefinitionError: a job names an unknown function, a query, or args its
                function rejects.
        """
        if not isinstance(crons, Crons):
            raise DefinitionError(f"Expected a one_store.Crons, got {crons!r}")
        rows: dict[str, dict[str, Any]] = {}
        for job in crons.jobs.values():
            try:
                name, spec = self.name_of(job.function)
            except ProblemError as e:
                raise DefinitionError(f"Cron {job.identifier!r}: {e.problem}") from None
            if spec.kind not in ("mutation", "action"):
                raise DefinitionError(
                    f"Cron {job.identifier!r}: only mutations and actions can be "
                    f"scheduled; {name} is a {spec.kind}"
                )
            prepared = self.store._prepare(spec, job.args)
            if isinstance(prepared, Failure):
                raise DefinitionError(
                    f"Cron {job.identifier!r}: invalid args for {name}: {prepared.failure()}"
                )
            rows[job.identifier] = {
                "name": job.identifier,
                "function": name,
                "args": [prepared.unwrap()],
                "schedule": job.schedule,
            }

        def sync(txn: Transaction) -> None:
            layout = self._system_table(
                txn, CRON_TABLE, CRON_DEFINITION, CRON_TABLE_NUMBER
            )
            existing = {str(r["name"]): r for r in self._cron_rows(txn)}
            for identifier, row in rows.items():
                old = existing.pop(identifier, None)
                same = old is not None and dumps(
                    [old["function"], old["args"], old["schedule"]]
                ) == dumps([row["function"], row["args"], row["schedule"]])
                if same:
                    continue
                job = _cron_job(row)
                doc: Document = {**row, "nextRun": job.first_run(txn.now_ms)}
                if old is None:
                    doc["_id"] = txn.ids.new(layout.number, txn.now_ms)
                    doc["_creationTime"] = txn.creation_time()
                    txn.storage.insert(layout, doc)
                else:
                    doc["_id"] = old["_id"]
                    doc["_creationTime"] = old["_creationTime"]
                    txn.storage.update(layout, doc)
            for stale in existing.values():
                txn.storage.delete(layout, str(stale["_id"]))

        result = self.store._system_write(sync)
        if isinstance(result, Failure):
            raise DefinitionError(f"Could not record crons: {result.failure()}")
        self.crons = crons
        self.wake()

    def _cron_rows(self, txn: Transaction | None = None) -> list[Document]:
        storage = self.store.storage
        if CRON_TABLE not in storage.layouts:
            return []
        sql = f"SELECT _body FROM {quote(CRON_TABLE)}"
        if txn is not None:
            return [loads(body) for (body,) in storage.execute(sql, ())]
        with storage.read():
            return [loads(body) for (body,) in storage.execute(sql, ())]

    def cron_jobs(self) -> list[Document]:
        """The ``_cron_jobs`` rows: ``name``, ``function``, ``args``, ``schedule``, ``nextRun``."""
        return sorted(self._cron_rows(), key=lambda r: str(r["name"]))

    def _next_cron_time(self) -> float | None:
        times = [_number(r["nextRun"]) for r in self._cron_rows()]
        return min(times) if times else None

    def _fire_crons(self, now: float) -> int:
        """Turn every cron run due at ``now`` into a job; return how many were made."""
        due = self._next_cron_time()
        if due is None or due > now:
            return 0

        def fire(txn: Transaction) -> int:
            layout = self._system_table(
                txn, CRON_TABLE, CRON_DEFINITION, CRON_TABLE_NUMBER
            )
            jobs = self.layout(txn)
            made = 0
            for row in self._cron_rows(txn):  # re-read under the write lock
                next_run = _number(row["nextRun"])
                if next_run > now:
                    continue
                last = row.get("lastJob")
                previous = (
                    txn.storage.get(jobs, str(last)) if last is not None else None
                )
                busy = previous is not None and _kind(previous) in (
                    "pending",
                    "inProgress",
                )
                if not busy:  # at most one run of a cron at a time, as Convex
                    row["lastJob"] = self.insert_job(
                        txn,
                        str(row["function"]),
                        _args(row),
                        next_run,
                    )
                    made += 1
                row["nextRun"] = _cron_job(row).next_run(next_run, now)
                txn.storage.update(layout, row)
            return made

        return int(self.store._system_write(fire).value_or(0))

    # ------------------------------------------------------------ running

    def jobs(self) -> list[Document]:
        """Every job document, oldest first."""
        return list(self.store.documents(TABLE))

    def _earliest_pending(self, until: float | None) -> Document | None:
        """The earliest pending job (due by ``until`` when given), by the ``by_state`` index."""
        storage = self.store.storage
        high = prefix_end(_PENDING if until is None else _PENDING + sort_key(until))
        with storage.read():  # its start sees a table another process created
            if TABLE not in storage.layouts:
                return None
            row = storage.execute(
                f'SELECT _body FROM {quote(TABLE)} WHERE "_k_by_state" >= ? '
                'AND "_k_by_state" < ? ORDER BY "_k_by_state" LIMIT 1',
                (_PENDING, high),
            ).fetchone()
        return None if row is None else loads(row[0])

    def next_job_time(self) -> float | None:
        """The ``scheduledTime`` of the earliest pending job, or None."""
        job = self._earliest_pending(None)
        return None if job is None else _number(job["scheduledTime"])

    def next_due_time(self) -> float | None:
        """When the next job or cron run is due, or None when nothing is scheduled."""
        times = [
            t for t in (self.next_job_time(), self._next_cron_time()) if t is not None
        ]
        return min(times) if times else None

    def run_one(self, now: float | None = None) -> bool:
        """Run the earliest job due at ``now`` (default: the store's clock); False if none ran."""
        now = float(self.store.clock()) if now is None else now
        while True:
            job = self._earliest_pending(now)
            if job is None:
                return False
            spec = self._spec(str(job["name"]))
            if spec is None or spec.kind != "action":
                outcome = self._run_mutation_job(job, spec)
            else:
                outcome = self._run_action_job(job, spec)
            if outcome is None:
                return False  # Busy or a storage error: the job stays pending
            if outcome:
                return True
            # Another worker took this job first: look for the next one.

    def _finish_job(
        self, txn: Transaction, job_id: str, state: dict[str, Any], expect: str
    ) -> None:
        layout = self.layout(txn)
        current = txn.storage.get(layout, job_id)
        if current is None or _kind(current) != expect:
            return  # canceled while it ran: keep "canceled"
        current["state"] = state
        current["completedTime"] = txn.now_ms
        txn.storage.update(layout, current)

    def _run_mutation_job(
        self, job: Document, spec: FunctionSpec[Any] | None
    ) -> bool | None:
        """Claim and run a mutation job in one transaction; None if it could not commit."""
        job_id = str(job["_id"])
        store = self.store
        hooks = store._testing
        if hooks and "fault" in hooks:
            fault = hooks["fault"](str(job["name"]))
            if fault is not None:  # one_store.testing.inject_faults: retried later
                return None

        def work(txn: Transaction) -> bool:
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is None or current["state"] != {"kind": "pending"}:
                return False  # another worker got it first, or it was canceled
            if spec is None:
                self._finish_job(
                    txn,
                    job_id,
                    {
                        "kind": "failed",
                        "error": f"Could not find function {job['name']!s}",
                    },
                    "pending",
                )
                return True
            if spec.kind != "mutation":
                self._finish_job(
                    txn,
                    job_id,
                    {
                        "kind": "failed",
                        "error": f"{job['name']!s} is a {spec.kind}; only mutations and actions can be scheduled",
                    },
                    "pending",
                )
                return True
            if hooks and "trace" in hooks:
                hooks["trace"](txn, "mutation", str(job["name"]))
            conn = txn.storage.connection
            conn.execute("SAVEPOINT scheduled_job")
            store._local.job = job_id
            try:
                outcome = store._run_nested(spec, _args(job), txn, str(job["name"]))
                error = str(outcome.failure()) if isinstance(outcome, Failure) else None
            except OneStoreError as e:  # misuse in the handler fails this job only
                conn.execute("ROLLBACK TO scheduled_job")
                txn.storage.reload_layouts()  # tables it created are gone again
                error = f"{type(e).__name__}: {e}"
            finally:
                store._local.job = None
            conn.execute("RELEASE scheduled_job")
            txn.tracer = None  # the job's own bookkeeping is not part of its trace
            state = (
                {"kind": "success"}
                if error is None
                else {"kind": "failed", "error": error}
            )
            self._finish_job(txn, job_id, state, "pending")
            return True

        result = store._system_write(work)
        return result.unwrap() if isinstance(result, Success) else None

    def _run_action_job(self, job: Document, spec: FunctionSpec[Any]) -> bool | None:
        """Mark an action job ``inProgress`` (committed), then run it: at most once."""
        job_id = str(job["_id"])
        store = self.store

        def claim(txn: Transaction) -> bool:
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is None or current["state"] != {"kind": "pending"}:
                return False
            # Who runs it: if this process dies, other workers can tell (see _recover).
            current["state"] = {"kind": "inProgress", "executionId": _executor()}
            txn.storage.update(layout, current)
            return True

        with _RUNNING_LOCK:
            _RUNNING.add(job_id)
        try:
            claimed = store._system_write(claim)
            if isinstance(claimed, Failure):
                return None
            if not claimed.unwrap():
                return False
            store._local.action_job = job_id
            try:
                outcome = store._call("action", spec, _args(job))
                error = str(outcome.failure()) if isinstance(outcome, Failure) else None
            except OneStoreError as e:
                error = f"{type(e).__name__}: {e}"
            finally:
                store._local.action_job = None
            state = (
                {"kind": "success"}
                if error is None
                else {"kind": "failed", "error": error}
            )
            # Retried: the action already ran, its outcome should not be lost. If
            # it still cannot be written, the job is left to _recover (failed).
            for _ in range(200):
                written = store._system_write(
                    lambda txn: self._finish_job(txn, job_id, state, "inProgress")
                )
                if isinstance(written, Success):
                    break
                self._stop.wait(0.05)
            return True
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(job_id)

    def _recover(self) -> int:
        """Mark action jobs whose process died while running them ``failed``, as Convex.

        Convex marks an interrupted action ``failed`` with "Transient error while
        executing action" and never re-runs it (at most once). A job counts as
        interrupted when the process recorded in its ``executionId`` (this host)
        no longer exists, or is this process and no longer runs it.
        """
        storage = self.store.storage
        if TABLE not in storage.layouts:
            return 0
        with storage.read():
            rows = storage.execute(
                f'SELECT _body FROM {quote(TABLE)} WHERE "_k_by_state" >= ? '
                'AND "_k_by_state" < ?',
                (_IN_PROGRESS, prefix_end(_IN_PROGRESS)),
            ).fetchall()
        stuck = [job for job in map(loads, (r[0] for r in rows)) if _interrupted(job)]
        if not stuck:
            return 0

        def work(txn: Transaction) -> int:
            layout = self.layout(txn)
            fixed = 0
            for job in stuck:
                current = txn.storage.get(layout, str(job["_id"]))
                if current is None or current["state"] != job["state"]:
                    continue  # finished (or canceled) meanwhile
                current["state"] = {"kind": "failed", "error": INTERRUPTED}
                current["completedTime"] = txn.now_ms
                txn.storage.update(layout, current)
                fixed += 1
            return fixed

        return int(self.store._system_write(work).value_or(0))

    def run_due(self, *, max_jobs: int | None = 1000) -> int:
        """Run every job (and cron run) due by the store's clock, earliest first.

        Jobs that these jobs schedule for now (``run_after(0, ...)``) run too.

        Args:
            max_jobs: a bound against a job that keeps rescheduling itself for
                now; None for no bound.

        Returns:
            How many jobs ran.

        Raises:
            ContextError: more than ``max_jobs`` jobs were due.
        """
        ran, more = self._run_batch(max_jobs)
        if more:
            raise ContextError(
                f"run_due() ran {ran} jobs and more are due: a function probably keeps "
                "rescheduling itself with run_after(0). Pass max_jobs=None to allow it."
            )
        return ran

    def _run_batch(self, limit: int | None) -> tuple[int, bool]:
        """Run up to ``limit`` due jobs; return (how many ran, whether more are due)."""
        ran = 0
        self._recover()
        while True:
            self._fire_crons(float(self.store.clock()))
            if limit is not None and ran >= limit:
                return ran, self._earliest_pending(
                    float(self.store.clock())
                ) is not None
            if not self.run_one():
                return ran, False
            ran += 1

    def _clock_advance(self) -> Callable[[float], None]:
        advance: Callable[[float], None] | None = getattr(
            self.store.clock, "advance", None
        )
        if advance is None:
            raise ContextError(
                "scheduler.advance() needs a clock with .advance(ms), e.g. "
                "one_store.testing.FakeClock: Store.memory(schema, clock=FakeClock())"
            )
        return advance

    def advance(self, ms: float) -> int:
        """Move a fake clock forward by ``ms``, running jobs and crons as they become due.

        Time stops at each due time in order, so ``ctx.now()`` inside a job is the
        time it was due, and what a job schedules within the window runs too.

        Returns:
            How many jobs ran.

        Raises:
            ContextError: the store's clock cannot be advanced, or ``ms`` < 0.
        """
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not ms >= 0:
            raise ContextError(f"advance(ms) needs a non-negative number, got {ms!r}")
        clock = self.store.clock
        move = self._clock_advance()
        target = float(clock()) + ms
        ran = self.run_due()
        while True:
            due = self.next_due_time()
            if due is None or due > target:
                break
            if due > clock():
                move(due - clock())
            ran += self.run_due()
        if target > clock():
            move(target - clock())
        return ran + self.run_due()

    def run_all(self, max_jobs: int = 1000) -> int:
        """Advance a fake clock job by job until no job is pending; return how many ran.

        Crons fire as time passes but do not by themselves keep it going.

        Raises:
            ContextError: more than ``max_jobs`` jobs ran (a job keeps rescheduling
                itself), or the clock cannot be advanced.
        """
        self._clock_advance()
        ran = 0
        while True:
            batch, more = self._run_batch(max_jobs - ran)
            ran += batch
            due = self.next_job_time()
            if due is None and not more:
                return ran
            if ran >= max_jobs:
                raise ContextError(
                    f"run_all() ran {ran} jobs and more are pending: a function probably "
                    "keeps rescheduling itself. Use advance(ms) to step time instead."
                )
            if due is not None:
                now = float(self.store.clock())
                target = min(due, self._next_cron_time() or due)
                if target > now:
                    self._clock_advance()(target - now)

    # ------------------------------------------------------------ worker

    def start(self, poll_interval: float = 0.5) -> None:
        """Start a background thread that runs jobs and crons as they become due.

        Safe with other workers on the same file (threads or processes): each job
        runs once. Errors never stop the thread; a failing job is marked ``failed``.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                more = False
                with contextlib.suppress(Exception):
                    _, more = self._run_batch(100)
                if more:
                    continue
                wait = poll_interval
                with contextlib.suppress(Exception):
                    due = self.next_due_time()
                    if due is not None:
                        wait = min(
                            poll_interval,
                            max(0.0, (due - float(self.store.clock())) / 1000),
                        )
                self._wake.wait(wait)
                self._wake.clear()

        self._thread = threading.Thread(
            target=loop, name="one_store-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background worker (waits for the job in progress)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the background worker thread is running."""
        return self._thread is not None and self._thread.is_alive()


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


def _cron_job(row: dict[str, Any]) -> CronJob:
    return CronJob(
        str(row["name"]), str(row["function"]), row["args"][0], row["schedule"]
    )


__all__ = ["Scheduler", "StoreScheduler"]
