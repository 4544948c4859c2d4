"""File bodies (Convex's file storage) in the PostgreSQL database, so every machine sees them.

The SQLite engine keeps bodies in a folder beside its file; on PostgreSQL the
processes sharing a database may be on different machines, so the bodies live
in the database itself, in two tables of the store's schema:

- ``_one_store_blobs(key, size)``: one row per body, ``key`` the ``_storage``
  document's ``_id``;
- ``_one_store_blob_chunks(key, n, data)``: the body in 1 MiB ``bytea`` pieces,
  numbered from 0 (a row of the first table deletes its pieces with it).

Pieces rather than large objects: they belong to the schema (two stores in two
schemas of one database never see each other's), ``pg_dump`` of the schema
carries them, and a delete is one ordinary ``DELETE``.

Atomicity with the ``_storage`` row follows the SQLite engine's three steps,
with PostgreSQL doing what ``fsync``, ``rename`` and ``flock`` do there:

1. :meth:`PostgresBlobs.begin` takes a connection for the body alone, takes a
   session advisory lock on the key (the claim: it lasts until released, and
   dies with the connection), and starts a transaction that receives the
   pieces; nothing is visible to anyone until :meth:`PendingBody.seal` commits
   it (durable, as any commit);
2. the caller commits the ``_storage`` row, then :meth:`PendingBody.release`
   drops the claim; if the row's commit fails, :meth:`PendingBody.discard`
   deletes the body (or rolls back its transaction when not sealed yet);
3. a body whose row was deleted is removed after the delete commits.

A crash before the seal leaves nothing (PostgreSQL aborts the transaction of a
lost connection); a crash between the seal and the row's commit leaves a body
without a row and without a claim, which :meth:`PostgresBlobs.recover` (run
when a store opens) removes, skipping bodies another live process still claims.
The advisory lock's key is derived from ``current_schema()`` and the body's key,
so two schemas of one database never contend.

Reading streams: a body larger than one piece is read through a connection of
its own in a ``REPEATABLE READ`` snapshot, one piece at a time, so a 200 MB
body never sits in memory and a body deleted while it is being read stays
readable to its end (as an unlinked file stays readable on POSIX); a body of at
most one piece is read at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ...model.errors import StorageError, StorageFailure
from .layout import quote

if TYPE_CHECKING:
    from psycopg import Connection

CHUNK = 1 << 20  # bytes per stored piece, and what a stream reads at a time
MAX_IDLE = 4  # connections kept for the next body being written or read
BODIES = "_one_store_blobs"
CHUNKS = "_one_store_blob_chunks"
# The table of the files' rows (the runtime's ``_storage`` system table), read by
# recovery to skip bodies that have one.
FILES = "_storage"
# The claim on a body: a session advisory lock on a 64-bit key of the schema
# and the body's key (advisory locks are global to a database).
_LOCK_KEY = "hashtextextended('one_store.blob:' || current_schema() || ':' || %s, 0)"

Connect = Callable[[], "Connection[Any]"]


@contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    """Turn a database error into ``StorageFailure``: ``Busy``, or a ``StorageError`` naming ``what``."""
    import psycopg

    from .connection import classify

    try:
        yield
    except psycopg.Error as e:
        problem = classify(e)
        if isinstance(problem, StorageError):
            problem = StorageError(f"{what}: {problem.message}")
        raise StorageFailure(problem) from e


def _ensure_tables(connection: Connection[Any]) -> None:
    """Create the two tables if missing (two processes may race: both succeed)."""
    import psycopg

    for sql in (
        f'CREATE TABLE IF NOT EXISTS {BODIES} (key text COLLATE "C" PRIMARY KEY, '
        "size bigint NOT NULL)",
        f'CREATE TABLE IF NOT EXISTS {CHUNKS} (key text COLLATE "C" NOT NULL '
        f"REFERENCES {BODIES} (key) ON DELETE CASCADE, n integer NOT NULL, "
        "data bytea NOT NULL, PRIMARY KEY (key, n))",
    ):
        # Another process may create it between the check and ours.
        with (
            contextlib.suppress(psycopg.errors.UniqueViolation),
            connection.transaction(),
        ):
            connection.execute(sql)


class PendingBody:
    """A body being written: ``write`` pieces, then ``seal``, then ``release``.

    Holds a connection of its own, with a session advisory lock on the key
    (the claim :meth:`PostgresBlobs.recover` respects) from creation until
    :meth:`release` or :meth:`discard`, which unlock it and hand the
    connection back to the store for the next body (a connection that fails
    is closed instead: the claim ends with its session).
    """

    def __init__(
        self,
        connection: Connection[Any],
        key: str,
        give_back: Callable[[Connection[Any]], None],
    ) -> None:
        self.key = key
        self.size = 0
        self._connection: Connection[Any] | None = connection
        self._give_back = give_back
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._pieces = 0
        self._sealed = False
        try:
            with _storage_errors(f"could not start the body of {key}"):
                connection.execute(f"SELECT pg_advisory_lock({_LOCK_KEY})", (key,))
                connection.execute("BEGIN")
                connection.execute(
                    f"INSERT INTO {BODIES} (key, size) VALUES (%s, 0)", (key,)
                )
        except BaseException:
            connection.close()  # the claim goes with the session
            raise

    @property
    def sha256(self) -> bytes:
        """The SHA-256 digest of what was written so far."""
        return self._hash.digest()

    def _live(self) -> Connection[Any]:
        if self._connection is None:
            raise StorageFailure(StorageError(f"the body of {self.key} is closed"))
        return self._connection

    def write(self, data: bytes) -> None:
        """Append ``data`` (stored a piece at a time, so memory stays flat)."""
        self.size += len(data)
        self._hash.update(data)
        view = memoryview(data)
        if self._buffer:  # top up the piece begun by an earlier write
            take = CHUNK - len(self._buffer)
            self._buffer += view[:take]
            view = view[take:]
            if len(self._buffer) < CHUNK:
                return
            self._flush(bytes(self._buffer))
            self._buffer.clear()
        while len(view) >= CHUNK:  # whole pieces go out without a copy
            self._flush(view[:CHUNK])
            view = view[CHUNK:]
        self._buffer += view

    def _flush(self, piece: bytes | memoryview) -> None:
        with _storage_errors(f"could not write the body of {self.key}"):
            self._live().execute(
                f"INSERT INTO {CHUNKS} (key, n, data) VALUES (%s, %s, %s)",
                (self.key, self._pieces, piece),
            )
        self._pieces += 1

    def seal(self) -> None:
        """Commit the body (durable, visible to every process); it stays claimed."""
        try:
            if self._buffer:
                self._flush(bytes(self._buffer))
                self._buffer.clear()
            with _storage_errors(f"could not seal the body of {self.key}"):
                connection = self._live()
                connection.execute(
                    f"UPDATE {BODIES} SET size = %s WHERE key = %s",
                    (self.size, self.key),
                )
                connection.execute("COMMIT")
        except StorageFailure:
            self.discard()
            raise
        self._sealed = True

    def release(self) -> None:
        """Drop the claim: the body now belongs to its committed row."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", (self.key,))
        except Exception:
            connection.close()  # ends the session: the claim goes with it
            return
        self._give_back(connection)

    def discard(self) -> None:
        """Remove the body (its row never committed) and release it."""
        connection = self._connection
        if connection is not None and not connection.closed:
            with _storage_errors(f"could not discard the body of {self.key}"):
                if self._sealed:
                    connection.execute(
                        f"DELETE FROM {BODIES} WHERE key = %s", (self.key,)
                    )
                else:
                    connection.execute("ROLLBACK")
        self.release()


class _Pieces(io.RawIOBase):
    """A body read a piece at a time through a connection in one snapshot."""

    def __init__(
        self,
        connection: Connection[Any],
        key: str,
        pieces: int,
        give_back: Callable[[Connection[Any]], None],
    ) -> None:
        self._connection = connection
        self._give_back = give_back
        self._key = key
        self._count = pieces
        self._next = 0
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._piece:
            if self._next >= self._count:
                return 0
            with _storage_errors(f"could not read the body of {self._key}"):
                row = self._connection.execute(
                    f"SELECT data FROM {CHUNKS} WHERE key = %s AND n = %s",
                    (self._key, self._next),
                    binary=True,
                ).fetchone()
            self._next += 1
            self._piece = memoryview(b"" if row is None else bytes(row[0]))
        size = min(len(buffer), len(self._piece))
        buffer[:size] = self._piece[:size]
        self._piece = self._piece[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            try:
                self._connection.execute("COMMIT")  # ends the snapshot
            except Exception:
                self._connection.close()
            else:
                self._give_back(self._connection)
        super().close()


class PostgresBlobs:
    """The file bodies of one store's schema (see the module docstring).

    Args:
        connect: makes a new connection to the store's database, its
            ``search_path`` on the store's schema (one per body being written
            or streamed at the same time, up to :data:`MAX_IDLE` of them kept
            for the next body, and one for short statements).
    """

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._shared: Connection[Any] | None = None
        self._idle: list[Connection[Any]] = []  # for the next body, up to MAX_IDLE
        self._closed = False
        self._made = False

    def __repr__(self) -> str:
        return f"<PostgresBlobs {BODIES}>"

    def _autocommit(self) -> Connection[Any]:
        connection = self._connect()
        connection.autocommit = True
        return connection

    def _take(self) -> Connection[Any]:
        """A connection for one body: an idle one kept from before, or a new one."""
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not (connection.closed or connection.broken):
                    return connection
                connection.close()
        return self._autocommit()

    def _give(self, connection: Connection[Any]) -> None:
        """Keep a healthy, idle connection for the next body (else close it).

        Connecting costs a few milliseconds, as much as reading a small file.
        """
        from psycopg.pq import TransactionStatus

        healthy = not (connection.closed or connection.broken) and (
            connection.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if healthy and not self._closed and len(self._idle) < MAX_IDLE:
                self._idle.append(connection)
                return
        connection.close()

    @contextmanager
    def _statements(
        self, what: str, create: bool = False
    ) -> Iterator[Connection[Any] | None]:
        """The shared connection, for short autocommit statements, under a lock.

        None when the tables do not exist yet (nothing was ever stored), unless
        ``create`` makes them: only writing a body does, so a read-only store
        never needs to create anything.
        """
        with self._lock, _storage_errors(what):
            if self._shared is None or self._shared.closed:
                self._shared = self._autocommit()
            c = self._shared
            if not self._made:
                if create:
                    _ensure_tables(c)
                else:
                    row = c.execute("SELECT to_regclass(%s)", (CHUNKS,)).fetchone()
                    if row is None or row[0] is None:
                        yield None
                        return
                self._made = True
            yield c

    def begin(self, key: str) -> PendingBody:
        """Start writing the body of ``key`` (a new ``_storage`` ID)."""
        with self._statements("could not prepare the file tables", create=True) as c:
            assert c is not None  # the tables exist from here on
        with _storage_errors(f"could not start the body of {key}"):
            connection = self._take()
        return PendingBody(connection, key, self._give)

    def open(self, key: str) -> BinaryIO | None:
        """The body of ``key`` for reading (None when there is none)."""
        with self._statements(f"could not read the body of {key}") as c:
            if c is None:
                return None
            row = c.execute(
                f"SELECT (SELECT count(*) FROM {CHUNKS} p WHERE p.key = b.key) "
                f"FROM {BODIES} b WHERE b.key = %s",
                (key,),
            ).fetchone()
            if row is None:
                return None
            if row[0] <= 1:
                first = c.execute(
                    f"SELECT data FROM {CHUNKS} WHERE key = %s AND n = 0",
                    (key,),
                    binary=True,
                ).fetchone()
                return io.BytesIO(b"" if first is None else bytes(first[0]))
        with _storage_errors(f"could not read the body of {key}"):
            connection = self._take()
            try:
                connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                found = connection.execute(
                    f"SELECT count(*) FROM {CHUNKS} WHERE key = %s", (key,)
                ).fetchone()
            except BaseException:
                connection.close()
                raise
        count = 0 if found is None else int(found[0])
        if count == 0:  # deleted since the first look
            connection.execute("COMMIT")
            self._give(connection)
            return None
        return io.BufferedReader(_Pieces(connection, key, count, self._give), CHUNK)

    def remove(self, key: str) -> None:
        """Remove the body of ``key`` (its row's delete has committed)."""
        with self._statements(f"could not remove the body of {key}") as c:
            if c is not None:
                c.execute(f"DELETE FROM {BODIES} WHERE key = %s", (key,))

    def names(self) -> list[str]:
        """The keys of every committed body."""
        with self._statements("could not list the file bodies") as c:
            if c is None:
                return []
            return self._all_keys(c)

    def recover(self, live: Callable[[str], bool]) -> list[str]:
        """Remove bodies with no committed row that nobody claims; the keys removed.

        ``live(key)`` is asked while the body's claim is held, so a row that
        commits meanwhile is seen.
        """
        removed = []
        for key in self._orphans():
            what = f"could not recover the body of {key}"
            with self._statements(what) as c:
                assert c is not None  # names() found the tables
                got = c.execute(
                    f"SELECT pg_try_advisory_lock({_LOCK_KEY})", (key,)
                ).fetchone()
            if got is None or not got[0]:
                continue  # a live writer claims it
            try:
                # Asked without this store's lock (it reads through the engine).
                if not live(key):
                    with self._statements(what) as c:
                        assert c is not None
                        c.execute(f"DELETE FROM {BODIES} WHERE key = %s", (key,))
                    removed.append(key)
            finally:
                with self._statements(what) as c:
                    assert c is not None
                    c.execute(f"SELECT pg_advisory_unlock({_LOCK_KEY})", (key,))
        return removed

    def _orphans(self) -> list[str]:
        """The bodies that may have no row: those the ``_storage`` table lacks.

        One query instead of a claim and a read per body, so opening a store
        that holds many files stays quick (a crash leaves few orphans).
        """
        with self._statements("could not list the file bodies") as c:
            if c is None:
                return []
            row = c.execute("SELECT to_regclass(%s)", (quote(FILES),)).fetchone()
            if row is None or row[0] is None:
                return self._all_keys(c)
            return [
                k
                for (k,) in c.execute(
                    f"SELECT b.key FROM {BODIES} b WHERE NOT EXISTS "
                    f"(SELECT 1 FROM {quote(FILES)} f WHERE f._id = b.key) "
                    "ORDER BY b.key"
                )
            ]

    @staticmethod
    def _all_keys(c: Connection[Any]) -> list[str]:
        return [k for (k,) in c.execute(f"SELECT key FROM {BODIES} ORDER BY key")]

    def close(self) -> None:
        """Close the shared connection and the idle ones."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            if self._shared is not None:
                idle.append(self._shared)
                self._shared = None
        for connection in idle:
            connection.close()


class _Located(Protocol):
    """What :func:`blob_store` needs of the storage: where its database is."""

    dsn: str
    busy_timeout: float


def blob_store(storage: _Located) -> PostgresBlobs:
    """The file bodies of ``storage``'s schema (its DSN names the database and schema)."""
    from .connection import connect

    return PostgresBlobs(lambda: connect(storage.dsn, storage.busy_timeout))
