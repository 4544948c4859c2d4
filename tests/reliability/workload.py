"""Schemas and functions shared by the reliability tests and their child processes.

The child processes (``children.py``) import this module by its package path, so
the parent and the children run the same code against the same file.
"""

from __future__ import annotations

import random
from typing import Any

from returns.result import Failure, Result, Success

from one_store import (
    Busy,
    Problem,
    Store,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)

# ---------------------------------------------------------------- crash workload

crash_schema = define_schema(
    {
        "docs": define_table(
            {
                "seq": v.int64(),
                "tag": v.string(),
                "score": v.float64(),
                "payload": v.string(),
                "vec": v.optional(v.array(v.float64())),
            }
        )
        .index("by_seq", ["seq"])
        .index("by_tag_score", ["tag", "score"])
        .search_index("search_payload", search_field="payload", filter_fields=["tag"])
        .vector_index(
            "by_vec", vector_field="vec", dimensions=2, filter_fields=["tag"]
        ),
        "counters": define_table({"name": v.string(), "value": v.int64()}).index(
            "by_name", ["name"]
        ),
    }
)

TAGS = ("red", "green", "blue", "amber")


@mutation(
    args={
        "tag": v.string(),
        "score": v.float64(),
        "payload": v.string(),
        "retag": v.float64(),
    }
)
def add_doc(ctx: Any, args: dict[str, Any]) -> str:
    """Insert a document, bump the counter, and re-key an older document.

    The three writes belong to one mutation: after any crash the counter must equal
    the number of documents and every index key must match its document.
    """
    counter = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", "main"))
        .unique()
    )
    value = 0 if counter is None else counter["value"]
    doc_id: str = ctx.db.insert(
        "docs",
        {
            "seq": value + 1,
            "tag": args["tag"],
            "score": args["score"],
            "payload": args["payload"],
            "vec": [args["score"], args["retag"]],
        },
    )
    if counter is None:
        ctx.db.insert("counters", {"name": "main", "value": 1})
    else:
        ctx.db.patch(counter["_id"], {"value": value + 1})
    if value > 0:
        # Move an older document to another index position in the same transaction.
        seq = 1 + int(args["retag"] * value)
        old = (
            ctx.db.query("docs")
            .with_index("by_seq", lambda q: q.eq("seq", seq))
            .unique()
        )
        if old is not None:
            ctx.db.patch(
                old["_id"],
                {
                    "tag": args["tag"],
                    "score": args["score"],
                    "vec": [args["retag"], args["score"]],
                },
            )
    return doc_id


def add_doc_args(rng: random.Random) -> dict[str, Any]:
    """Random arguments for :func:`add_doc`; payloads sometimes span several pages."""
    size = rng.choice((10, 100, 1000, 6000))
    words = " ".join(
        rng.choice(("alpha", "beta", "gamma", "delta")) for _ in range(size // 6)
    )
    return {
        "tag": rng.choice(TAGS),
        "score": rng.random(),
        "payload": words,
        "retag": rng.random(),
    }


# ---------------------------------------------------------------- counter workload

counter_schema = define_schema(
    {
        "counters": define_table({"name": v.string(), "value": v.int64()}).index(
            "by_name", ["name"]
        )
    }
)


@mutation(args={"name": v.string()})
def increment(ctx: Any, args: dict[str, Any]) -> int:
    """Read a counter, add one, patch it back (read-modify-write in one mutation)."""
    counter = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    if counter is None:
        ctx.db.insert("counters", {"name": args["name"], "value": 1})
        return 1
    value: int = counter["value"] + 1
    ctx.db.patch(counter["_id"], {"value": value})
    return value


@query(args={"name": v.string()})
def counter_value(ctx: Any, args: dict[str, Any]) -> int | None:
    """The counter's value (None when it does not exist)."""
    counter = (
        ctx.db.query("counters")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .unique()
    )
    return None if counter is None else int(counter["value"])


# ---------------------------------------------------------------- mixed workload

GROUPS = ("g0", "g1", "g2", "g3")

mixed_schema = define_schema(
    {
        "items": define_table(
            {"group": v.string(), "value": v.int64(), "note": v.string()}
        )
        .index("by_group", ["group"])
        .index("by_group_value", ["group", "value"]),
        "totals": define_table(
            {"group": v.string(), "count": v.int64(), "sum": v.int64()}
        ).index("by_group", ["group"]),
    }
)


def _total(ctx: Any, group: str) -> dict[str, Any]:
    doc = (
        ctx.db.query("totals")
        .with_index("by_group", lambda q: q.eq("group", group))
        .unique()
    )
    if doc is None:
        doc_id = ctx.db.insert("totals", {"group": group, "count": 0, "sum": 0})
        doc = ctx.db.get(doc_id)
    return dict(doc)


def _bump(ctx: Any, group: str, count: int, amount: int) -> None:
    total = _total(ctx, group)
    ctx.db.patch(
        total["_id"], {"count": total["count"] + count, "sum": total["sum"] + amount}
    )


@mutation(args={"group": v.string(), "value": v.int64()})
def add_item(ctx: Any, args: dict[str, Any]) -> str:
    """Insert an item and add it to its group's totals."""
    item_id: str = ctx.db.insert(
        "items", {"group": args["group"], "value": args["value"], "note": "new"}
    )
    _bump(ctx, args["group"], 1, args["value"])
    return item_id


@mutation(args={"group": v.string(), "pick": v.float64(), "delta": v.int64()})
def change_item(ctx: Any, args: dict[str, Any]) -> bool:
    """Patch the value of one item of a group (chosen by ``pick``), keeping totals."""
    items = (
        ctx.db.query("items")
        .with_index("by_group", lambda q: q.eq("group", args["group"]))
        .take(20)
    )
    if not items:
        return False
    item = items[int(args["pick"] * len(items))]
    ctx.db.patch(
        item["_id"], {"value": item["value"] + args["delta"], "note": "changed"}
    )
    _bump(ctx, args["group"], 0, args["delta"])
    return True


@mutation(args={"source": v.string(), "target": v.string(), "pick": v.float64()})
def move_item(ctx: Any, args: dict[str, Any]) -> bool:
    """Replace an item so that it moves to another group, keeping both totals."""
    items = (
        ctx.db.query("items")
        .with_index("by_group", lambda q: q.eq("group", args["source"]))
        .take(20)
    )
    if not items:
        return False
    item = items[int(args["pick"] * len(items))]
    ctx.db.replace(
        item["_id"], {"group": args["target"], "value": item["value"], "note": "moved"}
    )
    _bump(ctx, args["source"], -1, -item["value"])
    _bump(ctx, args["target"], 1, item["value"])
    return True


@mutation(args={"group": v.string(), "pick": v.float64()})
def remove_item(ctx: Any, args: dict[str, Any]) -> bool:
    """Delete one item of a group, keeping totals."""
    items = (
        ctx.db.query("items")
        .with_index("by_group", lambda q: q.eq("group", args["group"]))
        .order("desc")
        .take(20)
    )
    if not items:
        return False
    item = items[int(args["pick"] * len(items))]
    ctx.db.delete(item["_id"])
    _bump(ctx, args["group"], -1, -item["value"])
    return True


@query(args={"group": v.string()})
def group_consistent(ctx: Any, args: dict[str, Any]) -> bool:
    """Whether, in one snapshot, a group's totals match its items (read two ways)."""
    total = (
        ctx.db.query("totals")
        .with_index("by_group", lambda q: q.eq("group", args["group"]))
        .unique()
    )
    items = (
        ctx.db.query("items")
        .with_index("by_group", lambda q: q.eq("group", args["group"]))
        .collect()
    )
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = (
            ctx.db.query("items")
            .with_index("by_group_value", lambda q: q.eq("group", args["group"]))
            .paginate({"numItems": 7, "cursor": cursor})
        )
        paged += page["page"]
        if page["isDone"]:
            break
        cursor = page["continueCursor"]
    count = 0 if total is None else total["count"]
    amount = 0 if total is None else total["sum"]
    return (
        len(items) == count
        and sum(i["value"] for i in items) == amount
        and sorted(i["_id"] for i in paged) == sorted(i["_id"] for i in items)
    )


MIXED_OPERATIONS = ("add", "add", "change", "move", "remove", "check")


def mixed_step(store: Store, rng: random.Random) -> tuple[str, Result[Any, Problem]]:
    """Run one random operation of the mixed workload; returns its name and result."""
    op = rng.choice(MIXED_OPERATIONS)
    group = rng.choice(GROUPS)
    if op == "add":
        return op, store.mutation(
            add_item, {"group": group, "value": rng.randint(-50, 50)}
        )
    if op == "change":
        args = {"group": group, "pick": rng.random(), "delta": rng.randint(-5, 5)}
        return op, store.mutation(change_item, args)
    if op == "move":
        target = rng.choice(GROUPS)
        return op, store.mutation(
            move_item, {"source": group, "target": target, "pick": rng.random()}
        )
    if op == "remove":
        return op, store.mutation(remove_item, {"group": group, "pick": rng.random()})
    return op, store.query(group_consistent, {"group": group})


def retry_busy(call: Any, *args: Any) -> tuple[Result[Any, Problem], int]:
    """Call ``call(*args)`` until it is not ``Failure(Busy)``; returns (result, busies)."""
    busies = 0
    while True:
        result = call(*args)
        if isinstance(result, Failure) and isinstance(result.failure(), Busy):
            busies += 1
            continue
        return result, busies


__all__ = ["Success"]
