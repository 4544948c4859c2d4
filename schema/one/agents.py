"""Agents: create, read, list, and the spec's ``updateAgent``."""

from typing import Any

from one_store import MutationCtx, QueryCtx, mutation, query, v

from ._rules import given, now_ms, require_doc, require_text


@mutation(
    args={
        "name": v.string(),
        "description": v.optional(v.string()),
        "prompt": v.optional(v.string()),
        "tags": v.optional(v.array(v.string())),
        "createdBy": v.optional(v.id("users")),
        "meta": v.optional(v.record(v.string(), v.any())),
    },
    name="createAgent",
)
def create_agent(ctx: MutationCtx, args: dict[str, Any]) -> str:
    if "createdBy" in args:
        require_doc(ctx, args["createdBy"], "User")
    return ctx.db.insert(
        "agents",
        {
            "name": require_text(args["name"], "Agent name"),
            "status": "active",
            "createdAt": now_ms(ctx),
            **given(args, "description", "prompt", "tags", "createdBy", "meta"),
        },
    )


# The spec's mutation, under its name and with its arguments, plus `meta` ("all
# mutations should support `meta`"), stored on the agent. The spec spreads
# `...args` into the patch, which would also write `agentId` into the document;
# only the fields are patched here. A missing agent is Failure(DocumentNotFound)
# (Convex's patch of a missing ID fails the same way).
@mutation(
    args={
        "agentId": v.id("agents"),
        "name": v.optional(v.string()),
        "description": v.optional(v.string()),
        "prompt": v.optional(v.string()),
        "tags": v.optional(v.array(v.string())),
        "updatedBy": v.optional(v.id("users")),
        "meta": v.optional(v.record(v.string(), v.any())),
    },
    name="updateAgent",
)
def update_agent(ctx: MutationCtx, args: dict[str, Any]) -> None:
    fields = given(args, "name", "description", "prompt", "tags", "updatedBy", "meta")
    if "name" in fields:
        fields["name"] = require_text(fields["name"], "Agent name")
    if "updatedBy" in fields:
        require_doc(ctx, fields["updatedBy"], "User")
    ctx.db.patch(args["agentId"], {**fields, "updatedAt": now_ms(ctx)})


@mutation(args={"agentId": v.id("agents")}, name="archiveAgent")
def archive_agent(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.patch(args["agentId"], {"status": "archived", "updatedAt": now_ms(ctx)})


@query(args={"agentId": v.id("agents")}, name="getAgent")
def get_agent(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["agentId"])


@query(
    args={"status": v.optional(v.string())},
    name="listAgents",
)
def list_agents(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    if "status" not in args:
        return ctx.db.query("agents").collect()
    status = args["status"]
    return (
        ctx.db.query("agents")
        .with_index("by_status", lambda q: q.eq("status", status))
        .collect()
    )


@query(args={"name": v.string()}, name="getAgentByName")
def get_agent_by_name(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    name = args["name"]
    return (
        ctx.db.query("agents")
        .with_index("by_name", lambda q: q.eq("name", name))
        .first()
    )
