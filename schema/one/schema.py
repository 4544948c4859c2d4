"""Schema of the ONE agent/human system (spec 000, "Convex Mutations Reference").

Every table carries an optional ``meta`` object for extensibility, as the spec asks
("Use `meta` fields for extensibility"). Timestamps are whole milliseconds since the
epoch, as ``Date.now()`` in the spec's TypeScript (``now_ms`` in ``_rules.py``).

Value lists are closed only where the spec closes them: a message's ``kind``
(``"participant" | "system"``, from ``addConversationMessage``'s arguments). The
statuses, a step's status and a participant's type are the app's own words, which
the spec does not list, so they are open strings: the app writes the values named
in the comments, and documents written by other code may carry others.
"""

from one_store import define_schema, define_table, v

meta = v.optional(v.record(v.string(), v.any()))
tags = v.optional(v.array(v.string()))

# What the app writes: "pending" | "running" | "done" | "failed".
step_status = v.string()

# One step of a flow. `name` is the step's key inside its flow (unique per flow,
# as createFlow makes it); `prerequisites` are free text: one that names another
# step of the flow must be done before this one may start, any other is a note.
step = v.object(
    {
        "name": v.string(),
        "instructions": v.string(),
        "prerequisites": v.array(v.string()),
        "status": v.optional(step_status),
        "output": v.optional(v.string()),
        "error": v.optional(v.string()),
        "startedAt": v.optional(v.number()),
        "completedAt": v.optional(v.number()),
        "meta": meta,
    }
)

# What the app writes: "draft" | "running" | "completed" | "failed".
flow_status = v.string()

schema = define_schema(
    {
        "users": define_table(
            {
                "name": v.string(),
                "email": v.optional(v.string()),
                "createdAt": v.number(),
                "meta": meta,
            }
        ).index("by_email", ["email"]),
        "agents": define_table(
            {
                "name": v.string(),
                "description": v.optional(v.string()),
                "prompt": v.optional(v.string()),
                "tags": tags,
                "status": v.string(),  # the app writes "active" | "archived"
                "createdBy": v.optional(v.id("users")),
                "updatedBy": v.optional(v.id("users")),
                "createdAt": v.number(),
                "updatedAt": v.optional(v.number()),
                "meta": meta,
            }
        )
        .index("by_name", ["name"])
        .index("by_status", ["status"]),
        "lessons": define_table(
            {
                "title": v.string(),
                "content": v.string(),
                "agentId": v.optional(v.id("agents")),
                "tags": tags,
                # The lesson's embedding (see lessons.py, `learn`): a lesson
                # without one is simply not in the vector index.
                "embedding": v.optional(v.array(v.float64())),
                "createdAt": v.number(),
                "updatedAt": v.optional(v.number()),
                "meta": meta,
            }
        )
        .index("by_agent", ["agentId"])
        .vector_index(
            "by_embedding",
            vector_field="embedding",
            dimensions=64,  # _embedding.DIMENSIONS: the model's vector length
            filter_fields=["agentId"],
        ),
        "flows": define_table(
            {
                "name": v.string(),
                "description": v.optional(v.string()),
                "steps": v.array(step),
                "status": flow_status,
                "agentId": v.optional(v.id("agents")),
                "createdAt": v.number(),
                "updatedAt": v.optional(v.number()),
                "meta": meta,
            }
        )
        .index("by_name", ["name"])
        .index("by_status", ["status"]),
        "conversations": define_table(
            {
                "title": v.string(),
                "status": v.string(),  # the app writes "active" | "closed"
                "createdAt": v.number(),
                "updatedAt": v.optional(v.number()),
                "meta": meta,
            }
        ).index("by_status", ["status"]),
        # A participant is an agent or a user taking part in one conversation.
        "conversationParticipants": define_table(
            {
                "conversationId": v.id("conversations"),
                "participantType": v.string(),  # the app writes "agent" | "user"
                "agentId": v.optional(v.id("agents")),
                "userId": v.optional(v.id("users")),
                "displayName": v.string(),
                "role": v.optional(v.string()),
                "joinedAt": v.number(),
                "meta": meta,
            }
        )
        .index("by_conversation", ["conversationId"])
        .index("by_conversation_agent", ["conversationId", "agentId"])
        .index("by_conversation_user", ["conversationId", "userId"]),
        "conversationMessages": define_table(
            {
                "conversationId": v.id("conversations"),
                "authorParticipantId": v.id("conversationParticipants"),
                "kind": v.union(v.literal("participant"), v.literal("system")),
                "type": v.optional(v.string()),
                "tags": tags,
                "content": v.string(),
                "createdAt": v.number(),
                "meta": meta,
            }
        )
        # _creationTime is appended to every index, so this index lists a
        # conversation's messages in the order they were added.
        .index("by_conversation", ["conversationId"])
        .search_index(
            "search_content", search_field="content", filter_fields=["conversationId"]
        ),
    }
)
