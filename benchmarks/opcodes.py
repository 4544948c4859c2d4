"""Python bytecodes and SQL statements per operation: a noise-free A/B of two trees.

Usage::

    SRC=/path/to/a/clone python benchmarks/opcodes.py get,insert,patch,delete 200

``SRC`` picks the source tree, as for ``cpu_ab.py``. Each operation of
``cpu_ab.py``'s workload (``get``, ``insert``, ``patch``, ``delete``,
``by_thread``, ``latest``) runs ``N`` times on raw sqlite3 and on one_store
(2,000-document table, no search index) under ``sys.settrace`` with opcode
events, and prints the bytecodes executed and the SQL statements issued
(``sqlite3``'s trace callback) per call, for each store.

Neither count depends on the machine's load, so a change of a few per cent
that CPU time on a shared machine cannot resolve (``cpu_ab.py``'s rounds vary
by ±10%) shows here exactly. What they leave out is work in C (SQLite itself,
JSON, hashing), which both stores do alike; a diagnostic beside ``cpu_ab.py``,
not a benchmark.
"""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, os.environ.get("SRC", str(Path(__file__).resolve().parent.parent)))

from benchmarks.peers.base import Peer
from benchmarks.peers.one_store_peer import OneStorePeer
from benchmarks.peers.raw_sqlite import RawSqlite
from benchmarks.workload import SETTINGS, make_docs, patch_fields

TABLE = 2_000
OPS = ("get", "insert", "patch", "delete", "by_thread", "latest")


class Counter:
    """Counts the bytecodes executed while installed (``sys.settrace``)."""

    def __init__(self) -> None:
        self.opcodes = 0

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.opcodes += 1
        return self._local

    def __enter__(self) -> Counter:
        sys.settrace(self._global)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)


def _work(op: str, keys: list[Any], n: int) -> list[Any]:
    """The ``n`` calls of ``op`` (seeded: both stores get the same arguments)."""
    r = random.Random(op)
    if op == "get":
        return [keys[r.randrange(TABLE)] for _ in range(n)]
    if op == "patch":
        return [(keys[r.randrange(TABLE)], patch_fields(r)) for _ in range(n)]
    if op == "delete":
        return keys[TABLE - n :]
    if op == "insert":
        return list(make_docs(n, 99))
    return [f"thread-{r.randrange(100):03d}" for _ in range(n)]


def _call(op: str, peer: Peer, item: Any) -> None:
    if op == "patch":
        peer.patch(*item)
    else:
        getattr(peer, op)(item)


def main() -> int:
    ops = sys.argv[1].split(",") if len(sys.argv) > 1 else list(OPS)
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    SETTINGS.search = False
    folder = Path(f"/tmp/opcodes-{os.getpid()}")
    folder.mkdir()
    try:
        raw = RawSqlite.create(folder / "raw.db")
        one = OneStorePeer.create(folder / "os.db")
        connections = {"raw": raw.conn, "one_store": one.store.storage.connection}
        peers: dict[str, Peer] = {"raw": raw, "one_store": one}
        base = make_docs(TABLE, 1)
        keys = {name: p.bulk_insert(base) for name, p in peers.items()}
        for op in ops:
            line: list[str] = []
            for name, peer in peers.items():
                work = _work(op, keys[name], n)
                _call(op, peer, work[0])  # warm: statement caches, lazy imports
                statements = [0]

                def count(_sql: str, s: list[int] = statements) -> None:
                    s[0] += 1

                connections[name].set_trace_callback(count)
                with Counter() as counter:
                    for item in work[1:]:
                        _call(op, peer, item)
                connections[name].set_trace_callback(None)
                calls = len(work) - 1
                line.append(
                    f"{name} {counter.opcodes / calls:,.0f} bytecodes "
                    f"{statements[0] / calls:.2f} statements"
                )
            print(f"{op}: " + " | ".join(line), flush=True)
        for p in peers.values():
            p.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
