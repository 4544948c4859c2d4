"""Tests for schema/one flows: createFlow, the spec's updateFlowStep, runStep/advance."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from one_store import ArgsInvalid, Rejected, Store
from one_store.testing import FakeClock

from .conftest import ONE_APP
from .helpers import problem_of

STEPS: list[dict[str, Any]] = [
    {"name": "research", "instructions": "Collect sources"},
    {"name": "draft", "instructions": "Write a draft", "prerequisites": ["research"]},
    {"name": "review", "instructions": "Check the draft", "prerequisites": ["draft"]},
]


def make_flow(store: Store, steps: list[dict[str, Any]] | None = None) -> str:
    flow_id: str = store.mutation(
        "flows:createFlow", {"name": "Report", "steps": steps or STEPS}
    ).unwrap()
    return flow_id


def flow(store: Store, flow_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = store.query("flows:getFlow", {"flowId": flow_id}).unwrap()
    return doc


def statuses(store: Store, flow_id: str) -> dict[str, str]:
    return {s["name"]: s["status"] for s in flow(store, flow_id)["steps"]}


def missing_flow_id(store: Store) -> str:
    def work(ctx: Any) -> str:
        flow_id: str = ctx.db.insert(
            "flows", {"name": "x", "steps": [], "status": "draft", "createdAt": 0.0}
        )
        ctx.db.delete(flow_id)
        return flow_id

    result: str = store.run(work).unwrap()
    return result


# ---------------------------------------------------------------- createFlow


def test_create_flow_keeps_step_order_with_pending_status(one: Store):
    doc = flow(one, make_flow(one))
    assert [s["name"] for s in doc["steps"]] == ["research", "draft", "review"]
    assert doc["steps"][0]["prerequisites"] == []
    assert {s["status"] for s in doc["steps"]} == {"pending"}
    assert doc["status"] == "draft"


def test_create_flow_refuses_bad_step_lists(one: Store):
    cases = [
        ([], "A flow needs at least one step"),
        (
            [{"name": "a", "instructions": "x"}, {"name": "a", "instructions": "y"}],
            "Step name 'a' is used twice",
        ),
        (
            [{"name": "a", "instructions": "x", "prerequisites": ["a"]}],
            "Step 'a' cannot be its own prerequisite",
        ),
    ]
    for steps, message in cases:
        problem = problem_of(
            one.mutation("flows:createFlow", {"name": "f", "steps": steps})
        )
        assert problem == Rejected(message)
    assert one.query("flows:listFlows", {}).unwrap() == []


def test_create_flow_takes_free_text_prerequisites(one: Store):
    # Prerequisites are free text in the ONE system specification: a condition
    # ("Legal sign-off") as well as the name of another step.
    steps: list[dict[str, Any]] = [
        {"name": "draft", "instructions": "Write it"},
        {
            "name": "publish",
            "instructions": "Post it",
            "prerequisites": ["draft", "Legal sign-off"],
        },
    ]
    doc = flow(one, make_flow(one, steps))
    assert doc["steps"][1]["prerequisites"] == ["draft", "Legal sign-off"]


def test_only_a_prerequisite_naming_another_step_gates_the_start(one: Store):
    steps: list[dict[str, Any]] = [
        {"name": "draft", "instructions": "Write it"},
        {
            "name": "publish",
            "instructions": "Post it",
            "prerequisites": ["draft", "Legal sign-off"],
        },
    ]
    flow_id = make_flow(one, steps)
    assert problem_of(
        one.action("flows:runStep", {"flowId": flow_id, "stepName": "publish"})
    ) == Rejected("Step 'publish' cannot start: prerequisite 'draft' is not done")
    result = one.action("flows:advance", {"flowId": flow_id}).unwrap()
    assert result == {"completed": ["draft", "publish"], "status": "completed"}


def test_create_flow_refuses_a_step_without_instructions(one: Store):
    problem = problem_of(
        one.mutation("flows:createFlow", {"name": "f", "steps": [{"name": "a"}]})
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".steps[0]" in problem.message
    assert "instructions" in problem.message


# ---------------------------------------------------------------- updateFlowStep


def test_update_flow_step_spec_example(one: Store, clock: FakeClock):
    flow_id = make_flow(one)
    clock.advance(250)
    result = one.mutation(
        "flows:updateFlowStep",
        {"flowId": flow_id, "stepName": "draft", "instructions": "Write two pages"},
    )
    assert result == Success(None)
    doc = flow(one, flow_id)
    draft = doc["steps"][1]
    assert draft["instructions"] == "Write two pages"
    assert draft["prerequisites"] == ["research"]  # not given: unchanged
    assert set(draft) == {"name", "instructions", "prerequisites", "status"}
    assert doc["steps"][0] == {**STEPS[0], "prerequisites": [], "status": "pending"}
    assert doc["updatedAt"] == clock()


def test_update_flow_step_sets_prerequisites(one: Store):
    flow_id = make_flow(one)
    one.mutation(
        "flows:updateFlowStep",
        {"flowId": flow_id, "stepName": "review", "prerequisites": ["research"]},
    ).unwrap()
    assert flow(one, flow_id)["steps"][2]["prerequisites"] == ["research"]


def test_update_flow_step_on_a_missing_flow_fails_with_flow_not_found(one: Store):
    problem = problem_of(
        one.mutation(
            "flows:updateFlowStep",
            {"flowId": missing_flow_id(one), "stepName": "draft"},
        )
    )
    assert problem == Rejected("Flow not found")
    assert problem.message == "Flow not found"


def test_update_flow_step_with_an_unknown_step_only_bumps_updated_at(
    one: Store, clock: FakeClock
):
    # The spec's code maps over the steps and patches them back with updatedAt:
    # when no step has the name, the steps stay as they were and it succeeds.
    flow_id = make_flow(one)
    before = flow(one, flow_id)
    clock.advance(500)
    result = one.mutation(
        "flows:updateFlowStep",
        {"flowId": flow_id, "stepName": "publish", "instructions": "x"},
    )
    assert result == Success(None)
    assert flow(one, flow_id) == {**before, "updatedAt": clock()}


def test_update_flow_step_takes_free_text_prerequisites(one: Store):
    flow_id = make_flow(one)
    one.mutation(
        "flows:updateFlowStep",
        {
            "flowId": flow_id,
            "stepName": "draft",
            "prerequisites": ["research", "Budget approved by finance"],
        },
    ).unwrap()
    assert flow(one, flow_id)["steps"][1]["prerequisites"] == [
        "research",
        "Budget approved by finance",
    ]
    # The free-text condition does not block the walk; the step name still does.
    result = one.action("flows:advance", {"flowId": flow_id}).unwrap()
    assert result["status"] == "completed"


def test_update_flow_step_stores_meta_on_the_flow(one: Store):
    flow_id = make_flow(one)
    one.mutation(
        "flows:updateFlowStep",
        {"flowId": flow_id, "stepName": "draft", "meta": {"editor": "Ada", "round": 2}},
    ).unwrap()
    doc = flow(one, flow_id)
    assert doc["meta"] == {"editor": "Ada", "round": 2}
    assert all("meta" not in step for step in doc["steps"])


def test_update_flow_step_timestamps_are_whole_milliseconds():
    with Store.memory(app=ONE_APP, clock=FakeClock(1_796_218_209_924.4924)) as store:
        flow_id = make_flow(store)
        store.mutation(
            "flows:updateFlowStep", {"flowId": flow_id, "stepName": "nope"}
        ).unwrap()
        doc = flow(store, flow_id)
    assert (doc["createdAt"], doc["updatedAt"]) == (1_796_218_209_924.0,) * 2


def test_update_flow_step_refuses_bad_argument_types(one: Store):
    flow_id = make_flow(one)
    problem = problem_of(
        one.mutation(
            "flows:updateFlowStep",
            {"flowId": flow_id, "stepName": "draft", "prerequisites": "research"},
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".prerequisites" in problem.message


def test_flow_and_step_statuses_are_open_value_lists(one: Store):
    # The spec does not list a flow's or a step's statuses, so a flow written by
    # other code with its own ("paused", "skipped") is stored and listed.
    paused: str = one.run(
        lambda ctx: ctx.db.insert(
            "flows",
            {
                "name": "Imported",
                "steps": [
                    {
                        "name": "a",
                        "instructions": "x",
                        "prerequisites": [],
                        "status": "skipped",
                    }
                ],
                "status": "paused",
                "createdAt": 0.0,
            },
        )
    ).unwrap()
    make_flow(one)
    listed = one.query("flows:listFlows", {"status": "paused"}).unwrap()
    assert [f["_id"] for f in listed] == [paused]
    assert one.query("flows:listFlows", {"status": "archived"}) == Success([])


# ---------------------------------------------------------------- actions


def test_advance_walks_every_step_in_order(one: Store):
    flow_id = make_flow(one)
    result = one.action("flows:advance", {"flowId": flow_id}).unwrap()
    assert result == {
        "completed": ["research", "draft", "review"],
        "status": "completed",
    }
    doc = flow(one, flow_id)
    assert doc["status"] == "completed"
    assert [s["output"] for s in doc["steps"]] == [
        "research: Collect sources",
        "draft: Write a draft",
        "review: Check the draft",
    ]
    assert all("startedAt" in s and "completedAt" in s for s in doc["steps"])
    again = one.action("flows:advance", {"flowId": flow_id}).unwrap()
    assert again == {"completed": [], "status": "completed"}


def test_run_step_runs_the_next_step_with_the_given_output(one: Store):
    flow_id = make_flow(one)
    result = one.action(
        "flows:runStep", {"flowId": flow_id, "output": "12 sources"}
    ).unwrap()
    assert result == {"stepName": "research", "output": "12 sources"}
    assert statuses(one, flow_id) == {
        "research": "done",
        "draft": "pending",
        "review": "pending",
    }
    assert flow(one, flow_id)["status"] == "running"


def test_run_step_refuses_a_step_whose_prerequisite_is_not_done(one: Store):
    flow_id = make_flow(one)
    before = flow(one, flow_id)
    problem = problem_of(
        one.action("flows:runStep", {"flowId": flow_id, "stepName": "review"})
    )
    assert problem == Rejected(
        "Step 'review' cannot start: prerequisite 'draft' is not done"
    )
    assert flow(one, flow_id) == before


def test_run_step_refuses_a_done_step_and_a_finished_flow(one: Store):
    flow_id = make_flow(one, [{"name": "only", "instructions": "x"}])
    one.action("flows:runStep", {"flowId": flow_id}).unwrap()
    assert problem_of(
        one.action("flows:runStep", {"flowId": flow_id, "stepName": "only"})
    ) == Rejected("Step 'only' is already done")
    assert problem_of(one.action("flows:runStep", {"flowId": flow_id})) == Rejected(
        "Flow 'Report' has no step left to run"
    )


def test_advance_stops_at_a_step_that_cannot_start_keeping_earlier_steps(one: Store):
    # "publish" needs "review", which comes after it: the walk reaches it first.
    steps: list[dict[str, Any]] = [
        {"name": "research", "instructions": "Collect"},
        {"name": "publish", "instructions": "Post", "prerequisites": ["review"]},
        {"name": "review", "instructions": "Check"},
    ]
    flow_id = make_flow(one, steps)
    problem = problem_of(one.action("flows:advance", {"flowId": flow_id}))
    assert problem == Rejected(
        "Step 'publish' cannot start: prerequisite 'review' is not done"
    )
    # The step before the failure was committed; the failing one and the later
    # one never ran.
    assert statuses(one, flow_id) == {
        "research": "done",
        "publish": "pending",
        "review": "pending",
    }
    assert flow(one, flow_id)["status"] == "running"


def test_advance_respects_max_steps(one: Store):
    flow_id = make_flow(one)
    result = one.action("flows:advance", {"flowId": flow_id, "maxSteps": 2}).unwrap()
    assert result == {"completed": ["research", "draft"], "status": "running"}
    problem = problem_of(
        one.action("flows:advance", {"flowId": flow_id, "maxSteps": 0})
    )
    assert problem == Rejected("maxSteps must be a whole number >= 1, got 0")


def test_actions_on_a_missing_flow_fail_with_flow_not_found(one: Store):
    gone = missing_flow_id(one)
    assert problem_of(one.action("flows:advance", {"flowId": gone})) == Rejected(
        "Flow not found"
    )
    assert problem_of(one.action("flows:runStep", {"flowId": gone})) == Rejected(
        "Flow not found"
    )


def test_a_failed_step_records_its_error_and_can_be_run_again(one: Store):
    flow_id = make_flow(one)
    one.mutation(
        "flows:startStep", {"flowId": flow_id, "stepName": "research"}
    ).unwrap()
    assert problem_of(one.action("flows:advance", {"flowId": flow_id})) == Rejected(
        "Step 'research' is already running"
    )
    one.mutation(
        "flows:failStep",
        {"flowId": flow_id, "stepName": "research", "error": "search API down"},
    ).unwrap()
    doc = flow(one, flow_id)
    assert doc["status"] == "failed"
    assert doc["steps"][0]["status"] == "failed"
    assert doc["steps"][0]["error"] == "search API down"
    assert problem_of(
        one.mutation(
            "flows:failStep",
            {"flowId": flow_id, "stepName": "draft", "error": "x"},
        )
    ) == Rejected("Step 'draft' is pending, not running")
    result = one.action("flows:advance", {"flowId": flow_id}).unwrap()
    assert result["status"] == "completed"
    assert statuses(one, flow_id)["research"] == "done"


@settings(max_examples=15)
@given(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=8))
def test_advance_completes_min_of_steps_and_max_steps_in_order(n: int, k: int):
    steps = [{"name": f"s{i}", "instructions": f"do {i}"} for i in range(n)]
    with Store.memory(app=ONE_APP) as store:
        flow_id = make_flow(store, steps)
        result = store.action("flows:advance", {"flowId": flow_id, "maxSteps": k})
        done = [
            s["name"] for s in flow(store, flow_id)["steps"] if s["status"] == "done"
        ]
    expected = [f"s{i}" for i in range(min(n, k))]
    assert result.unwrap()["completed"] == expected
    assert done == expected
    assert result.unwrap()["status"] == ("completed" if k >= n else "running")


# ---------------------------------------------------------------- scheduled


def jobs(store: Store) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = store.run(
        lambda ctx: ctx.db.system.query("_scheduled_functions").collect()
    ).unwrap()
    return result


def test_schedule_advance_walks_the_flow_when_due(one: Store, clock: FakeClock):
    flow_id = make_flow(one)
    job_id = one.mutation(
        "flows:scheduleAdvance", {"flowId": flow_id, "delayMs": 60_000}
    ).unwrap()
    [job] = jobs(one)
    assert (job["_id"], job["name"], job["args"]) == (
        job_id,
        "flows:advance",
        [{"flowId": flow_id}],
    )
    one.scheduler.advance(59_999)
    assert flow(one, flow_id)["status"] == "draft"
    one.scheduler.advance(1)
    assert flow(one, flow_id)["status"] == "completed"
    assert jobs(one)[0]["state"] == {"kind": "success"}
    assert problem_of(
        one.mutation("flows:scheduleAdvance", {"flowId": flow_id})
    ) == Rejected("Flow 'Report' is already completed")
    assert len(jobs(one)) == 1  # the refused call scheduled nothing


def test_a_scheduled_advance_that_fails_midway_is_a_failed_job(one: Store):
    steps: list[dict[str, Any]] = [
        {"name": "research", "instructions": "Collect"},
        {"name": "publish", "instructions": "Post", "prerequisites": ["review"]},
        {"name": "review", "instructions": "Check"},
    ]
    flow_id = make_flow(one, steps)
    one.mutation("flows:scheduleAdvance", {"flowId": flow_id}).unwrap()
    one.scheduler.run_all()
    assert jobs(one)[0]["state"]["kind"] == "failed"
    assert statuses(one, flow_id) == {
        "research": "done",
        "publish": "pending",
        "review": "pending",
    }


def test_schedule_advance_refuses_a_negative_delay(one: Store):
    flow_id = make_flow(one)
    problem = problem_of(
        one.mutation("flows:scheduleAdvance", {"flowId": flow_id, "delayMs": -1})
    )
    assert isinstance(problem, ArgsInvalid)
    assert jobs(one) == []
