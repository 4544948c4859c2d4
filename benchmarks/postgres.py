"""one_store on PostgreSQL against raw psycopg doing the same SQL work, in the same run.

Two sections, both against one server (the throwaway one of
``one_store.testing.postgres`` unless ``--dsn`` or ``ONE_STORE_TEST_POSTGRES``
names one), each store in a fresh schema of its own:

1. **Operations**: the benchmark's operations (benchmarks/workload.py, the
   ``OPS`` of benchmarks/harness.py) on one_store (``Store.open(dsn)``, its public
   API only, as ``benchmarks/peers/one_store_peer.py``) and on raw psycopg
   (``benchmarks/peers/raw_psycopg.py``: the same codec, the same connection, the
   same one-writer advisory lock, the fewest round trips), repetitions
   interleaved, each one_store figure a paired ratio to raw psycopg with a
   bootstrap interval (benchmarks/stats.py).
2. **Concurrent writers**: 1, 4 and 16 processes inserting into one schema for a
   fixed time, for one_store, raw psycopg with the lock, and raw psycopg without
   it (what the one-writer scheme costs); rounds interleaved, throughput per round,
   one_store's paired to raw psycopg's (with the lock).

Run: ``python -m benchmarks.postgres [--profile quick] [--out benchmarks/runs/x.json]``.
The machine this runs on may be shared: read the ratios, not the microseconds.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    OPS,
    PROFILES,
    Measurement,
    Sizes,
    StoreState,
    measure_ops,
)
from benchmarks.peers.base import Peer
from benchmarks.peers.one_store_peer import OneStorePeer, schema
from benchmarks.peers.raw_psycopg import RawPsycopg
from benchmarks.stats import paired_ratio
from benchmarks.workload import make_docs, thread_id, token_range
from one_store import Store

RAW = RawPsycopg.name
ONE = "one_store"
WRITER_COUNTS = (1, 4, 16)
# The PostgreSQL comparison has no FTS5: its search is ranked differently on the
# two sides (ts_rank over the same words), so only its cost is comparable.
PG_OPS = tuple(op for op in OPS)


class OneStorePg(OneStorePeer):
    """one_store through its public API, on a ``postgresql://`` DSN."""

    name = ONE

    @classmethod
    def create(cls, path: Any) -> OneStorePg:
        return cls(Store.open(str(path), schema=schema()))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def server_dsn(given: str | None) -> Callable[[], str]:
    """A function that hands out a fresh schema's DSN on the server."""
    from one_store.testing.postgres import PostgresCluster, postgres_cluster

    cluster = PostgresCluster(given) if given else postgres_cluster()
    return cluster.database


# -- operations -------------------------------------------------------------------


def load(fresh: Callable[[], str], sizes: Sizes) -> dict[str, StoreState]:
    docs = make_docs(sizes.main, seed=42)
    states: dict[str, StoreState] = {}
    for cls in (RawPsycopg, OneStorePg):
        peer: Peer = cls.create(fresh())
        started = time.perf_counter()
        keys = peer.bulk_insert(docs)
        log(
            f"  loaded {len(keys):,} docs into {cls.name} in {time.perf_counter() - started:.1f}s"
        )
        states[cls.name] = StoreState(peer, keys)
    return states


def fields(docs: Sequence[Any]) -> list[Any]:
    return [{k: v for k, v in d.items() if not k.startswith("_")} for d in docs]


def same_answers(states: dict[str, StoreState], table_size: int) -> list[str]:
    """Notes where one_store and raw psycopg return different documents."""
    rng = random.Random("verify")
    raw, one = states[RAW].peer, states[ONE].peer
    threads = [thread_id(rng.randrange(100)) for _ in range(3)]
    ranges = [token_range(rng, table_size) for _ in range(3)]
    notes = []
    for label, ask in (
        ("by_thread", lambda p: [fields(p.by_thread(t)) for t in threads]),
        ("latest", lambda p: [fields(p.latest(t)) for t in threads]),
        ("range", lambda p: [fields(p.token_range(r)) for r in ranges]),
        ("walk", lambda p: p.walk(min(10_000, table_size))),
    ):
        if ask(raw) != ask(one):
            notes.append(f"**MISMATCH** {label}: different documents than raw psycopg")
    return notes


def ratios(found: list[Measurement]) -> dict[str, Any]:
    by = {(m.op, m.store): m for m in found}
    out: dict[str, Any] = {}
    for op in PG_OPS:
        raw, one = by.get((op.key, RAW)), by.get((op.key, ONE))
        if raw is None or one is None or not raw.samples or not one.samples:
            continue
        r = paired_ratio(one.samples, raw.samples, seed=op.key)
        assert r is not None
        out[op.key] = {
            "label": op.label,
            "raw_us": sorted(raw.samples)[len(raw.samples) // 2],
            "one_store_us": sorted(one.samples)[len(one.samples) // 2],
            "ratio": r.median,
            "low": r.low,
            "high": r.high,
            "pairs": r.pairs,
        }
    return out


# -- concurrent writers -----------------------------------------------------------


def _writer(kind: str, dsn: str, seconds: float, seed: int, go: Any, ready: Any) -> int:
    """Insert documents until ``seconds`` have passed after ``go``; return how many."""
    if kind == ONE:
        peer: Peer = OneStorePg.create(dsn)
    else:
        peer = RawPsycopg.create(dsn, locked=kind == RAW)
    docs = make_docs(4_000, seed)
    ready.release()
    go.wait()
    done = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        peer.insert(docs[done % len(docs)])
        done += 1
    peer.close()
    return done


def writers_round(kind: str, dsn: str, n: int, seconds: float) -> float:
    """Documents per second that ``n`` writer processes commit together."""
    ctx = multiprocessing.get_context("spawn")
    go, ready = ctx.Event(), ctx.Semaphore(0)
    with ctx.Pool(n) as pool:
        pending = [
            pool.apply_async(_writer, (kind, dsn, seconds, i, go, ready))
            for i in range(n)
        ]
        for _ in range(n):
            ready.acquire()
        go.set()
        total = sum(p.get(timeout=seconds + 120) for p in pending)
    return total / seconds


def measure_writers(
    fresh: Callable[[], str], rounds: int, seconds: float
) -> dict[str, Any]:
    kinds = (RAW, ONE, "raw psycopg, no lock")
    places = {k: fresh() for k in kinds}
    for kind, dsn in places.items():  # tables made before the clock starts
        peer = OneStorePg.create(dsn) if kind == ONE else RawPsycopg.create(dsn)
        peer.close()
    found: dict[str, dict[str, list[float]]] = {
        str(n): {k: [] for k in kinds} for n in WRITER_COUNTS
    }
    for rep in range(rounds):
        for n in WRITER_COUNTS:
            order = list(kinds[rep % 3 :] + kinds[: rep % 3])
            for kind in order:
                per_s = writers_round(kind, places[kind], n, seconds)
                found[str(n)][kind].append(per_s)
                log(f"  {n:>2} writers, {kind}: {per_s:,.0f} docs/s")
    out: dict[str, Any] = {}
    for n, per_kind in found.items():
        # Time per document is 1/throughput: one_store's over raw's, paired per round.
        r = paired_ratio(per_kind[RAW], per_kind[ONE], seed=f"writers-{n}")
        out[n] = {
            "docs_per_s": {k: sorted(v)[len(v) // 2] for k, v in per_kind.items()},
            "samples": per_kind,
            "ratio": None
            if r is None
            else {"median": r.median, "low": r.low, "high": r.high},
        }
    return out


# -- the run ----------------------------------------------------------------------


def server_version(fresh_dsn: str) -> str:
    import psycopg

    with psycopg.connect(fresh_dsn) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return "" if row is None else str(row[0])


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--dsn", default=os.environ.get("ONE_STORE_TEST_POSTGRES"))
    parser.add_argument("--rounds", type=int, default=3, help="writer rounds")
    parser.add_argument("--seconds", type=float, default=2.0, help="per writer round")
    parser.add_argument("--out", type=Path, help="write the run's JSON here")
    args = parser.parse_args(argv)
    sizes = PROFILES[args.profile]
    fresh = server_dsn(args.dsn)
    log(f"operations ({args.profile}: {sizes.main:,} docs, {sizes.reps} repetitions)")
    states = load(fresh, sizes)
    found = measure_ops(states, PG_OPS, sizes, sizes.main, log)
    notes = same_answers(states, sizes.main)
    for note in notes:
        log(note)
    for state in states.values():
        state.peer.close()
    log(f"concurrent writers ({args.rounds} rounds of {args.seconds:g}s)")
    writers = measure_writers(fresh, args.rounds, args.seconds)
    result = {
        "commit": commit(),
        "profile": args.profile,
        "documents": sizes.main,
        "repetitions": sizes.reps,
        "server": server_version(fresh()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "operations": ratios(found),
        "notes": notes,
        "writers": writers,
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
