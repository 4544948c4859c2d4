"""Tests for schema/one conversations: participants, the spec's addConversationMessage,
paginated listing, and the ``conversations:start`` action."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Success

from one_store import ArgsInvalid, Rejected, Store
from one_store.testing import FakeClock

from .conftest import ONE_APP
from .helpers import deleted_id, make_agent, make_user, problem_of


def make_conversation(store: Store, title: str = "Plan the launch") -> str:
    conversation_id: str = store.mutation(
        "conversations:createConversation", {"title": title}
    ).unwrap()
    return conversation_id


def join(store: Store, conversation_id: str, **who: Any) -> str:
    participant_id: str = store.mutation(
        "conversations:addParticipant", {"conversationId": conversation_id, **who}
    ).unwrap()
    return participant_id


def messages(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    page: dict[str, Any] = store.query(
        "conversations:listMessages",
        {
            "conversationId": conversation_id,
            "paginationOpts": {"numItems": 1000, "cursor": None},
        },
    ).unwrap()
    docs: list[dict[str, Any]] = page["page"]
    return docs


def test_add_conversation_message_spec_example(one: Store, clock: FakeClock):
    conversation_id = make_conversation(one)
    author = join(one, conversation_id, agentId=make_agent(one))
    message_id = one.mutation(
        "conversations:addConversationMessage",
        {
            "conversationId": conversation_id,
            "authorParticipantId": author,
            "content": "Here is the plan.",
        },
    ).unwrap()
    [message] = messages(one, conversation_id)
    assert message["_id"] == message_id
    assert message["kind"] == "participant"  # the spec's default
    assert message["createdAt"] == clock()
    assert message["content"] == "Here is the plan."
    assert message["authorParticipantId"] == author
    # Optional arguments not given are absent, as `undefined` fields in Convex.
    assert "type" not in message
    assert "tags" not in message


def test_add_conversation_message_keeps_kind_type_and_tags(one: Store):
    conversation_id = make_conversation(one)
    author = join(one, conversation_id, userId=make_user(one))
    one.mutation(
        "conversations:addConversationMessage",
        {
            "conversationId": conversation_id,
            "authorParticipantId": author,
            "content": "Ada joined",
            "kind": "system",
            "type": "event",
            "tags": ["join"],
        },
    ).unwrap()
    [message] = messages(one, conversation_id)
    assert (message["kind"], message["type"], message["tags"]) == (
        "system",
        "event",
        ["join"],
    )


def test_add_conversation_message_stores_meta_on_the_message(one: Store):
    conversation_id = make_conversation(one)
    author = join(one, conversation_id, agentId=make_agent(one))
    one.mutation(
        "conversations:addConversationMessage",
        {
            "conversationId": conversation_id,
            "authorParticipantId": author,
            "content": "Done.",
            "meta": {"model": "m-1", "tokens": 12},
        },
    ).unwrap()
    [message] = messages(one, conversation_id)
    assert message["meta"] == {"model": "m-1", "tokens": 12}


def test_add_conversation_message_refuses_an_unknown_kind(one: Store):
    conversation_id = make_conversation(one)
    author = join(one, conversation_id, agentId=make_agent(one))
    problem = problem_of(
        one.mutation(
            "conversations:addConversationMessage",
            {
                "conversationId": conversation_id,
                "authorParticipantId": author,
                "content": "x",
                "kind": "robot",
            },
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".kind" in problem.message


def test_add_conversation_message_refuses_an_agent_id_as_author(one: Store):
    conversation_id = make_conversation(one)
    agent_id = make_agent(one)
    problem = problem_of(
        one.mutation(
            "conversations:addConversationMessage",
            {
                "conversationId": conversation_id,
                "authorParticipantId": agent_id,
                "content": "x",
            },
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert ".authorParticipantId" in problem.message


def test_the_author_must_belong_to_the_conversation(one: Store):
    first, second = make_conversation(one, "one"), make_conversation(one, "two")
    outsider = join(one, second, agentId=make_agent(one), displayName="Critic")
    problem = problem_of(
        one.mutation(
            "conversations:addConversationMessage",
            {
                "conversationId": first,
                "authorParticipantId": outsider,
                "content": "x",
            },
        )
    )
    assert problem == Rejected(
        "Participant 'Critic' does not belong to this conversation"
    )
    assert messages(one, first) == []


def test_a_closed_conversation_takes_no_messages_or_participants(one: Store):
    conversation_id = make_conversation(one)
    author = join(one, conversation_id, agentId=make_agent(one))
    one.mutation(
        "conversations:closeConversation", {"conversationId": conversation_id}
    ).unwrap()
    closed = Rejected("Conversation 'Plan the launch' is closed")
    assert (
        problem_of(
            one.mutation(
                "conversations:addConversationMessage",
                {
                    "conversationId": conversation_id,
                    "authorParticipantId": author,
                    "content": "x",
                },
            )
        )
        == closed
    )
    assert (
        problem_of(
            one.mutation(
                "conversations:addParticipant",
                {"conversationId": conversation_id, "userId": make_user(one)},
            )
        )
        == closed
    )


def test_add_participant_rules(one: Store):
    conversation_id = make_conversation(one)
    agent_id, user_id = make_agent(one), make_user(one, "Grace")
    participant = join(one, conversation_id, userId=user_id, role="reviewer")
    [doc] = one.query(
        "conversations:listParticipants", {"conversationId": conversation_id}
    ).unwrap()
    assert doc["_id"] == participant
    assert (doc["participantType"], doc["displayName"], doc["role"]) == (
        "user",
        "Grace",
        "reviewer",
    )
    add = "conversations:addParticipant"
    both = {"conversationId": conversation_id, "agentId": agent_id, "userId": user_id}
    neither = {"conversationId": conversation_id}
    exactly_one = Rejected("A participant is exactly one of agentId or userId")
    assert problem_of(one.mutation(add, both)) == exactly_one
    assert problem_of(one.mutation(add, neither)) == exactly_one
    assert problem_of(
        one.mutation(add, {"conversationId": conversation_id, "userId": user_id})
    ) == Rejected("User 'Grace' is already a participant of this conversation")
    ghost = deleted_id(
        one, "agents", {"name": "x", "status": "active", "createdAt": 0.0}
    )
    assert problem_of(
        one.mutation(add, {"conversationId": conversation_id, "agentId": ghost})
    ) == Rejected("Agent not found")
    assert (
        len(
            one.query(
                "conversations:listParticipants", {"conversationId": conversation_id}
            ).unwrap()
        )
        == 1
    )


def test_list_messages_pages_oldest_first_within_one_conversation(one: Store):
    conversation_id, other = make_conversation(one), make_conversation(one, "other")
    author = join(one, conversation_id, agentId=make_agent(one))
    other_author = join(one, other, agentId=make_agent(one, name="Other"))
    for i in range(5):
        for conv, who in [(conversation_id, author), (other, other_author)]:
            one.mutation(
                "conversations:addConversationMessage",
                {
                    "conversationId": conv,
                    "authorParticipantId": who,
                    "content": f"m{i}",
                },
            ).unwrap()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = one.query(
            "conversations:listMessages",
            {
                "conversationId": conversation_id,
                "paginationOpts": {"numItems": 2, "cursor": cursor},
            },
        ).unwrap()
        seen += [m["content"] for m in page["page"]]
        assert all(m["conversationId"] == conversation_id for m in page["page"])
        pages += 1
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    assert seen == ["m0", "m1", "m2", "m3", "m4"]
    assert pages == 3


def test_list_messages_refuses_a_page_of_zero(one: Store):
    problem = problem_of(
        one.query(
            "conversations:listMessages",
            {
                "conversationId": make_conversation(one),
                "paginationOpts": {"numItems": 0, "cursor": None},
            },
        )
    )
    assert isinstance(problem, ArgsInvalid)
    assert "numItems" in problem.message


def test_search_messages_finds_words_in_one_conversation(one: Store):
    conversation_id = make_conversation(one)
    author = join(one, conversation_id, agentId=make_agent(one))
    for content in ["deploy on friday", "write the changelog", "friday retro"]:
        one.mutation(
            "conversations:addConversationMessage",
            {
                "conversationId": conversation_id,
                "authorParticipantId": author,
                "content": content,
            },
        ).unwrap()
    found = one.query(
        "conversations:searchMessages",
        {"conversationId": conversation_id, "query": "friday"},
    ).unwrap()
    assert sorted(m["content"] for m in found) == ["deploy on friday", "friday retro"]


def test_list_conversations_newest_first_and_by_status(one: Store):
    a, b = make_conversation(one, "a"), make_conversation(one, "b")
    one.mutation("conversations:closeConversation", {"conversationId": a}).unwrap()
    listed = one.query("conversations:listConversations", {}).unwrap()
    assert [c["_id"] for c in listed] == [b, a]
    active = one.query("conversations:listConversations", {"status": "active"}).unwrap()
    assert [c["_id"] for c in active] == [b]


# ---------------------------------------------------------------- start (action)


def test_conversation_status_and_participant_type_are_open_value_lists(one: Store):
    # The spec does not list these values: documents written by other code with
    # values of their own are stored, and listConversations filters by any status.
    def work(ctx: Any) -> str:
        conversation_id: str = ctx.db.insert(
            "conversations", {"title": "Imported", "status": "paused", "createdAt": 0.0}
        )
        ctx.db.insert(
            "conversationParticipants",
            {
                "conversationId": conversation_id,
                "participantType": "team",
                "displayName": "Ops",
                "joinedAt": 0.0,
            },
        )
        return conversation_id

    paused: str = one.run(work).unwrap()
    make_conversation(one)
    listed = one.query("conversations:listConversations", {"status": "paused"})
    assert [c["_id"] for c in listed.unwrap()] == [paused]
    [participant] = one.query(
        "conversations:listParticipants", {"conversationId": paused}
    ).unwrap()
    assert participant["participantType"] == "team"


def test_start_creates_conversation_participants_and_first_message(one: Store):
    agent_id, user_id = make_agent(one), make_user(one)
    result = one.action(
        "conversations:start",
        {
            "title": "Kickoff",
            "participants": [
                {"agentId": agent_id, "role": "lead"},
                {"userId": user_id},
            ],
            "firstMessage": "Hello, team.",
        },
    ).unwrap()
    conversation_id = result["conversationId"]
    participants = one.query(
        "conversations:listParticipants", {"conversationId": conversation_id}
    ).unwrap()
    assert [p["_id"] for p in participants] == result["participantIds"]
    assert participants[0]["agentId"] == agent_id
    [message] = messages(one, conversation_id)
    assert message["_id"] == result["messageId"]
    assert message["authorParticipantId"] == result["participantIds"][0]
    assert message["content"] == "Hello, team."


def test_start_without_a_first_message_posts_none(one: Store):
    result = one.action(
        "conversations:start",
        {"title": "Quiet", "participants": [{"agentId": make_agent(one)}]},
    ).unwrap()
    assert result["messageId"] is None
    assert messages(one, result["conversationId"]) == []


def test_start_that_fails_midway_keeps_earlier_steps_and_runs_no_later_ones(
    one: Store,
):
    agent_id = make_agent(one)
    ghost = deleted_id(one, "users", {"name": "Ghost", "createdAt": 0.0})
    problem = problem_of(
        one.action(
            "conversations:start",
            {
                "title": "Half made",
                "participants": [
                    {"agentId": agent_id},
                    {"userId": ghost},
                    {"userId": make_user(one)},
                ],
                "firstMessage": "never sent",
            },
        )
    )
    assert problem == Rejected("User not found")
    [conversation] = one.query("conversations:listConversations", {}).unwrap()
    assert conversation["title"] == "Half made"
    participants = one.query(
        "conversations:listParticipants", {"conversationId": conversation["_id"]}
    ).unwrap()
    assert [p.get("agentId") for p in participants] == [agent_id]
    assert messages(one, conversation["_id"]) == []


def test_start_refuses_malformed_participants_before_writing(one: Store):
    problem = problem_of(
        one.action("conversations:start", {"title": "x", "participants": []})
    )
    assert problem == Rejected("A conversation needs at least one participant")
    agent_id = make_agent(one)
    problem = problem_of(
        one.action(
            "conversations:start",
            {"title": "x", "participants": [{"agentId": agent_id}, {"role": "lead"}]},
        )
    )
    assert problem == Rejected(
        "participants[1] must have exactly one of agentId or userId"
    )
    assert one.query("conversations:listConversations", {}) == Success([])


@settings(max_examples=20)
@given(st.lists(st.sampled_from(["a", "b"]), max_size=12))
def test_messages_keep_insertion_order_per_conversation(authors: list[str]):
    with Store.memory(app=ONE_APP) as store:
        conversation_id = make_conversation(store)
        ids = {
            name: join(store, conversation_id, agentId=make_agent(store, name=name))
            for name in ("a", "b")
        }
        for i, name in enumerate(authors):
            store.mutation(
                "conversations:addConversationMessage",
                {
                    "conversationId": conversation_id,
                    "authorParticipantId": ids[name],
                    "content": f"{name}{i}",
                },
            ).unwrap()
        listed = [m["content"] for m in messages(store, conversation_id)]
    assert listed == [f"{name}{i}" for i, name in enumerate(authors)]
