"""The lease on a scheduled action's claim (one_store.runtime.job_lease), on SQLite.

tests/unit/test_postgres_processes.py runs the same rules with real worker
processes on a PostgreSQL database.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import pytest

from one_store import Store, action, define_schema, mutation
from one_store.runtime.job_lease import Heartbeat, in_progress, interrupted, wall_ms
from one_store.runtime.jobs import INTERRUPTED


@action(args={})
def noop(ctx: Any, args: dict[str, Any]) -> None:
    return None


@mutation(args={})
def schedule(ctx: Any, args: dict[str, Any]) -> str:
    job: str = ctx.scheduler.run_after(0, noop, {})
    return job


def job(state: dict[str, Any]) -> dict[str, Any]:
    return {"_id": "j" * 32, "state": state}


def never(job_id: str) -> bool:
    return False


def test_a_claim_on_another_host_counts_only_by_its_lease() -> None:
    elsewhere = {"kind": "inProgress", "executionId": "far-away:1"}
    assert not interrupted(job(elsewhere), never)  # no lease: never released
    assert interrupted(job({**elsewhere, "leaseExpires": wall_ms() - 1}), never)
    assert not interrupted(
        job({**elsewhere, "leaseExpires": wall_ms() + 60_000}), never
    )


def test_a_claim_of_this_process_counts_by_whether_it_still_runs() -> None:
    here = in_progress(30.0)
    assert here["executionId"] == f"{socket.gethostname()}:{os.getpid()}"
    assert here["leaseExpires"] > wall_ms() + 29_000
    assert interrupted(job(here), never)
    assert not interrupted(job(here), lambda job_id: True)


def test_a_live_process_on_this_host_that_stopped_renewing_lets_go() -> None:
    parent = os.getppid()  # alive, and not this process
    alive = {"kind": "inProgress", "executionId": f"{socket.gethostname()}:{parent}"}
    assert not interrupted(job({**alive, "leaseExpires": wall_ms() + 60_000}), never)
    assert interrupted(job({**alive, "leaseExpires": wall_ms() - 1}), never)


@pytest.mark.parametrize("expired", [True, False])
def test_run_due_fails_an_expired_claim_from_another_machine(expired: bool) -> None:
    with Store.memory(define_schema({}), seed=0) as store:
        job_id = store.mutation(schedule, {}).unwrap()

        def claim_elsewhere(txn: Any) -> None:
            layout = txn.storage.layouts["_scheduled_functions"]
            doc = txn.storage.get(layout, job_id)
            lease = wall_ms() + (-1.0 if expired else 60_000.0)
            doc["state"] = {
                "kind": "inProgress",
                "executionId": "another-machine:4242",
                "leaseExpires": lease,
            }
            txn.storage.update(layout, doc)

        store.executor.system_write(claim_elsewhere).unwrap()
        store.scheduler.run_due()
        (state,) = [j["state"] for j in store.scheduler.jobs()]
    if expired:
        assert state["kind"] == "failed"
        assert state["error"].startswith(INTERRUPTED)
    else:
        assert state["kind"] == "inProgress"


def test_a_heartbeat_renews_until_stopped_and_survives_a_failed_renewal() -> None:
    renewed: list[float] = []
    three = threading.Event()

    def renew() -> None:
        renewed.append(wall_ms())
        if len(renewed) == 1:
            raise RuntimeError("the database is busy")  # the next beat retries
        if len(renewed) >= 3:
            three.set()

    beat = Heartbeat(renew, lease_seconds=0.03)
    with beat:
        assert three.wait(timeout=30)
    assert not beat._thread.is_alive()  # joined: no renewal after the block
