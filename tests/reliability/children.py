"""Child processes of the reliability tests (run as a script, never collected).

Usage::

    python children.py crash DB LOG SEED          # add_doc forever; log committed ids
    python children.py counter DB NAME THREADS N  # THREADS threads x N increments
    python children.py mixed DB SEED OPS          # OPS random mixed-workload steps

``counter`` and ``mixed`` print one JSON object with their tallies when done.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from returns.result import Failure, Success

from one_store import Busy, Store
from tests.reliability import workload


def crash(db: str, log: str, seed: int) -> None:
    """Run ``add_doc`` in a loop until killed; append each committed id to ``log``."""
    rng = random.Random(seed)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    store = Store.open(db, schema=workload.crash_schema)
    print("ready", flush=True)
    while True:
        result, _ = workload.retry_busy(
            store.mutation, workload.add_doc, workload.add_doc_args(rng)
        )
        match result:
            case Success(doc_id):
                # One write(2) per line: the kernel keeps it even if we die right after.
                os.write(fd, f"{doc_id}\n".encode())
            case Failure(problem):
                print(f"unexpected failure: {problem!r}", file=sys.stderr, flush=True)
                sys.exit(3)


def counter(db: str, name: str, threads: int, increments: int) -> None:
    """Increment one counter from ``threads`` threads sharing one Store."""
    store = Store.open(db, schema=workload.counter_schema, busy_timeout=2.0)
    tallies: dict[str, int] = {"ok": 0, "busy": 0, "other": 0}
    lock = threading.Lock()

    def work() -> None:
        ok = busy = other = 0
        while ok < increments:
            result = store.mutation(workload.increment, {"name": name})
            match result:
                case Success(_):
                    ok += 1
                case Failure(Busy()):
                    busy += 1  # retried: Busy must have left no trace
                case Failure(problem):
                    other += 1
                    print(
                        f"unexpected failure: {problem!r}", file=sys.stderr, flush=True
                    )
                    break
        with lock:
            tallies["ok"] += ok
            tallies["busy"] += busy
            tallies["other"] += other

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    store.close()
    print(json.dumps(tallies), flush=True)


def mixed(db: str, seed: int, ops: int) -> None:
    """Run ``ops`` random mixed-workload steps; count outcomes per operation."""
    rng = random.Random(seed)
    store = Store.open(db, schema=workload.mixed_schema, busy_timeout=2.0)
    tallies: dict[str, Any] = {"busy": 0, "inconsistent": 0, "failures": []}
    for _ in range(ops):
        while True:
            op, result = workload.mixed_step(store, rng)
            if isinstance(result, Failure) and isinstance(result.failure(), Busy):
                tallies["busy"] += 1
                continue
            break
        match result:
            case Success(False) if op == "check":
                tallies["inconsistent"] += 1
            case Success(_):
                tallies[op] = tallies.get(op, 0) + 1
            case Failure(problem):
                tallies["failures"].append(f"{op}: {problem!r}")
    store.close()
    print(json.dumps(tallies), flush=True)


def main(argv: list[str]) -> None:
    """Dispatch on the first argument."""
    match argv:
        case ["crash", db, log, seed]:
            crash(db, log, int(seed))
        case ["counter", db, name, threads, n]:
            counter(db, name, int(threads), int(n))
        case ["mixed", db, seed, ops]:
            mixed(db, int(seed), int(ops))
        case _:
            sys.exit(f"usage: {__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
