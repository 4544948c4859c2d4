"""File bodies (Convex's file storage) in a folder next to the database file.

A store on ``notes.db`` keeps the bodies of its stored files in ``notes.db-files/``,
one file per ``_storage`` document, named by the document's ``_id``; the
``_storage`` rows themselves are ordinary documents in the database. A store in
memory uses a temporary folder, removed when it closes.

Why a folder and not blobs in the database (SQLite's incremental blob I/O,
``sqlite3.Connection.blobopen``): measured on this machine with 200 MiB written in
1 MiB pieces, a WAL database took 26-42 MB/s to store (every page goes to the WAL,
then again to the database at the checkpoint, under the one write lock), against
53-990 MB/s for a plain file (``fsync``-bound on a shared disk), which also read
back 1.3-4x faster; ``benchmarks/files.py`` repeats it against this module
(``benchmarks/RESULTS.md``: a median 76 MB/s for blob rows, 206 MB/s here). A
folder also keeps the write lock out of uploads: a client that sends slowly holds
no lock, and mutations keep running. The price is that atomicity with the
transaction is this module's job rather than SQLite's:

1. a new body is written to ``<id>.part`` under an exclusive ``flock``, flushed to
   disk (``fsync``), then renamed to ``<id>`` (the lock stays on it);
2. the caller commits the ``_storage`` row, then releases the lock; if the commit
   fails it discards the body instead;
3. a body whose row was deleted is removed after the delete commits.

A crash between any two steps leaves at most a body without a row (or a ``.part``
file). :meth:`BlobFolder.recover`, run when a store opens, removes those, skipping
any file another live process still holds the lock on (an upload in progress);
``flock`` locks die with their process, so a killed writer's files are fair game.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import BinaryIO

PART = ".part"
CHUNK = 1 << 20  # what streams read and write at a time


class PendingBlob:
    """A body being written: ``write`` pieces, then ``seal``, then ``release``.

    Holds an exclusive ``flock`` on its file from creation until :meth:`release`
    or :meth:`discard`, so that :meth:`BlobFolder.recover` in another process
    leaves it alone.
    """

    def __init__(self, folder: str, key: str) -> None:
        self.key = key
        self.path = os.path.join(folder, key)
        self._part = self.path + PART
        self._folder = folder
        self._hash = hashlib.sha256()
        self.size = 0
        self._sealed = False
        while True:
            self._fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            if os.fstat(self._fd).st_nlink:
                break
            # Another process's recover() took the lock between our open and
            # flock and removed the new file: make it again.
            os.close(self._fd)

    @property
    def sha256(self) -> bytes:
        """The SHA-256 digest of what was written so far."""
        return self._hash.digest()

    def write(self, data: bytes) -> None:
        """Append ``data``."""
        self.size += len(data)
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def seal(self) -> None:
        """Flush the body to disk and give it its final name (still locked)."""
        os.fsync(self._fd)
        os.rename(self._part, self.path)
        self._sealed = True
        _sync_folder(self._folder)

    def release(self) -> None:
        """Unlock and close: the body now belongs to its committed row."""
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1

    def discard(self) -> None:
        """Remove the body (the row was never committed) and release it."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path if self._sealed else self._part)
        self.release()


class BlobFolder:
    """The folder of file bodies beside a database (see the module docstring).

    Args:
        path: the folder; created on the first write. None: a temporary folder
            (a store in memory), removed by :meth:`close`.
    """

    def __init__(self, path: str | None) -> None:
        self._temporary = path is None
        self.path = path or ""  # a temporary folder is named when first needed
        self._made = False

    @property
    def _empty(self) -> bool:
        """A temporary folder not made yet: it holds nothing."""
        return self._temporary and not self._made

    def _folder(self) -> str:
        """The folder, made on first use (a temporary one gets a fresh name)."""
        if not self._made:
            if self._temporary:
                self.path = tempfile.mkdtemp(prefix="one_store-files-")
            else:
                os.makedirs(self.path, exist_ok=True)
            self._made = True
        return self.path

    @classmethod
    def beside(cls, database: str) -> BlobFolder:
        """The folder of the database file ``database`` (``":memory:"``: temporary)."""
        if database == ":memory:":
            return cls(None)
        return cls(os.path.abspath(database) + "-files")

    def begin(self, key: str) -> PendingBlob:
        """Start writing the body of ``key`` (a new ``_storage`` ID)."""
        return PendingBlob(self._folder(), key)

    def open(self, key: str) -> BinaryIO | None:
        """The body of ``key`` opened for reading, or None when there is none.

        An open body stays readable after a delete removes it (POSIX keeps an
        unlinked file until its last reader closes it).
        """
        if self._empty:
            return None
        try:
            return open(os.path.join(self.path, key), "rb")
        except FileNotFoundError:
            return None

    def remove(self, key: str) -> None:
        """Remove the body of ``key`` (its row's delete has committed)."""
        if self._empty:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.path, key))

    def names(self) -> list[str]:
        """The keys of the bodies in the folder (``.part`` files excluded)."""
        if self._empty:
            return []
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(e for e in entries if not e.endswith(PART))

    def recover(self, live: Callable[[str], bool]) -> list[str]:
        """Remove what a crash left behind; return the names removed.

        A ``.part`` file, or a body for which ``live(key)`` is false (no committed
        row), is removed, unless another process holds its lock (an upload or a
        store in progress). ``live`` is asked while the lock is held, so a row
        that commits meanwhile is seen.
        """
        if self._empty:
            return []
        try:
            entries = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        removed = []
        for name in entries:
            full = os.path.join(self.path, name)
            try:
                fd = os.open(full, os.O_RDONLY)
            except FileNotFoundError:
                continue  # finished (renamed or discarded) since the listing
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer holds it
                if name.endswith(PART) or not live(name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(full)
                    removed.append(name)
            finally:
                os.close(fd)
        return removed

    def close(self) -> None:
        """Remove the folder if it is temporary (a store in memory)."""
        if self._temporary and self._made:
            shutil.rmtree(self.path, ignore_errors=True)


def _sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (fsync of the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
