"""Flows: ordered steps an agent walks; the spec's ``updateFlowStep``; step actions.

A step moves ``pending -> running -> done`` (or ``running -> failed``; a failed
step may be started again). Each transition is its own mutation, so an action that
walks a flow commits every finished step even when a later one is refused.
"""

from typing import Any

from one_store import (
    ActionCtx,
    ConvexError,
    MutationCtx,
    QueryCtx,
    action,
    internal_mutation,
    mutation,
    query,
    v,
)

from ._rules import given, now_ms, require_doc, require_text

STEP_INPUT = v.object(
    {
        "name": v.string(),
        "instructions": v.string(),
        "prerequisites": v.optional(v.array(v.string())),
        "meta": v.optional(v.record(v.string(), v.any())),
    }
)


def _flow(ctx: QueryCtx | MutationCtx, flow_id: str) -> dict[str, Any]:
    flow = ctx.db.get(flow_id)
    if flow is None:
        # The spec's exact message (`throw new Error("Flow not found")`).
        raise ConvexError("Flow not found")
    return flow


def _step_index(flow: dict[str, Any], step_name: str) -> int:
    for index, step in enumerate(flow["steps"]):
        if step["name"] == step_name:
            return index
    names = ", ".join(repr(s["name"]) for s in flow["steps"])
    raise ConvexError(
        f"Flow {flow['name']!r} has no step named {step_name!r} (steps: {names})"
    )


def _check_prerequisites(steps: list[dict[str, Any]]) -> None:
    # Prerequisites are free text (a condition such as "Legal sign-off", or the
    # name of another step); only naming the step itself is refused, at creation.
    for step in steps:
        if step["name"] in step["prerequisites"]:
            raise ConvexError(f"Step {step['name']!r} cannot be its own prerequisite")


@mutation(
    args={
        "name": v.string(),
        "description": v.optional(v.string()),
        "steps": v.array(STEP_INPUT),
        "agentId": v.optional(v.id("agents")),
        "meta": v.optional(v.record(v.string(), v.any())),
    },
    name="createFlow",
)
def create_flow(ctx: MutationCtx, args: dict[str, Any]) -> str:
    if not args["steps"]:
        raise ConvexError("A flow needs at least one step")
    steps: list[dict[str, Any]] = []
    for step in args["steps"]:
        name = require_text(step["name"], "Step name")
        if any(s["name"] == name for s in steps):
            raise ConvexError(f"Step name {name!r} is used twice")
        steps.append(
            {
                **step,
                "name": name,
                "prerequisites": step.get("prerequisites", []),
                "status": "pending",
            }
        )
    _check_prerequisites(steps)
    if "agentId" in args:
        require_doc(ctx, args["agentId"], "Agent")
    return ctx.db.insert(
        "flows",
        {
            "name": require_text(args["name"], "Flow name"),
            "steps": steps,
            "status": "draft",
            "createdAt": now_ms(ctx),
            **given(args, "description", "agentId", "meta"),
        },
    )


@query(args={"flowId": v.id("flows")}, name="getFlow")
def get_flow(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.db.get(args["flowId"])


@query(
    args={"status": v.optional(v.string())},
    name="listFlows",
)
def list_flows(ctx: QueryCtx, args: dict[str, Any]) -> list[dict[str, Any]]:
    if "status" not in args:
        return ctx.db.query("flows").collect()
    status = args["status"]
    return (
        ctx.db.query("flows")
        .with_index("by_status", lambda q: q.eq("status", status))
        .collect()
    )


# The spec's mutation, under its name and arguments, doing what the spec's code
# does: every step whose name is `stepName` gets the given fields, and the steps
# are patched back with `updatedAt` -- so a name that matches no step succeeds and
# only bumps `updatedAt`, and prerequisites are stored as given (free text). The
# spec's `{...step, ...args}` would also copy `flowId` and `stepName` into the
# step, which a step's validator does not allow; only `instructions` and
# `prerequisites` are merged. `meta` ("all mutations should support `meta`") is
# stored on the flow, the document this mutation writes.
@mutation(
    args={
        "flowId": v.id("flows"),
        "stepName": v.string(),
        "instructions": v.optional(v.string()),
        "prerequisites": v.optional(v.array(v.string())),
        "meta": v.optional(v.record(v.string(), v.any())),
    },
    name="updateFlowStep",
)
def update_flow_step(ctx: MutationCtx, args: dict[str, Any]) -> None:
    flow = _flow(ctx, args["flowId"])
    changes = given(args, "instructions", "prerequisites")
    steps = [
        {**step, **changes} if step["name"] == args["stepName"] else step
        for step in flow["steps"]
    ]
    ctx.db.patch(
        args["flowId"],
        {"steps": steps, "updatedAt": now_ms(ctx), **given(args, "meta")},
    )


def _set_step(
    ctx: MutationCtx,
    flow: dict[str, Any],
    index: int,
    changes: dict[str, Any],
    flow_status: str,
) -> None:
    steps = list(flow["steps"])
    steps[index] = {**steps[index], **changes}
    ctx.db.patch(
        flow["_id"], {"steps": steps, "status": flow_status, "updatedAt": now_ms(ctx)}
    )


@internal_mutation(
    args={"flowId": v.id("flows"), "stepName": v.string()}, name="startStep"
)
def start_step(ctx: MutationCtx, args: dict[str, Any]) -> None:
    flow = _flow(ctx, args["flowId"])
    index = _step_index(flow, args["stepName"])
    step = flow["steps"][index]
    status = step.get("status", "pending")
    if status not in ("pending", "failed"):
        raise ConvexError(f"Step {step['name']!r} is already {status}")
    # A prerequisite that names another step of the flow waits for that step;
    # any other text is a condition for whoever runs the step, not checked here.
    others = {s["name"] for i, s in enumerate(flow["steps"]) if i != index}
    done = {s["name"] for s in flow["steps"] if s.get("status") == "done"}
    for prerequisite in step["prerequisites"]:
        if prerequisite in others and prerequisite not in done:
            raise ConvexError(
                f"Step {step['name']!r} cannot start: prerequisite {prerequisite!r} is not done"
            )
    _set_step(
        ctx, flow, index, {"status": "running", "startedAt": now_ms(ctx)}, "running"
    )


@internal_mutation(
    args={"flowId": v.id("flows"), "stepName": v.string(), "output": v.string()},
    name="completeStep",
)
def complete_step(ctx: MutationCtx, args: dict[str, Any]) -> None:
    flow = _flow(ctx, args["flowId"])
    index = _step_index(flow, args["stepName"])
    step = flow["steps"][index]
    if step.get("status") != "running":
        raise ConvexError(
            f"Step {step['name']!r} is {step.get('status', 'pending')}, not running"
        )
    others_done = all(
        s.get("status") == "done" for i, s in enumerate(flow["steps"]) if i != index
    )
    _set_step(
        ctx,
        flow,
        index,
        {"status": "done", "output": args["output"], "completedAt": now_ms(ctx)},
        "completed" if others_done else "running",
    )


@mutation(
    args={"flowId": v.id("flows"), "stepName": v.string(), "error": v.string()},
    name="failStep",
)
def fail_step(ctx: MutationCtx, args: dict[str, Any]) -> None:
    flow = _flow(ctx, args["flowId"])
    index = _step_index(flow, args["stepName"])
    step = flow["steps"][index]
    if step.get("status") != "running":
        raise ConvexError(
            f"Step {step['name']!r} is {step.get('status', 'pending')}, not running"
        )
    _set_step(
        ctx,
        flow,
        index,
        {"status": "failed", "error": args["error"], "completedAt": now_ms(ctx)},
        "failed",
    )


@mutation(
    args={"flowId": v.id("flows"), "delayMs": v.optional(v.number())},
    name="scheduleAdvance",
)
def schedule_advance(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Schedule ``flows:advance`` for this flow (now, or after ``delayMs``).

    The job is part of this mutation's transaction: it exists only if the flow
    does. Returns the ``_scheduled_functions`` ID, which ``ctx.scheduler.cancel``
    takes.
    """
    flow = _flow(ctx, args["flowId"])
    if flow["status"] == "completed":
        raise ConvexError(f"Flow {flow['name']!r} is already completed")
    return ctx.scheduler.run_after(
        args.get("delayMs", 0), "flows:advance", {"flowId": args["flowId"]}
    )


@query(args={"flowId": v.id("flows")}, name="nextStep")
def next_step(ctx: QueryCtx, args: dict[str, Any]) -> dict[str, Any] | None:
    """The first step (in order) that is not done, or None when all are."""
    flow = _flow(ctx, args["flowId"])
    return next((s for s in flow["steps"] if s.get("status") != "done"), None)


def _perform(ctx: ActionCtx, flow_id: str, step: dict[str, Any], output: str) -> str:
    """Start, do and complete one step: two mutations around the step's work."""
    ctx.run_mutation(
        "flows:startStep", {"flowId": flow_id, "stepName": step["name"]}
    ).unwrap()
    # The work of a step happens here, between its two commits; in an agent
    # runtime this is the model or tool call. Without one, the step records the
    # given output or a summary of its instructions.
    result = output or f"{step['name']}: {step['instructions']}"
    ctx.run_mutation(
        "flows:completeStep",
        {"flowId": flow_id, "stepName": step["name"], "output": result},
    ).unwrap()
    return result


@action(
    args={
        "flowId": v.id("flows"),
        "stepName": v.optional(v.string()),
        "output": v.optional(v.string()),
    },
    name="runStep",
)
def run_step(ctx: ActionCtx, args: dict[str, Any]) -> dict[str, Any]:
    """Run one step (the named one, else the next not done); return its output."""
    flow = ctx.run_query("flows:getFlow", {"flowId": args["flowId"]}).unwrap()
    if flow is None:
        raise ConvexError("Flow not found")
    if "stepName" in args:
        step = flow["steps"][_step_index(flow, args["stepName"])]
    else:
        step = next((s for s in flow["steps"] if s.get("status") != "done"), None)
        if step is None:
            raise ConvexError(f"Flow {flow['name']!r} has no step left to run")
    output = _perform(ctx, args["flowId"], step, args.get("output", ""))
    return {"stepName": step["name"], "output": output}


@action(
    args={"flowId": v.id("flows"), "maxSteps": v.optional(v.number())},
    name="advance",
)
def advance(ctx: ActionCtx, args: dict[str, Any]) -> dict[str, Any]:
    """Walk the flow's remaining steps in order, one committed step at a time.

    Stops after ``maxSteps`` steps or when every step is done. A step that cannot
    start (say, its prerequisite comes later in the list) fails the action; the
    steps finished before it stay done and the ones after it are not run.
    """
    limit = args.get("maxSteps")
    if limit is not None and (limit < 1 or limit != int(limit)):
        raise ConvexError(f"maxSteps must be a whole number >= 1, got {limit:g}")
    completed: list[str] = []
    while limit is None or len(completed) < limit:
        step = ctx.run_query("flows:nextStep", {"flowId": args["flowId"]}).unwrap()
        if step is None:
            break
        _perform(ctx, args["flowId"], step, "")
        completed.append(step["name"])
    flow = ctx.run_query("flows:getFlow", {"flowId": args["flowId"]}).unwrap()
    return {"completed": completed, "status": flow["status"]}
