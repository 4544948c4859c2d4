"""Schema of the agent chat app's persistence layer (spec 001).

The auth tables have the shape of ``authTables`` from ``@convex-dev/auth/server``
(users, authSessions, authAccounts, authRefreshTokens, authVerificationCodes,
authVerifiers, authRateLimits), with the same fields and index names, so that a
snapshot exported from a Convex deployment that uses Convex Auth imports as is.

The spec names the fields ``role``, ``status`` and ``phase`` but never lists their
values, so none of them is a closed list here: each is a string. The comments say
which values the app itself writes; the agent backend may send others (a session
``phase`` of ``"idle"``, a message ``role`` of ``"tool"``), and they are stored.
Timestamps are whole milliseconds since the epoch, as ``Date.now()``.
"""

from one_store import define_schema, define_table, v

auth_tables = {
    "users": define_table(
        {
            "name": v.optional(v.string()),
            "image": v.optional(v.string()),
            "email": v.optional(v.string()),
            "emailVerificationTime": v.optional(v.number()),
            "phone": v.optional(v.string()),
            "phoneVerificationTime": v.optional(v.number()),
            "isAnonymous": v.optional(v.boolean()),
        }
    )
    .index("email", ["email"])
    .index("phone", ["phone"]),
    "authSessions": define_table(
        {"userId": v.id("users"), "expirationTime": v.number()}
    ).index("userId", ["userId"]),
    "authAccounts": define_table(
        {
            "userId": v.id("users"),
            "provider": v.string(),
            "providerAccountId": v.string(),
            "secret": v.optional(v.string()),
            "emailVerified": v.optional(v.string()),
            "phoneVerified": v.optional(v.string()),
        }
    )
    .index("userIdAndProvider", ["userId", "provider"])
    .index("providerAndAccountId", ["provider", "providerAccountId"]),
    "authRefreshTokens": define_table(
        {
            "sessionId": v.id("authSessions"),
            "expirationTime": v.number(),
            "firstUsedTime": v.optional(v.number()),
            "parentRefreshTokenId": v.optional(v.id("authRefreshTokens")),
        }
    )
    .index("sessionId", ["sessionId"])
    .index("sessionIdAndParentRefreshTokenId", ["sessionId", "parentRefreshTokenId"]),
    "authVerificationCodes": define_table(
        {
            "accountId": v.id("authAccounts"),
            "provider": v.string(),
            "code": v.string(),
            "expirationTime": v.number(),
            "verifier": v.optional(v.string()),
            "emailVerified": v.optional(v.string()),
            "phoneVerified": v.optional(v.string()),
        }
    )
    .index("accountId", ["accountId"])
    .index("code", ["code"]),
    "authVerifiers": define_table(
        {
            "sessionId": v.optional(v.id("authSessions")),
            "signature": v.optional(v.string()),
        }
    ).index("signature", ["signature"]),
    "authRateLimits": define_table(
        {
            "identifier": v.string(),
            "lastAttemptTime": v.number(),
            "attemptsLeft": v.number(),
        }
    ).index("identifier", ["identifier"]),
}

# A message's author: the app's own examples use "user" | "assistant" | "system" |
# "tool"; the spec ("User/assistant messages") does not close the list.
role = v.string()

# The SDK's phase as the backend records it for resumption. The approval flow
# writes "awaiting_approval", "executing" and "planning"; any other is stored.
phase = v.string()

schema = define_schema(
    {
        **auth_tables,
        "threads": define_table(
            {
                "userId": v.id("users"),
                "title": v.string(),
                "status": v.string(),  # the app writes "active" | "archived"
                "createdAt": v.number(),
                "updatedAt": v.number(),
            }
        )
        .index("by_user", ["userId"])
        .index("by_user_status", ["userId", "status"]),
        "messages": define_table(
            {
                "threadId": v.id("threads"),
                "role": role,
                "content": v.string(),
                "createdAt": v.number(),
            }
        )
        .index("by_thread", ["threadId"])
        .search_index(
            "search_content", search_field="content", filter_fields=["threadId"]
        ),
        "artifacts": define_table(
            {
                "threadId": v.id("threads"),
                "type": v.string(),
                "content": v.string(),
                # created "draft"; "superseded" is final (artifacts:update)
                "status": v.string(),
                # a stored file (a PDF, an image) that goes with the artifact;
                # deleted with the thread (threads:remove)
                "fileId": v.optional(v.id("_storage")),
                "createdAt": v.number(),
                "updatedAt": v.number(),
            }
        )
        .index("by_thread", ["threadId"])
        .index("by_thread_type", ["threadId", "type"]),
        "sessions": define_table(
            {
                "threadId": v.id("threads"),
                "sdkSessionId": v.string(),
                "phase": phase,
                "plan": v.optional(v.string()),
                "updatedAt": v.number(),
            }
        ).index("by_thread", ["threadId"]),
        "toolCalls": define_table(
            {
                "threadId": v.id("threads"),
                "toolName": v.string(),
                "input": v.any(),
                "output": v.optional(v.any()),
                "createdAt": v.number(),
            }
        )
        .index("by_thread", ["threadId"])
        .index("by_thread_tool", ["threadId", "toolName"]),
        "approvalRequests": define_table(
            {
                "threadId": v.id("threads"),
                "planContent": v.string(),
                # the app writes "pending", then "approved" or "rejected"
                "status": v.string(),
                "decidedBy": v.optional(v.id("users")),
                "comment": v.optional(v.string()),
                "createdAt": v.number(),
                "decidedAt": v.optional(v.number()),
            }
        )
        .index("by_thread", ["threadId"])
        .index("by_thread_status", ["threadId", "status"]),
    }
)
