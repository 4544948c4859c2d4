"""Concurrent writers on one file: processes and threads never lose an update.

- 4 processes x 2 threads (sharing their process's Store) each do 250
  read-modify-write increments of one counter: the result must be exactly 2,000.
- A mixed workload (inserts, patches, replaces, deletes, snapshot queries) from
  several processes keeps per-group totals equal to the items they summarise, in
  every snapshot a query sees and in the final file.
- ``Failure(Busy)`` appears only when another writer holds the lock past
  ``busy_timeout``, leaves no trace, and a retry succeeds; a reader is never
  blocked by a writer and never sees its uncommitted rows.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from returns.result import Failure, Success

from one_store import Busy, Store
from tests.reliability import workload
from tests.reliability.invariants import file_problems

CHILD = Path(__file__).with_name("children.py")
PROCESSES, THREADS, INCREMENTS = 4, 2, 250


def _run_children(commands: list[list[str]]) -> list[dict[str, Any]]:
    """Start every child at once, wait for all, return their JSON tallies."""
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHILD), *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for cmd in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert err == b"", err.decode()
        results.append(json.loads(out))
    return results


def test_processes_and_threads_never_lose_an_increment(
    engine: str, store_target: Any
) -> None:
    db = store_target("counter.db")
    # Create the file and its tables first so that the children race on data only.
    with Store.open(db, schema=workload.counter_schema):
        pass
    cmd = ["counter", str(db), "main", str(THREADS), str(INCREMENTS)]
    tallies = _run_children([cmd] * PROCESSES)
    assert sum(t["ok"] for t in tallies) == PROCESSES * THREADS * INCREMENTS
    assert sum(t["other"] for t in tallies) == 0
    with Store.open(db, schema=workload.counter_schema) as store:
        # Each Busy was retried; had a Busy attempt been applied, this would exceed 2,000.
        assert store.query(workload.counter_value, {"name": "main"}) == Success(2000)
    if engine == "sqlite":  # the file's own integrity check
        assert file_problems(Path(db)) == []


def test_mixed_workload_keeps_its_invariants(tmp_path: Path) -> None:
    db = tmp_path / "mixed.db"
    with Store.open(db, schema=workload.mixed_schema):
        pass
    tallies = _run_children([["mixed", str(db), str(seed), "300"] for seed in range(3)])
    assert [t["failures"] for t in tallies] == [[], [], []]
    assert sum(t["inconsistent"] for t in tallies) == 0, "a query saw a torn snapshot"
    assert sum(t.get("check", 0) for t in tallies) > 0
    with Store.open(db, schema=workload.mixed_schema) as store:
        items = list(store.storage.scan("items"))
        totals = {t["group"]: t for t in store.storage.scan("totals")}
        for group in workload.GROUPS:
            members = [i for i in items if i["group"] == group]
            total = totals.get(group, {"count": 0, "sum": 0})
            assert (total["count"], total["sum"]) == (
                len(members),
                sum(i["value"] for i in members),
            )
            assert store.query(workload.group_consistent, {"group": group}) == Success(
                True
            )
    assert file_problems(db) == []


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    """Another writer: take the write lock and leave an uncommitted counter change."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE counters SET _body = _body WHERE 1")
    return other


def test_busy_only_past_busy_timeout_and_leaves_no_trace(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    with Store.open(db, schema=workload.counter_schema, busy_timeout=0.2) as store:
        assert store.mutation(workload.increment, {"name": "main"}) == Success(1)
        before = list(store.storage.connection.iterdump())
        other = _hold_write_lock(db)
        try:
            result = store.mutation(workload.increment, {"name": "main"})
            assert isinstance(result, Failure)
            assert isinstance(result.failure(), Busy)
            # Readers are not blocked by the writer and see only committed data.
            assert store.query(workload.counter_value, {"name": "main"}) == Success(1)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert list(store.storage.connection.iterdump()) == before
        # The store is usable again at once, and the retry applies exactly once.
        assert store.mutation(workload.increment, {"name": "main"}) == Success(2)
        assert store.query(workload.counter_value, {"name": "main"}) == Success(2)


def test_reader_sees_a_snapshot_while_another_process_commits(tmp_path: Path) -> None:
    db = tmp_path / "snapshot.db"
    with Store.open(db, schema=workload.counter_schema) as store:
        assert store.mutation(workload.increment, {"name": "main"}) == Success(1)
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("DELETE FROM counters")
            # Uncommitted: invisible to the store.
            assert store.query(workload.counter_value, {"name": "main"}) == Success(1)
            other.execute("COMMIT")
        finally:
            other.close()
        # Committed by another connection: visible to the next query.
        assert store.query(workload.counter_value, {"name": "main"}) == Success(None)
