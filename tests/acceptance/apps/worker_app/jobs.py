"""Jobs for the two-worker-process test: each run leaves one row in `runs`."""

import os
import time
from typing import Any

from one_store import ActionCtx, MutationCtx, internal_action, internal_mutation, v


@internal_mutation(args={"job": v.int64(), "kind": v.string()})
def record(ctx: MutationCtx, args: dict[str, Any]) -> None:
    ctx.db.insert(
        "runs", {"job": args["job"], "kind": args["kind"], "pid": os.getpid()}
    )


@internal_action(args={"job": v.int64()})
def record_from_action(ctx: ActionCtx, args: dict[str, Any]) -> None:
    ctx.run_mutation("jobs:record", {"job": args["job"], "kind": "action"}).unwrap()


@internal_action(args={"marker": v.string()})
def hang(ctx: ActionCtx, args: dict[str, Any]) -> None:
    """Say it started (a file), then run until the process is killed."""
    from pathlib import Path

    Path(args["marker"]).touch()
    time.sleep(600)
