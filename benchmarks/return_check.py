"""What checking a function's return value costs, since it sees nested edits.

A query returns documents it read; they are valid Convex values already, so the
return check does not walk them again while they are unchanged. "Unchanged" used
to mean the same top-level values (an edit inside ``doc["meta"]`` went unseen);
it now means the same objects at every depth (``one_store.runtime.transaction``:
each read document's entry is made by its table's ``remember`` when it is
decoded and checked by the entry's ``same`` when it is returned). A table whose
schema validates writes has a ``remember`` written for its validator (only the
fields that can hold an object or array are looked into); any other table gets
the generic one, which looks at every value.

This script times, on the benchmark's documents (``workload.py``; each has a
``tags`` list and a ``meta`` object), per document and with ``timeit``'s best of
several runs (robust on a loaded machine):

- the old bookkeeping (a tuple of the top-level values, compared by identity);
- the generic one (that, plus each nested object or array and its items);
- the one the messages table's validator gets;
- a full ``check_value`` walk, which is what an edited document gets;

and the benchmark's first 50 of an indexed group through ``Store.query`` with
the three, interleaved in one process (best of 9 rounds each), so the
difference reads as a share of a call. It writes a block into RESULTS.md.

    python benchmarks/return_check.py [--docs 5000]

(5,000 documents over the workload's 100 threads: 50 per group.)

Timings on a shared machine move; instruction counts do not. ``--count
VARIANT N`` runs N of those queries with one variant (``base`` runs none) and
nothing else, to run under callgrind::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python benchmarks/return_check.py --count schema 100

(the variant's count minus ``base``'s, over N, is one query's instructions).
"""

from __future__ import annotations

import argparse
import operator
import random
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers.one_store_peer import SCHEMA, OneStorePeer
from benchmarks.report import fmt, replace_block
from benchmarks.workload import N_THREADS, make_docs, thread_id
from one_store.model.values import check_value, dumps, loads
from one_store.runtime import transaction
from one_store.runtime.transaction import GENERIC, Remember, document_check

START, END = "<!-- return-check:start -->", "<!-- return-check:end -->"
MESSAGES = document_check(SCHEMA.tables["messages"].document)


def best_us(fn: Any, number: int, repeat: int = 7) -> float:
    """Best of ``repeat`` runs of ``number`` calls, in µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def _top_level_same(doc: dict[str, Any], entry: tuple[Any, ...]) -> bool:
    values = entry[3]
    return len(doc) == len(values) and all(map(operator.is_, doc.values(), values))


def top_level_only(doc: dict[str, Any], size: int) -> tuple[Any, ...]:
    """The check before nested edits were seen: top-level values only."""
    return doc, size, _top_level_same, tuple(doc.values())


VARIANTS: dict[str, Remember] = {
    "old": top_level_only,
    "generic": GENERIC,
    "schema": MESSAGES,
}


def per_document(docs: list[dict[str, Any]]) -> dict[str, float]:
    texts = [dumps(d) for d in docs]
    decoded = [loads(t) for t in texts]
    n = len(decoded)

    def bookkeeping(remember: Remember) -> Callable[[], None]:
        def run() -> None:
            for doc in decoded:
                entry = remember(doc, 0)
                if not entry[2](doc, entry):
                    raise AssertionError("changed")

        return run

    def walk() -> None:
        for doc in decoded:
            check_value(doc)

    def decode() -> None:
        for text in texts:
            loads(text)

    fns = {name: bookkeeping(r) for name, r in VARIANTS.items()}
    fns |= {"walk": walk, "decode": decode}
    return {name: best_us(fn, 20) / n for name, fn in fns.items()}


def _use(remember: Remember) -> None:
    """Make every transaction remember what it reads with ``remember``."""
    transaction.Transaction.check_for = (  # type: ignore[method-assign]
        lambda self, table: remember
    )


def query_ops(size: int, workdir: Path, rounds: int = 9) -> dict[str, float]:
    """First 50 of an indexed group: best µs per call with each variant.

    The variants run interleaved in one process on one store, so the
    machine's load hits them alike.
    """
    original = transaction.Transaction.check_for
    peer = OneStorePeer.create(workdir / "return_check.db")
    try:
        peer.bulk_insert(make_docs(size, seed=7))
        rng = random.Random(3)
        threads = [thread_id(rng.randrange(N_THREADS)) for _ in range(50)]
        it = iter(threads * 100_000)
        best = dict.fromkeys(VARIANTS, 1e9)
        for _ in range(rounds):
            for name, remember in VARIANTS.items():
                _use(remember)
                us = best_us(lambda: peer.by_thread(next(it)), 30, repeat=1)
                best[name] = min(best[name], us)
        return best
    finally:
        transaction.Transaction.check_for = original  # type: ignore[method-assign]
        peer.close()


def count(variant: str, n: int, size: int, workdir: Path) -> None:
    """Run ``n`` first-50 queries with ``variant`` (for callgrind; base: none)."""
    _use(VARIANTS.get(variant, top_level_only))
    peer = OneStorePeer.create(workdir / "return_check.db")
    try:
        peer.bulk_insert(make_docs(size, seed=7))
        rng = random.Random(3)
        threads = [thread_id(rng.randrange(N_THREADS)) for _ in range(50)]
        for i in range(20):  # warm up (base too)
            peer.by_thread(threads[i % 50])
        for i in range(n if variant != "base" else 0):
            peer.by_thread(threads[i % 50])
    finally:
        peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--count", nargs=2, metavar=("VARIANT", "N"))
    args = parser.parse_args()
    if args.count:
        with tempfile.TemporaryDirectory() as tmp:
            count(args.count[0], int(args.count[1]), 5000, Path(tmp))
        return
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
        f"| generic check: every nested object and array by identity | {fmt(per_doc['generic'])} |",
        f"| schema-driven check (the messages table's validator) | {fmt(per_doc['schema'])} |",
        f"| full walk (`check_value`), what an edited document gets | {fmt(per_doc['walk'])} |",
        "",
        "| first 50 of an indexed group | µs | / old |",
        "| --- | ---: | ---: |",
    ]
    for name in VARIANTS:
        lines.append(
            f"| {name} check | {fmt(ops[name])} | {ops[name] / ops['old']:.3f} |"
        )
    lines += ["", END]
    block = "\n".join(lines)
    print(block)
    replace_block(
        args.out / "RESULTS.md", START, END, block, "Return check (nested edits)"
    )


if __name__ == "__main__":
    main()
