"""A multi-step agent flow tested end to end with the testing kit, as docs/testing.md shows.

The agent app (apps/agent_app): `tasks:submit` schedules `agent:work`, an action that
marks the task working, plans, calls a search tool over HTTP, records the answer and
schedules a review a minute later. A cron sweeps tasks stuck in "working"; another
counts hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from one_store import Store
from one_store.testing import FakeClock, inject_faults, scheduled_jobs, trace

APP = Path(__file__).resolve().parent / "apps" / "agent_app"
pytestmark = pytest.mark.one_store_app(str(APP))


class Tool:
    """The fake search tool: answers each query, or fails the way the test says."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.mode = "ok"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = request.url.params["q"]
        self.queries.append(query)
        if self.mode == "down":
            return httpx.Response(503)
        if self.mode == "unreachable":
            raise httpx.ConnectError("no route to tools.example", request=request)
        return httpx.Response(200, json={"answer": f"{query}: 42"})


@pytest.fixture
def tool() -> Tool:
    return Tool()


@pytest.fixture
def one_store_http(tool: Tool) -> Iterator[httpx.Client]:
    # The plugin hands this client to the app_store: actions' ctx.http answers from `tool`.
    with httpx.Client(transport=httpx.MockTransport(tool)) as client:
        yield client


def steps(store: Store, task_id: str) -> list[tuple[str, str, float]]:
    return [
        (s["kind"], s["detail"], s["at"])
        for s in store.query("tasks:steps", {"taskId": task_id}).unwrap()
    ]


def test_a_task_is_planned_searched_answered_and_reviewed(app_store, fake_clock, tool):
    t0 = fake_clock()
    task_id = app_store.mutation("tasks:submit", {"goal": "meaning of life"}).unwrap()
    assert (
        app_store.query("tasks:get", {"taskId": task_id}).unwrap()["status"] == "queued"
    )
    assert [j["name"] for j in scheduled_jobs(app_store, state="pending")] == [
        "agent:work"
    ]

    app_store.scheduler.run_due()  # the work runs at once (run_after(0))

    task = app_store.query("tasks:get", {"taskId": task_id}).unwrap()
    assert (task["status"], task["answer"], task["attempts"]) == (
        "done",
        "meaning of life: 42",
        1,
    )
    assert tool.queries == ["meaning of life"]
    assert steps(app_store, task_id) == [
        ("plan", "search: meaning of life", t0),
        ("tool", "meaning of life: 42", t0),
    ]
    (review,) = scheduled_jobs(app_store, name="agent:review")
    assert review["scheduledTime"] == t0 + 60_000

    app_store.scheduler.advance(59_999)
    assert len(steps(app_store, task_id)) == 2  # not yet
    app_store.scheduler.advance(1)
    assert steps(app_store, task_id)[-1] == (
        "review",
        "checked: meaning of life: 42",
        t0 + 60_000,
    )
    assert {j["name"]: j["state"]["kind"] for j in scheduled_jobs(app_store)} == {
        "agent:work": "success",
        "agent:review": "success",
        "tasks:sweep": "success",  # the interval cron's first run, at open
    }


def test_a_tool_error_fails_the_task_and_the_job_with_its_text(app_store, tool):
    tool.mode = "down"
    task_id = app_store.mutation("tasks:submit", {"goal": "weather"}).unwrap()
    app_store.scheduler.run_due()
    task = app_store.query("tasks:get", {"taskId": task_id}).unwrap()
    assert (task["status"], task["error"]) == ("failed", "tool answered 503")
    (job,) = scheduled_jobs(app_store, name="agent:work")
    assert job["state"] == {"kind": "failed", "error": "search tool failed with 503"}
    assert scheduled_jobs(app_store, name="agent:review") == []


def test_a_crash_midway_leaves_earlier_steps_committed_until_the_sweep_cron(
    app_store, fake_clock, tool
):
    tool.mode = "unreachable"
    task_id = app_store.mutation("tasks:submit", {"goal": "news"}).unwrap()
    app_store.scheduler.run_due()
    # The action died after `start` and the plan step: those were their own
    # transactions and stay committed; nothing after them ran.
    task = app_store.query("tasks:get", {"taskId": task_id}).unwrap()
    assert task["status"] == "working"
    assert [k for k, _, _ in steps(app_store, task_id)] == ["plan"]
    (job,) = scheduled_jobs(app_store, name="agent:work")
    assert job["state"]["kind"] == "failed"
    assert job["state"]["error"].startswith("Uncaught ConnectError: no route")

    # The sweep cron runs every 5 minutes; a task is stale after 10 minutes working.
    app_store.scheduler.advance(10 * 60_000)
    assert (
        app_store.query("tasks:get", {"taskId": task_id}).unwrap()["status"]
        == "working"
    )
    app_store.scheduler.advance(5 * 60_000)
    task = app_store.query("tasks:get", {"taskId": task_id}).unwrap()
    assert (task["status"], task["error"]) == ("failed", "timed out")
    assert (
        task["updatedAt"] == fake_clock()
    )  # swept at 15:00, by ctx.now() of the cron run
    assert (
        app_store.query("tasks:counter", {"name": "sweeps"}).unwrap() == 4
    )  # 0, 5, 10, 15 min


def test_the_hourly_cron_fires_at_the_top_of_each_hour(app_store, fake_clock):
    start = fake_clock()  # 22:13:20 UTC
    app_store.scheduler.advance(3 * 3_600_000)
    assert app_store.query("tasks:counter", {"name": "hourly"}).unwrap() == 3
    runs = sorted(
        j["scheduledTime"] for j in scheduled_jobs(app_store, name="tasks:bump")
    )
    first = start - start % 3_600_000 + 3_600_000
    assert runs == [first, first + 3_600_000, first + 7_200_000]


def test_the_agent_retries_when_the_database_is_busy(app_store):
    faults = inject_faults(app_store, busy=2)
    result = app_store.action("agent:bump_with_retry", {"name": "retries", "tries": 5})
    assert result.unwrap() == {"value": 1, "attempts": 3}
    assert faults.hits == ["tasks:bump", "tasks:bump"]
    inject_faults(app_store, busy=3)
    gave_up = app_store.action("agent:bump_with_retry", {"name": "retries", "tries": 3})
    assert gave_up.failure().message == "still busy after 3 tries"
    assert app_store.query("tasks:counter", {"name": "retries"}).unwrap() == 1


def test_a_scheduled_step_that_hits_busy_is_retried_exactly_once(app_store):
    task_id = app_store.mutation("tasks:submit", {"goal": "retry me"}).unwrap()
    inject_faults(
        app_store, busy=1
    )  # the action's first mutation (tasks:start) hits Busy
    app_store.scheduler.run_due()
    (job,) = scheduled_jobs(app_store, name="agent:work")
    # Actions are run at most once: the work failed with the Busy it did not handle.
    assert job["state"]["kind"] == "failed"
    assert "database is locked" in job["state"]["error"]
    assert (
        app_store.query("tasks:get", {"taskId": task_id}).unwrap()["status"] == "queued"
    )


def test_the_trace_shows_each_step_of_the_work_as_its_own_transaction(app_store):
    task_id = app_store.mutation("tasks:submit", {"goal": "trace me"}).unwrap()
    with trace(app_store) as t:
        app_store.scheduler.run_due()
    # The calls: the four steps of agent:work, then the sweep cron's first run.
    assert t.calls[-1].path == "tasks:sweep"
    work = t.calls[:-1]
    assert [c.path for c in work] == [
        "tasks:start",
        "tasks:add_step",
        "tasks:add_step",
        "tasks:finish",
    ]
    assert all(c.committed for c in work)
    start = work[0]
    assert [r.id for r in start.reads] == [task_id, task_id]  # get, then patch's read
    assert [(w.op, w.table) for w in start.writes] == [("patch", "tasks")]
    assert [(w.op, w.table) for w in work[1].writes] == [("insert", "steps")]
    report = t.report()
    assert "mutation tasks:finish (committed)" in report


def run_whole_flow(seed: int) -> tuple[Any, ...]:
    tool = Tool()
    client = httpx.Client(transport=httpx.MockTransport(tool))
    with Store.memory(app=APP, clock=FakeClock(), seed=seed, http=client) as store:
        ids = [store.mutation("tasks:submit", {"goal": g}).unwrap() for g in ("a", "b")]
        tool.mode = "down"
        ids.append(store.mutation("tasks:submit", {"goal": "c"}).unwrap())
        store.scheduler.run_due()
        tool.mode = "ok"
        store.scheduler.advance(2 * 3_600_000)
        return (
            ids,
            list(store.documents("tasks")),
            list(store.documents("steps")),
            store.scheduler.jobs(),
            store.scheduler.cron_jobs(),
        )


def test_the_same_seed_and_clock_replay_the_flow_identically():
    first = run_whole_flow(seed=11)
    assert run_whole_flow(seed=11) == first
    assert run_whole_flow(seed=12)[0] != first[0]  # IDs come from the seed
