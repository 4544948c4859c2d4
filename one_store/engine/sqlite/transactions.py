"""SQLite transactions: the write lock, snapshots, what a failure becomes, creation times.

A write begins with ``BEGIN IMMEDIATE`` (the write lock at once, so concurrent
writers, threads or processes, serialise and never lose an update); a read with a
plain ``BEGIN`` (one snapshot). Both hold the storage's re-entrant lock for their
whole length, and both re-read the table layouts when another connection changed
the file's schema. A ``sqlite3`` error becomes a
:class:`~one_store.model.errors.StorageFailure` carrying ``Busy`` (the lock was
not obtained in time: retryable) or ``StorageError``.

:class:`CreationClock` hands a write transaction its first ``_creationTime``:
strictly after every one in the file, across transactions, reopenings and
processes, and forgets what a rolled-back transaction handed out.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
from collections.abc import Iterable
from typing import Protocol

from ...model.errors import Busy, Problem, StorageError, StorageFailure
from .layout import key_column, quote, read_meta, write_meta


def classify(error: sqlite3.Error) -> Problem:
    """Map a sqlite3 error to the Problem a caller can act on."""
    text = str(error)
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text
    ):
        return Busy()
    return StorageError(f"SQLite error: {text}")


class Transactional(Protocol):
    """What a transaction needs from the storage it runs on."""

    lock: threading.RLock
    connection: sqlite3.Connection
    clock: CreationClock

    def refresh_layouts(self) -> None:
        """Re-read the table layouts if the file's schema changed."""

    def roll_back(self) -> None:
        """Roll back the open transaction and re-read the layouts."""


class WriteTransaction:
    """The context manager ``Storage.write()`` returns (a class, as ``ReadTransaction``)."""

    __slots__ = ("_storage",)

    def __init__(self, storage: Transactional) -> None:
        self._storage = storage

    def __enter__(self) -> None:
        storage = self._storage
        storage.lock.acquire()
        try:
            c = storage.connection
            c.execute("BEGIN IMMEDIATE")
            # One PRAGMA data_version serves the write twice: the creation clock
            # needs it for an insert, and when no other connection has committed
            # since this connection last read the schema cookie, the file's
            # schema cannot have changed either (DDL is a commit), so the cookie
            # is only read when it did. A write costs one statement less.
            version = c.execute("PRAGMA data_version").fetchone()[0]
            clock = storage.clock
            clock.observe(version)
            if version != clock.schema_seen:
                storage.refresh_layouts()
                clock.schema_seen = version
        except sqlite3.Error as e:
            storage.roll_back()
            storage.lock.release()
            raise StorageFailure(classify(e)) from e
        except BaseException:
            storage.roll_back()
            storage.lock.release()
            raise

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        storage = self._storage
        try:
            if kind is not None:
                storage.roll_back()
                return
            try:
                storage.connection.execute("COMMIT")
            except sqlite3.Error as e:
                storage.roll_back()
                raise StorageFailure(classify(e)) from e
        finally:
            storage.lock.release()


class ReadTransaction:
    """The context manager ``Storage.read()`` returns.

    A class rather than a generator context manager, as every query enters one
    (contextlib's machinery was ~2 us of a 30 us get).
    """

    __slots__ = ("_nested", "_storage")

    def __init__(self, storage: Transactional) -> None:
        self._storage = storage
        self._nested = False

    def __enter__(self) -> None:
        storage = self._storage
        storage.lock.acquire()
        c = storage.connection
        if c.in_transaction:  # nested inside a write: same snapshot already
            self._nested = True
            return
        try:
            c.execute("BEGIN")
            # PRAGMA data_version starts the snapshot (as the cookie did) and
            # says whether another connection committed since the cookie was
            # last read here; only then can the schema have changed (the
            # cookie's read-lock-taking PRAGMA cost ~2 us more than this one).
            version = c.execute("PRAGMA data_version").fetchone()[0]
            clock = storage.clock
            if version != clock.schema_seen:
                storage.refresh_layouts()
                clock.schema_seen = version
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            storage.lock.release()
            raise StorageFailure(classify(e)) from e
        except BaseException:
            storage.lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        storage = self._storage
        try:
            if not self._nested:
                storage.connection.execute("COMMIT")
        except sqlite3.Error:
            pass  # a read has nothing to keep; the next BEGIN starts afresh
        finally:
            storage.lock.release()


class CreationClock:
    """The newest ``_creationTime`` of a file, as one connection knows it."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.last = 0.0
        self._data_version = -1  # as of the last re-read of the newest times
        self._write_version = -1  # as of the last write that began
        self._version = -1  # of the write transaction now open
        # The data_version at which the schema cookie was last compared with the
        # table layouts (this connection's own DDL never moves data_version,
        # and updates or reloads the layouts itself).
        self.schema_seen = -1

    def observe(self, version: int) -> bool:
        """Note the ``PRAGMA data_version`` of a write that just began.

        Returns whether another connection committed since the last write began
        here.
        """
        self._version = version
        moved = version != self._write_version
        self._write_version = version
        return moved

    def next(self, now_ms: float, tables: Iterable[str]) -> float:
        """Base ``_creationTime`` for a write transaction that just began.

        Strictly after every ``_creationTime`` in the file: this connection
        remembers the last one it handed out, and when another connection has
        committed since (``PRAGMA data_version`` moved) it re-reads the newest
        document of every table through the ``by_creation_time`` index, and the
        time of the newest document ever deleted (``deleted_creation_time`` in
        ``_one_store_meta``, written only when a delete may remove the newest).
        """
        c = self._connection
        version = self._version  # read when the write began (observe)
        if version != self._data_version:
            self._data_version = version
            deleted = float(read_meta(c, "deleted_creation_time") or 0.0)
            self.last = max(self.last, self._newest(tables), deleted)
        return max(math.nextafter(self.last, math.inf), now_ms)

    def _newest(self, tables: Iterable[str]) -> float:
        newest = 0.0
        for name in tables:
            row = self._connection.execute(
                f"SELECT _creationTime FROM {quote(name)} "
                f"ORDER BY {quote(key_column('by_creation_time'))} DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                newest = max(newest, float(row[0]))
        return newest

    def record(self, last: float) -> None:
        """Remember the last ``_creationTime`` a committed transaction handed out."""
        self.last = max(self.last, last)

    def rolled_back(self, last_known: float) -> None:
        """Forget creation times handed out by a transaction that rolled back."""
        self.last = last_known
        # ``last_known`` predates what that transaction may have read from the file:
        # re-read the file's newest time before the next transaction hands one out.
        self._data_version = -1

    def deleted(self, created: float) -> None:
        """A document created at ``created`` (maybe the newest) is being deleted.

        Its time is kept in the file, in the deleting transaction, so that
        ``_creationTime`` stays increasing after a reopen or in another process.
        """
        stored = read_meta(self._connection, "deleted_creation_time")
        if stored is None or float(stored) < created:
            write_meta(self._connection, "deleted_creation_time", repr(created))
