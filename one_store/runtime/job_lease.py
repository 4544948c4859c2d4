"""Who runs a scheduled action, and how long the claim holds: the job's lease.

A worker that claims an action job marks it ``inProgress`` with an
``executionId`` (``host:pid``) and ``leaseExpires``, a wall-clock time in
milliseconds :data:`DEFAULT_LEASE_SECONDS` ahead; while the action runs, a
:class:`Heartbeat` thread moves ``leaseExpires`` forward every third of the
lease. The job counts as interrupted (then marked ``failed`` with Convex's
"Transient error while executing action", never re-run) when

- its process is on this host and no longer exists, or is this process and no
  longer runs it (seen at once); or
- its lease has expired: the worker is gone, whatever machine it was on (a
  database many machines share, PostgreSQL). Clocks of the machines are taken
  to agree to well within a lease.

Leases use the wall clock, never the store's clock: a test's
:class:`~one_store.testing.FakeClock` moving an hour ahead must not expire the
lease of an action that is still running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..model.values import Document

DEFAULT_LEASE_SECONDS = 30.0
logger = logging.getLogger("one_store")


def execution_id() -> str:
    """``host:pid`` of this process, recorded on the action jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def wall_ms() -> float:
    """Milliseconds since the epoch, from the wall clock."""
    return time.time() * 1000.0


def in_progress(lease_seconds: float) -> dict[str, Any]:
    """The state of an action job this process claims, with a fresh lease."""
    return {
        "kind": "inProgress",
        "executionId": execution_id(),
        "leaseExpires": wall_ms() + lease_seconds * 1000.0,
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def interrupted(job: Document, running_here: Callable[[str], bool]) -> bool:
    """Whether an ``inProgress`` action job's worker is gone (see the module docs).

    ``running_here(job_id)``: whether this process runs it now.
    """
    state = job["state"]
    if not isinstance(state, dict):
        return False
    execution = state.get("executionId")
    if isinstance(execution, str):
        host, _, pid_text = execution.rpartition(":")
        if host == socket.gethostname() and pid_text.isdigit():
            pid = int(pid_text)
            if pid == os.getpid():
                return not running_here(str(job["_id"]))
            if not _alive(pid):
                return True
            # Alive here: still, a lease it stopped renewing (a hung worker, or
            # a pid reused by another program) lets the job go.
    expires = state.get("leaseExpires")
    if type(expires) is float or type(expires) is int:
        return float(expires) < wall_ms()
    return False


class Heartbeat:
    """Renews one job's lease every third of the lease, until stopped.

    ``renew()`` writes the new ``leaseExpires`` (its failures are retried at
    the next beat: a lease is a third spent before it can lapse).
    """

    def __init__(self, renew: Callable[[], object], lease_seconds: float) -> None:
        self._renew = renew
        self._every = max(lease_seconds / 3.0, 0.01)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="one_store-job-lease", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._renew()
            except Exception:  # the next beat tries again
                logger.debug("could not renew a job's lease", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
