"""The PostgreSQL engine's write scheme against SERIALIZABLE with retries, paired.

Usage::

    python benchmarks/pg_write_scheme.py postgresql://postgres@127.0.0.1:5433/postgres [rounds] [seconds]

Both schemes run the SQL of one mutation that reads a counter document, writes
it back incremented and inserts a document (a one_store ``patch`` plus
``insert``), with raw psycopg, in 1 and 4 writer processes:

- ``lock``: the engine's scheme (engine/postgres/transactions.py): ``BEGIN``
  (READ COMMITTED), ``SET LOCAL lock_timeout`` and ``pg_advisory_xact_lock``
  in one round trip, then the statements, then ``COMMIT``;
- ``serializable``: ``BEGIN ISOLATION LEVEL SERIALIZABLE``, the statements,
  ``COMMIT``, retried with jittered exponential backoff on a serialization
  failure or deadlock (SQLSTATE 40001 / 40P01), at most 10 attempts.

``contended``: every writer increments the same counter; ``disjoint``: each its
own; ``disjoint+meta``: each its own, plus what every inserting one_store write
also does, raising the newest ``_creationTime`` kept in one shared
``_one_store_meta`` row (and a change-log entry would do the same), which
makes any two writes conflict under SERIALIZABLE. Each round runs both schemes back to back (alternating which goes first)
for ``seconds`` each; figures are per round, and the ratio
serializable / lock is paired within a round. Reported: commits per second,
retries per commit, and the writers' own CPU time per commit
(``time.process_time``, which a busy shared machine disturbs far less than
wall time). The final counters are checked against the commits (no lost
update in either scheme). Writes ``benchmarks/runs/pg-write-scheme.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SCHEMA = "bench_write_scheme"
LOCK_KEY = 424242
BODY = json.dumps({"text": "x" * 300, "n": 0})


def _connect(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn, autocommit=True, options=f"-c search_path={SCHEMA}")


def setup(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        c.execute(f"CREATE SCHEMA {SCHEMA}")
    with _connect(dsn) as c:
        c.execute(
            'CREATE TABLE counters (_id text COLLATE "C" PRIMARY KEY, n bigint NOT NULL, '
            "_body text NOT NULL)"
        )
        c.execute(
            'CREATE TABLE marks (_id text COLLATE "C" PRIMARY KEY, worker int NOT NULL, '
            "_body text NOT NULL, _k bytea NOT NULL)"
        )
        c.execute(
            'CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL)'
        )
        c.execute("CREATE INDEX marks_k ON marks (_k)")


def reset(dsn: str, names: list[str]) -> None:
    with _connect(dsn) as c:
        c.execute("TRUNCATE counters, marks, meta")
        for name in names:
            c.execute("INSERT INTO counters VALUES (%s, 0, %s)", (name, BODY))


def _write(c: Any, scheme: str, counter: str, worker: int, i: int, meta: bool) -> None:
    if scheme == "lock":
        c.execute(
            f"BEGIN; SET LOCAL lock_timeout = 5000; SELECT pg_advisory_xact_lock({LOCK_KEY})"
        )
    else:
        c.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
    row = c.execute(
        "SELECT n, _body FROM counters WHERE _id = %s", (counter,)
    ).fetchone()
    c.execute(
        "UPDATE counters SET n = %s, _body = %s WHERE _id = %s",
        (row[0] + 1, row[1], counter),
    )
    key = f"{worker}:{i}"
    c.execute(
        "INSERT INTO marks VALUES (%s, %s, %s, %s)",
        (key, worker, BODY, key.encode()),
    )
    if meta:  # engine/postgres/transactions.py's commit_sql
        c.execute(
            "INSERT INTO meta(key, value) VALUES ('creation_time', %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
            "WHERE meta.value::float8 < excluded.value::float8",
            (repr(time.time() * 1000.0),),
        )
    c.execute("COMMIT")


def worker(
    dsn: str,
    scheme: str,
    counter: str,
    index: int,
    seconds: float,
    meta: bool,
    out: Any,
) -> None:
    import psycopg

    rng = random.Random(index)
    commits = retries = busy = 0
    with _connect(dsn) as c:
        start_cpu = time.process_time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for attempt in range(10):
                try:
                    _write(c, scheme, counter, index, commits, meta)
                    commits += 1
                    break
                except (
                    psycopg.errors.SerializationFailure,
                    psycopg.errors.DeadlockDetected,
                ):
                    c.execute("ROLLBACK")
                    retries += 1
                    time.sleep(rng.uniform(0, 0.001 * 2**attempt))
            else:
                busy += 1
        cpu = time.process_time() - start_cpu
    out.put({"commits": commits, "retries": retries, "busy": busy, "cpu": cpu})


def run(
    dsn: str, scheme: str, writers: int, workload: str, seconds: float
) -> dict[str, Any]:
    contended, meta = workload == "contended", workload == "disjoint+meta"
    names = ["c"] if contended else [f"c{w}" for w in range(writers)]
    reset(dsn, names)
    queue: Any = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(
            target=worker,
            args=(
                dsn,
                scheme,
                names[0] if contended else names[w],
                w,
                seconds,
                meta,
                queue,
            ),
        )
        for w in range(writers)
    ]
    for p in processes:
        p.start()
    results = [queue.get(timeout=seconds + 60) for _ in processes]
    for p in processes:
        p.join()
    commits = sum(r["commits"] for r in results)
    with _connect(dsn) as c:
        total = c.execute("SELECT sum(n) FROM counters").fetchone()[0]
    assert total == commits, f"{scheme}: counters {total} != commits {commits}"
    return {
        "commits_per_s": commits / seconds,
        "retries_per_commit": sum(r["retries"] for r in results) / max(commits, 1),
        "busy": sum(r["busy"] for r in results),
        "cpu_us_per_commit": 1e6 * sum(r["cpu"] for r in results) / max(commits, 1),
    }


def main() -> None:
    dsn = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
    setup(dsn)
    report: dict[str, Any] = {"rounds": rounds, "seconds": seconds, "configs": {}}
    for writers in (1, 4):
        for workload in ("contended", "disjoint", "disjoint+meta"):
            name = f"{writers} writer{'s' if writers > 1 else ''}, {workload}"
            per_round = []
            for r in range(rounds):
                order = (
                    ["lock", "serializable"] if r % 2 == 0 else ["serializable", "lock"]
                )
                got = {s: run(dsn, s, writers, workload, seconds) for s in order}
                per_round.append(got)
            ratio = [
                x["serializable"]["commits_per_s"] / x["lock"]["commits_per_s"]
                for x in per_round
            ]
            cpu = [
                x["serializable"]["cpu_us_per_commit"] / x["lock"]["cpu_us_per_commit"]
                for x in per_round
            ]
            summary = {
                "lock_commits_per_s": statistics.median(
                    x["lock"]["commits_per_s"] for x in per_round
                ),
                "serializable_commits_per_s": statistics.median(
                    x["serializable"]["commits_per_s"] for x in per_round
                ),
                "throughput_ratio_serializable_over_lock": [
                    statistics.median(ratio),
                    min(ratio),
                    max(ratio),
                ],
                "cpu_per_commit_ratio_serializable_over_lock": [
                    statistics.median(cpu),
                    min(cpu),
                    max(cpu),
                ],
                "lock_cpu_us_per_commit": statistics.median(
                    x["lock"]["cpu_us_per_commit"] for x in per_round
                ),
                "serializable_cpu_us_per_commit": statistics.median(
                    x["serializable"]["cpu_us_per_commit"] for x in per_round
                ),
                "serializable_retries_per_commit": statistics.median(
                    x["serializable"]["retries_per_commit"] for x in per_round
                ),
                "serializable_gave_up": sum(
                    x["serializable"]["busy"] for x in per_round
                ),
            }
            report["configs"][name] = {"summary": summary, "rounds": per_round}
            print(name, json.dumps(summary), flush=True)
    out = Path(__file__).resolve().parent / "runs" / "pg-write-scheme.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
