"""Functions of the HTTP API test app: every kind, visibility and outcome."""

import logging
import time
from typing import Any

from returns.result import Failure

from one_store import (
    ActionCtx,
    ConvexError,
    MutationCtx,
    QueryCtx,
    Rejected,
    action,
    internal_mutation,
    internal_query,
    mutation,
    query,
    v,
)

NOTE_ARGS = {
    "text": v.string(),
    "count": v.optional(v.int64()),
    "blob": v.optional(v.bytes()),
    "score": v.optional(v.float64()),
    "tags": v.optional(v.array(v.string())),
}


@mutation(args=NOTE_ARGS)
def add(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.db.insert("notes", args)


@mutation(args={"text": v.string()}, name="addLater")
def add_later(ctx: MutationCtx, args: dict[str, Any]) -> str:
    """Schedule ``notes:add`` to run as soon as this mutation commits."""
    return str(ctx.scheduler.run_after(0, "notes:add", {"text": args["text"]}))


@query(args={"tag": v.string(), "times": v.int64()})
def chatty(ctx: QueryCtx, args: dict[str, Any]) -> int:
    """Print and log: the reply's logLines carry it, in order."""
    for i in range(args["times"]):
        print(f"{args['tag']} {i}")
    logging.getLogger("notes").warning("careful, %s", args["tag"])
    logging.getLogger("notes").debug("not let through: the logger's level")
    return int(args["times"])


@action(args={"tag": v.string()})
def chatty_action(ctx: ActionCtx, args: dict[str, Any]) -> None:
    """An action's own output and that of the query it runs, then a failure."""
    print("action starts")
    ctx.run_query("notes:chatty", {"tag": args["tag"], "times": 1}).unwrap()
    raise ConvexError("after logging")


@query(args={}, name="list")
def list_all(ctx: QueryCtx, args: dict[str, Any]) -> Any:
    return ctx.db.query("notes").collect()


@query(args={"id": v.id("notes")})
def get(ctx: QueryCtx, args: dict[str, Any]) -> Any:
    return ctx.db.get(args["id"])


@query(args=v.any())
def echo(ctx: QueryCtx, args: dict[str, Any]) -> Any:
    return args


@mutation(args={"text": v.string()})
def reject(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.insert("notes", {"text": args["text"]})
    raise ConvexError({"code": 5, "why": "rejected", "raw": b"\x01\x02"})


@mutation(args={"text": v.string()})
def reject_with_failure(ctx: MutationCtx, args: dict[str, Any]) -> Any:
    ctx.db.insert("notes", {"text": args["text"]})
    return Failure(Rejected("plain string data"))


@mutation(args={"text": v.string()})
def crash(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.insert("notes", {"text": args["text"]})
    raise RuntimeError("boom")


@mutation(args={"name": v.string()})
def bump(ctx: MutationCtx, args: dict[str, Any]) -> int:
    """Read-modify-write: concurrent bumps must never lose an update."""
    row = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    if row is None:
        ctx.db.insert("counters", {"name": args["name"], "value": 1})
        return 1
    value = int(str(row["value"])) + 1
    ctx.db.patch(str(row["_id"]), {"value": value})
    return value


@query(args={"name": v.string()})
def counter(ctx: QueryCtx, args: dict[str, Any]) -> Any:
    row = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    return None if row is None else row["value"]


@internal_mutation(args={"text": v.string()})
def secret(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.db.insert("notes", {"text": args["text"]})


@internal_query(args={})
def secret_count(ctx: QueryCtx, args: dict[str, Any]) -> int:
    return len(ctx.db.query("notes").collect())


@action(args={"text": v.string()})
def add_twice(ctx: ActionCtx, args: dict[str, Any]) -> Any:
    first = ctx.run_mutation("notes:add", {"text": args["text"]}).unwrap()
    second = ctx.run_mutation("notes:add", {"text": args["text"] + "!"}).unwrap()
    return [first, second]


@action(args={"text": v.string()})
async def add_async(ctx: ActionCtx, args: dict[str, Any]) -> Any:
    return ctx.run_mutation("notes:add", {"text": args["text"]}).unwrap()


@action(args={})
def misuse(ctx: ActionCtx, args: dict[str, Any]) -> Any:
    return ctx.db.query("notes").collect()  # actions have no db: a ContextError


@action(args={"name": v.string()})
def wait_for_counter(ctx: ActionCtx, args: dict[str, Any]) -> bool:
    """Wait (up to a minute) until counter ``name`` exists: True once it does.

    Someone else must bump it meanwhile, over HTTP: the server keeps answering
    while an action waits.
    """
    for _ in range(6000):
        if ctx.run_query("notes:counter", {"name": args["name"]}).unwrap() is not None:
            return True
        time.sleep(0.01)
    return False
