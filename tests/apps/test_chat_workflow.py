"""Tests for schema/chat: sessions, the tool-call audit trail, approvals and auth."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from one_store import ArgsInvalid, Rejected, Store
from one_store.testing import FakeClock

from .conftest import CHAT_APP
from .helpers import make_chat_thread as make_thread
from .helpers import make_chat_user as make_user
from .helpers import problem_of


def upsert(store: Store, thread_id: str, **fields: Any) -> str:
    session_id: str = store.mutation(
        "sessions:upsert",
        {"threadId": thread_id, "sdkSessionId": "sdk-1", "phase": "planning", **fields},
    ).unwrap()
    return session_id


def session(store: Store, thread_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = store.query(
        "sessions:getByThread", {"threadId": thread_id}
    ).unwrap()
    return doc


def request(store: Store, thread_id: str, plan: str = "1. Book flights") -> str:
    request_id: str = store.mutation(
        "approvals:request", {"threadId": thread_id, "planContent": plan}
    ).unwrap()
    return request_id


# ---------------------------------------------------------------- sessions


def test_upsert_creates_then_updates_the_one_session_of_a_thread(
    chat: Store, clock: FakeClock
):
    thread_id = make_thread(chat)
    assert session(chat, thread_id) is None
    first = upsert(chat, thread_id, plan="draft plan")
    clock.advance(100)
    second = upsert(chat, thread_id, sdkSessionId="sdk-2", phase="executing")
    assert first == second
    doc = session(chat, thread_id)
    assert doc is not None
    assert (doc["sdkSessionId"], doc["phase"], doc["plan"]) == (
        "sdk-2",
        "executing",
        "draft plan",  # not given the second time: kept
    )
    assert doc["updatedAt"] == clock()
    count = chat.run(lambda ctx: len(ctx.db.query("sessions").collect())).unwrap()
    assert count == 1


def test_upsert_takes_a_phase_the_app_does_not_set_itself(chat: Store):
    # The spec names a session's phase but not its values: "idle" (or any phase
    # of the SDK's) is stored as given.
    thread_id = make_thread(chat)
    upsert(chat, thread_id, phase="idle")
    doc = session(chat, thread_id)
    assert doc is not None
    assert doc["phase"] == "idle"


def test_upsert_refuses_a_phase_that_is_not_text_and_blank_fields(chat: Store):
    thread_id = make_thread(chat)
    problem = problem_of(
        chat.mutation(
            "sessions:upsert",
            {"threadId": thread_id, "sdkSessionId": "s", "phase": 3},
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".phase" in problem.message
    assert problem_of(
        chat.mutation(
            "sessions:upsert",
            {"threadId": thread_id, "sdkSessionId": "s", "phase": " "},
        )
    ) == Rejected("phase must not be empty")
    assert problem_of(
        chat.mutation(
            "sessions:upsert",
            {"threadId": thread_id, "sdkSessionId": "", "phase": "planning"},
        )
    ) == Rejected("sdkSessionId must not be empty")
    assert session(chat, thread_id) is None


# ---------------------------------------------------------------- tool calls


def test_tool_calls_are_recorded_in_order_with_any_json_input(chat: Store):
    thread_id = make_thread(chat)
    calls = [
        ("search_flights", {"from": "SFO", "to": "HND", "passengers": 2}),
        ("book_hotel", {"city": "Kyoto", "nights": [1, 2, 3]}),
        ("search_flights", {"from": "KIX", "to": "SFO", "flexible": True}),
    ]
    for tool, payload in calls:
        chat.mutation(
            "toolCalls:record",
            {"threadId": thread_id, "toolName": tool, "input": payload},
        ).unwrap()
    listed = chat.query("toolCalls:list", {"threadId": thread_id}).unwrap()
    assert [(c["toolName"], c["input"]) for c in listed] == calls
    flights = chat.query(
        "toolCalls:list", {"threadId": thread_id, "toolName": "search_flights"}
    ).unwrap()
    assert [c["input"]["from"] for c in flights] == ["SFO", "KIX"]


def test_tool_call_output_is_kept_and_archived_threads_still_audit(chat: Store):
    thread_id = make_thread(chat)
    chat.mutation("threads:archive", {"threadId": thread_id}).unwrap()
    chat.mutation(
        "toolCalls:record",
        {"threadId": thread_id, "toolName": "t", "input": None, "output": "ok"},
    ).unwrap()
    [call] = chat.query("toolCalls:list", {"threadId": thread_id}).unwrap()
    assert (call["input"], call["output"]) == (None, "ok")
    assert problem_of(
        chat.mutation(
            "toolCalls:record", {"threadId": thread_id, "toolName": " ", "input": 1}
        )
    ) == Rejected("toolName must not be empty")


# ---------------------------------------------------------------- approvals


def test_request_then_approve(chat: Store, clock: FakeClock):
    user_id = make_user(chat, "Reviewer")
    thread_id = make_thread(chat)
    request_id = request(chat, thread_id)
    assert chat.query("approvals:pending", {"threadId": thread_id}).unwrap()["_id"] == (
        request_id
    )
    clock.advance(30_000)
    chat.mutation(
        "approvals:approve",
        {"requestId": request_id, "decidedBy": user_id, "comment": "Go"},
    ).unwrap()
    doc = chat.query("approvals:get", {"requestId": request_id}).unwrap()
    assert (doc["status"], doc["decidedBy"], doc["comment"], doc["decidedAt"]) == (
        "approved",
        user_id,
        "Go",
        clock(),
    )
    assert chat.query("approvals:pending", {"threadId": thread_id}) == Success(None)


def test_a_decided_request_cannot_be_decided_again(chat: Store):
    thread_id = make_thread(chat)
    approved = request(chat, thread_id)
    chat.mutation("approvals:approve", {"requestId": approved}).unwrap()
    assert problem_of(chat.mutation("approvals:approve", {"requestId": approved})) == (
        Rejected(
            "Approval request is already approved; only a pending request can be approved"
        )
    )
    assert problem_of(chat.mutation("approvals:reject", {"requestId": approved})) == (
        Rejected(
            "Approval request is already approved; only a pending request can be rejected"
        )
    )
    rejected = request(chat, thread_id, "plan B")
    chat.mutation("approvals:reject", {"requestId": rejected}).unwrap()
    assert problem_of(chat.mutation("approvals:approve", {"requestId": rejected})) == (
        Rejected(
            "Approval request is already rejected; only a pending request can be approved"
        )
    )
    statuses = [
        r["status"]
        for r in chat.query("approvals:listByThread", {"threadId": thread_id}).unwrap()
    ]
    assert statuses == ["approved", "rejected"]


@settings(max_examples=25)
@given(st.lists(st.sampled_from(["approve", "reject"]), min_size=1, max_size=6))
def test_only_the_first_decision_counts(decisions: list[str]):
    with Store.memory(app=CHAT_APP) as store:
        request_id = request(store, make_thread(store))
        outcomes = [
            store.mutation(f"approvals:{d}", {"requestId": request_id})
            for d in decisions
        ]
        status = store.query("approvals:get", {"requestId": request_id}).unwrap()[
            "status"
        ]
    assert isinstance(outcomes[0], Success)
    assert all(not isinstance(o, Success) for o in outcomes[1:])
    assert status == {"approve": "approved", "reject": "rejected"}[decisions[0]]


def test_one_pending_request_per_thread(chat: Store):
    thread_id = make_thread(chat)
    request(chat, thread_id)
    assert problem_of(
        chat.mutation("approvals:request", {"threadId": thread_id, "planContent": "b"})
    ) == Rejected("This thread already has a pending approval request")
    other = make_thread(chat, title="other")
    request(chat, other)  # another thread is independent


def test_a_decision_by_a_missing_user_leaves_the_request_pending(chat: Store):
    thread_id = make_thread(chat)
    request_id = request(chat, thread_id)
    ghost: str = chat.run(lambda ctx: ctx.db.insert("users", {})).unwrap()
    chat.run(lambda ctx: ctx.db.delete(ghost)).unwrap()
    assert problem_of(
        chat.mutation(
            "approvals:approve", {"requestId": request_id, "decidedBy": ghost}
        )
    ) == Rejected("User not found")
    doc = chat.query("approvals:get", {"requestId": request_id}).unwrap()
    assert doc["status"] == "pending"


def test_the_session_phase_follows_the_approval(chat: Store):
    thread_id = make_thread(chat)
    upsert(chat, thread_id)
    first = request(chat, thread_id, "plan A")
    assert session(chat, thread_id)["phase"] == "awaiting_approval"  # type: ignore[index]
    chat.mutation("approvals:reject", {"requestId": first}).unwrap()
    assert session(chat, thread_id)["phase"] == "planning"  # type: ignore[index]
    second = request(chat, thread_id, "plan B")
    chat.mutation("approvals:approve", {"requestId": second}).unwrap()
    doc = session(chat, thread_id)
    assert doc is not None
    assert (doc["phase"], doc["plan"]) == ("executing", "plan B")


def test_approval_status_is_an_open_value_list(chat: Store):
    # The spec names an approval request's status but not its values: a request
    # stored as "expired" is kept, and only a pending one can be decided.
    thread_id = make_thread(chat)
    expired: str = chat.run(
        lambda ctx: ctx.db.insert(
            "approvalRequests",
            {
                "threadId": thread_id,
                "planContent": "old plan",
                "status": "expired",
                "createdAt": 0.0,
            },
        )
    ).unwrap()
    assert problem_of(
        chat.mutation("approvals:approve", {"requestId": expired})
    ) == Rejected(
        "Approval request is already expired; only a pending request can be approved"
    )
    assert chat.query("approvals:pending", {"threadId": thread_id}) == Success(None)


def test_approval_requests_refuse_bad_input(chat: Store):
    thread_id = make_thread(chat)
    assert problem_of(
        chat.mutation("approvals:request", {"threadId": thread_id, "planContent": ""})
    ) == Rejected("planContent must not be empty")
    problem = problem_of(chat.mutation("approvals:approve", {"requestId": thread_id}))
    assert isinstance(problem, ArgsInvalid)
    assert ".requestId" in problem.message


# ---------------------------------------------------------------- auth


def test_users_have_convex_auth_shape(chat: Store):
    named = chat.mutation(
        "auth:createUser", {"name": "Ada", "email": "Ada@Example.com"}
    ).unwrap()
    anonymous = chat.mutation("auth:createUser", {}).unwrap()
    assert chat.query("auth:getUser", {"userId": anonymous}).unwrap()["isAnonymous"]
    found = chat.query("auth:getUserByEmail", {"email": "ADA@example.com"}).unwrap()
    assert found["_id"] == named
    assert problem_of(
        chat.mutation("auth:createUser", {"email": "ada@example.com"})
    ) == Rejected("A user with email ada@example.com already exists")
    assert problem_of(chat.mutation("auth:createUser", {"email": "nope"})) == Rejected(
        "Invalid email address 'nope'"
    )


def test_current_user_comes_from_the_identity_subject(chat: Store):
    user_id = make_user(chat)
    session_id: str = chat.run(
        lambda ctx: ctx.db.insert(
            "authSessions", {"userId": user_id, "expirationTime": 1e13}
        )
    ).unwrap()
    signed_in = chat.with_identity({"subject": f"{user_id}|{session_id}"})
    assert signed_in.query("auth:currentUser", {}).unwrap()["_id"] == user_id
    assert chat.query("auth:currentUser", {}) == Success(None)
    stranger = chat.with_identity({"subject": "not-an-id|x"})
    assert stranger.query("auth:currentUser", {}) == Success(None)
