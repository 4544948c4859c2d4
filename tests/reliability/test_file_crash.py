"""Stored files survive SIGKILL at every step: no orphan, no half-written file.

A child process (``file_children.py``) stores or deletes a file and is killed
(SIGKILL) at each step of it; reopening the file runs the recovery step, after
which

- every ``_storage`` row has its body, whose size and SHA-256 match the row;
- every body has a row, and no ``.part`` file is left;
- the file is there if and only if its row's write committed.

A body being written by a live process is never taken for an orphan: recovery
in another store on the same file leaves it alone. The same holds on
PostgreSQL, where bodies are rows of the database (the kills then also cut
the child's connections).
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from one_store import Store

CHILD = Path(__file__).with_name("file_children.py")


def run_child(db: str, step: str, victim: str = "") -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), db, step],
        env={**os.environ, "VICTIM": victim},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def bodies(store: Store) -> dict[str, bytes]:
    """Every body the engine holds, by key (read through the engine's blob store)."""
    found = {}
    for key in store.storage.blobs.names():
        stream = store.storage.blobs.open(key)
        assert stream is not None
        with stream:
            found[key] = stream.read()
    return found


def consistent(store: Store) -> list[str]:
    """The storage IDs; asserts rows and bodies match one to one."""
    rows = {str(d["_id"]): d for d in store.documents("_storage")}
    held = bodies(store)
    assert sorted(held) == sorted(rows), (sorted(held), sorted(rows))
    for sid, doc in rows.items():
        data = held[sid]
        assert doc["size"] == len(data)
        assert doc["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    if store.storage.features.vendor == "sqlite":  # no half-written file either
        folder = Path(store.storage.blobs.path)
        entries = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        assert entries == sorted(rows), (entries, sorted(rows))
    return sorted(rows)


def left_behind(target: str) -> int:
    """How many bodies (half-written ones included) the store holds before recovery."""
    if "://" not in target:  # SQLite: the folder, .part files included
        return len(list(Path(target + "-files").iterdir()))
    # PostgreSQL: a half-written body is an open transaction, gone with its
    # process. The server ends the killed child's sessions (and their claims)
    # when it reads their closed sockets: wait for that before recovery runs.
    import psycopg

    with psycopg.connect(target, autocommit=True) as c:
        for _ in range(200):
            row = c.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            ).fetchone()
            if row is not None and row[0] == 0:
                break
            time.sleep(0.05)
    with Store.open(target, readonly=True) as store:  # no recovery runs
        return len(store.storage.blobs.names())


@pytest.fixture
def db(store_target: Callable[[str], str]) -> tuple[str, str]:
    target = store_target("crash.db")
    with Store.open(target) as store:
        keep = store.files.store(b"kept", "text/plain").unwrap()
    return target, keep


@pytest.mark.parametrize(
    ("step", "stored"),
    [
        ("mid-write", False),
        ("store-before-commit", False),
        ("store-after-commit", True),
    ],
)
def test_a_crash_while_storing(db, step, engine, stored):
    path, keep = db
    run_child(path, step)
    # The crash left a second body behind (a .part file on SQLite, a sealed
    # body on both); a body never sealed leaves nothing on PostgreSQL.
    assert left_behind(path) == (
        1 if (step, engine) == ("mid-write", "postgresql") else 2
    )
    with Store.open(path) as store:
        ids = consistent(store)
        assert keep in ids
        assert len(ids) == (2 if stored else 1)
        if stored:
            [new] = [i for i in ids if i != keep]
            assert store.files.get(new).unwrap() == b"x" * 100_000


@pytest.mark.parametrize(
    ("step", "deleted"),
    [("delete-before-commit", False), ("delete-after-commit", True)],
)
def test_a_crash_while_deleting(db, step, deleted):
    path, keep = db
    run_child(path, step, victim=keep)
    assert left_behind(path) == 1  # the body outlived the kill
    with Store.open(path) as store:
        ids = consistent(store)
        assert ids == ([] if deleted else [keep])


def test_recovery_leaves_a_live_upload_alone(db, engine):
    path, keep = db
    child = subprocess.Popen(
        [sys.executable, str(CHILD), path, "hold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n", child.stderr.read()  # type: ignore[union-attr]
        parts = list(Path(path + "-files").glob("*.part")) if engine == "sqlite" else []
        assert len(parts) == (1 if engine == "sqlite" else 0)
        with Store.open(path) as store:  # runs recovery while the upload is open
            assert all(part.exists() for part in parts)
            assert store.files.get(keep).unwrap() == b"kept"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    with Store.open(path) as store:  # the upload's process is gone: its part goes
        assert not any(part.exists() for part in parts)
        assert consistent(store) == [keep]
