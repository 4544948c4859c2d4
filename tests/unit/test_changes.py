"""Tests for one_store.engine.sqlite.changes: the change log behind cross-process watches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from returns.result import Failure

from one_store import Store, define_schema, define_table, mutation, v
from one_store.engine.sqlite import changes
from one_store.model.keys import sort_key

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
        return [(c.table, c.doc_id) for c in store.storage.changes_since(after)]


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
        upto = entries[-1].seq
        with store.storage.write():
            changes.prune(store.storage.connection, upto)
        assert log(store) == []
        d = store.mutation(add, {"text": "d"}).unwrap()
        with store.storage.read():
            [entry] = store.storage.changes_since(0)
        assert (entry.seq > upto, entry.table, entry.doc_id) == (True, "notes", d)
        assert store.storage.enable_change_log() == entry.seq


def test_the_log_prunes_itself_to_a_bounded_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(changes, "KEEP", 200)
    monkeypatch.setattr(changes, "PRUNE_EVERY", 50)
    # The PostgreSQL engine's log imports the same bounds by value: patch its copy
    # too (it holds the patched values only when first imported after the lines above).
    from one_store.engine.postgres import changes as pg_changes

    monkeypatch.setattr(pg_changes, "KEEP", 200, raising=False)
    monkeypatch.setattr(pg_changes, "PRUNE_EVERY", 50, raising=False)
    with Store.memory(SCHEMA) as store:
        store.storage.enable_change_log()
        total = changes.KEEP + 2 * changes.PRUNE_EVERY + 7

        def many(ctx):
            for i in range(total):
                ctx.db.insert("notes", {"text": str(i)})

        store.run(many).unwrap()
        with store.storage.read():
            kept = store.storage.changes_since(0)
        assert changes.KEEP <= len(kept) <= changes.KEEP + changes.PRUNE_EVERY
        assert kept[-1].seq == total
        assert [c.seq for c in kept] == list(range(kept[0].seq, total + 1))


KEYED = define_schema(
    {
        "msgs": define_table({"thread": v.string(), "body": v.string()})
        .index("by_thread", ["thread"])
        .search_index("search_body", search_field="body", filter_fields=["thread"])
    }
)


def test_an_entry_carries_the_old_and_new_keys_of_every_index_and_search_entry() -> (
    None
):
    with Store.memory(KEYED) as store:
        store.storage.enable_change_log()
        doc = store.run(
            lambda ctx: ctx.db.insert("msgs", {"thread": "a", "body": "Hello world"})
        ).unwrap()
        store.run(lambda ctx: ctx.db.patch(doc, {"thread": "b"})).unwrap()
        store.run(lambda ctx: ctx.db.delete(doc)).unwrap()
        with store.storage.read():
            inserted, patched, deleted = store.storage.changes_since(0)
        assert inserted.keys
        assert patched.keys
        assert deleted.keys
        keys = {name: (old, new) for name, old, new in inserted.keys}
        assert set(keys) == {"by_id", "by_thread", "by_creation_time"}
        assert all(old is None and new is not None for old, new in keys.values())
        moved = {name: (old, new) for name, old, new in patched.keys}
        old, new = moved["by_thread"]
        assert old is not None
        assert new is not None
        assert old.startswith(sort_key("a"))
        assert new.startswith(sort_key("b"))
        assert moved["by_id"][0] == moved["by_id"][1] == sort_key(doc)
        assert all(new is None for _, _, new in deleted.keys)
        [(name, before, after)] = patched.search
        assert name == "search_body"
        assert before == ("hello world", (sort_key("a"),))
        assert after == ("hello world", (sort_key("b"),))
        assert deleted.search == (("search_body", after, None),)


def test_an_entry_that_cannot_be_read_touches_the_whole_table() -> None:
    assert changes.decode(1, "t", "id", b"\x00\x00").keys is None
    assert changes.decode(1, "t", "id", b"\x00\x00\x00\x09abc").keys is None
