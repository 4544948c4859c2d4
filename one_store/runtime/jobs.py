"""``store.scheduler``: running due jobs and crons, recovery, the background worker.

- A scheduled **mutation** runs exactly once: the job's state is re-read, the
  mutation runs as a sub-transaction and the job's final state is written, all in
  one write transaction (``BEGIN IMMEDIATE``), so two workers (threads or
  processes) can never both run it. If the transaction cannot commit (``Busy``, a
  storage error) the job stays ``pending`` and is tried again, as Convex retries
  internal errors.
- A scheduled **action** runs at most once: the job is marked ``inProgress`` (with
  the ``host:pid`` running it and a lease its worker keeps renewing,
  :mod:`one_store.runtime.job_lease`) and committed before the action starts; it
  is never re-run. If that process dies, the next ``run_due`` anywhere marks it
  ``failed`` with Convex's "Transient error while executing action": at once on
  its host, after the lease expires on any other machine.
- A handler that fails (a Failure, ``ConvexError``, any exception, even misuse of
  the library) marks its job ``failed`` with the error text; the worker goes on.
- A job that fails keeps Convex's ``{"kind": "failed", "error": ...}`` with the
  Python traceback after the message, and is logged (:mod:`one_store.runtime.job_failure`).
- Crons (``one_store.runtime.crons``) are kept in the system table ``_cron_jobs``: each
  row holds the job's schedule and ``nextRun``. When a run is due it is turned into
  an ordinary ``_scheduled_functions`` job (inside one write transaction, so two
  workers never fire the same run twice).

Jobs are found through the ``by_state`` index of ``_scheduled_functions``
(``state.kind``, then ``scheduledTime``): the earliest pending job is the first
key of the ``"pending"`` range, read by the engine
(:meth:`~one_store.engine.backend.Backend.first_in_range`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from returns.result import Failure, Success

from ..model.errors import ContextError, DefinitionError, OneStoreError, ProblemError
from ..model.keys import prefix_end, sort_key
from ..model.values import Document, dumps
from .crons import CronJob, Crons
from .functions import FunctionSpec
from .job_failure import JobFailure
from .job_lease import DEFAULT_LEASE_SECONDS, Heartbeat, in_progress, interrupted
from .scheduler import (
    CRON_DEFINITION,
    CRON_TABLE,
    CRON_TABLE_NUMBER,
    TABLE,
    ScheduledFunctions,
    job_args,
    job_kind,
)

if TYPE_CHECKING:
    from .executor import Executor
    from .transaction import Transaction

_PENDING = sort_key("pending")
_IN_PROGRESS = sort_key("inProgress")
INTERRUPTED = "Transient error while executing action"
# Action jobs running in this process (any store), so that one store never takes
# another's running action for an interrupted one.
_RUNNING: set[str] = set()
_RUNNING_LOCK = threading.Lock()


def _running_here(job_id: str) -> bool:
    with _RUNNING_LOCK:
        return job_id in _RUNNING


def _number(value: object) -> float:
    return float(cast(float, value))


class StoreScheduler(ScheduledFunctions):
    """``store.scheduler``: run due jobs and crons, move a fake clock, a background worker.

    - :meth:`run_due` runs what is due by the store's clock, earliest first.
    - :meth:`advance` moves a :class:`~one_store.testing.FakeClock` forward and runs
      every job and cron run as it becomes due, each at its own time.
    - :meth:`run_all` advances until no job is pending (crons alone do not keep it going).
    - :meth:`start` / :meth:`stop`: a background worker thread.
    """

    def __init__(self, executor: Executor, crons: Crons | None = None) -> None:
        super().__init__(executor)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # How long a claimed action job stays claimed without a heartbeat.
        self.lease_seconds = DEFAULT_LEASE_SECONDS
        self.crons: Crons | None = None
        if crons is not None:
            self.use_crons(crons)

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
            prepared = self.executor.prepare(spec, job.args)
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
            layout = self.system_table(
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

        result = self.executor.system_write(sync)
        if isinstance(result, Failure):
            raise DefinitionError(f"Could not record crons: {result.failure()}")
        self.crons = crons
        self.wake()

    def _cron_rows(self, txn: Transaction | None = None) -> list[Document]:
        """The ``_cron_jobs`` rows (in ``txn``, or in a read of their own)."""
        backend = self.executor.backend
        if CRON_TABLE not in backend.layouts:
            return []
        if txn is not None:
            return list(backend.scan(CRON_TABLE))
        with backend.read():
            return list(backend.scan(CRON_TABLE))

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
            layout = self.system_table(
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
                busy = previous is not None and job_kind(previous) in (
                    "pending",
                    "inProgress",
                )
                if not busy:  # at most one run of a cron at a time, as Convex
                    row["lastJob"] = self.insert_job(
                        txn,
                        str(row["function"]),
                        job_args(row),
                        next_run,
                    )
                    made += 1
                row["nextRun"] = _cron_job(row).next_run(next_run, now)
                txn.storage.update(layout, row)
            return made

        return int(self.executor.system_write(fire).value_or(0))

    # ------------------------------------------------------------ running

    def jobs(self) -> list[Document]:
        """Every job document, oldest first."""
        backend = self.executor.backend
        with backend.read():
            return list(backend.scan(TABLE))

    def _earliest_pending(self, until: float | None) -> Document | None:
        """The earliest pending job (due by ``until`` when given), by the ``by_state`` index."""
        backend = self.executor.backend
        high = prefix_end(_PENDING if until is None else _PENDING + sort_key(until))
        # Inside the read, whose start sees a table another process created.
        with backend.read():
            return backend.first_in_range(TABLE, "by_state", _PENDING, high)

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
        now = float(self.executor.clock()) if now is None else now
        while True:
            job = self._earliest_pending(now)
            if job is None:
                return False
            spec = self.spec_of(str(job["name"]))
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
        if current is None or job_kind(current) != expect:
            return  # canceled while it ran: keep "canceled"
        current["state"] = state
        current["completedTime"] = txn.now_ms
        txn.storage.update(layout, current)

    def _run_mutation_job(
        self, job: Document, spec: FunctionSpec[Any] | None
    ) -> bool | None:
        """Claim and run a mutation job in one transaction; None if it could not commit."""
        job_id = str(job["_id"])
        executor = self.executor
        if executor.fault(str(job["name"])) is not None:
            return None  # one_store.testing.inject_faults: retried later

        failed: list[JobFailure] = []  # logged once the failed state is committed

        def fail(txn: Transaction, failure: JobFailure) -> None:
            failed.append(failure)
            self._finish_job(txn, job_id, failure.state(), "pending")

        def work(txn: Transaction) -> bool:
            failed.clear()
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is None or current["state"] != {"kind": "pending"}:
                return False  # another worker got it first, or it was canceled
            if spec is None:
                fail(txn, JobFailure(f"Could not find function {job['name']!s}"))
                return True
            if spec.kind != "mutation":
                message = f"{job['name']!s} is a {spec.kind}; only mutations and actions can be scheduled"
                fail(txn, JobFailure(message))
                return True
            failure: JobFailure | None = None
            try:
                with executor.running_job(job_id, "mutation"):
                    outcome = executor.run(
                        spec, job_args(job), path=str(job["name"]), observe=True
                    )
                if isinstance(outcome, Failure):
                    failure = JobFailure.of(outcome.failure())
            except OneStoreError as e:  # misuse in the handler fails this job only
                failure = JobFailure.raised(e)
            if failure is None:
                self._finish_job(txn, job_id, {"kind": "success"}, "pending")
            else:
                fail(txn, failure)
            return True

        result = executor.system_write(work)
        if isinstance(result, Failure):
            return None
        for failure in failed:
            failure.log(job_id, str(job["name"]))
        return result.unwrap()

    def _run_action_job(self, job: Document, spec: FunctionSpec[Any]) -> bool | None:
        """Mark an action job ``inProgress`` (committed), then run it: at most once."""
        job_id = str(job["_id"])
        executor = self.executor

        def claim(txn: Transaction) -> bool:
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is None or current["state"] != {"kind": "pending"}:
                return False
            # Who runs it, and for how long: if it dies, others can tell (job_lease).
            current["state"] = in_progress(self.lease_seconds)
            txn.storage.update(layout, current)
            return True

        def renew(txn: Transaction) -> None:
            layout = self.layout(txn)
            current = txn.storage.get(layout, job_id)
            if current is not None and current["state"].get("kind") == "inProgress":
                current["state"] = in_progress(self.lease_seconds)
                txn.storage.update(layout, current)

        with _RUNNING_LOCK:
            _RUNNING.add(job_id)
        try:
            claimed = executor.system_write(claim)
            if isinstance(claimed, Failure):
                return None
            if not claimed.unwrap():
                return False
            failure: JobFailure | None = None
            try:
                with (
                    Heartbeat(lambda: executor.system_write(renew), self.lease_seconds),
                    executor.running_job(job_id, "action"),
                ):
                    outcome = executor.call("action", spec, job_args(job))
                if isinstance(outcome, Failure):
                    failure = JobFailure.of(outcome.failure())
            except OneStoreError as e:
                failure = JobFailure.raised(e)
            if failure is not None:
                # Logged now: the action ran (once) and failed, even if writing
                # its state below has to wait or is left to _recover.
                failure.log(job_id, str(job["name"]))
            state = {"kind": "success"} if failure is None else failure.state()
            # Retried: the action already ran, its outcome should not be lost. If
            # it still cannot be written, the job is left to _recover (failed).
            for _ in range(200):
                written = executor.system_write(
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
        no longer exists, or is this process and no longer runs it, or when its
        lease expired (a worker on any machine; see :mod:`.job_lease`).
        """
        backend = self.executor.backend
        if TABLE not in backend.layouts:
            return 0
        with backend.read():
            running = backend.range_documents(
                TABLE, "by_state", _IN_PROGRESS, prefix_end(_IN_PROGRESS)
            )
        stuck = [job for job in running if interrupted(job, _running_here)]
        if not stuck:
            return 0

        def work(txn: Transaction) -> list[Document]:
            layout = self.layout(txn)
            fixed: list[Document] = []
            for job in stuck:
                current = txn.storage.get(layout, str(job["_id"]))
                if current is None or current["state"] != job["state"]:
                    continue  # finished (or canceled) meanwhile
                current["state"] = JobFailure(INTERRUPTED).state()
                current["completedTime"] = txn.now_ms
                txn.storage.update(layout, current)
                fixed.append(current)
            return fixed

        fixed: list[Document] = self.executor.system_write(work).value_or([])
        for job in fixed:
            JobFailure(INTERRUPTED).log(str(job["_id"]), str(job["name"]))
        return len(fixed)

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
            self._fire_crons(float(self.executor.clock()))
            if limit is not None and ran >= limit:
                return ran, self._earliest_pending(
                    float(self.executor.clock())
                ) is not None
            if not self.run_one():
                return ran, False
            ran += 1

    def _clock_advance(self) -> Callable[[float], None]:
        advance: Callable[[float], None] | None = getattr(
            self.executor.clock, "advance", None
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
        clock = self.executor.clock
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
                now = float(self.executor.clock())
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
                            max(0.0, (due - float(self.executor.clock())) / 1000),
                        )
                self.wait_for_work(wait)

        self._thread = threading.Thread(
            target=loop, name="one_store-scheduler", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the background worker (waits for the job in progress)."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the background worker thread is running."""
        return self._thread is not None and self._thread.is_alive()


def _cron_job(row: dict[str, Any]) -> CronJob:
    return CronJob(
        str(row["name"]), str(row["function"]), row["args"][0], row["schedule"]
    )


__all__ = ["StoreScheduler"]
