"""Human-in-the-loop approval of an agent's plan: request, then approve or reject.

A request is ``pending`` until a human decides; ``approved`` and ``rejected`` are
final, so deciding twice is a Failure. A thread has at most one pending request.
When the thread has an SDK session, its phase follows the decision: a request puts
it in ``awaiting_approval``; approval moves it to ``executing`` with the approved
plan; rejection sends it back to ``planning``.
"""

from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx, mutation, query, v

from ._rules import (
    by_thread,
    now_ms,
    require_text,
    require_thread,
    visible_child,
    visible_thread,
)


def _pending(ctx: QueryCtx | MutationCtx, thread_id: str) -> dict[str, Any] | None:
    return (
        ctx.db.query("approvalRequests")
        .with_index(
            "by_thread_status",
            lambda q: q.eq("threadId", thread_id).eq("status", "pending"),
        )
        .first()
    )


def _set_session_phase(
    ctx: MutationCtx, thread_id: str, phase: str, plan: str | None = None
) -> None:
    session = by_thread(ctx, "sessions", thread_id).unique()
    if session is not None:
        fields: dict[str, Any] = {"phase": phase, "updatedAt": now_ms(ctx)}
        if plan is not None:
            fields["plan"] = plan
        ctx.db.patch(str(session["_id"]), fields)


@mutation(args={"threadId": v.id("threads"), "planContent": v.string()})
def request(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Ask a human to approve a plan; returns the request's ID."""
    thread_id = args["threadId"]
    require_thread(ctx, thread_id)
    plan = require_text(args["planContent"], "planContent")
    if _pending(ctx, thread_id) is not None:
        raise ConvexError("This thread already has a pending approval request")
    request_id = ctx.db.insert(
        "approvalRequests",
        {
            "threadId": thread_id,
            "planContent": plan,
            "status": "pending",
            "createdAt": now_ms(ctx),
        },
    )
    _set_session_phase(ctx, thread_id, "awaiting_approval")
    return request_id


def _decide(ctx: MutationCtx, args: dict[str, Any], status: str) -> None:
    found = visible_child(ctx, ctx.db.get(args["requestId"]))
    if found is None:
        raise ConvexError("Approval request not found")
    if found["status"] != "pending":
        raise ConvexError(
            f"Approval request is already {found['status']}; only a pending request can be {status}"
        )
    if "decidedBy" in args and ctx.db.get(args["decidedBy"]) is None:
        raise ConvexError("User not found")
    fields: dict[str, Any] = {k: args[k] for k in ("decidedBy", "comment") if k in args}
    ctx.db.patch(
        args["requestId"], {**fields, "status": status, "decidedAt": now_ms(ctx)}
    )
    if status == "approved":
        _set_session_phase(ctx, found["threadId"], "executing", found["planContent"])
    else:
        _set_session_phase(ctx, found["threadId"], "planning")


DECISION_ARGS = {
    "requestId": v.id("approvalRequests"),
    "decidedBy": v.optional(v.id("users")),
    "comment": v.optional(v.string()),
}


@mutation(args=DECISION_ARGS)
def approve(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Approve a pending request."""
    _decide(ctx, args, "approved")


@mutation(args=DECISION_ARGS)
def reject(ctx: MutationCtx, args: dict[str, Any]) -> None:
    """Reject a pending request."""
    _decide(ctx, args, "rejected")


@query(args={"requestId": v.id("approvalRequests")})
def get(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return visible_child(ctx, ctx.db.get(args["requestId"]))


@query(args={"threadId": v.id("threads")}, name="listByThread")
def list_by_thread(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    """The thread's requests, oldest first."""
    if visible_thread(ctx, args["threadId"]) is None:
        return []
    return by_thread(ctx, "approvalRequests", args["threadId"]).collect()


@query(args={"threadId": v.id("threads")})
def pending(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The thread's pending request, or None."""
    if visible_thread(ctx, args["threadId"]) is None:
        return None
    return _pending(ctx, args["threadId"])
