"""Conversations between agents and users: participants, messages, and ``start``.

``addConversationMessage`` is the spec's mutation. A message's author must be a
participant of the same conversation, and a closed conversation takes no messages.
"""

from typing import Any

from one_store import (
    ActionCtx,
    ConvexError,
    MutationCtx,
    QueryCtx,
    action,
    mutation,
    query,
    v,
)

from ._rules import given, now_ms, require_doc, require_text

META = v.optional(v.record(v.string(), v.any()))
PAGINATION_OPTS = v.object(
    {"numItems": v.number(), "cursor": v.union(v.string(), v.null())}
)


def _open_conversation(
    ctx: QueryCtx | MutationCtx, conversation_id: str
) -> dict[str, Any]:
    conversation = require_doc(ctx, conversation_id, "Conversation")
    if conversation["status"] != "active":
        raise ConvexError(f"Conversation {conversation['title']!r} is closed")
    return conversation


@mutation(args={"title": v.string(), "meta": META}, name="createConversation")
def create_conversation(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.db.insert(
        "conversations",
        {
            "title": require_text(args["title"], "Conversation title"),
            "status": "active",
            "createdAt": now_ms(ctx),
            **given(args, "meta"),
        },
    )


@query(args={"conversationId": v.id("conversations")}, name="getConversation")
def get_conversation(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["conversationId"])


@query(
    args={"status": v.optional(v.string())},
    name="listConversations",
)
def list_conversations(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Conversations, newest first."""
    if "status" not in args:
        return ctx.db.query("conversations").order("desc").collect()
    status = args["status"]
    return (
        ctx.db.query("conversations")
        .with_index("by_status", lambda q: q.eq("status", status))
        .order("desc")
        .collect()
    )


@mutation(args={"conversationId": v.id("conversations")}, name="closeConversation")
def close_conversation(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.patch(args["conversationId"], {"status": "closed", "updatedAt": now_ms(ctx)})


@mutation(
    args={
        "conversationId": v.id("conversations"),
        "agentId": v.optional(v.id("agents")),
        "userId": v.optional(v.id("users")),
        "displayName": v.optional(v.string()),
        "role": v.optional(v.string()),
        "meta": META,
    },
    name="addParticipant",
)
def add_participant(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Add an agent or a user (exactly one of ``agentId``/``userId``)."""
    conversation_id = args["conversationId"]
    _open_conversation(ctx, conversation_id)
    if ("agentId" in args) == ("userId" in args):
        raise ConvexError("A participant is exactly one of agentId or userId")
    kind, field, table = (
        ("agent", "agentId", "Agent")
        if "agentId" in args
        else ("user", "userId", "User")
    )
    member = require_doc(ctx, args[field], table)
    index = f"by_conversation_{kind}"
    member_id = args[field]
    existing = (
        ctx.db.query("conversationParticipants")
        .with_index(
            index,
            lambda q: q.eq("conversationId", conversation_id).eq(field, member_id),
        )
        .first()
    )
    if existing is not None:
        raise ConvexError(
            f"{table} {member['name']!r} is already a participant of this conversation"
        )
    return ctx.db.insert(
        "conversationParticipants",
        {
            "conversationId": conversation_id,
            "participantType": kind,
            field: member_id,
            "displayName": args.get("displayName") or member["name"],
            "joinedAt": now_ms(ctx),
            **given(args, "role", "meta"),
        },
    )


@query(args={"conversationId": v.id("conversations")}, name="listParticipants")
def list_participants(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    conversation_id = args["conversationId"]
    return (
        ctx.db.query("conversationParticipants")
        .with_index(
            "by_conversation", lambda q: q.eq("conversationId", conversation_id)
        )
        .collect()
    )


# The spec's mutation, under its name and with its arguments, plus `meta` ("all
# mutations should support `meta`"), stored on the message. It returns the new
# message's ID (the spec returns nothing, which callers may ignore). `kind` is the
# one value list the spec closes.
@mutation(
    args={
        "conversationId": v.id("conversations"),
        "authorParticipantId": v.id("conversationParticipants"),
        "content": v.string(),
        "kind": v.optional(v.union(v.literal("participant"), v.literal("system"))),
        "type": v.optional(v.string()),
        "tags": v.optional(v.array(v.string())),
        "meta": META,
    },
    name="addConversationMessage",
)
def add_conversation_message(ctx: MutationCtx, args: dict[str, Any]) -> str:
    conversation_id = args["conversationId"]
    _open_conversation(ctx, conversation_id)
    author = require_doc(ctx, args["authorParticipantId"], "Participant")
    if author["conversationId"] != conversation_id:
        raise ConvexError(
            f"Participant {author['displayName']!r} does not belong to this conversation"
        )
    message_id = ctx.db.insert(
        "conversationMessages",
        {
            "conversationId": conversation_id,
            "authorParticipantId": args["authorParticipantId"],
            "kind": args.get("kind", "participant"),
            "content": args["content"],
            "createdAt": now_ms(ctx),
            **given(args, "type", "tags", "meta"),
        },
    )
    ctx.db.patch(conversation_id, {"updatedAt": now_ms(ctx)})
    return message_id


@query(
    args={"conversationId": v.id("conversations"), "paginationOpts": PAGINATION_OPTS},
    name="listMessages",
)
def list_messages(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any]:
    """One page of a conversation's messages, oldest first (Convex's page shape)."""
    conversation_id = args["conversationId"]
    return (
        ctx.db.query("conversationMessages")
        .with_index(
            "by_conversation", lambda q: q.eq("conversationId", conversation_id)
        )
        .paginate(args["paginationOpts"])
    )


@query(
    args={"conversationId": v.id("conversations"), "query": v.string()},
    name="searchMessages",
)
def search_messages(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Messages of one conversation matching ``query``, most relevant first."""
    conversation_id, text = args["conversationId"], args["query"]
    return (
        ctx.db.query("conversationMessages")
        .with_search_index(
            "search_content",
            lambda q: q.search("content", text).eq("conversationId", conversation_id),
        )
        .take(20)
    )


PARTICIPANT_INPUT = v.object(
    {
        "agentId": v.optional(v.id("agents")),
        "userId": v.optional(v.id("users")),
        "role": v.optional(v.string()),
    }
)


@action(
    args={
        "title": v.string(),
        "participants": v.array(PARTICIPANT_INPUT),
        "firstMessage": v.optional(v.string()),
        "meta": META,
    },
    name="start",
)
def start(ctx: ActionCtx, args: dict[str, Any]) -> dict[str, Any]:
    """Create a conversation, add its participants, post the first message.

    Each part is its own mutation, committed as it goes: if a participant is
    refused, the conversation and the participants before it remain, and no
    message is posted. The first participant authors ``firstMessage``.
    """
    if not args["participants"]:
        raise ConvexError("A conversation needs at least one participant")
    # Check what can be checked without the database before the first write, so
    # that malformed input leaves nothing half made.
    for number, participant in enumerate(args["participants"]):
        if ("agentId" in participant) == ("userId" in participant):
            raise ConvexError(
                f"participants[{number}] must have exactly one of agentId or userId"
            )
    conversation_id = ctx.run_mutation(
        "conversations:createConversation",
        {"title": args["title"], **given(args, "meta")},
    ).unwrap()
    participant_ids = [
        ctx.run_mutation(
            "conversations:addParticipant",
            {"conversationId": conversation_id, **participant},
        ).unwrap()
        for participant in args["participants"]
    ]
    message_id = None
    if "firstMessage" in args:
        message_id = ctx.run_mutation(
            "conversations:addConversationMessage",
            {
                "conversationId": conversation_id,
                "authorParticipantId": participant_ids[0],
                "content": args["firstMessage"],
            },
        ).unwrap()
    return {
        "conversationId": conversation_id,
        "participantIds": participant_ids,
        "messageId": message_id,
    }
