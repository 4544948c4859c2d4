"""What checking a function's return value costs, since it sees nested edits.

A query returns documents it read; they are valid Convex values already, so the
return check does not walk them again while they are unchanged. "Unchanged" used
to mean the same top-level values (an edit inside ``doc["meta"]`` went unseen);
it now means the same objects at every depth (``one_store.runtime.transaction``:
``snapshot`` when a document is decoded, ``unchanged`` when it is returned).

This script times, on the benchmark's documents (``workload.py``; each has a
``tags`` list and a ``meta`` object), per document and with ``timeit``'s best of
several runs (robust on a loaded machine):

- the old bookkeeping (a tuple of the top-level values, compared by identity);
- the new one (that, plus each nested object or array and its items);
- a full ``check_value`` walk, which is what an edited document gets;

and the benchmark's query operations through ``Store.query`` (first 50 of an
indexed group, a page of 50) with the old and the new check, interleaved in one
process (best of 9 rounds each), so the difference reads as a share of a call.
It writes a block into RESULTS.md.

    python benchmarks/return_check.py [--docs 20000]
"""

from __future__ import annotations

import argparse
import operator
import random
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers.one_store_peer import OneStorePeer
from benchmarks.report import fmt, replace_block
from benchmarks.workload import make_docs, thread_id
from one_store.model.values import check_value, dumps, loads
from one_store.runtime import transaction
from one_store.runtime.transaction import snapshot, unchanged

START, END = "<!-- return-check:start -->", "<!-- return-check:end -->"


def best_us(fn: Any, number: int, repeat: int = 7) -> float:
    """Best of ``repeat`` runs of ``number`` calls, in µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def per_document(docs: list[dict[str, Any]]) -> dict[str, float]:
    texts = [dumps(d) for d in docs]
    decoded = [loads(t) for t in texts]
    n = len(decoded)

    def old() -> None:
        for doc in decoded:
            values = tuple(doc.values())
            if len(doc) != len(values) or not all(
                map(operator.is_, doc.values(), values)
            ):
                raise AssertionError("changed")

    def new() -> None:
        for doc in decoded:
            assert unchanged(doc, snapshot(doc))

    def walk() -> None:
        for doc in decoded:
            check_value(doc)

    def decode() -> None:
        for text in texts:
            loads(text)

    return {
        name: best_us(fn, 20) / n
        for name, fn in (("old", old), ("new", new), ("walk", walk), ("decode", decode))
    }


def _top_level_only(doc: dict[str, Any]) -> Any:
    """The check before nested edits were seen: top-level values only."""
    return tuple(doc.values()), None


def query_ops(
    size: int, workdir: Path, rounds: int = 9
) -> dict[str, tuple[float, float]]:
    """Each query operation's best µs per call, with the old and the new check.

    The two run interleaved in one process on one store (the module's
    ``snapshot`` swapped between rounds), so the machine's load hits both alike.
    """
    peer = OneStorePeer.create(workdir / "return_check.db")
    try:
        peer.bulk_insert(make_docs(size, seed=7))
        rng = random.Random(3)
        threads = [thread_id(rng.randrange(size // 50 or 1)) for _ in range(50)]
        it = iter(threads * 100_000)
        ops = {
            "first 50 of an indexed group": lambda: peer.by_thread(next(it)),
            "keyset page of 50": lambda: peer.walk(50),
        }
        best: dict[str, list[float]] = {name: [1e9, 1e9] for name in ops}
        for _ in range(rounds):
            for variant, snap in enumerate((_top_level_only, snapshot)):
                transaction.snapshot = snap  # type: ignore[assignment]
                for name, fn in ops.items():
                    us = best_us(fn, 30, repeat=1)
                    best[name][variant] = min(best[name][variant], us)
        transaction.snapshot = snapshot  # type: ignore[assignment]
        return {name: (old, new) for name, (old, new) in best.items()}
    finally:
        peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    per_doc = per_document(make_docs(1000, seed=11))
    with tempfile.TemporaryDirectory() as tmp:
        ops = query_ops(args.docs, Path(tmp))
    lines = [
        START,
        "",
        f"`python benchmarks/return_check.py --docs {args.docs}` "
        "(best of 7 `timeit` runs; µs).",
        "",
        "| per document read and returned | µs |",
        "| --- | ---: |",
        f"| decode (`loads`) | {fmt(per_doc['decode'])} |",
        f"| old check: top-level values by identity | {fmt(per_doc['old'])} |",
        f"| new check: every nested object and array by identity | {fmt(per_doc['new'])} |",
        f"| full walk (`check_value`), what an edited document gets | {fmt(per_doc['walk'])} |",
        "",
        "| query operation (50 documents) | old check µs | new check µs | new / old |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, (old, new) in ops.items():
        lines.append(f"| {name} | {fmt(old)} | {fmt(new)} | {new / old:.3f} |")
    lines += ["", END]
    block = "\n".join(lines)
    print(block)
    replace_block(
        args.out / "RESULTS.md", START, END, block, "Return check (nested edits)"
    )


if __name__ == "__main__":
    main()
