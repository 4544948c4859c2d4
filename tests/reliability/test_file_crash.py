"""Stored files survive SIGKILL at every step: no orphan, no half-written file.

A child process (``file_children.py``) stores or deletes a file and is killed
(SIGKILL) at each step of it; reopening the file runs the recovery step, after
which

- every ``_storage`` row has its body, whose size and SHA-256 match the row;
- every body has a row, and no ``.part`` file is left;
- the file is there if and only if its row's write committed.

A body being written by a live process is never taken for an orphan: recovery
in another store on the same file leaves it alone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from one_store import Store

CHILD = Path(__file__).with_name("file_children.py")


def run_child(db: Path, step: str, victim: str = "") -> None:
    done = subprocess.run(
        [sys.executable, str(CHILD), str(db), step],
        env={**os.environ, "VICTIM": victim},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def consistent(store: Store) -> list[str]:
    """The storage IDs; asserts rows and bodies match one to one."""
    folder = Path(store.storage.blobs.path)
    rows = {str(d["_id"]): d for d in store.documents("_storage")}
    entries = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert entries == sorted(rows), (entries, sorted(rows))
    for sid, doc in rows.items():
        data = (folder / sid).read_bytes()
        assert doc["size"] == len(data)
        assert doc["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    return sorted(rows)


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "crash.db"
    with Store.open(path) as store:
        keep = store.files.store(b"kept", "text/plain").unwrap()
    return path, keep


@pytest.mark.parametrize(
    ("step", "stored"),
    [
        ("mid-write", False),
        ("store-before-commit", False),
        ("store-after-commit", True),
    ],
)
def test_a_crash_while_storing(db, step, stored):
    path, keep = db
    run_child(path, step)
    folder = Path(str(path) + "-files")
    assert len(list(folder.iterdir())) == 2  # the crash left a second body behind
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
    assert (Path(str(path) + "-files") / keep).exists()  # the body outlived the kill
    with Store.open(path) as store:
        ids = consistent(store)
        assert ids == ([] if deleted else [keep])


def test_recovery_leaves_a_live_upload_alone(db):
    path, keep = db
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), "hold"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n", child.stderr.read()  # type: ignore[union-attr]
        folder = Path(str(path) + "-files")
        [part] = list(folder.glob("*.part"))
        with Store.open(path) as store:  # runs recovery while the upload is open
            assert part.exists()
            assert store.files.get(keep).unwrap() == b"kept"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    with Store.open(path) as store:  # the upload's process is gone: its part goes
        assert not part.exists()
        assert consistent(store) == [keep]
