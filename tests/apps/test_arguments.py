"""Every function of both apps: a valid call succeeds, and a wrong-typed value in any
one argument is refused as ArgsInvalid naming that argument, with nothing written.
Also, across every function: the timestamps written are whole milliseconds, and the
only closed value lists are the ones the ONE system specification closes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from returns.result import Success

from one_store import ArgsInvalid, Store, Validator
from one_store.app import load_app
from one_store.testing import FakeClock

from .conftest import CHAT_APP, ONE_APP
from .helpers import problem_of

World = dict[str, str]
Calls = dict[str, Callable[[World], dict[str, Any]]]
PAGE = {"numItems": 10, "cursor": None}
# bytes is a Convex value no argument of these apps accepts (except v.any()).
WRONG = b"\x00"


def one_world(store: Store) -> World:
    def call(path: str, args: dict[str, Any]) -> str:
        result: str = store.mutation(path, args).unwrap()
        return result

    user = call("users:createUser", {"name": "Ada"})
    agent = call("agents:createAgent", {"name": "Planner"})
    steps = [{"name": "a", "instructions": "x"}, {"name": "b", "instructions": "y"}]
    flow = call("flows:createFlow", {"name": "f", "steps": steps})
    conversation = call("conversations:createConversation", {"title": "c"})
    participant = call(
        "conversations:addParticipant",
        {"conversationId": conversation, "agentId": agent},
    )
    lesson = call("lessons:createLesson", {"title": "t", "content": "c"})
    other_agent = call("agents:createAgent", {"name": "Writer"})
    return {
        "user": user,
        "agent": agent,
        "other_agent": other_agent,
        "flow": flow,
        "conversation": conversation,
        "participant": participant,
        "lesson": lesson,
    }


ONE_CALLS: Calls = {
    "users:createUser": lambda w: {"name": "Eve", "email": "eve@example.com"},
    "users:getUser": lambda w: {"userId": w["user"]},
    "users:listUsers": lambda w: {},
    "agents:createAgent": lambda w: {
        "name": "Critic",
        "tags": ["x"],
        "createdBy": w["user"],
    },
    "agents:updateAgent": lambda w: {
        "agentId": w["agent"],
        "name": "P",
        "description": "d",
        "prompt": "p",
        "tags": [],
        "updatedBy": w["user"],
        "meta": {"team": "ops"},
    },
    "agents:archiveAgent": lambda w: {"agentId": w["agent"]},
    "agents:getAgent": lambda w: {"agentId": w["agent"]},
    "agents:getAgentByName": lambda w: {"name": "Planner"},
    "agents:listAgents": lambda w: {"status": "active"},
    "lessons:createLesson": lambda w: {
        "title": "t",
        "content": "c",
        "agentId": w["agent"],
        "tags": ["a"],
        "meta": {"k": 1},
        "embedding": [0.125] * 64,
    },
    "lessons:deleteLesson": lambda w: {"lessonId": w["lesson"]},
    "lessons:getLesson": lambda w: {"lessonId": w["lesson"]},
    "lessons:listLessons": lambda w: {"agentId": w["agent"]},
    "lessons:getLessons": lambda w: {"lessonIds": [w["lesson"]]},
    "lessons:learn": lambda w: {
        "title": "t",
        "content": "cite sources",
        "agentId": w["agent"],
        "tags": ["a"],
    },
    "lessons:relatedLessons": lambda w: {
        "text": "sources",
        "agentId": w["agent"],
        "limit": 3,
    },
    "flows:createFlow": lambda w: {
        "name": "g",
        "description": "d",
        "steps": [{"name": "a", "instructions": "x", "prerequisites": []}],
        "agentId": w["agent"],
    },
    "flows:getFlow": lambda w: {"flowId": w["flow"]},
    "flows:listFlows": lambda w: {"status": "draft"},
    "flows:nextStep": lambda w: {"flowId": w["flow"]},
    "flows:updateFlowStep": lambda w: {
        "flowId": w["flow"],
        "stepName": "b",
        "instructions": "z",
        "prerequisites": ["a"],
        "meta": {"editor": "Ada"},
    },
    "flows:startStep": lambda w: {"flowId": w["flow"], "stepName": "a"},
    "flows:completeStep": lambda w: {
        "flowId": w["flow"],
        "stepName": "a",
        "output": "o",
    },
    "flows:failStep": lambda w: {"flowId": w["flow"], "stepName": "a", "error": "e"},
    "flows:runStep": lambda w: {"flowId": w["flow"], "stepName": "a", "output": "o"},
    "flows:advance": lambda w: {"flowId": w["flow"], "maxSteps": 1},
    "flows:scheduleAdvance": lambda w: {"flowId": w["flow"], "delayMs": 1000},
    "conversations:createConversation": lambda w: {"title": "t", "meta": {}},
    "conversations:getConversation": lambda w: {"conversationId": w["conversation"]},
    "conversations:listConversations": lambda w: {"status": "active"},
    "conversations:closeConversation": lambda w: {"conversationId": w["conversation"]},
    "conversations:addParticipant": lambda w: {
        "conversationId": w["conversation"],
        "userId": w["user"],
        "displayName": "Ada",
        "role": "owner",
    },
    "conversations:listParticipants": lambda w: {"conversationId": w["conversation"]},
    "conversations:addConversationMessage": lambda w: {
        "conversationId": w["conversation"],
        "authorParticipantId": w["participant"],
        "content": "hi",
        "kind": "system",
        "type": "note",
        "tags": ["t"],
        "meta": {"tokens": 3},
    },
    "conversations:listMessages": lambda w: {
        "conversationId": w["conversation"],
        "paginationOpts": PAGE,
    },
    "conversations:searchMessages": lambda w: {
        "conversationId": w["conversation"],
        "query": "hi",
    },
    "conversations:start": lambda w: {
        "title": "t",
        "participants": [{"agentId": w["agent"], "role": "lead"}],
        "firstMessage": "hello",
    },
}


def chat_world(store: Store) -> World:
    def call(path: str, args: dict[str, Any]) -> str:
        result: str = store.mutation(path, args).unwrap()
        return result

    user = call("auth:createUser", {"name": "Grace"})
    thread = call("threads:create", {"userId": user, "title": "t"})
    artifact = call(
        "artifacts:create", {"threadId": thread, "type": "plan", "content": "c"}
    )
    request = call("approvals:request", {"threadId": thread, "planContent": "p"})
    return {"user": user, "thread": thread, "artifact": artifact, "request": request}


CHAT_CALLS: Calls = {
    "auth:createUser": lambda w: {
        "name": "Eve",
        "email": "eve@example.com",
        "image": "i",
    },
    "auth:getUser": lambda w: {"userId": w["user"]},
    "auth:getUserByEmail": lambda w: {"email": "eve@example.com"},
    "auth:currentUser": lambda w: {},
    # A refresh token of no session: {"tokens": None}, no signing key needed.
    "auth:signIn": lambda w: {"refreshToken": f"{w['user']}|{w['user']}"},
    "auth:signOut": lambda w: {},
    "auth:store": lambda w: {"args": {"type": "signOut"}},
    "auth:isAuthenticated": lambda w: {},
    "threads:create": lambda w: {"userId": w["user"], "title": "t2"},
    "threads:get": lambda w: {"threadId": w["thread"]},
    "threads:list": lambda w: {"userId": w["user"], "status": "active"},
    "threads:update": lambda w: {"threadId": w["thread"], "title": "t3"},
    "threads:archive": lambda w: {"threadId": w["thread"]},
    "threads:unarchive": lambda w: {"threadId": w["thread"]},
    "threads:remove": lambda w: {"threadId": w["thread"]},
    "messages:send": lambda w: {
        "threadId": w["thread"],
        "role": "user",
        "content": "c",
    },
    "messages:list": lambda w: {"threadId": w["thread"]},
    "messages:listPage": lambda w: {"threadId": w["thread"], "paginationOpts": PAGE},
    "messages:search": lambda w: {"threadId": w["thread"], "query": "c"},
    "artifacts:create": lambda w: {
        "threadId": w["thread"],
        "type": "report",
        "content": "c",
    },
    "artifacts:get": lambda w: {"artifactId": w["artifact"]},
    "artifacts:generateUploadUrl": lambda w: {},
    "artifacts:fileUrl": lambda w: {"artifactId": w["artifact"]},
    "artifacts:listByThread": lambda w: {"threadId": w["thread"]},
    "artifacts:update": lambda w: {
        "artifactId": w["artifact"],
        "content": "c2",
        "status": "final",
    },
    "sessions:upsert": lambda w: {
        "threadId": w["thread"],
        "sdkSessionId": "s",
        "phase": "planning",
        "plan": "p",
    },
    "sessions:getByThread": lambda w: {"threadId": w["thread"]},
    "toolCalls:record": lambda w: {
        "threadId": w["thread"],
        "toolName": "t",
        "input": {"q": 1},
        "output": [1, 2],
    },
    "toolCalls:list": lambda w: {"threadId": w["thread"], "toolName": "t"},
    "approvals:request": lambda w: {"threadId": w["thread"], "planContent": "p2"},
    "approvals:approve": lambda w: {
        "requestId": w["request"],
        "decidedBy": w["user"],
        "comment": "ok",
    },
    "approvals:reject": lambda w: {"requestId": w["request"], "comment": "no"},
    "approvals:get": lambda w: {"requestId": w["request"]},
    "approvals:listByThread": lambda w: {"threadId": w["thread"]},
    "approvals:pending": lambda w: {"threadId": w["thread"]},
}


def start_a(store: Store, world: World) -> object:
    return store.mutation(
        "flows:startStep", {"flowId": world["flow"], "stepName": "a"}
    ).unwrap()


# Calls that need a state first: completing or failing a step needs it running;
# approvals:request needs no pending request on the thread.
SETUP: dict[str, Callable[[Store, World], object]] = {
    "flows:completeStep": start_a,
    "flows:failStep": start_a,
    "approvals:request": lambda s, w: s.mutation(
        "approvals:reject", {"requestId": w["request"]}
    ).unwrap(),
}

APPS = {
    "one": (ONE_APP, ONE_CALLS, one_world),
    "chat": (CHAT_APP, CHAT_CALLS, chat_world),
}


def cases() -> Iterator[tuple[str, str]]:
    for name, (_, calls, _) in APPS.items():
        for path in calls:
            yield name, path


def run(store: Store, path: str, args: dict[str, Any]) -> Any:
    spec = store.function(path).unwrap()
    return {"query": store.query, "mutation": store.mutation, "action": store.action}[
        spec.kind
    ](path, args)


def everything(store: Store) -> dict[str, list[dict[str, Any]]]:
    return {t: list(store.documents(t)) for t in store.storage.tables()}


@pytest.mark.parametrize("app", list(APPS))
def test_every_function_has_a_call_here(app: str):
    folder, calls, _ = APPS[app]
    assert sorted(calls) == load_app(folder).paths()


@pytest.mark.parametrize(("app", "path"), list(cases()))
def test_a_valid_call_succeeds(app: str, path: str, clock: FakeClock):
    folder, calls, world_of = APPS[app]
    with Store.memory(app=folder, clock=clock) as store:
        world = world_of(store)
        if path in SETUP:
            SETUP[path](store, world)
        result = run(store, path, calls[path](world))
        assert isinstance(result, Success), result


@pytest.mark.parametrize(("app", "path"), list(cases()))
def test_a_wrong_type_in_any_argument_is_args_invalid_naming_it(
    app: str, path: str, clock: FakeClock
):
    folder, calls, world_of = APPS[app]
    with Store.memory(app=folder, clock=clock) as store:
        world = world_of(store)
        valid = calls[path](world)
        spec = store.function(path).unwrap()
        assert spec.args is not None
        fields = [
            name for name, validator in spec.args.fields if validator.kind != "any"
        ]
        before = everything(store)
        for field in fields:
            problem = problem_of(run(store, path, {**valid, field: WRONG}))
            assert isinstance(problem, ArgsInvalid), (field, problem)
            assert f".{field}" in problem.message, (field, problem.message)
        assert everything(store) == before


# The instant of the report: Date.now() at this moment is 1796218209924.
FRACTIONAL_MS = 1_796_218_209_924.4924


def timestamps(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``...At`` field (createdAt, startedAt, joinedAt, ...), at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("At"):
                yield f"{where}.{key}", item
            yield from timestamps(item, f"{where}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from timestamps(item, f"{where}[{number}]")


@pytest.mark.parametrize(("app", "path"), list(cases()))
def test_every_timestamp_written_is_whole_milliseconds_as_date_now(app: str, path: str):
    folder, calls, world_of = APPS[app]
    with Store.memory(app=folder, clock=FakeClock(FRACTIONAL_MS)) as store:
        world = world_of(store)
        if path in SETUP:
            SETUP[path](store, world)
        assert isinstance(run(store, path, calls[path](world)), Success)
        stamps = list(timestamps(everything(store)))
    assert stamps or path == "threads:remove"  # remove leaves only a user
    whole = float(math.floor(FRACTIONAL_MS))
    assert [(w, s) for w, s in stamps if s != whole or type(s) is not float] == []


def closed_lists(validator: Validator, where: str) -> Iterator[str]:
    """Where ``validator`` has a union of literals (a closed list of values)."""
    if validator.kind == "union" and all(
        m.kind == "literal" for m in validator.members
    ):
        yield where
    for name, field in validator.fields:
        yield from closed_lists(field, f"{where}.{name}")
    for inner in (validator.element, validator.keys, validator.values):
        if inner is not None:
            yield from closed_lists(inner, f"{where}[]")
    for member in validator.members:
        yield from closed_lists(member, where)


# The ONE system specification closes one list: addConversationMessage's `kind`
# ("participant" | "system"). Every other value list (statuses, roles, a session's
# phase) is one it leaves open, so the apps take any string there.
SPEC_CLOSED = {
    "one": {
        "conversationMessages.kind",
        "conversations:addConversationMessage.kind",
    },
    "chat": set(),
}


@pytest.mark.parametrize("app", list(APPS))
def test_only_the_value_lists_the_spec_closes_are_closed(app: str):
    folder, calls, _ = APPS[app]
    with Store.memory(app=folder) as store:
        assert store.schema is not None
        found = {
            where
            for table, definition in store.schema.tables.items()
            for where in closed_lists(definition.document, table)
        }
        for path in calls:
            spec = store.function(path).unwrap()
            if spec.args is not None:
                found.update(closed_lists(spec.args, path))
    assert found == SPEC_CLOSED[app]
