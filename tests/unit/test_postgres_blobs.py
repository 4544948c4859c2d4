"""Tests for one_store.engine.postgres.blobs: file bodies in the database, on a real server.

The same protocol as the SQLite engine's folder (tests/unit/test_blobs.py):
nothing is visible before the seal, a claimed body survives recovery, an
unclaimed body without a row does not, a process killed mid-write leaves
nothing and one killed after the seal leaves a body recovery removes. Bodies
stream in pieces with flat memory, and stay readable to their end when deleted
meanwhile.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from one_store.engine.postgres.blobs import CHUNK, PostgresBlobs
from tests.postgres_server import connect


@pytest.fixture
def blobs(postgres_dsn: str, pg_schema: str) -> Iterator[PostgresBlobs]:
    store = PostgresBlobs(lambda: connect(postgres_dsn, pg_schema))
    yield store
    store.close()


def body(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * (1 + size // 32)
    return block[:size]


def test_a_body_is_written_sealed_and_read(blobs: PostgresBlobs) -> None:
    data = body(2 * CHUNK + 12345)
    pending = blobs.begin("k1")
    for start in range(0, len(data), 300_000):
        pending.write(data[start : start + 300_000])
    assert blobs.names() == []  # not visible before the seal
    assert blobs.open("k1") is None
    pending.seal()
    assert pending.size == len(data)
    assert pending.sha256 == hashlib.sha256(data).digest()
    pending.release()
    assert blobs.names() == ["k1"]
    stream = blobs.open("k1")
    assert stream is not None
    with stream:
        assert stream.read(10) == data[:10]
        assert stream.read() == data[10:]


def test_small_and_empty_bodies(blobs: PostgresBlobs) -> None:
    for key, data in (("empty", b""), ("small", b"hello"), ("one", body(CHUNK))):
        pending = blobs.begin(key)
        pending.write(data)
        pending.seal()
        pending.release()
        stream = blobs.open(key)
        assert stream is not None
        assert stream.read() == data
    assert blobs.names() == ["empty", "one", "small"]
    blobs.remove("small")
    blobs.remove("small")  # quiet about a missing body
    assert blobs.open("small") is None
    assert blobs.names() == ["empty", "one"]


def test_discard_removes_an_unsealed_or_a_sealed_body(blobs: PostgresBlobs) -> None:
    a = blobs.begin("a")
    a.write(body(CHUNK + 1))
    a.discard()
    b = blobs.begin("b")
    b.write(b"x")
    b.seal()
    b.discard()
    assert blobs.names() == []


def test_recover_removes_unclaimed_orphans_only(blobs: PostgresBlobs) -> None:
    for key in ("orphan", "kept"):
        p = blobs.begin(key)
        p.write(key.encode())
        p.seal()
        p.release()
    claimed = blobs.begin("claimed")  # an upload in progress elsewhere
    claimed.write(b"c")
    claimed.seal()
    asked: list[str] = []

    def live(key: str) -> bool:
        asked.append(key)
        return key == "kept"

    assert blobs.recover(live) == ["orphan"]
    assert "claimed" not in asked
    assert blobs.names() == ["claimed", "kept"]
    claimed.release()
    assert blobs.recover(lambda key: key == "kept") == ["claimed"]


CRASH = """
import os, sys
sys.path.insert(0, {root!r})
import psycopg
from one_store.engine.postgres.blobs import PostgresBlobs
blobs = PostgresBlobs(lambda: psycopg.connect({dsn!r}, options="-c search_path={schema}"))
pending = blobs.begin({key!r})
pending.write(b"z" * (3 << 20))
if {seal}:
    pending.seal()
os._exit(9)  # killed: no release, no discard, connections dropped
"""


@pytest.mark.parametrize("seal", [False, True])
def test_a_killed_writer_leaves_nothing_recovery_cannot_remove(
    blobs: PostgresBlobs, postgres_dsn: str, pg_schema: str, seal: bool
) -> None:
    blobs.names()  # the tables exist
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    script = CRASH.format(
        root=root, dsn=postgres_dsn, schema=pg_schema, key="dead", seal=seal
    )
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)])
    assert done.returncode == 9
    # The server notices the dropped connections; the claim dies with them.
    assert blobs.names() == (["dead"] if seal else [])
    removed: list[str] = []
    for _ in range(100):  # until the server has ended the dead sessions
        removed += blobs.recover(lambda key: False)
        if not blobs.names():
            break
        time.sleep(0.05)
    assert removed == (["dead"] if seal else [])
    assert blobs.names() == []


def test_a_body_deleted_while_read_stays_readable(blobs: PostgresBlobs) -> None:
    data = body(3 * CHUNK, seed=1)
    p = blobs.begin("big")
    p.write(data)
    p.seal()
    p.release()
    stream = blobs.open("big")
    assert stream is not None
    with stream:
        head = stream.read(1000)
        blobs.remove("big")
        assert head + stream.read() == data
    assert blobs.open("big") is None


def test_streams_keep_memory_flat(blobs: PostgresBlobs) -> None:
    size = 24 * CHUNK
    piece = body(CHUNK // 4, seed=2)
    tracemalloc.start()
    try:
        p = blobs.begin("large")
        for _ in range(size // len(piece)):
            p.write(piece)
        p.seal()
        p.release()
        stream = blobs.open("large")
        assert stream is not None
        total = 0
        with stream:
            while chunk := stream.read(256 * 1024):
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert peak < 6 * CHUNK  # a few pieces, never the 24 MiB body


def test_two_schemas_keep_their_own_bodies(
    postgres_dsn: str, pg_schema: str, blobs: PostgresBlobs
) -> None:
    import psycopg

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {pg_schema}_b")
    other = PostgresBlobs(lambda: connect(postgres_dsn, f"{pg_schema}_b"))
    try:
        mine = blobs.begin("same")
        mine.write(b"1")
        mine.seal()  # claimed here: the other schema's claim is another lock
        theirs = other.begin("same")
        theirs.write(b"2")
        theirs.seal()
        theirs.release()
        assert other.recover(lambda key: False) == ["same"]
        assert blobs.names() == ["same"]
        mine.release()
    finally:
        other.close()
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {pg_schema}_b CASCADE")


def test_a_repeated_key_is_a_storage_failure(blobs: PostgresBlobs) -> None:
    from one_store.model.errors import StorageFailure

    p = blobs.begin("dup")
    p.seal()
    p.release()
    with pytest.raises(StorageFailure, match="dup"):
        blobs.begin("dup")
    assert blobs.recover(lambda key: True) == []  # no claim was left behind


def test_reading_before_any_write_creates_nothing(
    blobs: PostgresBlobs, pg: Any
) -> None:
    assert blobs.names() == []
    assert blobs.open("k") is None
    blobs.remove("k")
    assert blobs.recover(lambda key: False) == []
    (tables,) = pg.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchone()
    assert tables == 0  # only writing a body makes the tables
    blobs.begin("k").discard()
    (tables,) = pg.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchone()
    assert tables == 2


def test_connections_are_reused_from_body_to_body(
    postgres_dsn: str, pg_schema: str
) -> None:
    made: list[Any] = []

    def counting() -> Any:
        made.append(connect(postgres_dsn, pg_schema))
        return made[-1]

    blobs = PostgresBlobs(counting)
    try:
        data = body(2 * CHUNK + 1)
        for n in range(6):
            p = blobs.begin(f"k{n}")
            p.write(data)
            p.seal()
            p.release()
            stream = blobs.open(f"k{n}")
            assert stream is not None
            with stream:
                assert stream.read() == data
        blobs.begin("gone").discard()
        assert len(made) == 2  # the shared one and one for the bodies
        assert blobs.recover(lambda key: False) == [f"k{n}" for n in range(6)]
    finally:
        blobs.close()
    assert all(c.closed for c in made)


def test_recovery_asks_only_about_bodies_without_a_row(
    blobs: PostgresBlobs, pg: Any
) -> None:
    for key in ("kept", "orphan"):
        p = blobs.begin(key)
        p.write(key.encode())
        p.seal()
        p.release()
    # The engine's _storage table (its rows are the files), holding "kept" only.
    pg.execute('CREATE TABLE "_storage" (_id text PRIMARY KEY, _body text)')
    pg.execute("""INSERT INTO "_storage" VALUES ('kept', '{}')""")
    asked: list[str] = []

    def live(key: str) -> bool:
        asked.append(key)
        return False  # a row committing meanwhile would answer True here

    assert blobs.recover(live) == ["orphan"]
    assert asked == ["orphan"]  # one query found the candidates
    assert blobs.names() == ["kept"]
