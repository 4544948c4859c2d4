"""Tasks of a small research agent: submitted, worked on by `agent:work`, swept by a cron."""

from typing import Any

from returns.result import Failure

from one_store import (
    ConvexError,
    MutationCtx,
    QueryCtx,
    Rejected,
    internal_mutation,
    mutation,
    query,
    v,
)

STALE_MS = 10 * 60_000  # a task "working" for longer than this has timed out


@mutation(args={"goal": v.string()})
def submit(ctx: MutationCtx, args: dict[str, Any]) -> str:
    if not args["goal"].strip():
        raise ConvexError("A task needs a goal")
    task_id = ctx.db.insert(
        "tasks",
        {
            "goal": args["goal"],
            "status": "queued",
            "attempts": 0,
            "updatedAt": ctx.now(),
        },
    )
    ctx.scheduler.run_after(0, "agent:work", {"taskId": task_id})
    return task_id


@query(args={"taskId": v.id("tasks")})
def get(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["taskId"])


@query(args={"taskId": v.id("tasks")})
def steps(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    return (
        ctx.db.query("steps")
        .with_index("by_task", lambda q: q.eq("taskId", args["taskId"]))
        .collect()
    )


@internal_mutation(args={"taskId": v.id("tasks")})
def start(ctx: MutationCtx, args: dict[str, Any]) -> Any:
    task = ctx.db.get(args["taskId"])
    if task is None or task["status"] != "queued":
        return Failure(Rejected("Task is not queued"))
    ctx.db.patch(
        args["taskId"],
        {"status": "working", "attempts": task["attempts"] + 1, "updatedAt": ctx.now()},
    )
    return task["goal"]


@internal_mutation(
    args={"taskId": v.id("tasks"), "kind": v.string(), "detail": v.string()}
)
def add_step(ctx: MutationCtx, args: dict[str, Any]) -> str:
    if not args["kind"]:
        raise ConvexError("A step needs a kind")
    return ctx.db.insert("steps", {**args, "at": ctx.now()})


@internal_mutation(args={"taskId": v.id("tasks"), "answer": v.string()})
def finish(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.patch(
        args["taskId"],
        {"status": "done", "answer": args["answer"], "updatedAt": ctx.now()},
    )


@internal_mutation(args={"taskId": v.id("tasks"), "error": v.string()})
def fail(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.patch(
        args["taskId"],
        {"status": "failed", "error": args["error"], "updatedAt": ctx.now()},
    )


@internal_mutation(args={})
def sweep(ctx: MutationCtx, args: dict[str, Any]) -> int:
    """Fail tasks stuck in "working" (the cron "sweep stale tasks" runs this)."""
    stale = (
        ctx.db.query("tasks")
        .with_index(
            "by_status",
            lambda q: q.eq("status", "working").lt("updatedAt", ctx.now() - STALE_MS),
        )
        .collect()
    )
    for task in stale:
        ctx.db.patch(
            task["_id"],
            {"status": "failed", "error": "timed out", "updatedAt": ctx.now()},
        )
    bump_counter(ctx, "sweeps")
    return len(stale)


@mutation(args={"name": v.string()})
def bump(ctx: MutationCtx, args: dict[str, Any]) -> int:
    return bump_counter(ctx, args["name"])


def bump_counter(ctx: MutationCtx, name: str) -> int:
    row = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", name))
        .unique()
    )
    if row is None:
        ctx.db.insert("counters", {"name": name, "value": 1})
        return 1
    ctx.db.patch(row["_id"], {"value": row["value"] + 1})
    return int(row["value"]) + 1


@query(args={"name": v.string()})
def counter(ctx: QueryCtx, args: dict[str, Any]) -> int:
    row = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    return 0 if row is None else int(row["value"])
