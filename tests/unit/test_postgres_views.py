"""Tests for one_store.engine.postgres.views: ``<table>_view``, read with ``psql``.

Read the way a user's tool reads the database: the ``psql`` client that comes
with PostgreSQL, knowing nothing of one_store, with the store's schema on its
``search_path``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from typing import Any

import pytest

from one_store import Store, define_schema, define_table, v

PSQL = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"

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
        "kind": v.union(v.literal("a"), v.literal("b")),
    }
)


def psql(postgres_dsn: str, schema: str, sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` as ``psql`` prints them (as JSON, one row a line)."""
    ran = subprocess.run(
        [
            PSQL,
            postgres_dsn,
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            f"SELECT row_to_json(r) FROM ({sql}) r",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PGOPTIONS": f"-csearch_path={schema}"},
    )
    return [json.loads(line) for line in ran.stdout.splitlines() if line]


def store_dsn(postgres_dsn: str, pg_schema: str) -> str:
    joiner = "&" if "?" in postgres_dsn else "?"
    return f"{postgres_dsn}{joiner}options=-csearch_path%3D{pg_schema}"


@pytest.fixture
def dsn(postgres_dsn: str, pg_schema: str) -> str:
    dsn = store_dsn(postgres_dsn, pg_schema)
    with Store.open(dsn, schema=define_schema({"messages": MESSAGES})) as store:
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
                        "kind": "a",
                    },
                ),
                ctx.db.insert(
                    "messages",
                    {
                        "body": "yo",
                        "count": -1,
                        "score": math.nan,
                        "done": False,
                        "blob": b"",
                        "meta": {"a": 2},
                        "tags": [],
                        "note": "n",
                        "kind": "b",
                    },
                ),
            ]
        ).unwrap()
    return dsn


def test_each_table_reads_as_rows_with_typed_columns(
    dsn: str, postgres_dsn: str, pg_schema: str
) -> None:
    got = psql(
        postgres_dsn,
        pg_schema,
        'SELECT _id, "_creationTime", body, count, score::text AS score, done, '
        "encode(blob, 'hex') AS blob, meta, tags, note, kind, "
        "pg_typeof(count)::text AS ct, pg_typeof(done)::text AS dt, "
        "pg_typeof(blob)::text AS bt, pg_typeof(meta)::text AS mt, "
        "pg_typeof(kind)::text AS kt FROM messages_view",
    )
    assert [r["body"] for r in got] == ["hi", "yo"]  # _creationTime order
    first, second = got
    assert first["_id"].startswith(("j", "k"))
    assert first["_creationTime"] < second["_creationTime"]
    assert first["count"] == 2**53 + 1  # int64 as bigint, exact
    assert (first["ct"], first["dt"], first["bt"], first["mt"], first["kt"]) == (
        "bigint",
        "boolean",
        "bytea",
        "jsonb",
        "text",
    )
    assert (first["done"], second["done"]) == (True, False)
    assert first["blob"] == bytes(range(256)).hex()
    assert second["blob"] == ""
    assert (first["score"], second["score"]) == ("Infinity", "NaN")
    assert first["meta"] == {"a": 1}
    assert first["tags"] == ["x", "y"]
    assert first["note"] is None  # a missing field is NULL
    assert (second["note"], second["kind"]) == ("n", "b")


def test_the_view_follows_a_schema_change(
    dsn: str, postgres_dsn: str, pg_schema: str
) -> None:
    changed = define_table(
        {
            **{name: field for name, field in MESSAGES.document.fields},
            "count": v.any(),
            "extra": v.optional(v.int64()),
        }
    )
    with Store.open(dsn, schema=define_schema({"messages": changed})):
        pass
    (row, _) = psql(postgres_dsn, pg_schema, "SELECT extra, count FROM messages_view")
    assert row == {"extra": None, "count": 2**53 + 1}
    anything = define_schema(
        {"messages": define_table(v.any()), "other": define_table({"x": v.string()})}
    )
    with Store.open(dsn, schema=anything):
        pass
    (row, _) = psql(postgres_dsn, pg_schema, "SELECT * FROM messages_view")
    assert set(row) == {"_id", "_creationTime", "document"}
    assert row["document"]["body"] == "hi"
    assert psql(postgres_dsn, pg_schema, "SELECT * FROM other_view") == []


def test_a_union_of_objects_has_every_members_fields(
    dsn: str, postgres_dsn: str, pg_schema: str
) -> None:
    parts = define_table(
        v.union(
            v.object({"kind": v.literal("text"), "text": v.string()}),
            v.object({"kind": v.literal("tool"), "calls": v.int64()}),
        )
    )
    with Store.open(dsn, schema=define_schema({"parts": parts})) as store:
        store.run(
            lambda ctx: ctx.db.insert("parts", {"kind": "tool", "calls": 3})
        ).unwrap()
    (row,) = psql(postgres_dsn, pg_schema, "SELECT * FROM parts_view")
    assert (row["kind"], row["text"], row["calls"]) == ("tool", None, 3)


def test_a_users_own_view_and_table_are_left_alone(
    dsn: str, postgres_dsn: str, pg_schema: str
) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE notes_view (x int)")
        c.execute("CREATE VIEW mine AS SELECT body FROM messages_view")
    schema = define_schema(
        {"messages": MESSAGES, "notes": define_table({"t": v.string()})}
    )
    with Store.open(dsn, schema=schema):
        pass  # a compatible change keeps the user's view working
    assert len(psql(postgres_dsn, pg_schema, "SELECT * FROM mine")) == 2
    assert psql(postgres_dsn, pg_schema, "SELECT * FROM notes_view") == []


def test_a_long_query_on_a_view_never_holds_up_an_open(dsn: str) -> None:
    import psycopg

    schema = define_schema({"messages": MESSAGES})
    with psycopg.connect(dsn) as reader:  # a transaction reading the view, left open
        assert len(reader.execute("SELECT * FROM messages_view").fetchall()) == 2
        with Store.open(dsn, schema=schema, busy_timeout=1.0) as store:
            assert store.table("messages").head(1)[0]["body"] == "hi"
        changed = define_schema(
            {"messages": MESSAGES, "notes": define_table({"t": v.string()})}
        )
        with Store.open(dsn, schema=changed, busy_timeout=1.0):
            pass  # a new table's view is made; the one being read is left alone


def test_a_users_view_on_a_changed_column_keeps_the_old_view(
    dsn: str, postgres_dsn: str, pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE VIEW mine AS SELECT count FROM messages_view")
    # count: bigint -> jsonb cannot be replaced in place, and "mine" needs it.
    changed = define_table(
        {
            **dict(MESSAGES.document.fields),
            "count": v.any(),
            "extra": v.optional(v.string()),
        }
    )
    with Store.open(dsn, schema=define_schema({"messages": changed})) as store:
        assert len(store.table("messages")) == 2  # the store opened all the same
    assert "messages_view is left as it was" in caplog.text
    (row, _) = psql(postgres_dsn, pg_schema, "SELECT * FROM mine")
    assert row == {"count": 2**53 + 1}
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP VIEW mine")
    again = define_table(
        {**dict(changed.document.fields), "more": v.optional(v.int64())}
    )
    with Store.open(dsn, schema=define_schema({"messages": again})):
        pass  # the next schema sync makes it, now that nothing depends on it
    (row, _) = psql(postgres_dsn, pg_schema, "SELECT extra, more FROM messages_view")
    assert row == {"extra": None, "more": None}
