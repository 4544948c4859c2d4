"""CPU time per operation, raw sqlite3 against one_store, for A/B runs of two trees.

Usage::

    SRC=/path/to/a/clone python benchmarks/cpu_ab.py get,insert,patch,delete 800

``SRC`` picks the source tree (a clone at the commit to measure; default this
checkout), so two commits are compared with the same script. Each operation runs
``N`` calls per slice on a 20,000-document table without a search index,
raw sqlite3 and one_store alternating for 6 repetitions (the first is a
warm-up). Time is the thread's CPU time (``time.thread_time``), which a busy
shared machine disturbs far less than wall time; the ratio is paired per
repetition (median and range over repetitions). A diagnostic for before/after
comparisons of a change, not a replacement for ``run.py``.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.environ.get("SRC", str(Path(__file__).resolve().parent.parent)))

from benchmarks.peers.base import Peer
from benchmarks.peers.one_store_peer import OneStorePeer
from benchmarks.peers.raw_sqlite import RawSqlite
from benchmarks.workload import SETTINGS, make_docs, patch_fields

TABLE = 20_000


def _args(op: str, rep: int, n: int) -> tuple[list[Any], list[Any]]:
    r = random.Random(f"{op}{rep}")
    if op in ("get", "patch"):
        return [r.randrange(TABLE) for _ in range(n)], [
            patch_fields(r) for _ in range(n)
        ]
    if op == "delete":
        return list(range(rep * n, rep * n + n)), []
    if op == "insert":
        return make_docs(n, rep + 99), []
    return [f"thread-{r.randrange(100):03d}" for _ in range(n)], []


def _run(op: str, peer: Peer, keys: list[Any], a: list[Any], b: list[Any]) -> None:
    if op == "get":
        for i in a:
            peer.get(keys[i])
    elif op == "patch":
        for i, f in zip(a, b, strict=True):
            peer.patch(keys[i], f)
    elif op == "delete":
        for i in a:
            peer.delete(keys[i])
    elif op == "insert":
        for doc in a:
            peer.insert(doc)
    elif op == "by_thread":
        for t in a:
            peer.by_thread(t)
    else:
        for t in a:
            peer.latest(t)


def main() -> int:
    ops = sys.argv[1].split(",")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    SETTINGS.search = False
    folder = Path(f"/tmp/cpu_ab-{os.getpid()}")
    folder.mkdir()
    try:
        peers: dict[str, Peer] = {
            "raw": RawSqlite.create(folder / "raw.db"),
            "os": OneStorePeer.create(folder / "os.db"),
        }
        base = make_docs(TABLE, 1)
        keys = {name: p.bulk_insert(base) for name, p in peers.items()}
        gc.collect()
        gc.freeze()
        for op in ops:
            cpu: dict[str, list[float]] = {"raw": [], "os": []}
            for rep in range(6):
                a, b = _args(op, rep, n)
                for name in ["raw", "os"] if rep % 2 else ["os", "raw"]:
                    gc.disable()
                    start = time.thread_time()
                    _run(op, peers[name], keys[name], a, b)
                    used = time.thread_time() - start
                    gc.enable()
                    if rep:
                        cpu[name].append(used / n * 1e6)
            ratios = sorted(o / r for o, r in zip(cpu["os"], cpu["raw"], strict=True))
            print(
                f"{op}: raw {statistics.median(cpu['raw']):.2f} "
                f"one_store {statistics.median(cpu['os']):.2f} CPU µs; ratio median "
                f"{statistics.median(ratios):.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]",
                flush=True,
            )
        for p in peers.values():
            p.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
