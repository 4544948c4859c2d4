"""Tests for schema/chat: threads, messages and artifacts (the spec's paths)."""

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


def send(store: Store, thread_id: str, content: str, role: str = "user") -> str:
    message_id: str = store.mutation(
        "messages:send", {"threadId": thread_id, "role": role, "content": content}
    ).unwrap()
    return message_id


def deleted_thread_id(store: Store) -> str:
    user_id = make_user(store, "Temp")
    thread_id = make_thread(store, user_id)
    store.mutation("threads:remove", {"threadId": thread_id}).unwrap()
    return thread_id


# ---------------------------------------------------------------- threads


def test_create_then_get_a_thread(chat: Store, clock: FakeClock):
    user_id = make_user(chat)
    thread_id = make_thread(chat, user_id, "Plan a trip")
    thread = chat.query("threads:get", {"threadId": thread_id}).unwrap()
    assert thread["userId"] == user_id
    assert thread["title"] == "Plan a trip"
    assert thread["status"] == "active"
    assert thread["createdAt"] == thread["updatedAt"] == clock()


def test_get_of_a_missing_thread_is_none(chat: Store):
    assert chat.query("threads:get", {"threadId": deleted_thread_id(chat)}) == Success(
        None
    )


def test_create_needs_an_existing_user_and_a_user_id(chat: Store):
    thread_id = make_thread(chat)
    problem = problem_of(
        chat.mutation("threads:create", {"userId": thread_id, "title": "x"})
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".userId" in problem.message
    ghost: str = chat.run(
        lambda ctx: ctx.db.insert("users", {"name": "Ghost"})
    ).unwrap()
    chat.run(lambda ctx: ctx.db.delete(ghost)).unwrap()
    problem = problem_of(
        chat.mutation("threads:create", {"userId": ghost, "title": "x"})
    )
    assert problem == Rejected("User not found")
    assert problem_of(
        chat.mutation("threads:create", {"userId": make_user(chat), "title": " "})
    ) == Rejected("Thread title must not be empty")


def test_list_is_newest_first_and_only_the_users_threads(chat: Store):
    ada, grace = make_user(chat), make_user(chat, "Grace")
    first = make_thread(chat, ada, "first")
    make_thread(chat, grace, "not mine")
    second = make_thread(chat, ada, "second")
    listed = chat.query("threads:list", {"userId": ada}).unwrap()
    assert [t["_id"] for t in listed] == [second, first]
    chat.mutation("threads:archive", {"threadId": first}).unwrap()
    active = chat.query("threads:list", {"userId": ada, "status": "active"}).unwrap()
    archived = chat.query("threads:list", {"userId": ada, "status": "archived"})
    assert [t["_id"] for t in active] == [second]
    assert [t["_id"] for t in archived.unwrap()] == [first]


def test_thread_status_is_an_open_value_list(chat: Store):
    # The spec names a thread's status but not its values: a thread stored with
    # one the app does not set itself is listed by it, and still takes messages.
    ada = make_user(chat)
    make_thread(chat, ada)
    pinned: str = chat.run(
        lambda ctx: ctx.db.insert(
            "threads",
            {
                "userId": ada,
                "title": "Pinned",
                "status": "pinned",
                "createdAt": 0.0,
                "updatedAt": 0.0,
            },
        )
    ).unwrap()
    listed = chat.query("threads:list", {"userId": ada, "status": "pinned"}).unwrap()
    assert [t["_id"] for t in listed] == [pinned]
    send(chat, pinned, "still open")


def test_update_renames_and_touches_updated_at(chat: Store, clock: FakeClock):
    thread_id = make_thread(chat)
    clock.advance(60_000)
    chat.mutation("threads:update", {"threadId": thread_id, "title": "Japan"}).unwrap()
    thread = chat.query("threads:get", {"threadId": thread_id}).unwrap()
    assert (thread["title"], thread["updatedAt"]) == ("Japan", clock())
    assert thread["createdAt"] == clock() - 60_000


def test_an_archived_thread_keeps_history_but_takes_no_messages(chat: Store):
    thread_id = make_thread(chat)
    send(chat, thread_id, "hello")
    chat.mutation("threads:archive", {"threadId": thread_id}).unwrap()
    chat.mutation("threads:archive", {"threadId": thread_id}).unwrap()  # idempotent
    problem = problem_of(
        chat.mutation(
            "messages:send", {"threadId": thread_id, "role": "user", "content": "x"}
        )
    )
    assert problem == Rejected("Thread 'Trip' is archived")
    assert problem_of(
        chat.mutation(
            "artifacts:create", {"threadId": thread_id, "type": "plan", "content": "x"}
        )
    ) == Rejected("Thread 'Trip' is archived")
    assert [
        m["content"]
        for m in chat.query("messages:list", {"threadId": thread_id}).unwrap()
    ] == ["hello"]
    chat.mutation("threads:unarchive", {"threadId": thread_id}).unwrap()
    send(chat, thread_id, "back again")


def test_remove_deletes_the_thread_and_what_belongs_to_it_only(chat: Store):
    user_id = make_user(chat)
    doomed, kept = make_thread(chat, user_id), make_thread(chat, user_id, "kept")
    for thread_id in (doomed, kept):
        send(chat, thread_id, "hi")
        chat.mutation(
            "artifacts:create", {"threadId": thread_id, "type": "plan", "content": "p"}
        ).unwrap()
        chat.mutation(
            "sessions:upsert",
            {"threadId": thread_id, "sdkSessionId": "s", "phase": "planning"},
        ).unwrap()
        chat.mutation(
            "toolCalls:record", {"threadId": thread_id, "toolName": "t", "input": {}}
        ).unwrap()
        chat.mutation(
            "approvals:request", {"threadId": thread_id, "planContent": "p"}
        ).unwrap()
    assert chat.mutation("threads:remove", {"threadId": doomed}) == Success(6)
    assert chat.query("threads:get", {"threadId": doomed}) == Success(None)
    for table in ("messages", "artifacts", "sessions", "toolCalls", "approvalRequests"):
        docs = list(chat.documents(table))
        assert [d["threadId"] for d in docs] == [kept], table
    assert problem_of(chat.mutation("threads:remove", {"threadId": doomed})) == (
        Rejected("Thread not found")
    )


# ---------------------------------------------------------------- messages


def test_send_then_list_oldest_first(chat: Store):
    thread_id = make_thread(chat)
    ids = [
        send(chat, thread_id, "Plan a week in Japan"),
        send(chat, thread_id, "Here is a plan...", "assistant"),
        send(chat, thread_id, "Looks good"),
    ]
    listed = chat.query("messages:list", {"threadId": thread_id}).unwrap()
    assert isinstance(listed, list)
    assert [m["_id"] for m in listed] == ids
    assert [m["role"] for m in listed] == ["user", "assistant", "user"]


def test_send_touches_the_threads_updated_at(chat: Store, clock: FakeClock):
    thread_id = make_thread(chat)
    clock.advance(5_000)
    send(chat, thread_id, "hi")
    thread = chat.query("threads:get", {"threadId": thread_id}).unwrap()
    assert thread["updatedAt"] == clock()


def test_send_takes_a_role_the_spec_does_not_list(chat: Store):
    # The spec says "User/assistant messages" but does not close the list of roles.
    thread_id = make_thread(chat)
    send(chat, thread_id, "Looked it up", role="tool_result")
    [message] = chat.query("messages:list", {"threadId": thread_id}).unwrap()
    assert message["role"] == "tool_result"


def test_send_refuses_bad_input_with_a_clear_problem(chat: Store):
    thread_id = make_thread(chat)
    problem = problem_of(
        chat.mutation(
            "messages:send", {"threadId": thread_id, "role": 3, "content": "x"}
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".role" in problem.message
    assert problem_of(
        chat.mutation(
            "messages:send", {"threadId": thread_id, "role": "", "content": "x"}
        )
    ) == Rejected("role must not be empty")
    problem = problem_of(
        chat.mutation("messages:send", {"threadId": thread_id, "role": "user"})
    )
    assert isinstance(problem, ArgsInvalid)
    assert "content" in problem.message
    problem = problem_of(
        chat.mutation(
            "messages:send",
            {"threadId": deleted_thread_id(chat), "role": "user", "content": "x"},
        )
    )
    assert problem == Rejected("Thread not found")
    assert chat.query("messages:list", {"threadId": thread_id}) == Success([])


def test_list_page_and_search(chat: Store):
    thread_id = make_thread(chat)
    for i in range(3):
        send(chat, thread_id, f"note {i} about kyoto" if i != 1 else "note 1")
    page = chat.query(
        "messages:listPage",
        {"threadId": thread_id, "paginationOpts": {"numItems": 2, "cursor": None}},
    ).unwrap()
    assert [m["content"] for m in page["page"]] == ["note 0 about kyoto", "note 1"]
    assert page["isDone"] is False
    found = chat.query("messages:search", {"threadId": thread_id, "query": "kyoto"})
    assert sorted(m["content"] for m in found.unwrap()) == [
        "note 0 about kyoto",
        "note 2 about kyoto",
    ]


@settings(max_examples=20)
@given(st.lists(st.tuples(st.booleans(), st.text(max_size=20)), max_size=15))
def test_each_thread_lists_exactly_its_messages_in_order(sends: list[Any]):
    with Store.memory(app=CHAT_APP) as store:
        user_id = make_user(store)
        threads = [make_thread(store, user_id), make_thread(store, user_id)]
        for second, content in sends:
            send(store, threads[second], content)
        listed = [
            [
                m["content"]
                for m in store.query("messages:list", {"threadId": t}).unwrap()
            ]
            for t in threads
        ]
    assert listed == [
        [c for second, c in sends if not second],
        [c for second, c in sends if second],
    ]


# ---------------------------------------------------------------- artifacts


def test_artifacts_create_as_the_spec_backend_calls_it(chat: Store):
    thread_id = make_thread(chat)
    plan = chat.mutation(
        "artifacts:create",
        {"threadId": thread_id, "type": "plan", "content": "1. Tokyo 2. Kyoto"},
    ).unwrap()
    report = chat.mutation(
        "artifacts:create",
        {"threadId": thread_id, "type": "report", "content": "Booked."},
    ).unwrap()
    listed = chat.query("artifacts:listByThread", {"threadId": thread_id}).unwrap()
    assert [a["_id"] for a in listed] == [plan, report]
    assert listed[0]["status"] == "draft"
    assert listed[0]["content"] == "1. Tokyo 2. Kyoto"


def test_artifacts_create_refuses_bad_input(chat: Store):
    thread_id = make_thread(chat)
    problem = problem_of(
        chat.mutation(
            "artifacts:create",
            {"threadId": thread_id, "type": "plan", "content": 42},
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".content" in problem.message
    problem = problem_of(
        chat.mutation(
            "artifacts:create",
            {"threadId": thread_id, "type": "plan", "content": "x", "status": "final"},
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert "status" in problem.message
    assert problem_of(
        chat.mutation(
            "artifacts:create", {"threadId": thread_id, "type": "", "content": "x"}
        )
    ) == Rejected("Artifact type must not be empty")
    assert chat.query("artifacts:listByThread", {"threadId": thread_id}) == Success([])


def test_artifact_update_and_a_superseded_artifact_is_frozen(
    chat: Store, clock: FakeClock
):
    thread_id = make_thread(chat)
    artifact_id = chat.mutation(
        "artifacts:create", {"threadId": thread_id, "type": "plan", "content": "v1"}
    ).unwrap()
    clock.advance(10)
    chat.mutation(
        "artifacts:update",
        {"artifactId": artifact_id, "content": "v2", "status": "final"},
    ).unwrap()
    artifact = chat.query("artifacts:get", {"artifactId": artifact_id}).unwrap()
    assert (artifact["content"], artifact["status"]) == ("v2", "final")
    assert artifact["updatedAt"] == clock()
    chat.mutation(
        "artifacts:update", {"artifactId": artifact_id, "status": "superseded"}
    ).unwrap()
    assert problem_of(
        chat.mutation("artifacts:update", {"artifactId": artifact_id, "content": "v3"})
    ) == Rejected("A superseded artifact cannot be changed")
    problem = problem_of(
        chat.mutation("artifacts:update", {"artifactId": artifact_id, "status": 1})
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".status" in problem.message


def test_artifact_status_is_an_open_value_list(chat: Store):
    # The spec names an artifact's status but not its values.
    thread_id = make_thread(chat)
    artifact_id = chat.mutation(
        "artifacts:create", {"threadId": thread_id, "type": "plan", "content": "v1"}
    ).unwrap()
    chat.mutation(
        "artifacts:update", {"artifactId": artifact_id, "status": "in_review"}
    ).unwrap()
    artifact = chat.query("artifacts:get", {"artifactId": artifact_id}).unwrap()
    assert artifact["status"] == "in_review"
    assert problem_of(
        chat.mutation("artifacts:update", {"artifactId": artifact_id, "status": ""})
    ) == Rejected("Artifact status must not be empty")
