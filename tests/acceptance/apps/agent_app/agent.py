"""The agent: an action that calls a tool over HTTP and records each step by mutation."""

import asyncio
from typing import Any

from returns.result import Failure

from one_store import ActionCtx, Busy, ConvexError, action, internal_action, v

TOOL_URL = "https://tools.example/search"


@internal_action(args={"taskId": v.id("tasks")})
def work(ctx: ActionCtx, args: dict[str, Any]) -> str:
    task_id = args["taskId"]
    goal = ctx.run_mutation("tasks:start", {"taskId": task_id}).unwrap()
    ctx.run_mutation(
        "tasks:add_step",
        {"taskId": task_id, "kind": "plan", "detail": f"search: {goal}"},
    ).unwrap()
    response = ctx.http.get(TOOL_URL, params={"q": goal})
    if response.status_code != 200:
        ctx.run_mutation(
            "tasks:fail",
            {"taskId": task_id, "error": f"tool answered {response.status_code}"},
        ).unwrap()
        raise ConvexError(f"search tool failed with {response.status_code}")
    answer = str(response.json()["answer"])
    ctx.run_mutation(
        "tasks:add_step", {"taskId": task_id, "kind": "tool", "detail": answer}
    ).unwrap()
    ctx.run_mutation("tasks:finish", {"taskId": task_id, "answer": answer}).unwrap()
    ctx.scheduler.run_after(60_000, "agent:review", {"taskId": task_id})
    return answer


@internal_action(args={"taskId": v.id("tasks")})
def review(ctx: ActionCtx, args: dict[str, Any]) -> None:
    task = ctx.run_query("tasks:get", {"taskId": args["taskId"]}).unwrap()
    ctx.run_mutation(
        "tasks:add_step",
        {
            "taskId": args["taskId"],
            "kind": "review",
            "detail": f"checked: {task['answer']}",
        },
    ).unwrap()


@action(args={"name": v.string(), "tries": v.int64()})
def bump_with_retry(ctx: ActionCtx, args: dict[str, Any]) -> dict[str, int]:
    """Retry a mutation that hits Busy (a write lock held elsewhere), up to `tries` times."""
    for attempt in range(1, args["tries"] + 1):
        result = ctx.run_mutation("tasks:bump", {"name": args["name"]})
        if isinstance(result, Failure) and isinstance(result.failure(), Busy):
            continue
        return {"value": result.unwrap(), "attempts": attempt}
    raise ConvexError(f"still busy after {args['tries']} tries")


@action(args={"name": v.string()})
async def bump_async(ctx: ActionCtx, args: dict[str, Any]) -> int:
    await asyncio.sleep(0)
    return int(ctx.run_mutation("tasks:bump", {"name": args["name"]}).unwrap())
