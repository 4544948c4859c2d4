"""What one_store's file layout costs a write, in SQL alone (no Python of one_store).

Usage (from the repository root)::

    python benchmarks/layout_cost.py                 # 100,000 documents
    python benchmarks/layout_cost.py --docs 20000

Two hand-written ``sqlite3`` tables get the same documents and the same FTS5
table, then time single-document insert transactions (``BEGIN IMMEDIATE``, row,
FTS row, ``COMMIT``), interleaved:

- **native**: the raw reference's layout (``peers/raw_sqlite.py``): the indexed
  fields as typed columns, each index over them plus the creation time.
- **keys**: one_store's layout (``one_store/storage.py``): one BLOB column per
  index holding an order-preserving key (the fields' sort keys, then
  ``_creationTime``'s and ``_id``'s), each index over its key, and the body
  repeating the system fields.

The difference is what the layout alone adds to an insert at that table size. A
diagnostic, not part of ``run.py``: prints the minimum and median µs per
transaction over the rounds.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.workload import Doc, make_docs
from one_store.engine.search import search_tokens
from one_store.model.keys import sort_key

DDL = {
    "native": """
CREATE TABLE m (id TEXT PRIMARY KEY, ct REAL NOT NULL, body TEXT NOT NULL,
                thread_id TEXT, role TEXT, tokens INTEGER);
CREATE INDEX m1 ON m(ct); CREATE INDEX m2 ON m(thread_id, ct);
CREATE INDEX m3 ON m(role, tokens, ct);
CREATE VIRTUAL TABLE f USING fts5(text);
""",
    "keys": """
CREATE TABLE m (id TEXT PRIMARY KEY NOT NULL, ct REAL NOT NULL, body TEXT NOT NULL,
                k1 BLOB, k2 BLOB, k3 BLOB);
CREATE INDEX m1 ON m(k1); CREATE INDEX m2 ON m(k2); CREATE INDEX m3 ON m(k3);
CREATE VIRTUAL TABLE f USING fts5(text, tokenize='unicode61 remove_diacritics 0');
""",
}


def row(layout: str, n: int, doc: Doc) -> tuple[tuple[Any, ...], str]:
    """The table row and FTS text of document number ``n`` in ``layout``."""
    doc_id = os.urandom(16).hex()
    created = 1.7e12 + n
    if layout == "native":
        values = (doc["threadId"], doc["role"], doc["meta"]["tokens"])
        return (doc_id, created, json.dumps(doc), *values), doc["content"]
    tail = sort_key(created) + sort_key(doc_id)
    body = json.dumps({"_id": doc_id, "_creationTime": created, **doc})
    keys = (
        tail,
        sort_key(doc["threadId"]) + tail,
        sort_key(doc["role"]) + sort_key(doc["meta"]["tokens"]) + tail,
    )
    return (doc_id, created, body, *keys), " ".join(search_tokens(doc["content"]))


def connect(layout: str, workdir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(workdir / f"{layout}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(DDL[layout])
    return conn


def insert(conn: sqlite3.Connection, values: tuple[Any, ...], text: str) -> None:
    cursor = conn.execute("INSERT INTO m VALUES (?,?,?,?,?,?)", values)
    conn.execute("INSERT INTO f(rowid, text) VALUES (?,?)", (cursor.lastrowid, text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="table size")
    parser.add_argument("--calls", type=int, default=500, help="inserts per round")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    docs = make_docs(args.docs + args.calls * args.rounds, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        conns = {layout: connect(layout, Path(tmp)) for layout in DDL}
        for layout, conn in conns.items():
            conn.execute("BEGIN")
            for n, doc in enumerate(docs[: args.docs]):
                insert(conn, *row(layout, n, doc))
            conn.execute("COMMIT")
        times: dict[str, list[float]] = {layout: [] for layout in DDL}
        for r in range(args.rounds):
            first = args.docs + r * args.calls
            batch = list(enumerate(docs[first : first + args.calls], first))
            for layout in list(DDL) if r % 2 else list(DDL)[::-1]:
                conn = conns[layout]
                rows = [row(layout, n, doc) for n, doc in batch]
                gc.disable()
                start = time.perf_counter()
                for values, text in rows:
                    conn.execute("BEGIN IMMEDIATE")
                    insert(conn, values, text)
                    conn.execute("COMMIT")
                elapsed = time.perf_counter() - start
                gc.enable()
                times[layout].append(elapsed / len(rows) * 1e6)
        for conn in conns.values():
            conn.close()
    print(f"one-document insert transactions on {args.docs:,} documents (µs)")
    for layout, samples in times.items():
        print(
            f"  {layout:7s} min {min(samples):7.1f}  median {statistics.median(samples):7.1f}"
        )
    native, keys = (statistics.median(times[k]) for k in ("native", "keys"))
    print(f"  keys / native (medians): {keys / native:.2f}")


if __name__ == "__main__":
    main()
