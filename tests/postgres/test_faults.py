"""Faults of a real PostgreSQL server: down at open, a lost connection, a restart.

Each test runs against a server of this module's own (``own_server``), which it
stops, starts and whose backends it terminates, as an operator or a crash would.
The contract (issue 21, docs/postgresql.md): a wrong DSN and a server that is
down are a clear :class:`StoreOpenError`; a connection lost in the middle of a
mutation leaves nothing half-written (PostgreSQL aborts the transaction) and the
call is ``Failure(StorageError)``; once the server is back, the next call works.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import (
    SchemaMismatchError,
    StorageError,
    Store,
    StoreOpenError,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.testing.postgres import PostgresCluster, free_port

SCHEMA = define_schema({"notes": define_table({"text": v.string()})})


@mutation(args={"text": v.string()})
def add(ctx: Any, args: dict[str, Any]) -> Any:
    return ctx.db.insert("notes", {"text": args["text"]})


@query(args={})
def texts(ctx: Any, args: dict[str, Any]) -> list[str]:
    return sorted(d["text"] for d in ctx.db.query("notes").collect())


@pytest.fixture
def dsn(own_server: PostgresCluster) -> Iterator[str]:
    if not own_server.running:
        own_server.start()
    with own_server.fresh() as fresh:
        yield fresh


def test_a_dsn_with_nothing_listening_is_a_store_open_error_without_the_password():
    dsn = f"postgresql://someone:s3cret@127.0.0.1:{free_port()}/nowhere"
    with pytest.raises(StoreOpenError) as raised:
        Store.open(dsn, schema=SCHEMA, busy_timeout=2)
    assert isinstance(raised.value.problem, StorageError)
    assert "s3cret" not in str(raised.value)
    assert "127.0.0.1" in str(raised.value)


def test_a_database_that_does_not_exist_is_a_store_open_error(
    own_server: PostgresCluster,
):
    wrong = own_server.dsn.replace("/postgres?", "/no_such_database?")
    with pytest.raises(StoreOpenError, match="no_such_database"):
        Store.open(wrong, schema=SCHEMA, busy_timeout=2)


def test_a_server_that_is_down_at_open_is_a_store_open_error_then_opens(
    own_server: PostgresCluster, dsn: str
):
    own_server.stop()
    try:
        with pytest.raises(StoreOpenError):
            Store.open(dsn, schema=SCHEMA, busy_timeout=2)
    finally:
        own_server.start()
    with Store.open(dsn, schema=SCHEMA) as store:
        assert store.mutation(add, {"text": "up"}).map(lambda _: None) == Success(None)


def backends_holding_the_write_lock(cluster: PostgresCluster) -> list[int]:
    with cluster.connect() as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_a_connection_lost_mid_mutation_writes_nothing_and_is_a_storage_error(
    own_server: PostgresCluster, dsn: str
):
    inside, go_on = threading.Event(), threading.Event()

    @mutation(args={})
    def two_inserts(ctx: Any, args: dict[str, Any]) -> None:
        ctx.db.insert("notes", {"text": "first half"})
        inside.set()
        assert go_on.wait(30)
        ctx.db.insert("notes", {"text": "second half"})

    with Store.open(dsn, schema=SCHEMA) as store:
        store.mutation(add, {"text": "before"}).unwrap()
        outcome: list[Any] = []
        writer = threading.Thread(
            target=lambda: outcome.append(store.mutation(two_inserts, {}))
        )
        writer.start()
        assert inside.wait(30)
        # The mutation's backend holds the store's advisory write lock: end it
        # from a second connection, as a crash or an administrator would.
        victims = backends_holding_the_write_lock(own_server)
        assert len(victims) == 1
        with own_server.connect() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", victims)
        go_on.set()
        writer.join(30)
        assert len(outcome) == 1, outcome
        assert isinstance(outcome[0], Failure), outcome
        assert isinstance(outcome[0].failure(), StorageError), outcome
        # Nothing half-written, and the store works again at the next call.
        assert store.query(texts, {}) == Success(["before"])
        store.mutation(add, {"text": "after"}).unwrap()
        assert store.query(texts, {}) == Success(["after", "before"])


def test_a_server_restarted_under_an_open_store_is_used_again_at_the_next_call(
    own_server: PostgresCluster, dsn: str
):
    with Store.open(dsn, schema=SCHEMA) as store:
        store.mutation(add, {"text": "kept"}).unwrap()
        watched = store.watch(texts, {})
        own_server.restart()
        assert store.query(texts, {}) == Success(["kept"])
        store.mutation(add, {"text": "new"}).unwrap()
        assert store.query(texts, {}) == Success(["kept", "new"])
        watched.close()


def test_calls_while_the_server_is_down_are_failures_and_it_recovers(
    own_server: PostgresCluster, dsn: str
):
    with Store.open(dsn, schema=SCHEMA, busy_timeout=2) as store:
        store.mutation(add, {"text": "kept"}).unwrap()
        own_server.stop()
        try:
            down_write = store.mutation(add, {"text": "lost"})
            down_read = store.query(texts, {})
        finally:
            own_server.start()
        assert isinstance(down_write, Failure)
        assert isinstance(down_write.failure(), StorageError)
        assert isinstance(down_read, Failure)
        assert isinstance(down_read.failure(), StorageError)
        assert store.query(texts, {}) == Success(["kept"])
        store.mutation(add, {"text": "back"}).unwrap()
        assert store.query(texts, {}) == Success(["back", "kept"])


OTHER_APP = define_schema(
    {"notes": define_table({"title": v.string(), "done": v.boolean()})}
)


def test_a_database_holding_another_apps_schema_is_a_schema_mismatch(dsn: str):
    with Store.open(dsn, schema=SCHEMA) as store:
        store.mutation(add, {"text": "mine"}).unwrap()
    with pytest.raises(SchemaMismatchError) as raised:
        Store.open(dsn, schema=OTHER_APP)
    assert raised.value.mismatches[0].table == "notes"
    # Nothing changed: the first app opens its data as it left it.
    with Store.open(dsn, schema=SCHEMA) as store:
        assert store.query(texts, {}) == Success(["mine"])
