"""SQLite transactions: the write lock, snapshots, and what a failure becomes.

A write begins with ``BEGIN IMMEDIATE`` (the write lock at once, so concurrent
writers, threads or processes, serialise and never lose an update); a read with a
plain ``BEGIN`` (one snapshot). Both hold the storage's re-entrant lock for their
whole length, and both re-read the table layouts when another connection changed
the file's schema. A ``sqlite3`` error becomes a
:class:`~one_store.model.errors.StorageFailure` carrying ``Busy`` (the lock was
not obtained in time: retryable) or ``StorageError``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import Protocol

from ...model.errors import Busy, Problem, StorageError, StorageFailure


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
            storage.connection.execute("BEGIN IMMEDIATE")
            storage.refresh_layouts()
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
            storage.refresh_layouts()
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
