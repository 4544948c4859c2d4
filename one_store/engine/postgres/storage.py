"""The PostgreSQL engine: a database many processes and machines share.

:class:`PgStorage` implements :class:`~one_store.engine.backend.Backend` over
one psycopg connection (autocommit; the engine sends ``BEGIN``/``COMMIT``),
guarded by a re-entrant lock held for the length of each transaction, as the
SQLite engine guards its connection. The layout is in
:mod:`one_store.engine.postgres.layout`, DDL in
:mod:`~one_store.engine.postgres.ddl`, transactions (the advisory write lock)
in :mod:`~one_store.engine.postgres.transactions`, scans in
:mod:`~one_store.engine.postgres.scans`, the change log and ``LISTEN`` in
:mod:`~one_store.engine.postgres.changes`.

Text search (:mod:`~one_store.engine.postgres.text_search`) and vector search
(:mod:`~one_store.engine.postgres.vector_tables`) keep side tables written in
each document's transaction; file bodies and SQL views plug in through
:mod:`one_store.engine.postgres.extras` (its docstring is the seam).

Creation times are safe across processes: the newest ``_creationTime`` handed
out is kept in ``_one_store_meta`` (``creation_time``), read when a write
takes the lock and raised in the same round trip as its ``COMMIT``, so the
next one is above every one handed out by any process.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ...model import ids
from ...model.errors import ContextError, StorageError, StorageFailure
from ...model.schema import Schema, TableDefinition
from ...model.values import Document, dumps, load_parser, loads
from ..backend import (
    Backend,
    BlobStore,
    Change,
    Features,
    IndexScan,
    Row,
    Rows,
    SearchScan,
    TableInfo,
    VectorScan,
)
from . import changes, connection, ddl, extras, scans, text_search, vector_tables
from .layout import META, TABLES, PgTableLayout, quote
from .transactions import ReadTransaction, WriteTransaction, commit_sql, write_begin_sql

if TYPE_CHECKING:
    import psycopg

SYSTEM_TABLE_NUMBERS = {"_scheduled_functions": 9001, "_storage": 9002}
FEATURES = Features(
    vendor="postgresql", equality_prefilter=True, ranked_search_top=True
)


class PgStorage:
    """Convex tables in a PostgreSQL schema. Thread-safe.

    Args:
        dsn: a ``postgresql://`` (or ``postgres://``) connection string; the
            tables live in the connection's current schema (``search_path``).
        busy_timeout: seconds a writer waits for another's lock before ``Busy``
            (also the connect timeout).
        readonly: create nothing; :meth:`write` raises ``ContextError``.

    Raises:
        StorageFailure: the database cannot be reached or used (the DSN without
            its password, and PostgreSQL's reason).
    """

    features = FEATURES
    follows_others = True  # other processes and machines write the same tables

    def __init__(
        self, dsn: str, *, busy_timeout: float = 5.0, readonly: bool = False
    ) -> None:
        if not connection.is_dsn(dsn):
            raise ValueError(f"not a PostgreSQL DSN: {connection.redacted(dsn)!r}")
        self.dsn = dsn
        self.location = connection.redacted(dsn)
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        self.lock = threading.RLock()
        self.in_write = False
        self.in_read = False
        self.layouts: dict[str, PgTableLayout] = {}
        self._numbers: dict[int, str] = {}
        self._generation: str | None = None
        self._log: changes.ChangeLog | None = None
        self._last = 0.0  # the newest _creationTime handed out, as known here
        self._newest: float | None = None  # handed out by the open write
        self._listener: changes.Listener | None = None
        self._listening = threading.Lock()
        self._closed = False
        self.vectors = vector_tables.VectorCaches()  # vector indexes, in memory
        try:
            self._connection = connection.connect(dsn, busy_timeout)
        except Exception as e:
            raise StorageFailure(connection.open_problem(dsn, e)) from e
        try:
            self.schema = connection.schema_name(self._connection)
        except Exception as e:
            self._connection.close()
            raise StorageFailure(connection.open_problem(dsn, e)) from e
        self._lock_key = connection.lock_key(self.schema)
        self._channel = connection.channel(self.schema)
        try:
            self._bootstrap()
        except StorageFailure as e:
            self._connection.close()
            raise StorageFailure(connection.named(self.location, e.problem)) from e
        except BaseException as e:
            self._connection.close()
            if connection.is_error(e):
                raise StorageFailure(connection.open_problem(dsn, e)) from e
            raise
        self.blobs: BlobStore = extras.blob_store(self)
        load_parser()

    # ------------------------------------------------------------------ connection

    @property
    def connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The live connection; a lost one is replaced between transactions."""
        c = self._connection
        if (c.closed or c.broken) and not (
            self.in_write or self.in_read or self._closed
        ):
            with contextlib.suppress(Exception):
                c.close()
            try:
                self._connection = c = connection.connect(self.dsn, self.busy_timeout)
            except Exception as e:
                raise StorageFailure(connection.classify(e)) from e
            self._generation = None  # re-read the layouts
        return c

    def _bootstrap(self) -> None:
        c = self._connection
        if self.readonly:  # creates nothing: the tables must be there
            if not ddl.has_bookkeeping(c):
                raise StorageFailure(
                    StorageError(f"no one_store tables in schema {self.schema!r}")
                )
            with self.read():
                ddl.check_layout_version(self.meta("layout_version"))
            return
        ddl.bootstrap(c, self._lock_key, self._timeout_ms())
        with self.read():
            pass  # loads the layouts

    def _timeout_ms(self) -> int:
        return max(1, round(self.busy_timeout * 1000))

    # ------------------------------------------------------------------ transactions

    def write(self) -> WriteTransaction:
        """A write transaction holding the schema's write lock; commits on exit.

        Raises:
            ContextError: the store was opened with ``readonly=True``.
        """
        if self.readonly:
            raise ContextError(
                f"This store opened {self.location!r} read-only (readonly=True): it "
                "cannot write. Open it without readonly=True to run mutations."
            )
        return WriteTransaction(self)

    transaction = write

    def read(self) -> ReadTransaction:
        """A read transaction: every read inside sees one snapshot."""
        return ReadTransaction(self)

    def write_sql(self) -> str:
        """The statements that begin a write (see :mod:`.transactions`)."""
        return write_begin_sql(self._lock_key, self._timeout_ms())

    def write_begun(self, meta: dict[str, str]) -> None:
        """The lock is held: reload stale layouts, learn the newest creation time."""
        self._newest = None
        if meta.get("generation") != self._generation:
            self.reload_layouts()
        self._last = max(self._last, float(meta.get("creation_time", 0.0)))

    def read_begun(self, generation: str | None) -> None:
        """A read began: reload the layouts when another process changed them."""
        if generation != self._generation:
            self.reload_layouts()

    def commit_statement(self) -> str:
        """``COMMIT``, with the newest creation time and the change log's ``NOTIFY``."""
        notify = self._log is not None and self._log.wrote
        if self._log is not None:
            self._log.wrote = False
        newest, self._newest = self._newest, None
        return commit_sql(newest, self._channel if notify else None)

    def roll_back(self) -> None:
        """Roll back the open transaction; the layouts are re-read at the next one."""
        was_write = self.in_write
        self.in_write = self.in_read = False
        c = self._connection
        if not (c.closed or c.broken):
            with contextlib.suppress(Exception):
                c.execute("ROLLBACK")
        if was_write:
            self._newest = None
            self._generation = None  # DDL may have been rolled back with it
            if self._log is not None:
                self._log.forget()

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A sub-transaction of the open write: an exception rolls back only its writes."""
        c = self.connection
        c.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            try:
                c.execute("ROLLBACK TO SAVEPOINT nested; RELEASE SAVEPOINT nested")
                self.reload_layouts()  # a table created inside it is gone again
            except Exception as e:
                if connection.is_error(e):
                    raise StorageFailure(connection.classify(e)) from e
                raise
            raise
        c.execute("RELEASE SAVEPOINT nested")

    # ------------------------------------------------------------------ layout

    def reload_layouts(self) -> None:
        """Re-read every table's layout (and whether a change log is kept)."""
        c = self.connection
        self.layouts.clear()
        self._numbers.clear()
        for layout in ddl.load_tables(c):
            self.layouts[layout.name] = layout
            self._numbers[layout.number] = layout.name
        old = self._log
        if ddl.has_change_log(c):
            self._log = changes.ChangeLog()
            if old is not None:  # a savepoint rolled back: keep the write's state
                self._log.keep, self._log.wrote = old.keep, old.wrote
        else:
            self._log = None
        self._generation = self.meta("generation")

    def _own(self, table: TableInfo) -> PgTableLayout:
        return table if isinstance(table, PgTableLayout) else self.layouts[table.name]

    def meta(self, key: str) -> str | None:
        """A setting kept in ``_one_store_meta``."""
        row = self.connection.execute(
            f"SELECT value FROM {META} WHERE key = %s", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Keep a setting in ``_one_store_meta`` (inside the current write)."""
        self.connection.execute(
            f"INSERT INTO {META}(key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def tables(self) -> list[str]:
        """Names of the user tables (system tables excluded)."""
        return sorted(n for n in self.layouts if not n.startswith("_"))

    def table_number(self, table: str) -> int:
        """The ID table number of ``table`` (KeyError if there is no such table)."""
        return self.layouts[table].number

    def table_of(self, number: int) -> str | None:
        """The table an ID's table number belongs to, or None."""
        return self._numbers.get(number)

    def ensure_table(
        self,
        table: str,
        definition: TableDefinition | None = None,
        number: int | None = None,
        document: str | None = None,
    ) -> PgTableLayout:
        """Create ``table`` (inside the current write) if it does not exist."""
        layout = self.layouts.get(table)
        if layout is not None:
            return layout
        if number is None:
            number = SYSTEM_TABLE_NUMBERS.get(table) or 1 + max(
                [ids.FIRST_USER_TABLE_NUMBER - 1]
                + [n for n in self._numbers if n >= ids.FIRST_USER_TABLE_NUMBER]
            )
        if number in self._numbers:
            used = f"table number {number} is already used by {self._numbers[number]!r}"
            raise StorageFailure(StorageError(used))
        indexes = (definition or TableDefinition(_any())).all_indexes()
        side = definition.side_indexes() if definition else ()
        ddl.create_table(self.connection, table, number, indexes, side, document)
        layout = PgTableLayout.build(table, number, indexes, side)
        self.layouts[table] = layout
        self._numbers[number] = table
        self._generation = self.meta("generation")
        return layout

    def schema_fingerprint(self) -> str | None:
        """The fingerprint of the schema the database was last synced with."""
        return self.meta("schema")

    def checked_documents(self) -> dict[str, str]:
        """Per table, the validator text :meth:`sync_schema` recorded as checked."""
        return ddl.checked_documents(self.connection)

    def sync_schema(self, schema: Schema, documents: Mapping[str, str]) -> None:
        """Create and back-fill what ``schema`` adds (in the caller's write)."""
        c = self.connection
        for name, definition in schema.tables.items():
            layout = self.layouts.get(name)
            if layout is None:
                self.ensure_table(name, definition, document=documents.get(name))
            elif ddl.needs_migration(layout, definition):
                ddl.migrate(c, layout, definition, documents.get(name))
            else:
                ddl.record_spec(c, name, definition, documents.get(name))
        ddl.forget_checked(c, set(schema.tables))
        self.reload_layouts()
        views = extras.views()
        if views is not None:
            views.sync(c, schema, self.layouts)
        if self.meta("views") is None:
            self.set_meta("views", "[]")  # no views made (see extras)
        self.set_meta("schema", schema.fingerprint())
        ddl.bump_generation(c)
        self.reload_layouts()

    def rows(self, table: str, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """``(_id, stored JSON)`` of every document, in ``_id`` order, ``batch`` at a time."""
        if table in self.layouts:
            yield from scans.rows(self.connection, table, batch)

    # ------------------------------------------------------------------ creation times

    def next_creation_time(self, now_ms: float) -> float:
        """Base ``_creationTime`` for the open write: above every one handed out."""
        return max(math.nextafter(self._last, math.inf), now_ms)

    def record_creation_time(self, last: float) -> None:
        """Remember the last ``_creationTime`` a committed write handed out."""
        self._last = max(self._last, last)

    def note_rollback(self, last_known: float) -> None:
        """Forget creation times handed out by a write that rolled back."""
        self._last = last_known

    @property
    def last_creation_time(self) -> float:
        """The newest ``_creationTime`` handed out, as this store knows it."""
        return self._last

    # ------------------------------------------------------------------ documents

    def get(self, table: TableInfo, doc_id: str) -> Document | None:
        """Read one document by ID."""
        text = self.get_text(table, doc_id)
        if text is None:
            return None
        doc: Document = loads(text)
        return doc

    def get_text(self, table: TableInfo, doc_id: str) -> str | None:
        """Read one document's stored JSON text."""
        layout = self._own(table)
        row = self.connection.execute(layout.get_sql, (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def insert(self, table: TableInfo, doc: Document, text: str | None = None) -> None:
        """Insert a document (system fields set) and its index keys."""
        layout = self._own(table)
        c = self.connection
        c.execute(layout.insert_sql, layout.row(doc, text))
        if layout.search_indexes:
            text_search.index_document(c, layout, doc)
        if layout.vector_indexes:
            vector_tables.index_document(c, layout, doc)
        if self._log is not None:
            self._log.record(c, layout, str(doc["_id"]), None, doc)
        created = doc["_creationTime"]
        if isinstance(created, float) and (
            self._newest is None or created > self._newest
        ):
            self._newest = created

    def update(
        self,
        table: TableInfo,
        doc: Document,
        text: str | None = None,
        previous: Document | None = None,
    ) -> None:
        """Overwrite a document (same ``_id``), setting only the keys that changed."""
        layout = self._own(table)
        c = self.connection
        doc_id = str(doc["_id"])
        if previous is None and (layout.side or self._log is not None):
            stored = self.get_text(layout, doc_id)
            previous = None if stored is None else loads(stored)
        positions, values = layout.changed_keys(doc, previous)
        c.execute(
            layout.partial_update_sql(positions),
            (dumps(doc) if text is None else text, *values, doc_id),
        )
        if previous is not None and layout.search_indexes:
            text_search.reindex_document(c, layout, previous, doc)
        if previous is not None and layout.vector_indexes:
            vector_tables.reindex_document(c, layout, previous, doc)
        if self._log is not None:
            self._log.record(c, layout, doc_id, previous, doc)

    def delete(self, table: TableInfo, doc_id: str) -> bool:
        """Delete a document and its index keys; False when there is no such document."""
        layout = self._own(table)
        c = self.connection
        row = c.execute(layout.delete_sql, (doc_id,)).fetchone()
        if row is None:
            return False
        if layout.search_indexes:
            text_search.unindex_document(c, layout, doc_id)
        if layout.vector_indexes:
            vector_tables.unindex_document(c, layout, doc_id)
        if self._log is not None:
            self._log.record(c, layout, doc_id, loads(row[1]), None)
        return True

    # ------------------------------------------------------------------ change log

    def enable_change_log(self) -> int:
        """Keep a change log from now on (every process); the newest ``seq``."""
        with self.lock:
            if not ddl.has_change_log(self.connection):
                with self.write():
                    changes.create(self.connection)
                    ddl.bump_generation(self.connection)
                    self.reload_layouts()
            return changes.newest(self.connection)

    def changes_since(self, seq: int) -> list[Change]:
        """The writes logged after ``seq`` (one statement)."""
        with self.lock:
            if self._log is None:
                return []
            try:
                return changes.since(self.connection, seq)
            except Exception as e:
                if connection.is_error(e):
                    raise StorageFailure(connection.classify(e)) from e
                raise

    def recent_changes(self, after: int) -> list[Change] | None:
        """This connection's own writes logged after ``after``, if it kept them all."""
        with self.lock:
            return None if self._log is None else self._log.recent_after(after)

    def data_version(self) -> int:
        """Moves when any process commits logged changes (``LISTEN``; no transaction)."""
        with self._listening:  # not the storage's lock: a long write never delays it
            if self._closed:
                raise StorageFailure(StorageError(f"{self.location!r} is closed"))
            if self._listener is None:
                self._listener = changes.Listener(
                    self.dsn, self._channel, self.busy_timeout
                )
            try:
                return self._listener.version()
            except Exception as e:
                if connection.is_error(e):
                    raise StorageFailure(connection.classify(e)) from e
                raise

    # ------------------------------------------------------------------ scans

    def index_rows(self, scan: IndexScan) -> Rows:
        """The rows of an index range scan, in keyset batches."""
        return scans.index_rows(self.connection, scan)

    def search_rows(self, scan: SearchScan, max_results: int) -> Rows:
        """The first ``max_results`` matches of a search, in Convex's order."""
        return text_search.search_rows(self.connection, scan, max_results)

    def search_top(
        self, scan: SearchScan, n: int, max_results: int
    ) -> list[Row] | None:
        """The first ``n`` matches, ranked and ordered in SQL (never None)."""
        return text_search.search_top(self.connection, scan, n, max_results)

    def vector_search(self, scan: VectorScan) -> list[tuple[str, float]]:
        """The best matches of a vector search, at one snapshot of the latest commits."""
        return self.vectors.search_in(self, scan)  # NumPy ranks after the read

    def first_in_range(
        self, table: str, index: str, low: bytes, high: bytes | None
    ) -> Document | None:
        """The first document of an index range (lowest key), or None."""
        if table not in self.layouts:
            return None
        return next(scans.documents(self.connection, table, index, low, high, 1), None)

    def range_documents(
        self, table: str, index: str, low: bytes, high: bytes | None
    ) -> list[Document]:
        """Every document of an index range, in key order."""
        if table not in self.layouts:
            return []
        return list(scans.documents(self.connection, table, index, low, high))

    def scan(self, table: str) -> Iterator[Document]:
        """Every document of ``table`` in ``_creationTime`` order."""
        if table in self.layouts:
            yield from scans.documents(self.connection, table, "by_creation_time")

    # ------------------------------------------------------------------ bulk / tools

    def write_raw(self, table: str, doc: Document) -> None:
        """Insert a document with its own ``_id`` and ``_creationTime`` (imports)."""
        number = ids.table_number_of(doc.get("_id"))
        layout = self.layouts.get(table) or self.ensure_table(table, None, number)
        self.insert(layout, doc)
        created = doc.get("_creationTime")
        if isinstance(created, float) and created > self._last:
            self._last = created

    def renumber(self, moves: Mapping[str, int]) -> None:
        """Give existing (empty) tables new ID table numbers (snapshot import)."""
        if not moves:
            return
        c = self.connection
        sql = f"UPDATE {TABLES} SET number = %s WHERE name = %s"
        for step, name in enumerate(moves, 1):
            c.execute(sql, (-step, name))
        for name, number in moves.items():
            c.execute(sql, (number, name))
        ddl.bump_generation(c)
        self.reload_layouts()

    def clear(self, table: str) -> None:
        """Delete every document of ``table`` (inside the caller's write)."""
        layout = self.layouts.get(table)
        if layout is None:
            return
        c = self.connection
        if self._log is not None:
            self._log.cleared(c, layout)
        c.execute(f"DELETE FROM {quote(table)}")
        if layout.search_indexes:
            text_search.clear(c, layout)
        if layout.vector_indexes:
            vector_tables.clear(c, layout)

    def count(self, table: str) -> int:
        """Number of documents in ``table``."""
        if table not in self.layouts:
            return 0
        row = self.connection.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Close the connections."""
        with self.lock, self._listening:
            self._closed = True
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            with contextlib.suppress(Exception):
                self.blobs.close()
            self._connection.close()


def _any() -> Any:
    from ...model.validators import v

    return v.any()


# Checked by mypy: PgStorage implements every method of the Backend protocol.
_IMPLEMENTS: type[Backend] = PgStorage
