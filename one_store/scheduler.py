"""Scheduled functions: ``ctx.scheduler`` and ``store.scheduler``.

Jobs live in the system table ``_scheduled_functions`` with Convex's document shape
(``name``, ``args: [args]``, ``scheduledTime``, ``state: {kind}``, ``completedTime?``),
readable through ``ctx.db.system``.

- From a mutation, scheduling is part of the mutation's transaction: a rolled-back
  mutation schedules nothing. From an action, scheduling commits at once.
- A scheduled **mutation** runs exactly once: the job is claimed, the mutation runs
  as a sub-transaction, and the job's final state is written in the same SQLite
  transaction, so two workers (threads or processes) can never both run it.
- A scheduled **action** runs at most once: the job is marked ``inProgress`` and
  committed before the action starts; an interrupted action is never re-run.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from returns.result import Failure, Result, Success

from .errors import (
    ArgsInvalid,
    ContextError,
    InvalidId,
    Problem,
    ProblemError,
)
from .functions import FunctionSpec
from .ids import table_number_of
from .schema import define_table
from .storage import TableLayout
from .validators import v
from .values import Document

if TYPE_CHECKING:
    from .context import Transaction
    from .store import Store

TABLE = "_scheduled_functions"
MAX_DELAY_MS = 5 * 366 * 24 * 3600 * 1000
MAX_SCHEDULED_PER_MUTATION = 1000
DEFINITION = define_table(
    {
        "name": v.string(),
        "args": v.array(v.any()),
        "scheduledTime": v.number(),
        "state": v.object({"kind": v.string(), "error": v.optional(v.string())}),
        "completedTime": v.optional(v.number()),
    }
).index("by_state", ["state.kind", "scheduledTime"])


def _bad(message: str, path: str = "") -> ProblemError:
    return ProblemError(ArgsInvalid(path, message))


class Scheduler:
    """``ctx.scheduler``: ``run_after``, ``run_at``, ``cancel``.

    In a mutation it writes inside the mutation's transaction; in an action each
    call commits on its own.
    """

    def __init__(self, owner: StoreScheduler, txn: Transaction | None) -> None:
        self._owner = owner
        self._txn = txn
        self._count = 0

    def run_after(
        self, delay_ms: float, fn: object, args: dict[str, Any] | None = None
    ) -> str:
        """Run ``fn`` (a function or ``"file:name"``) ``delay_ms`` from now; return the job ID."""
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
        self, timestamp_ms: float, fn: object, args: dict[str, Any] | None = None
    ) -> str:
        """Run ``fn`` at ``timestamp_ms`` (ms since the epoch; the past means now)."""
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
        """Cancel a pending job (a finished job is left as it is, as Convex)."""

        def work(txn: Transaction) -> None:
            layout = self._owner.layout(txn)
            if table_number_of(job_id) != layout.number:
                raise ProblemError(
                    InvalidId(str(job_id), f"Invalid scheduled function ID: {job_id!r}")
                )
            job = txn.storage.get(layout, job_id)
            if job is None:
                raise ProblemError(
                    InvalidId(str(job_id), f"No scheduled function with ID {job_id}")
                )
            if job["state"]["kind"] in ("pending", "inProgress"):  # type: ignore[index,call-overload]
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
            from .errors import LimitExceeded

            raise ProblemError(
                LimitExceeded(
                    "functionsScheduled",
                    MAX_SCHEDULED_PER_MUTATION,
                    "Too many functions scheduled by this mutation (limit: 1000)",
                )
            )

        def work(txn: Transaction) -> str:
            layout = self._owner.layout(txn)
            job_id = txn.ids.new(layout.number, txn.now_ms)
            doc = {
                "_id": job_id,
                "_creationTime": txn.creation_time(),
                "name": name,
                "args": [prepared.unwrap()],
                "scheduledTime": when,
                "state": {"kind": "pending"},
            }
            txn.storage.insert(layout, doc)
            txn.on_commit.append(self._owner.wake)
            return job_id

        return self._in_transaction(work)

    def _in_transaction(self, work: Callable[[Transaction], Any]) -> Any:
        if self._txn is not None:
            return work(self._txn)
        result = self._owner.store._system_write(work)
        if isinstance(result, Failure):
            raise ProblemError(result.failure())
        return result.unwrap()


class StoreScheduler:
    """``store.scheduler``: run due jobs, move a fake clock, a background worker."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._by_name: dict[str, FunctionSpec[Any]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # ------------------------------------------------------------ contexts

    def for_transaction(self, txn: Transaction) -> Scheduler:
        """The ``ctx.scheduler`` of a mutation."""
        return Scheduler(self, txn)

    def for_action(self) -> Scheduler:
        """The ``ctx.scheduler`` of an action."""
        return Scheduler(self, None)

    def layout(self, txn: Transaction) -> TableLayout:
        """The ``_scheduled_functions`` table (created on first use)."""
        return txn.storage.ensure_table(TABLE, DEFINITION)

    def name_of(self, fn: object) -> tuple[str, FunctionSpec[Any]]:
        """A job's ``name`` for a function or path (functions without an app are remembered)."""
        if isinstance(fn, str):
            found = self.store.function(fn)
            if isinstance(found, Failure):
                raise ProblemError(found.failure())
            from .store import normalize_path

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
        return found.unwrap() if isinstance(found, Success) else None

    def wake(self) -> None:
        """Tell the background worker that new work may be due."""
        self._wake.set()

    # ------------------------------------------------------------ running

    def jobs(self) -> list[Document]:
        """Every job document, oldest first."""
        return list(self.store.documents(TABLE))

    def next_due_time(self) -> float | None:
        """The ``scheduledTime`` of the earliest pending job, or None."""
        times = [
            float(j["scheduledTime"])
            for j in self.jobs()
            if j["state"]["kind"] == "pending"
        ]  # type: ignore[arg-type,index,call-overload]
        return min(times) if times else None

    def _claim(self, now: float) -> Result[Document | None, Problem]:
        """Pick the earliest due pending job (inside a write transaction)."""

        def work(txn: Transaction) -> Document | None:
            self.layout(txn)
            from .values import prefix_end, sort_key

            low = sort_key("pending")
            high = low + sort_key(now)
            row = txn.storage.execute(
                f'SELECT _body FROM "{TABLE}" WHERE "_k_by_state" >= ? AND "_k_by_state" < ? '
                'ORDER BY "_k_by_state" LIMIT 1',
                (low, prefix_end(high)),
            ).fetchone()
            if row is None:
                return None
            from .values import loads

            job: Document = loads(row[0])
            return job

        return self.store._system_write(work)

    def run_one(self, now: float | None = None) -> bool:
        """Run the earliest job due at ``now`` (default: the store's clock); False if none."""
        now = float(self.store.clock()) if now is None else now
        while True:
            claimed = self._claim(now)
            if isinstance(claimed, Failure):
                return False
            job = claimed.unwrap()
            if job is None:
                return False
            spec = self._spec(str(job["name"]))
            if spec is None or spec.kind == "mutation":
                return self._run_mutation_job(job, spec, now)
            return self._run_action_job(job, spec)

    def _finish_job(self, txn: Transaction, job_id: str, state: dict[str, Any]) -> None:
        layout = self.layout(txn)
        current = txn.storage.get(layout, job_id)
        if current is None:
            return
        current["state"] = state
        current["completedTime"] = txn.now_ms
        txn.storage.update(layout, current)

    def _run_mutation_job(
        self, job: Document, spec: FunctionSpec[Any] | None, now: float
    ) -> bool:
        job_id = str(job["_id"])
        store = self.store

        def work(txn: Transaction) -> bool:
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is None or current["state"] != {"kind": "pending"}:
                return False  # another worker got it first
            if spec is None:
                self._finish_job(
                    txn,
                    job_id,
                    {
                        "kind": "failed",
                        "error": f"Could not find function {job['name']}",
                    },
                )
                return True
            store._local.job = job_id
            try:
                outcome = store._run_nested(spec, job["args"][0], txn, str(job["name"]))  # type: ignore[index,arg-type]
            finally:
                store._local.job = None
            if isinstance(outcome, Failure):
                self._finish_job(
                    txn, job_id, {"kind": "failed", "error": str(outcome.failure())}
                )
            else:
                self._finish_job(txn, job_id, {"kind": "success"})
            return True

        result = store._system_write(work)
        return bool(result.value_or(False))

    def _run_action_job(self, job: Document, spec: FunctionSpec[Any]) -> bool:
        job_id = str(job["_id"])
        store = self.store

        def claim(txn: Transaction) -> bool:
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is None or current["state"] != {"kind": "pending"}:
                return False
            current["state"] = {"kind": "inProgress"}
            txn.storage.update(layout, current)
            return True

        if not store._system_write(claim).value_or(False):
            return False
        outcome = store._call("action", spec, job["args"][0])  # type: ignore[index]
        state = (
            {"kind": "failed", "error": str(outcome.failure())}
            if isinstance(outcome, Failure)
            else {"kind": "success"}
        )
        store._system_write(lambda txn: self._finish_job(txn, job_id, state))
        return True

    def run_due(self) -> int:
        """Run every job due by the store's clock, earliest first; return how many ran."""
        ran = 0
        while self.run_one():
            ran += 1
        return ran

    def advance(self, ms: float) -> int:
        """Move a fake clock forward by ``ms``, running jobs as they become due, in order.

        Each job runs with the clock set to its scheduled time, so ``ctx.now()``
        inside it is the time it was due.
        """
        clock = self.store.clock
        advance = getattr(clock, "advance", None)
        if advance is None:
            raise ContextError(
                "scheduler.advance() needs a clock with .advance(ms), e.g. one_store.testing.FakeClock"
            )
        target = float(clock()) + ms
        ran = 0
        while True:
            due = self.next_due_time()
            if due is None or due > target:
                break
            if due > clock():
                advance(due - clock())
            ran += self.run_due()
        if target > clock():
            advance(target - clock())
        return ran + self.run_due()

    def run_all(self, max_jobs: int = 1000) -> int:
        """Advance a fake clock job by job until no job is pending.

        Raises:
            ContextError: more than ``max_jobs`` jobs ran (a job keeps rescheduling
                itself), or the clock cannot be advanced.
        """
        ran = self.run_due()
        while True:
            due = self.next_due_time()
            if due is None:
                return ran
            if ran >= max_jobs:
                raise ContextError(
                    f"run_all() ran {ran} jobs and more are pending: a function probably "
                    "keeps rescheduling itself. Use advance(ms) to step time instead."
                )
            ran += self.advance(max(0.0, due - float(self.store.clock())))

    # ------------------------------------------------------------ worker

    def start(self, poll_interval: float = 0.5) -> None:
        """Start a background thread that runs jobs as they become due."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):
                    self.run_due()
                due = self.next_due_time()
                wait = poll_interval
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


__all__ = ["Scheduler", "StoreScheduler"]
