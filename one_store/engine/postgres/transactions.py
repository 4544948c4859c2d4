"""PostgreSQL transactions: one writer at a time, one snapshot per read.

A write is ``BEGIN`` (READ COMMITTED) whose first statement takes the schema's
transaction-scoped advisory lock (``pg_advisory_xact_lock``), waiting at most
``lock_timeout``: writers of every process and machine then run one at a time,
as SQLite's ``BEGIN IMMEDIATE`` makes them, so

- every statement of a write sees every earlier commit (READ COMMITTED takes a
  fresh snapshot per statement, and the previous holder committed before the
  lock was released): a read-modify-write never loses an update, with no
  serialization failure to retry;
- commits happen in lock order, so the change log's ``seq`` (assigned under
  the lock) is in commit order, and a scheduled job can be claimed exactly once.

A lock not obtained in time (SQLSTATE 55P03) is ``Busy``. The statements that
begin a write are sent as one round trip: ``BEGIN``, ``SET LOCAL
lock_timeout``, the lock, then a read of ``_one_store_meta``'s ``generation``
(tables changed by another process: reload the layouts) and ``creation_time``
(the newest ``_creationTime`` any process handed out). At commit the newest
creation time this write handed out, and a ``NOTIFY`` when it logged changes,
go in the same round trip as ``COMMIT``.

A read is ``BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY``: every statement
sees one snapshot. A psycopg error becomes a
:class:`~one_store.model.errors.StorageFailure` (``Busy`` or ``StorageError``);
a connection lost mid-transaction is rolled back by the server (nothing
half-written) and replaced at the next transaction.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from ...model.errors import StorageFailure
from .connection import classify, is_error
from .layout import META

if TYPE_CHECKING:
    import psycopg

_READ = (
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
    f"SELECT value FROM {META} WHERE key = 'generation'"
)


def write_begin_sql(lock_key: int, lock_timeout_ms: int) -> str:
    """The statements that begin a write (one round trip; see the module docs)."""
    return (
        f"BEGIN; SET LOCAL lock_timeout = {int(lock_timeout_ms)}; "
        f"SELECT pg_advisory_xact_lock({int(lock_key)}); "
        f"SELECT key, value FROM {META} WHERE key IN ('generation', 'creation_time')"
    )


def commit_sql(newest: float | None, channel: str | None) -> str:
    """``COMMIT``, after recording ``newest`` and notifying ``channel`` when given."""
    parts = []
    if newest is not None:
        text = repr(float(newest))
        parts.append(
            f"INSERT INTO {META}(key, value) VALUES ('creation_time', '{text}') "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
            f"WHERE ({META}.value)::float8 < excluded.value::float8"
        )
    if channel is not None:
        parts.append(f"NOTIFY {channel}")
    parts.append("COMMIT")
    return "; ".join(parts)


class Transactional(Protocol):
    """What a transaction needs from the storage it runs on."""

    lock: threading.RLock
    in_write: bool
    in_read: bool

    @property
    def connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The live connection (reconnected when it was lost)."""

    def write_begun(self, meta: dict[str, str]) -> None:
        """The write holds the lock; ``meta`` is generation and creation_time."""

    def read_begun(self, generation: str | None) -> None:
        """The read began; ``generation`` as stored."""

    def commit_statement(self) -> str:
        """What ends the open write (see :func:`commit_sql`)."""

    def roll_back(self) -> None:
        """Roll back the open transaction and forget what it changed."""

    def write_sql(self) -> str:
        """The statements beginning a write."""


def begin(storage: Transactional, statements: str) -> psycopg.Cursor[tuple[Any, ...]]:
    """Send the statements that begin a transaction; the cursor of the last one.

    A connection found lost here (the server restarted, an idle connection
    was cut) is replaced and the statements sent once more: nothing of the
    transaction had run, so this retry is safe.
    """
    connection = storage.connection
    try:
        cursor = connection.execute(statements)
    except Exception as e:
        if not (is_error(e) and connection.broken):
            raise
        cursor = storage.connection.execute(statements)  # a new connection
    while cursor.nextset():
        pass
    return cursor


class WriteTransaction:
    """The context manager ``PgStorage.write()`` returns."""

    __slots__ = ("_storage",)

    def __init__(self, storage: Transactional) -> None:
        self._storage = storage

    def __enter__(self) -> None:
        storage = self._storage
        storage.lock.acquire()
        try:
            cursor = begin(storage, storage.write_sql())
            meta = {str(k): str(v) for k, v in cursor.fetchall()}
            storage.in_write = True
            storage.write_begun(meta)
        except BaseException as e:
            storage.roll_back()
            storage.lock.release()
            if is_error(e):
                raise StorageFailure(classify(e)) from e
            raise

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        storage = self._storage
        try:
            if kind is not None:
                storage.roll_back()
                return
            try:
                storage.connection.execute(storage.commit_statement())
            except BaseException as e:
                storage.roll_back()
                if is_error(e):
                    raise StorageFailure(classify(e)) from e
                raise
            storage.in_write = False
        finally:
            storage.lock.release()


class ReadTransaction:
    """The context manager ``PgStorage.read()`` returns: one snapshot."""

    __slots__ = ("_nested", "_storage")

    def __init__(self, storage: Transactional) -> None:
        self._storage = storage
        self._nested = False

    def __enter__(self) -> None:
        storage = self._storage
        storage.lock.acquire()
        if storage.in_write or storage.in_read:  # nested: same snapshot already
            self._nested = True
            return
        try:
            row = begin(storage, _READ).fetchone()
            storage.in_read = True
            storage.read_begun(None if row is None else str(row[0]))
        except BaseException as e:
            storage.roll_back()
            storage.lock.release()
            if is_error(e):
                raise StorageFailure(classify(e)) from e
            raise

    def __exit__(self, *exc: object) -> None:
        storage = self._storage
        try:
            if not self._nested:
                storage.in_read = False
                try:
                    storage.connection.execute("COMMIT")
                except Exception:  # a read has nothing to keep
                    storage.roll_back()
        finally:
            storage.lock.release()
