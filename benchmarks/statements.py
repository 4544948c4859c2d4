"""Time every SQL statement one_store and raw sqlite3 issue for one operation.

Usage (from the repository root)::

    python benchmarks/statements.py get delete     # 20,000-document tables
    python benchmarks/statements.py patch --docs 100000 --calls 3000

The profile in RESULTS.md says how much of an operation is ``execute``; this says
which statements that is. Both stores get the same documents (``workload.py``),
then each runs ``--calls`` operations through a connection wrapper that times each
``execute`` by its SQL text (the wrapper adds well under a microsecond per
statement, to both stores alike). Prints mean µs per execution and the count,
slowest first. A diagnostic, not a benchmark: nothing is interleaved.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers.base import Peer
from benchmarks.peers.one_store_peer import OneStorePeer
from benchmarks.peers.raw_sqlite import RawSqlite
from benchmarks.workload import make_docs, patch_fields

OPERATIONS = ("insert", "patch", "delete", "get")


class TimedConnection:
    """A ``sqlite3.Connection`` stand-in that times ``execute`` by SQL text."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.__dict__["_connection"] = connection
        self.__dict__["seconds"] = defaultdict(float)
        self.__dict__["count"] = Counter()

    def execute(self, sql: str, *params: Any) -> sqlite3.Cursor:
        start = time.perf_counter()
        cursor: sqlite3.Cursor = self._connection.execute(sql, *params)
        key = " ".join(sql.split())[:72]
        self.seconds[key] += time.perf_counter() - start
        self.count[key] += 1
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


def calls(op: str, peer: Peer, keys: list[Any], fresh: list[Any], n: int) -> None:
    rng = random.Random(f"statements-{op}")
    docs = make_docs(n, seed=99)
    run: Callable[[int], object] = {
        "insert": lambda i: peer.insert(docs[i]),
        "patch": lambda i: peer.patch(
            keys[rng.randrange(len(keys))], patch_fields(rng)
        ),
        "delete": lambda i: peer.delete(fresh[i]),
        "get": lambda i: peer.get(keys[rng.randrange(len(keys))]),
    }[op]
    for i in range(n):
        run(i)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ops", nargs="+", choices=OPERATIONS)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=2_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="one_store_statements-") as tmp:
        docs = make_docs(args.docs, seed=1)
        one = OneStorePeer.create(Path(tmp) / "one.db")
        raw = RawSqlite.create(Path(tmp) / "raw.db")
        stores: list[tuple[str, Peer, Any, str, list[Any]]] = [
            ("one_store", one, one.store.storage, "connection", one.bulk_insert(docs)),
            ("raw sqlite3", raw, raw, "conn", raw.bulk_insert(docs)),
        ]
        for op in args.ops:
            print(f"{op} ({args.calls:,} calls on {args.docs:,} documents)")
            for name, peer, owner, attr, keys in stores:
                extra = make_docs(args.calls, seed=7)
                fresh = [peer.insert(d) for d in extra] if op == "delete" else []
                timed = TimedConnection(getattr(owner, attr))
                setattr(owner, attr, timed)
                try:
                    calls(op, peer, keys, fresh, args.calls)
                finally:
                    setattr(owner, attr, timed._connection)
                print(f"  {name}")
                for sql, seconds in sorted(
                    timed.seconds.items(), key=lambda kv: -kv[1]
                ):
                    count = timed.count[sql]
                    print(f"    {seconds / count * 1e6:8.1f} µs  x{count:<6} {sql}")
        one.close()
        raw.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
