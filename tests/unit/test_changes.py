"""Tests for one_store.engine.sqlite.changes: the change log behind cross-process watches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from returns.result import Failure

from one_store import Store, define_schema, define_table, mutation, v

SCHEMA = define_schema({"notes": define_table({"text": v.string()})})


@mutation(args={"text": v.string()})
def add(ctx, args):
    return ctx.db.insert("notes", {"text": args["text"]})


@mutation(args={"text": v.string()})
def add_then_fail(ctx, args):
    ctx.db.insert("notes", {"text": args["text"]})
    raise ValueError("rolled back")


def log(store: Store, after: int = 0) -> list[tuple[str, str]]:
    with store.storage.read():
        return [(t, d) for _, t, d in store.storage.changes_since(after)]


def test_nothing_is_logged_until_the_log_is_enabled(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as store:
        store.mutation(add, {"text": "before"}).unwrap()
        assert log(store) == []
        assert store.storage.enable_change_log() == 0
        assert log(store) == []  # what came before is not logged


def test_every_committed_write_is_logged_in_order_and_a_rollback_logs_nothing(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as store:
        store.storage.enable_change_log()
        a = store.mutation(add, {"text": "a"}).unwrap()
        assert isinstance(store.mutation(add_then_fail, {"text": "b"}), Failure)

        def edit(ctx):
            ctx.db.patch(a, {"text": "a2"})
            ctx.db.replace(a, {"text": "a3"})
            return ctx.db.insert("notes", {"text": "c"})

        c = store.run(edit).unwrap()
        store.run(lambda ctx: ctx.db.delete(a)).unwrap()
        assert log(store) == [
            ("notes", a),
            ("notes", a),
            ("notes", a),
            ("notes", c),
            ("notes", a),
        ]


def test_another_connection_starts_logging_without_reopening(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store.open(path, schema=SCHEMA) as writer, Store.open(path) as watcher:
        writer.mutation(add, {"text": "unlogged"}).unwrap()
        start = watcher.storage.enable_change_log()
        doc = writer.mutation(add, {"text": "logged"}).unwrap()
        assert log(watcher, start) == [("notes", doc)]


def test_a_write_from_another_process_is_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store.open(path, schema=SCHEMA) as watcher:
        start = watcher.storage.enable_change_log()
        code = (
            "import sys\n"
            "from one_store import Store\n"
            "with Store.open(sys.argv[1]) as s:\n"
            "    print(s.run(lambda ctx: ctx.db.insert('notes', {'text': 'x'})).unwrap())\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert log(watcher, start) == [("notes", done.stdout.strip())]


def test_pruned_entries_are_gone_and_positions_are_never_reused(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as store:
        store.storage.enable_change_log()
        for text in "abc":
            store.mutation(add, {"text": text}).unwrap()
        with store.storage.read():
            entries = store.storage.changes_since(0)
        upto = entries[-1][0]
        with store.storage.write():
            store.storage.prune_changes(upto)
        assert log(store) == []
        d = store.mutation(add, {"text": "d"}).unwrap()
        with store.storage.read():
            [(seq, table, doc_id)] = store.storage.changes_since(0)
        assert (seq > upto, table, doc_id) == (True, "notes", d)
        assert store.storage.enable_change_log() == seq
