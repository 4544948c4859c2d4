"""The fixed costs of a one_store call, step by step, with ``timeit``.

Usage (from the repository root)::

    python benchmarks/call_path.py

Where ``run.py`` says how far one_store is from raw sqlite3, this says what a
call costs before it does any work of its own: a query and a mutation that do
nothing, the SQL brackets of their transactions, decoding one stored message,
building a query, and the SQL of a bulk insert row by row against
``executemany``. Each line is the best of 5 ``timeit`` repeats, in µs per call; run
it on a quiet machine and read the lines against each other. A diagnostic, not
part of ``run.py``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers.one_store_peer import SCHEMA, get_message
from benchmarks.workload import make_docs
from one_store import Store, mutation, query, v
from one_store.engine.ranges import compile_range
from one_store.model.values import dumps, loads


@query(args={})
def nothing(ctx: Any, args: Any) -> None:
    return None


@mutation(args={})
def write_nothing(ctx: Any, args: Any) -> None:
    return None


@query(args={"threadId": v.string()})
def build_only(ctx: Any, args: Any) -> None:
    thread = args["threadId"]
    ctx.db.query("messages").with_index(
        "by_thread", lambda q: q.eq("threadId", thread)
    ).order("desc")


def best(fn: Callable[[], object], number: int) -> float:
    """Best of 5 repeats, µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def show(label: str, micros: float) -> None:
    print(f"  {label:58s} {micros:8.2f}")


def bulk_sql(
    rows: list[tuple[Any, ...]], texts: list[tuple[int, str]], many: bool
) -> float:
    """µs per document of the two INSERTs of a bulk load, one transaction."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "b.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(
            "CREATE TABLE m (id TEXT PRIMARY KEY NOT NULL, ct REAL, body TEXT,"
            " k1 BLOB, k2 BLOB, k3 BLOB);"
            "CREATE INDEX m1 ON m(k1); CREATE INDEX m2 ON m(k2); CREATE INDEX m3 ON m(k3);"
            "CREATE VIRTUAL TABLE f USING fts5(text);"
        )
        conn.execute("BEGIN")
        start = timeit.default_timer()
        if many:
            conn.executemany("INSERT INTO m VALUES (?,?,?,?,?,?)", rows)
            conn.executemany("INSERT INTO f(rowid, text) VALUES (?,?)", texts)
        else:
            for row, text in zip(rows, texts, strict=True):
                conn.execute("INSERT INTO m VALUES (?,?,?,?,?,?)", row)
                conn.execute("INSERT INTO f(rowid, text) VALUES (?,?)", text)
        elapsed = timeit.default_timer() - start
        conn.execute("COMMIT")
        conn.close()
    return elapsed / len(rows) * 1e6


def main() -> None:
    docs = make_docs(8_000, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "calls.db", schema=SCHEMA)
        key = store.run(lambda ctx: ctx.db.insert("messages", docs[0])).unwrap()
        conn = store.storage.connection
        print("µs per call (best of 5 timeit repeats)")
        show("query that reads nothing", best(lambda: store.query(nothing), 20_000))
        show(
            "  its SQL: BEGIN; PRAGMA schema_version; COMMIT",
            best(
                lambda: (
                    conn.execute("BEGIN"),
                    conn.execute("PRAGMA schema_version").fetchone(),
                    conn.execute("COMMIT"),
                ),
                20_000,
            ),
        )
        show(
            "mutation that writes nothing",
            best(lambda: store.mutation(write_nothing), 20_000),
        )
        show(
            "  its SQL: BEGIN IMMEDIATE; PRAGMA schema_version; COMMIT",
            best(
                lambda: (
                    conn.execute("BEGIN IMMEDIATE"),
                    conn.execute("PRAGMA schema_version").fetchone(),
                    conn.execute("COMMIT"),
                ),
                20_000,
            ),
        )
        show(
            "query building with_index + order (call minus nothing)",
            best(lambda: store.query(build_only, {"threadId": "t"}), 20_000)
            - best(lambda: store.query(nothing), 20_000),
        )
        show(
            "  compile_range of one eq on the index's first field",
            best(
                lambda: compile_range(
                    "messages",
                    "by_thread",
                    ("threadId", "_creationTime", "_id"),
                    [("eq", "threadId", "thread-001")],
                ),
                100_000,
            ),
        )
        show(
            "get by ID (query function)",
            best(lambda: store.query(get_message, {"id": key}), 20_000),
        )
        select = 'SELECT _body FROM "messages" WHERE _id=?'
        show(
            "  raw: the same SELECT and json.loads, no transaction",
            best(
                lambda: json.loads(conn.execute(select, (key,)).fetchone()[0]), 20_000
            ),
        )
        store.close()
    doc = {"_id": key, "_creationTime": 1.7e12, **docs[0]}
    text = dumps(doc)
    show(
        "decode one stored message: one_store loads", best(lambda: loads(text), 100_000)
    )
    show(
        "decode one stored message: json.loads", best(lambda: json.loads(text), 100_000)
    )
    rows = [
        (f"id{i}", float(i), json.dumps(d), b"k1%d" % i, b"k2%d" % i, b"k3%d" % i)
        for i, d in enumerate(docs)
    ]
    texts = [(i + 1, d["content"]) for i, d in enumerate(docs)]
    show("bulk SQL per document, execute per row", bulk_sql(rows, texts, many=False))
    show("bulk SQL per document, executemany", bulk_sql(rows, texts, many=True))


if __name__ == "__main__":
    main()
