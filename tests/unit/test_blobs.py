"""Tests for one_store.engine.sqlite.blobs: file bodies in a folder beside the database."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from one_store.engine.sqlite.blobs import PART, BlobFolder


def test_a_body_is_written_sealed_and_read(tmp_path: Path):
    folder = BlobFolder.beside(str(tmp_path / "a.db"))
    assert folder.path == str(tmp_path / "a.db") + "-files"
    assert folder.names() == []
    assert folder.open("k") is None
    pending = folder.begin("k")
    pending.write(b"hello ")
    pending.write(memoryview(b"world").tobytes())
    assert (pending.size, pending.sha256) == (
        11,
        hashlib.sha256(b"hello world").digest(),
    )
    assert os.listdir(folder.path) == ["k" + PART]
    assert folder.names() == []  # a part is not a body yet
    pending.seal()
    pending.release()
    assert folder.names() == ["k"]
    body = folder.open("k")
    assert body is not None
    with body:
        assert body.read() == b"hello world"


def test_discard_removes_a_part_or_a_sealed_body(tmp_path: Path):
    folder = BlobFolder(str(tmp_path / "f"))
    first = folder.begin("a")
    first.write(b"x")
    first.discard()
    second = folder.begin("b")
    second.write(b"y")
    second.seal()
    second.discard()
    assert os.listdir(folder.path) == []


def test_recover_removes_orphans_and_parts_but_not_claimed_bodies(tmp_path: Path):
    folder = BlobFolder(str(tmp_path / "f"))
    for key in ("live", "orphan"):
        done = folder.begin(key)
        done.write(b"1")
        done.seal()
        done.release()
    # A part nobody holds any more (its writer died, and its lock with it).
    (Path(folder.path) / ("crashed" + PART)).write_bytes(b"2")
    claimed = folder.begin("uploading")  # held: a live upload
    claimed.write(b"3")
    sealed = folder.begin("committing")  # sealed, its row not committed yet
    sealed.write(b"4")
    sealed.seal()
    asked: list[str] = []

    def live(key: str) -> bool:
        asked.append(key)
        return key == "live"

    removed = folder.recover(live)
    assert sorted(removed) == ["crashed" + PART, "orphan"]
    assert sorted(asked) == ["live", "orphan"]
    assert sorted(os.listdir(folder.path)) == [
        "committing",
        "live",
        "uploading" + PART,
    ]
    claimed.discard()
    sealed.release()


def test_remove_is_quiet_about_missing_bodies(tmp_path: Path):
    folder = BlobFolder(str(tmp_path / "f"))
    folder.remove("nothing")
    assert folder.recover(lambda key: False) == []


def test_a_temporary_folder_is_made_on_first_write_and_removed_on_close():
    folder = BlobFolder.beside(":memory:")
    assert folder.names() == []
    assert folder.open("k") is None
    folder.close()  # never made: nothing to remove
    folder = BlobFolder.beside(":memory:")
    pending = folder.begin("k")
    pending.write(b"x")
    pending.seal()
    pending.release()
    path = folder.path
    assert os.listdir(path) == ["k"]
    folder.close()
    assert not os.path.exists(path)
