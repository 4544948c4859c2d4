"""Tests for one_store.engine.sqlite.storage: the SQLite layout, index keys, transactions, migrations.

The file must stay an ordinary SQLite database: these tests read it with plain
``sqlite3`` and ``json`` as another tool would.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from one_store import (
    MutationCtx,
    SchemaMismatchError,
    Store,
    define_schema,
    define_table,
    query,
    v,
)
from one_store.engine.sqlite.storage import Storage
from one_store.model.ids import FIRST_USER_TABLE_NUMBER, encode_id, table_number_of
from one_store.model.keys import sort_key
from one_store.model.values import UNSET
from one_store.testing import FakeClock

SCHEMA = define_schema(
    {
        "agents": define_table(
            {"name": v.string(), "rank": v.optional(v.int64())}
        ).index("by_name_rank", ["name", "rank"]),
    }
)


def dump(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return list(conn.iterdump())


def test_file_is_plain_sqlite_in_wal_mode(tmp_path: Path):
    path = tmp_path / "s.db"
    with Store.open(path, schema=SCHEMA, seed=1) as store:
        agent_id = store.run(
            lambda ctx: ctx.db.insert("agents", {"name": "Ada", "rank": 2})
        ).unwrap()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (body,) = conn.execute(
        "SELECT _body FROM agents WHERE _id=?", (agent_id,)
    ).fetchone()
    doc = json.loads(body)
    assert doc["name"] == "Ada"
    assert doc["rank"] == 2
    assert doc["_id"] == agent_id
    version = conn.execute(
        "SELECT value FROM _one_store_meta WHERE key='layout_version'"
    ).fetchone()
    assert version == ("1",)
    conn.close()


def test_every_index_is_a_blob_column_with_a_real_sqlite_index(tmp_path: Path):
    path = tmp_path / "s.db"
    with Store.open(path, schema=SCHEMA) as store:
        store.run(lambda ctx: ctx.db.insert("agents", {"name": "Ada"}))
    conn = sqlite3.connect(path)
    columns = {row[1]: row[2] for row in conn.execute("PRAGMA table_info(agents)")}
    assert columns["_k_by_creation_time"] == "BLOB"
    assert columns["_k_by_name_rank"] == "BLOB"
    indexed = {
        row[0]
        for row in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name='agents'"
        )
        if row[0]
    }
    assert any('"_k_by_name_rank"' in sql for sql in indexed)
    plan = " ".join(
        str(r)
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT _body FROM agents "
            "WHERE _k_by_name_rank >= ? ORDER BY _k_by_name_rank LIMIT 1",
            (b"",),
        )
    )
    assert "USING INDEX" in plan
    conn.close()


@pytest.mark.sqlite_only("reads the SQLite engine's key columns")
def test_index_key_is_the_convex_sort_key_of_fields_creation_time_and_id(store):
    agent_id = store.run(
        lambda ctx: ctx.db.insert("agents", {"name": "Ada", "score": 1.5})
    ).unwrap()
    conn = store.storage.connection
    doc = store.run(lambda ctx: ctx.db.get(agent_id)).unwrap()
    key, by_time = conn.execute(
        "SELECT _k_by_name, _k_by_creation_time FROM agents WHERE _id=?", (agent_id,)
    ).fetchone()
    assert key == sort_key("Ada") + sort_key(doc["_creationTime"]) + sort_key(agent_id)
    assert by_time == sort_key(doc["_creationTime"]) + sort_key(agent_id)


@pytest.mark.sqlite_only("reads the SQLite engine's key columns")
def test_patch_moves_the_index_key_and_delete_removes_the_row(store):
    agent_id = store.run(lambda ctx: ctx.db.insert("agents", {"name": "a"})).unwrap()
    conn = store.storage.connection
    sql = "SELECT _k_by_name FROM agents WHERE _id=?"
    (before,) = conn.execute(sql, (agent_id,)).fetchone()
    store.run(lambda ctx: ctx.db.patch(agent_id, {"name": "b"})).unwrap()
    (after,) = conn.execute(sql, (agent_id,)).fetchone()
    assert before.startswith(sort_key("a"))
    assert after.startswith(sort_key("b"))
    store.run(lambda ctx: ctx.db.delete(agent_id)).unwrap()
    assert conn.execute(sql, (agent_id,)).fetchone() is None


def test_missing_indexed_field_keys_as_undefined(tmp_path: Path):
    with Store.open(tmp_path / "s.db", schema=SCHEMA) as store:
        agent_id = store.run(
            lambda ctx: ctx.db.insert("agents", {"name": "Ada"})
        ).unwrap()
        (key,) = store.storage.connection.execute(
            "SELECT _k_by_name_rank FROM agents WHERE _id=?", (agent_id,)
        ).fetchone()
    assert key.startswith(sort_key("Ada") + sort_key(UNSET))


def test_table_numbers_start_at_convexs_first_user_number(store):
    numbers = sorted(store.storage.table_number(t) for t in store.storage.tables())
    assert numbers[0] == FIRST_USER_TABLE_NUMBER
    agent_id = store.run(lambda ctx: ctx.db.insert("agents", {"name": "x"})).unwrap()
    assert table_number_of(agent_id) == store.storage.table_number("agents")
    assert store.storage.table_of(store.storage.table_number("agents")) == "agents"


def test_tables_scan_write_raw_clear(store):
    storage = store.storage
    assert storage.tables() == ["agents", "notes"]
    number = storage.table_number("notes")
    docs = [
        {"_id": encode_id(number), "_creationTime": 5.0, "x": 1},
        {"_id": encode_id(number), "_creationTime": 3.0, "x": b"\x00"},
    ]
    with storage.transaction():
        for doc in docs:
            storage.write_raw("notes", doc)
    assert list(storage.scan("notes")) == [docs[1], docs[0]]
    got = store.run(lambda ctx: ctx.db.get(docs[0]["_id"])).unwrap()
    assert got == docs[0]
    with storage.transaction():
        storage.clear("notes")
    assert list(storage.scan("notes")) == []
    assert list(storage.scan("no_such_table")) == []


def test_write_raw_creates_a_table_with_the_number_inside_the_id(store):
    doc = {"_id": encode_id(10500), "_creationTime": 1.0, "a": 1}
    with store.storage.transaction():
        store.storage.write_raw("imported", doc)
    assert store.storage.table_number("imported") == 10500
    assert list(store.storage.scan("imported")) == [doc]


@pytest.mark.sqlite_only("sqlite3's in_transaction")
def test_transaction_rolls_back_on_exception(store):
    storage = store.storage
    doc = {"_id": encode_id(storage.table_number("notes")), "_creationTime": 1.0}

    def failing() -> None:
        with storage.transaction():
            storage.write_raw("notes", doc)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert list(storage.scan("notes")) == []
    assert not storage.connection.in_transaction


def test_layout_survives_reopening_without_a_schema(tmp_path: Path):
    path = tmp_path / "s.db"
    with Store.open(path, schema=SCHEMA) as store:
        store.run(lambda ctx: ctx.db.insert("agents", {"name": "b"}))
    storage = Storage(path)
    try:
        assert storage.tables() == ["agents"]
        assert set(storage.layouts["agents"].indexes) == {
            "by_id",
            "by_creation_time",
            "by_name_rank",
        }
    finally:
        storage.close()


# ---------------------------------------------------------------- schema changes


def seed_file(path: Path) -> list[str]:
    clock = FakeClock(1000.0)

    def add(ctx: MutationCtx) -> list[str]:
        return [ctx.db.insert("agents", {"name": n}) for n in ("c", "a", "b")]

    with Store.open(path, schema=SCHEMA, clock=clock, seed=3) as store:
        ids: list[str] = store.run(add).unwrap()
    return ids


def test_reopening_with_new_tables_and_indexes_creates_and_backfills(tmp_path: Path):
    path = tmp_path / "s.db"
    seed_file(path)
    changed = define_schema(
        {
            "agents": define_table({"name": v.string(), "rank": v.optional(v.int64())})
            .index("by_name_rank", ["name", "rank"])
            .index("by_name", ["name"]),
            "teams": define_table({"title": v.string()}),
        }
    )
    with Store.open(path, schema=changed) as store:
        assert store.storage.tables() == ["agents", "teams"]
        names = store.run(
            lambda ctx: [
                d["name"]
                for d in ctx.db.query("agents").with_index("by_name").collect()
            ]
        ).unwrap()
        assert names == ["a", "b", "c"]
        store.run(lambda ctx: ctx.db.insert("teams", {"title": "x"})).unwrap()


def test_reopening_with_a_dropped_index_removes_it(tmp_path: Path):
    path = tmp_path / "s.db"
    seed_file(path)
    plain = define_schema(
        {"agents": define_table({"name": v.string(), "rank": v.optional(v.int64())})}
    )
    with Store.open(path, schema=plain) as store:
        assert "by_name_rank" not in store.storage.layouts["agents"].indexes
        assert store.storage.count("agents") == 3


def test_documents_violating_a_new_schema_block_open_and_change_nothing(
    tmp_path: Path,
):
    path = tmp_path / "s.db"
    ids = seed_file(path)
    before = dump(path)
    stricter = define_schema(
        {
            "agents": define_table(
                {"name": v.literal("a"), "rank": v.optional(v.int64())}
            ).index("by_rank", ["rank"]),
            "teams": define_table(),
        }
    )
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=stricter)
    error = info.value
    assert set(error.offending) == {ids[0], ids[2]}
    assert f'Document with ID "{ids[0]}" in table "agents"' in str(error)
    assert "does not match the schema" in str(error)
    assert dump(path) == before
    with Store.open(path, schema=SCHEMA) as store:
        assert store.storage.count("agents") == 3


# ---------------------------------------------------------------- other connections


def test_a_table_created_by_another_connection_is_seen_at_the_next_transaction(
    tmp_path: Path,
):
    path = tmp_path / "s.db"
    with Store.open(path) as a, Store.open(path) as b:
        assert b.run(lambda ctx: ctx.db.query("notes").collect()).unwrap() == []
        first = a.run(lambda ctx: ctx.db.insert("notes", {"x": 1})).unwrap()
        seen = b.run(lambda ctx: [d["_id"] for d in ctx.db.query("notes")]).unwrap()
        assert seen == [first]
        # b inserts into the table a created (not "table already exists").
        b.run(lambda ctx: ctx.db.insert("notes", {"x": 2})).unwrap()
        xs = a.run(lambda ctx: [d["x"] for d in ctx.db.query("notes")]).unwrap()
        assert xs == [1, 2]


def test_a_query_sees_a_table_another_connection_created_after_its_last_read(
    tmp_path: Path,
):
    # A read re-reads the schema only when another connection committed since
    # the last look (PRAGMA data_version): each commit of a, DDL or not, must
    # be seen by b's next query, however many reads b made in between.
    @query(args={"table": v.string()})
    def texts(ctx, args):
        return [d["x"] for d in ctx.db.query(args["table"]).collect()]

    path = tmp_path / "s.db"
    with Store.open(path) as a, Store.open(path) as b:
        for _ in range(3):
            assert b.query(texts, {"table": "notes"}).unwrap() == []
        a.run(lambda ctx: ctx.db.insert("notes", {"x": 1})).unwrap()
        assert b.query(texts, {"table": "notes"}).unwrap() == [1]
        a.run(lambda ctx: ctx.db.insert("notes", {"x": 2})).unwrap()
        assert b.query(texts, {"table": "notes"}).unwrap() == [1, 2]
        a.run(lambda ctx: ctx.db.insert("later", {"x": 3})).unwrap()
        assert b.query(texts, {"table": "later"}).unwrap() == [3]
        # b's own write after reading a's table: no "table already exists".
        b.run(lambda ctx: ctx.db.insert("later", {"x": 4})).unwrap()
        assert a.query(texts, {"table": "later"}).unwrap() == [3, 4]


def test_an_index_added_by_another_connection_is_maintained_by_this_one(
    tmp_path: Path,
):
    path = tmp_path / "s.db"
    seed_file(path)
    with_by_name = define_schema(
        {
            "agents": define_table({"name": v.string(), "rank": v.optional(v.int64())})
            .index("by_name_rank", ["name", "rank"])
            .index("by_name", ["name"]),
        }
    )
    # The older connection opens first and writes after the newer one added
    # by_name: its write must fill the new index column, or the index misses "z".
    with (
        Store.open(path, schema=SCHEMA) as old,
        Store.open(path, schema=with_by_name) as new,
    ):
        old.run(lambda ctx: ctx.db.insert("agents", {"name": "z"})).unwrap()
        names = new.run(
            lambda ctx: [
                d["name"]
                for d in ctx.db.query("agents")
                .with_index("by_name", lambda q: q.eq("name", "z"))
                .collect()
            ]
        ).unwrap()
        assert names == ["z"]
