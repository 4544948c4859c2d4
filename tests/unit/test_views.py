"""Tests for one_store.engine.sqlite.views: ``<table>_view`` for any SQLite tool.

Read the way a user's tool reads the file: the ``sqlite3`` shell when it is
installed, else a plain ``sqlite3`` connection that knows nothing of one_store.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import sqlite3
import subprocess
import zipfile
from typing import Any

import pytest

from one_store import Store, define_schema, define_table, v
from one_store.snapshot import export_snapshot, import_snapshot

SHELL = shutil.which("sqlite3")


def rows(path, sql) -> list[dict[str, Any]]:
    """The rows of ``sql`` as a tool outside one_store sees them."""
    if SHELL is not None:
        ran = subprocess.run(
            [SHELL, "-json", "-readonly", str(path), sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(ran.stdout) if ran.stdout.strip() else []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in connection.execute(sql)]
    finally:
        connection.close()


MESSAGES = define_table(
    {
        "body": v.string(),
        "count": v.int64(),
        "score": v.number(),
        "done": v.boolean(),
        "blob": v.bytes(),
        "meta": v.object({"a": v.int64()}),
        "tags": v.array(v.string()),
        "note": v.optional(v.string()),
    }
)


@pytest.fixture
def path(tmp_path):
    file = tmp_path / "tools.db"
    with Store.open(file, schema=define_schema({"messages": MESSAGES})) as store:
        store.run(
            lambda ctx: [
                ctx.db.insert(
                    "messages",
                    {
                        "body": "hi",
                        "count": 2**53 + 1,
                        "score": math.inf,
                        "done": True,
                        "blob": bytes(range(256)),
                        "meta": {"a": 1},
                        "tags": ["x", "y"],
                    },
                ),
                ctx.db.insert(
                    "messages",
                    {
                        "body": "yo",
                        "count": -1,
                        "score": 0.5,
                        "done": False,
                        "blob": b"",
                        "meta": {"a": 2},
                        "tags": [],
                        "note": "n",
                    },
                ),
            ]
        ).unwrap()
    return file


def test_each_table_reads_as_rows_with_a_column_per_field(path):
    got = rows(
        path,
        "SELECT _id, _creationTime, body, count, score, done, typeof(done) AS dt, "
        "hex(blob) AS blob, typeof(blob) AS bt, meta, tags, note FROM messages_view",
    )
    assert [r["body"] for r in got] == ["hi", "yo"]  # _creationTime order
    first, second = got
    assert first["_id"].startswith(("j", "k"))
    assert first["_creationTime"] < second["_creationTime"]
    assert first["count"] == 2**53 + 1  # int64 as an integer, exact
    assert (first["done"], second["done"], first["dt"]) == (1, 0, "integer")
    assert first["blob"] == bytes(range(256)).hex().upper()
    assert (first["bt"], second["bt"], second["blob"]) == ("blob", "blob", "")
    assert json.loads(first["meta"]) == {"a": 1}
    assert json.loads(first["tags"]) == ["x", "y"]
    assert first["note"] is None  # a missing field is NULL
    assert second["note"] == "n"
    assert second["score"] == 0.5


def test_infinity_reads_as_sqlites_infinity(path):
    (row,) = rows(path, "SELECT score > 1e308 AS big FROM messages_view LIMIT 1")
    assert row["big"] == 1


def test_the_view_follows_a_schema_change(path):
    changed = define_table(
        {
            "body": v.string(),
            "count": v.int64(),
            "score": v.number(),
            "done": v.boolean(),
            "blob": v.bytes(),
            "meta": v.any(),
            "tags": v.array(v.string()),
            "note": v.optional(v.string()),
            "extra": v.optional(v.int64()),
        }
    )
    with Store.open(path, schema=define_schema({"messages": changed})):
        pass
    columns = rows(path, "SELECT name FROM pragma_table_info('messages_view')")
    assert [c["name"] for c in columns][-1] == "extra"
    (row, _) = rows(path, "SELECT extra, meta FROM messages_view")
    assert row["extra"] is None
    assert json.loads(row["meta"]) == {"a": 1}
    with Store.open(
        path,
        schema=define_schema(
            {
                "messages": define_table(v.any()),
                "other": define_table({"x": v.string()}),
            }
        ),
    ):
        pass
    (row, _) = rows(path, "SELECT * FROM messages_view")
    assert set(row) == {"_id", "_creationTime", "document"}
    assert json.loads(row["document"])["body"] == "hi"
    assert rows(path, "SELECT * FROM other_view") == []


def test_a_union_of_objects_has_every_members_fields(tmp_path):
    parts = define_table(
        v.union(
            v.object({"kind": v.literal("text"), "text": v.string()}),
            v.object({"kind": v.literal("tool"), "calls": v.int64()}),
        )
    )
    file = tmp_path / "u.db"
    with Store.open(file, schema=define_schema({"parts": parts})) as store:
        store.run(lambda ctx: ctx.db.insert("parts", {"kind": "tool", "calls": 3}))
    (row,) = rows(file, "SELECT * FROM parts_view")
    assert (row["kind"], row["text"], row["calls"]) == ("tool", None, 3)


def test_a_field_of_two_kinds_in_a_union_reads_as_stored(tmp_path):
    # Bytes in one member, a string in the other: neither decoding fits both.
    either = define_table(
        v.union(v.object({"data": v.bytes()}), v.object({"data": v.string()}))
    )
    file = tmp_path / "e.db"
    with Store.open(file, schema=define_schema({"e": either})) as store:
        store.run(lambda ctx: ctx.db.insert("e", {"data": "text"})).unwrap()
    assert rows(file, "SELECT data FROM e_view") == [{"data": "text"}]


def test_views_never_change_what_one_store_keeps(path):
    schema = define_schema({"messages": MESSAGES})
    with Store.open(path, schema=schema) as store:
        assert store.storage.tables() == ["messages"]
        before = [d["_id"] for d in store.table("messages")]
        zipped = io.BytesIO()
        export_snapshot(store, zipped)
    names = zipfile.ZipFile(io.BytesIO(zipped.getvalue())).namelist()
    assert not [n for n in names if "_view" in n]
    with Store.open(path, schema=schema) as store:
        import_snapshot(store, io.BytesIO(zipped.getvalue()), mode="replace").unwrap()
        assert [d["_id"] for d in store.table("messages")] == before
        with store.storage.write():
            store.storage.clear("messages")
        assert len(store.table("messages")) == 0
    assert rows(path, "SELECT * FROM messages_view") == []


def test_a_table_named_like_a_view_is_left_alone(tmp_path):
    file = tmp_path / "clash.db"
    schema = define_schema(
        {"a": define_table({"x": v.string()}), "a_view": define_table({"y": v.int64()})}
    )
    with Store.open(file, schema=schema) as store:
        store.run(lambda ctx: ctx.db.insert("a_view", {"y": 1})).unwrap()
        assert store.table("a_view").head()[0]["y"] == 1
    kinds = rows(file, "SELECT name, type FROM sqlite_master WHERE name LIKE 'a%'")
    assert {r["name"]: r["type"] for r in kinds}["a_view"] == "table"
    assert rows(file, "SELECT y FROM a_view_view") == [{"y": 1}]


def test_a_readonly_open_makes_no_view(tmp_path):
    file = tmp_path / "ro.db"
    with Store.open(file) as store:
        store.run(lambda ctx: ctx.db.insert("loose", {"a": 1})).unwrap()
    with Store.open(
        file,
        schema=define_schema({"loose": define_table({"a": v.int64()})}),
        readonly=True,
    ):
        pass
    assert rows(file, "SELECT name FROM sqlite_master WHERE type='view'") == []


@pytest.mark.sqlite_only(
    "a SQLite memory store has no views; PostgreSQL always makes them"
)
def test_a_memory_store_makes_no_view():
    # No other tool can open a memory database: its schema sync skips the views.
    with Store.memory(define_schema({"messages": MESSAGES})) as store:
        found = store.storage.connection.execute(
            "SELECT name FROM sqlite_master WHERE type='view'"
        ).fetchall()
    assert found == []


def test_a_file_from_before_the_views_gets_them_at_its_next_open(path):
    # What a file last opened by a one_store without views looks like.
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("DROP VIEW messages_view")
    old.execute("DELETE FROM _one_store_meta WHERE key = 'views'")
    old.close()
    with Store.open(path, schema=define_schema({"messages": MESSAGES})):
        pass
    assert [r["body"] for r in rows(path, "SELECT body FROM messages_view")] == [
        "hi",
        "yo",
    ]
