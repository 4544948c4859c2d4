"""Several processes on one PostgreSQL database: writes, creation times, the scheduler.

Real subprocesses against a real server (``tests/postgres_server.py``), each
opening its own ``Store`` on the same schema, as workers on several machines
would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest

from one_store import Store
from one_store.runtime.job_lease import wall_ms
from one_store.runtime.jobs import INTERRUPTED

SCHEMA = """
from one_store import define_schema, define_table, v

schema = define_schema({
    "counters": define_table({"name": v.string(), "n": v.int64()}).index("by_name", ["name"]),
    "marks": define_table({"worker": v.int64(), "i": v.int64()}),
})
"""
FUNCTIONS = """
import time
from one_store import action, internal_mutation, mutation, v

@mutation(args={"worker": v.int64(), "i": v.int64()})
def bump(ctx, args):
    c = ctx.db.query("counters").with_index("by_name", lambda q: q.eq("name", "c")).unique()
    if c is None:
        ctx.db.insert("counters", {"name": "c", "n": 1})
    else:
        ctx.db.patch(c["_id"], {"n": c["n"] + 1})
    ctx.db.insert("marks", {"worker": args["worker"], "i": args["i"]})

@mutation(args={"n": v.int64()})
def schedule(ctx, args):
    for i in range(args["n"]):
        ctx.scheduler.run_after(0, "work:bump", {"worker": -1, "i": i})

@action(args={"seconds": v.number()})
def slow(ctx, args):
    time.sleep(args["seconds"])
    return None

@mutation(args={"seconds": v.number()})
def schedule_slow(ctx, args):
    return ctx.scheduler.run_after(0, "work:slow", {"seconds": args["seconds"]})
"""
WORKER = """
import sys, time
from one_store import Store

dsn, app, role, arg = sys.argv[1:5]
with Store.open(dsn, app=app) as store:
    if role == "bump":
        for i in range(int(arg)):
            store.mutation("work:bump", {"worker": int(sys.argv[5]), "i": i}).unwrap()
    elif role == "jobs":
        while store.scheduler.run_due(max_jobs=None) or store.scheduler.next_job_time():
            time.sleep(0.01)
    elif role == "lease":
        store.scheduler.lease_seconds = float(arg)
        store.scheduler.run_due()
"""


def in_schema(dsn: str, schema: str) -> str:
    """``dsn`` with its tables in ``schema`` (libpq's ``options``)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "schema.py").write_text(SCHEMA)
    (folder / "work.py").write_text(FUNCTIONS)
    return folder


@pytest.fixture
def dsn(postgres_dsn: str, pg_schema: str, app: Path) -> str:
    target = in_schema(postgres_dsn, pg_schema)
    Store.open(target, app=app).close()  # the tables exist before the workers start
    return target


def worker(dsn: str, app: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, dsn, str(app), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def finish(process: subprocess.Popen[str]) -> None:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err


def test_two_processes_writing_lose_nothing_and_creation_times_follow_commits(
    dsn: str, app: Path
) -> None:
    each = 25
    workers = [worker(dsn, app, "bump", str(each), str(w)) for w in range(2)]
    for process in workers:
        finish(process)
    with Store.open(dsn, app=app) as store:
        (counter,) = store.documents("counters")
        marks = list(store.documents("marks"))
    assert counter["n"] == 2 * each
    times = [m["_creationTime"] for m in marks]
    assert len(set(times)) == len(times) == 2 * each
    # Each worker's own marks come in its order: creation times follow commits.
    for w in range(2):
        assert [m["i"] for m in marks if m["worker"] == w] == list(range(each))


def test_scheduled_mutations_run_exactly_once_across_processes(
    dsn: str, app: Path
) -> None:
    jobs = 40
    with Store.open(dsn, app=app) as store:
        store.mutation("work:schedule", {"n": jobs}).unwrap()
    workers = [worker(dsn, app, "jobs", "0") for _ in range(2)]
    for process in workers:
        finish(process)
    with Store.open(dsn, app=app) as store:
        (counter,) = store.documents("counters")
        states = [j["state"]["kind"] for j in store.scheduler.jobs()]
        marks = sorted(cast(int, m["i"]) for m in store.documents("marks"))
    assert counter["n"] == jobs
    assert marks == list(range(jobs))
    assert states == ["success"] * jobs


def job_state(store: Store, job_id: str) -> dict[str, Any]:
    (job,) = [j for j in store.scheduler.jobs() if j["_id"] == job_id]
    state: dict[str, Any] = job["state"]
    return state


def test_a_renewed_lease_keeps_a_long_action_claimed(dsn: str, app: Path) -> None:
    # The action outlives its lease; its worker's heartbeat (every third of
    # the lease) keeps the claim, so another process's recovery never fails it.
    with Store.open(dsn, app=app) as store:
        job = store.mutation("work:schedule_slow", {"seconds": 4.0}).unwrap()
        process = worker(dsn, app, "lease", "2.0")
        while job_state(store, job)["kind"] == "pending":
            time.sleep(0.05)
        while process.poll() is None:
            store.scheduler.run_due()  # recovers interrupted jobs first
            assert job_state(store, job)["kind"] in ("inProgress", "success")
            time.sleep(0.1)
        finish(process)
        assert job_state(store, job)["kind"] == "success"


def test_a_killed_worker_releases_its_action(dsn: str, app: Path) -> None:
    with Store.open(dsn, app=app) as store:
        job = store.mutation("work:schedule_slow", {"seconds": 60.0}).unwrap()
        process = worker(dsn, app, "lease", "30.0")
        while job_state(store, job)["kind"] == "pending":
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        store.scheduler.run_due()
        state = job_state(store, job)
    assert state["kind"] == "failed"
    assert state["error"].startswith(INTERRUPTED)


@pytest.mark.parametrize("expired", [True, False])
def test_an_action_claimed_on_another_machine_is_released_when_its_lease_expires(
    dsn: str, app: Path, expired: bool
) -> None:
    # What a worker on another host leaves when it dies mid-action: its
    # executionId names a host this one cannot look into; only the lease tells.
    with Store.open(dsn, app=app) as store:
        job = store.mutation("work:schedule_slow", {"seconds": 0.0}).unwrap()
        lease = wall_ms() + (-1000.0 if expired else 600_000.0)

        def claim_elsewhere(txn: Any) -> None:
            layout = txn.storage.layouts["_scheduled_functions"]
            doc = txn.storage.get(layout, job)
            doc["state"] = {
                "kind": "inProgress",
                "executionId": "another-machine:4242",
                "leaseExpires": lease,
            }
            txn.storage.update(layout, doc)

        store.executor.system_write(claim_elsewhere).unwrap()
        store.scheduler.run_due()
        state = job_state(store, job)
    if expired:
        assert state["kind"] == "failed"
        assert state["error"].startswith(INTERRUPTED)
    else:
        assert state["kind"] == "inProgress"
