"""Storage faults: a corrupt file and a full disk.

Corrupt file: bytes SQLite can check (the header, b-tree page headers, the file
length) are damaged at random; opening must raise ``StoreOpenError`` (carrying a
``StorageError``), or every later call must return either the original answer or
``Failure(StorageError)``: never an exception, never a silently wrong answer.
(Bytes inside a record's payload carry no checksum in SQLite, so damage there is
undetectable by design; docs/guarantees.md says so.)

Disk full: ``PRAGMA max_page_count`` caps the file; the write that does not fit
returns ``Failure(StorageError)``, leaves no trace, earlier data stays intact, and
the store works again once there is room.
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Result, Success

from one_store import (
    Problem,
    StorageError,
    Store,
    StoreOpenError,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from tests.reliability.invariants import dump, file_problems
from tests.reliability.model import same

schema = define_schema(
    {
        "notes": define_table(
            {"title": v.string(), "rank": v.int64(), "body": v.string()}
        )
        .index("by_title", ["title"])
        .index("by_rank", ["rank"])
    }
)


@query
def everything(ctx: Any, args: dict[str, Any]) -> Any:
    return {
        "scan": ctx.db.query("notes").collect(),
        "by_title": ctx.db.query("notes").with_index("by_title").collect(),
        "by_rank": ctx.db.query("notes").with_index("by_rank").order("desc").collect(),
    }


@mutation(args={"title": v.string(), "rank": v.int64(), "body": v.string()})
def add_note(ctx: Any, args: dict[str, Any]) -> Any:
    return ctx.db.insert("notes", dict(args))


@mutation(args={"count": v.int64(), "size": v.int64()})
def add_many(ctx: Any, args: dict[str, Any]) -> Any:
    for i in range(args["count"]):
        ctx.db.insert(
            "notes", {"title": f"bulk{i}", "rank": i, "body": "z" * args["size"]}
        )
    return args["count"]


def _make_file(path: Path, rng: random.Random) -> Any:
    """A closed store file of ~200 small notes; returns what ``everything`` answers."""
    with Store.open(path, schema=schema) as store:
        for _ in range(200):
            title = f"note {rng.randrange(10**6)}"
            args = {
                "title": title,
                "rank": rng.randrange(100),
                "body": "b" * rng.randrange(200),
            }
            store.mutation(add_note, args).unwrap()
        return store.query(everything).unwrap()


def _page_size(data: bytes | bytearray) -> int:
    size = int.from_bytes(data[16:18], "big")
    return 65536 if size == 1 else size


def _corrupt(path: Path, how: str, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    page = _page_size(data)
    pages = len(data) // page
    if how == "header":
        data[0:16] = rng.randbytes(16)
    elif how == "page_type":
        # The first byte of a b-tree page says its kind; 2, 5, 10, 13 are the valid ones.
        number = rng.randrange(1, pages)  # page 1 is the schema table, tested too
        offset = number * page if number else 100
        data[offset] = rng.choice([0, 1, 3, 4, 6, 7, 8, 9, 11, 12, 14, 255])
    elif how == "page_garbage":
        number = rng.randrange(1, pages)
        garbage = bytearray(rng.randbytes(page))
        garbage[0] = rng.choice([0, 1, 3, 4, 255])  # keep it a page SQLite can reject
        data[number * page : (number + 1) * page] = garbage
    else:  # "truncate"
        keep = rng.randrange(1, pages)
        data = data[: keep * page]
    path.write_bytes(bytes(data))


def _open(path: Path) -> Store | StoreOpenError:
    """Open the store, or return the ``StoreOpenError`` that opening raised."""
    try:
        return Store.open(path, schema=schema)
    except StoreOpenError as e:
        return e


def _outcome(call: Any) -> Result[Any, Problem]:
    result = call()  # must not raise
    assert isinstance(result, Success | Failure), result
    return result


@pytest.mark.parametrize("how", ["header", "page_type", "page_garbage", "truncate"])
@pytest.mark.parametrize("seed", range(6))
def test_corrupt_file_is_never_a_silent_wrong_answer(
    tmp_path: Path, how: str, seed: int
) -> None:
    rng = random.Random(f"{how}-{seed}")
    path = tmp_path / "corrupt.db"
    original = _make_file(path, rng)
    assert not Path(f"{path}-wal").exists() or os.path.getsize(f"{path}-wal") == 0
    _corrupt(path, how, rng)
    opened = _open(path)
    if not isinstance(opened, Store):
        assert isinstance(opened.problem, StorageError)
        assert opened.problem.message
        return
    store = opened
    with store:
        result = _outcome(lambda: store.query(everything))
        if isinstance(result, Success):
            assert same(result.unwrap(), original), "a corrupt file gave a wrong answer"
        else:
            assert isinstance(result.failure(), StorageError), result
        write = _outcome(
            lambda: store.mutation(add_note, {"title": "t", "rank": 1, "body": ""})
        )
        if isinstance(write, Failure):
            assert isinstance(write.failure(), StorageError), write


def test_header_damage_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "header.db"
    _make_file(path, random.Random(1))
    _corrupt(path, "header", random.Random(2))
    with pytest.raises(StoreOpenError) as info:
        Store.open(path, schema=schema)
    assert isinstance(info.value.problem, StorageError)


def test_disk_full_fails_cleanly_and_keeps_earlier_data(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    with Store.open(path, schema=schema) as store:
        original = [
            store.mutation(
                add_note, {"title": f"n{i}", "rank": i, "body": "x" * 100}
            ).unwrap()
            for i in range(50)
        ]
        connection = store.storage.connection
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages + 3}")
        failures = 0
        for attempt in range(20):
            before = dump(connection)
            result = store.mutation(add_many, {"count": 20, "size": 3000})
            if isinstance(result, Success):
                continue
            failures += 1
            assert isinstance(result.failure(), StorageError), result
            assert "full" in result.failure().message.lower()
            assert dump(connection) == before, f"attempt {attempt} left a trace"
        assert failures > 0, "the cap never filled the file"
        everything_now = store.query(everything).unwrap()
        assert {d["_id"] for d in everything_now["scan"]} >= set(original)
        # Room again: the same store writes at once.
        connection.execute("PRAGMA max_page_count = 1073741823")
        assert store.mutation(add_many, {"count": 20, "size": 3000}) == Success(20)
    assert file_problems(path) == []
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT count(*) FROM notes").fetchone()[0] >= 70
    finally:
        check.close()
