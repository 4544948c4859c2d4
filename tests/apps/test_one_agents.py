"""Tests for schema/one: users, agents (the spec's updateAgent) and lessons."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from one_store import ArgsInvalid, DocumentNotFound, Rejected, Store
from one_store.testing import FakeClock

from .conftest import ONE_APP
from .helpers import AGENT, deleted_id, make_agent, make_user, problem_of

# ---------------------------------------------------------------- users


def test_create_user_lowercases_email_and_refuses_a_duplicate(one: Store):
    user_id = make_user(one, email="Ada@Example.com")
    assert one.query("users:getUser", {"userId": user_id}).unwrap()["email"] == (
        "ada@example.com"
    )
    problem = problem_of(
        one.mutation("users:createUser", {"name": "Eve", "email": "ada@example.COM"})
    )
    assert problem == Rejected("A user with email ada@example.com already exists")
    assert len(one.query("users:listUsers", {}).unwrap()) == 1


def test_blank_user_name_is_rejected(one: Store):
    assert problem_of(one.mutation("users:createUser", {"name": "  "})) == Rejected(
        "User name must not be empty"
    )


# ---------------------------------------------------------------- agents


def test_create_agent_stores_the_fields_active_with_created_at(
    one: Store, clock: FakeClock
):
    agent = one.query("agents:getAgent", {"agentId": make_agent(one)}).unwrap()
    assert {k: agent[k] for k in AGENT} == AGENT
    assert agent["status"] == "active"
    assert agent["createdAt"] == clock()
    assert "updatedAt" not in agent


def test_update_agent_spec_example_patches_given_fields_and_updated_at(
    one: Store, clock: FakeClock
):
    user_id = make_user(one)
    agent_id = make_agent(one)
    clock.advance(1_000)
    result = one.mutation(
        "agents:updateAgent",
        {"agentId": agent_id, "description": "Plans carefully", "updatedBy": user_id},
    )
    assert result == Success(None)
    agent = one.query("agents:getAgent", {"agentId": agent_id}).unwrap()
    assert agent["description"] == "Plans carefully"
    assert agent["updatedBy"] == user_id
    assert agent["updatedAt"] == clock()
    # Fields not given keep their values; the ID argument is not copied in.
    assert agent["name"] == AGENT["name"]
    assert agent["prompt"] == AGENT["prompt"]
    assert agent["tags"] == AGENT["tags"]
    assert "agentId" not in agent


UPDATE_FIELDS = {
    "name": st.text(min_size=1).filter(lambda s: s.strip() == s and s != ""),
    "description": st.text(),
    "prompt": st.text(),
    "tags": st.lists(st.text(max_size=8), max_size=4),
}


@settings(max_examples=30)
@given(st.fixed_dictionaries({}, optional=UPDATE_FIELDS))
def test_update_agent_changes_exactly_the_fields_given(changes: dict[str, Any]):
    clock = FakeClock(1_000.0)
    with Store.memory(app=ONE_APP, clock=clock) as store:
        agent_id = make_agent(store)
        before = store.query("agents:getAgent", {"agentId": agent_id}).unwrap()
        clock.advance(5)
        store.mutation("agents:updateAgent", {"agentId": agent_id, **changes}).unwrap()
        after = store.query("agents:getAgent", {"agentId": agent_id}).unwrap()
    expected = {**before, **changes, "updatedAt": 1_005.0}
    assert after == expected


def test_update_agent_on_a_missing_agent_is_document_not_found(one: Store):
    gone = deleted_id(
        one, "agents", {"name": "x", "status": "active", "createdAt": 0.0}
    )
    problem = problem_of(one.mutation("agents:updateAgent", {"agentId": gone}))
    assert problem == DocumentNotFound(gone, "Update")


def test_update_agent_refuses_an_id_of_another_table(one: Store):
    user_id = make_user(one)
    problem = problem_of(one.mutation("agents:updateAgent", {"agentId": user_id}))
    assert isinstance(problem, ArgsInvalid)
    assert ".agentId" in problem.message
    assert 'v.id("agents")' in problem.message


def test_update_agent_refuses_arguments_the_spec_does_not_declare(one: Store):
    agent_id = make_agent(one)
    problem = problem_of(
        one.mutation("agents:updateAgent", {"agentId": agent_id, "status": "archived"})
    )
    assert isinstance(problem, ArgsInvalid)
    assert "status" in problem.message
    agent = one.query("agents:getAgent", {"agentId": agent_id}).unwrap()
    assert agent["status"] == "active"


def test_update_agent_refuses_a_bad_field_type_naming_where(one: Store):
    agent_id = make_agent(one)
    problem = problem_of(
        one.mutation("agents:updateAgent", {"agentId": agent_id, "tags": ["a", 2]})
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".tags[1]" in problem.message


def test_update_agent_by_a_missing_user_changes_nothing(one: Store):
    agent_id = make_agent(one)
    ghost = deleted_id(one, "users", {"name": "Ghost", "createdAt": 0.0})
    problem = problem_of(
        one.mutation(
            "agents:updateAgent",
            {"agentId": agent_id, "name": "Renamed", "updatedBy": ghost},
        )
    )
    assert problem == Rejected("User not found")
    agent = one.query("agents:getAgent", {"agentId": agent_id}).unwrap()
    assert agent["name"] == "Planner"


def test_create_agent_by_a_missing_user_creates_nothing(one: Store):
    ghost = deleted_id(one, "users", {"name": "Ghost", "createdAt": 0.0})
    problem = problem_of(
        one.mutation("agents:createAgent", {"name": "x", "createdBy": ghost})
    )
    assert problem == Rejected("User not found")
    assert one.query("agents:listAgents", {}).unwrap() == []


def test_blank_agent_name_is_rejected_on_create_and_update(one: Store):
    assert problem_of(one.mutation("agents:createAgent", {"name": ""})) == Rejected(
        "Agent name must not be empty"
    )
    agent_id = make_agent(one)
    assert problem_of(
        one.mutation("agents:updateAgent", {"agentId": agent_id, "name": " "})
    ) == Rejected("Agent name must not be empty")


def test_list_agents_by_status_and_get_by_name(one: Store):
    planner = make_agent(one)
    critic = make_agent(one, name="Critic")
    one.mutation("agents:archiveAgent", {"agentId": planner}).unwrap()
    active = one.query("agents:listAgents", {"status": "active"}).unwrap()
    archived = one.query("agents:listAgents", {"status": "archived"}).unwrap()
    assert [a["_id"] for a in active] == [critic]
    assert [a["_id"] for a in archived] == [planner]
    assert len(one.query("agents:listAgents", {}).unwrap()) == 2
    found = one.query("agents:getAgentByName", {"name": "Critic"}).unwrap()
    assert found["_id"] == critic
    assert one.query("agents:getAgentByName", {"name": "Nobody"}) == Success(None)


def test_update_agent_stores_meta_on_the_agent(one: Store):
    agent_id = make_agent(one, meta={"team": "ops"})
    one.mutation(
        "agents:updateAgent",
        {"agentId": agent_id, "meta": {"team": "research", "level": 2}},
    ).unwrap()
    agent = one.query("agents:getAgent", {"agentId": agent_id}).unwrap()
    # A patch replaces a top-level field whole, as ctx.db.patch in Convex.
    assert agent["meta"] == {"team": "research", "level": 2}
    assert agent["name"] == AGENT["name"]


def test_agent_timestamps_are_whole_milliseconds_as_date_now():
    with Store.memory(app=ONE_APP, clock=FakeClock(1_796_218_209_924.4924)) as store:
        agent_id = make_agent(store)
        store.mutation(
            "agents:updateAgent", {"agentId": agent_id, "prompt": "Plan."}
        ).unwrap()
        agent = store.query("agents:getAgent", {"agentId": agent_id}).unwrap()
    assert (agent["createdAt"], agent["updatedAt"]) == (1_796_218_209_924.0,) * 2


def test_list_agents_takes_any_status(one: Store):
    # The spec does not list an agent's statuses: an agent stored with one the
    # app does not set itself is listed by it, and an unused one lists nothing.
    make_agent(one)
    paused: str = one.run(
        lambda ctx: ctx.db.insert(
            "agents", {"name": "Sleeper", "status": "paused", "createdAt": 0.0}
        )
    ).unwrap()
    listed = one.query("agents:listAgents", {"status": "paused"}).unwrap()
    assert [a["_id"] for a in listed] == [paused]
    assert one.query("agents:listAgents", {"status": "deleted"}) == Success([])
    problem = problem_of(one.query("agents:listAgents", {"status": 3}))
    assert isinstance(problem, ArgsInvalid)
    assert ".status" in problem.message


# ---------------------------------------------------------------- lessons


def test_delete_lesson_spec_example(one: Store):
    lesson_id = one.mutation(
        "lessons:createLesson", {"title": "Be brief", "content": "Short answers."}
    ).unwrap()
    assert one.mutation("lessons:deleteLesson", {"lessonId": lesson_id}) == Success(
        None
    )
    assert one.query("lessons:getLesson", {"lessonId": lesson_id}) == Success(None)


def test_deleting_a_lesson_twice_is_document_not_found(one: Store):
    lesson_id = one.mutation(
        "lessons:createLesson", {"title": "t", "content": "c"}
    ).unwrap()
    one.mutation("lessons:deleteLesson", {"lessonId": lesson_id}).unwrap()
    problem = problem_of(one.mutation("lessons:deleteLesson", {"lessonId": lesson_id}))
    assert problem == DocumentNotFound(lesson_id, "Delete")


def test_delete_lesson_refuses_a_malformed_id(one: Store):
    problem = problem_of(one.mutation("lessons:deleteLesson", {"lessonId": "nope"}))
    assert isinstance(problem, ArgsInvalid)
    assert ".lessonId" in problem.message


def test_lessons_list_by_agent_and_need_an_existing_agent(one: Store):
    planner, critic = make_agent(one), make_agent(one, name="Critic")
    for agent_id, title in [(planner, "a"), (critic, "b"), (planner, "c")]:
        one.mutation(
            "lessons:createLesson",
            {"title": title, "content": "...", "agentId": agent_id},
        ).unwrap()
    mine = one.query("lessons:listLessons", {"agentId": planner}).unwrap()
    assert [lesson["title"] for lesson in mine] == ["a", "c"]
    assert len(one.query("lessons:listLessons", {}).unwrap()) == 3
    ghost = deleted_id(
        one, "agents", {"name": "x", "status": "active", "createdAt": 0.0}
    )
    problem = problem_of(
        one.mutation(
            "lessons:createLesson", {"title": "t", "content": "c", "agentId": ghost}
        )
    )
    assert problem == Rejected("Agent not found")
