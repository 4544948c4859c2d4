"""Watches under concurrency: threads, other connections, other processes.

Many threads writing through one store, several stores on one file, and a
child process: every watch ends at the exact final state, and a write from
elsewhere that does not touch a watch's read set re-runs nothing there either
(the change log carries each write's index keys, not just "something changed").
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from returns.result import Success

from one_store import Store, define_schema, define_table, mutation, query, v
from one_store.engine.sqlite import changes
from one_store.testing import wait_for
from tests.unit.test_watch import RUNS, SCHEMA, in_thread, others

COUNTER = define_schema({"counters": define_table({"n": v.int64()})})
THREADS, WRITES = 4, 500


@query(args={})
def count(ctx, args):
    doc = ctx.db.query("counters").first()
    return 0 if doc is None else doc["n"]


@mutation(args={})
def bump(ctx, args):
    doc = ctx.db.query("counters").first()
    if doc is None:
        ctx.db.insert("counters", {"n": 1})
    else:
        ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})


def hammer(store_for: Any) -> None:
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            store = store_for(i)
            for _ in range(WRITES):
                store.mutation(bump, {}).unwrap()
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert errors == []


def test_four_threads_writing_through_one_store_end_at_the_exact_count(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "c.db", schema=COUNTER) as store:
        seen: list[int] = []
        w = store.watch(count, {}, on_change=lambda r: seen.append(r.unwrap()))
        watchers = [store.watch(count, {}) for _ in range(3)]
        hammer(lambda i: store)
        total = THREADS * WRITES
        # Same-store writes: delivered before each mutation returned, no waiting.
        assert w.result == Success(total)
        assert all(x.result == Success(total) for x in watchers)
        # In order, never twice: a re-run that saw several commits skips values,
        # as a Convex subscription does, but never goes back.
        assert seen == sorted(set(seen))
        assert seen[-1] == total


def test_four_stores_on_one_file_are_followed_to_the_exact_count(
    store_target: Any,
) -> None:
    path = store_target("c.db")
    with Store.open(path, schema=COUNTER) as watcher:
        w = watcher.watch(count, {})
        writers = [Store.open(path, schema=COUNTER) for _ in range(THREADS)]
        try:
            hammer(lambda i: writers[i])
        finally:
            for s in writers:
                s.close()
        total = THREADS * WRITES
        assert wait_for(w, lambda r: r == Success(total), timeout=30) == Success(total)


CHILD = """
import sys
from one_store import Store
path, thread, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Store.open(path) as s:
    for i in range(n):
        s.run(lambda ctx: ctx.db.insert("msgs", {"thread": thread, "body": str(i)}))
    s.run(lambda ctx: ctx.db.insert("other", {"x": n}))
"""


def child(path: Path | str, thread: str, n: int) -> None:
    subprocess.run(
        [sys.executable, "-c", CHILD, str(path), thread, str(n)],
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_a_write_from_another_process_re_runs_only_the_watches_it_touches(
    store_target: Any,
) -> None:
    # On PostgreSQL the child's commits reach this process by LISTEN/NOTIFY.
    path = store_target("p.db")
    with Store.open(path, schema=SCHEMA) as store:
        w = store.watch(in_thread, {"thread": "a"})
        runs = RUNS["in_thread"]  # counted since the first run (other tests count too)
        marker = store.watch(others, {})
        child(path, "b", 20)
        # The marker's write came last: once it is seen, all 20 before it were.
        wait_for(marker, lambda r: r == Success([20]), timeout=30)
        assert RUNS["in_thread"] == runs
        assert w.result == Success([])
        child(path, "a", 3)
        assert wait_for(w, lambda r: r == Success(["0", "1", "2"]), timeout=30)


def test_a_follower_that_fell_behind_the_pruned_log_re_runs_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "KEEP", 20)
    monkeypatch.setattr(changes, "PRUNE_EVERY", 5)
    path = tmp_path / "g.db"
    with Store.open(path, schema=SCHEMA) as store, Store.open(path) as writer:
        w = store.watch(in_thread, {"thread": "a"})

        def many(ctx: Any) -> None:
            for i in range(60):
                thread = "a" if i == 0 else "b"  # the one write it cares about: pruned
                ctx.db.insert("msgs", {"thread": thread, "body": "x"})

        writer.run(many).unwrap()
        assert wait_for(w, lambda r: r == Success(["x"]), timeout=30)


def test_a_read_only_store_s_watch_follows_another_connection_s_writes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.db"
    with Store.open(path, schema=SCHEMA) as writer:
        put_other = writer.run
        with Store.open(path, readonly=True) as reader:
            w = reader.watch(others, {})
            assert w.result == Success([])
            put_other(lambda ctx: ctx.db.insert("other", {"x": 7})).unwrap()
            assert wait_for(w, lambda r: r == Success([7]), timeout=30)
