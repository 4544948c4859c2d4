"""The SQLite engine: one connection, its transactions, documents and scans.

:class:`Storage` implements :class:`~one_store.engine.backend.Backend` over a
SQLite file (or memory). The file's layout is described in
:mod:`one_store.engine.sqlite.layout`; DDL and migrations (sqlite-utils) are in
:mod:`one_store.engine.sqlite.ddl`; the SQL of scans in
:mod:`one_store.engine.sqlite.scans`. SQL text lives in these modules only.

Hot paths (get/insert/update/delete/range scans) go straight to the ``sqlite3``
connection with fixed SQL text (sqlite3 caches the prepared statements);
sqlite-utils would add 2-3x per call.

A :class:`Storage` is thread-safe: one connection, one re-entrant lock held for the
length of each transaction. Processes serialise writers through SQLite's own lock
(``BEGIN IMMEDIATE`` waits up to ``busy_timeout``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ...model import ids
from ...model.errors import ContextError, StorageError
from ...model.errors import StorageFailure as StorageFailure  # callers catch it here
from ...model.keys import sort_key
from ...model.schema import Schema, TableDefinition
from ...model.values import Document, dumps, load_parser, loads
from ..backend import (
    Backend,
    Change,
    Features,
    IndexScan,
    Row,
    Rows,
    SearchScan,
    TableInfo,
    VectorScan,
)
from . import blobs, changes, connection, ddl, scans, vectors, views
from .layout import (
    LAYOUT_VERSION,
    TABLES,
    SideLayout,
    TableLayout,
    parse_spec,
    quote,
    read_meta,
    write_meta,
)
from .transactions import CreationClock, ReadTransaction, WriteTransaction
from .transactions import classify as classify  # re-exported: callers map errors

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_CACHE_MIB = 64
SYSTEM_TABLE_NUMBERS = {"_scheduled_functions": 9001, "_storage": 9002}
FEATURES = Features(vendor="sqlite", equality_prefilter=True, ranked_search_top=True)


class Storage:
    """A SQLite file (or memory) holding Convex tables. Thread-safe.

    Args:
        path: a file path, or ``":memory:"``.
        busy_timeout: seconds to wait for another writer's lock before ``Busy``.
        synchronous: SQLite ``synchronous`` setting for WAL files (``"NORMAL"``
            survives process crashes; ``"FULL"`` also survives power loss).
        cache_mib: the connection's page cache, in MiB (SQLite's default is 2).
        readonly: open an existing file read-only (SQLite's ``mode=ro``): nothing
            is created or migrated, and :meth:`write` raises ``ContextError``.

    Raises:
        ValueError: ``synchronous`` is not a SQLite setting, ``cache_mib`` is
            not a positive whole number, or ``readonly`` with ``":memory:"``.
        StorageFailure: the file cannot be opened (the path, and why if known).
    """

    features = FEATURES

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        cache_mib: int = DEFAULT_CACHE_MIB,
        readonly: bool = False,
    ) -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS)}, got {synchronous!r}"
            )
        if type(cache_mib) is not int or cache_mib < 1:  # bool is no number here
            raise ValueError(
                f"cache_mib must be a whole number of MiB >= 1, got {cache_mib!r}"
            )
        self.path = str(path)
        if readonly and self.path == ":memory:":
            raise ValueError("readonly=True needs a file; a new memory store is empty")
        self.readonly = readonly
        self.lock = threading.RLock()
        self._log: changes.ChangeLog | changes.NoLog = changes.NO_LOG  # none yet
        self.blobs = blobs.BlobFolder.beside(self.path)  # stored files' bodies
        self.vectors = vectors.VectorCaches()  # vector indexes, in memory
        try:
            self.connection = connection.connect(self.path, busy_timeout, readonly)
        except sqlite3.Error as e:
            raise StorageFailure(connection.open_problem(self.path, e, readonly)) from e
        try:
            self._configure(synchronous, cache_mib)
            self.layouts: dict[str, TableLayout] = {}
            self._numbers: dict[int, str] = {}
            self.clock = CreationClock(self.connection)
            # The file's schema cookie the cached layouts match (_bootstrap loads them).
            self._schema_version = self._cookie()
            self._bootstrap()
        except BaseException as e:
            self.connection.close()
            if isinstance(e, sqlite3.Error):
                problem = connection.open_problem(self.path, e, readonly)
                raise StorageFailure(problem) from e
            if isinstance(e, StorageFailure):  # from a transaction of _bootstrap
                raise StorageFailure(connection.named(self.path, e.problem)) from e
            raise
        load_parser()  # deferred from `import one_store`: a store reads documents

    def _configure(self, synchronous: str, cache_mib: int) -> None:
        c = self.connection
        # SQLite's 2 MiB default holds little of a 100,000-document table
        # (benchmarks/RESULTS.md); pages are only allocated as they are read.
        c.execute(f"PRAGMA cache_size=-{int(cache_mib) * 1024}")
        if self.path != ":memory:" and not self.readonly:
            mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageFailure(StorageError(f"could not enable WAL (got {mode})"))
        c.execute(f"PRAGMA synchronous={synchronous}")
        c.execute("PRAGMA foreign_keys=OFF")

    # ------------------------------------------------------------------ layout

    def _bootstrap(self) -> None:
        if self.readonly:
            # Read what the file holds, create nothing: a file that is not (yet)
            # a one_store file reads as one without tables.
            with self.read():
                if ddl.has_bookkeeping(self.connection):
                    ddl.check_layout_version(self.meta("layout_version"))
                self.reload_layouts()
            return
        with self.write():
            if not ddl.has_bookkeeping(self.connection):
                ddl.create_bookkeeping(self.connection)
            version = self.meta("layout_version")
            if version is None:
                self.set_meta("layout_version", str(LAYOUT_VERSION))
            ddl.check_layout_version(version)
            self.reload_layouts()

    def meta(self, key: str) -> str | None:
        """A setting kept in ``_one_store_meta`` (layout version, schema fingerprint)."""
        return read_meta(self.connection, key)

    def set_meta(self, key: str, value: str) -> None:
        """Keep a setting in ``_one_store_meta`` (inside the current write)."""
        write_meta(self.connection, key, value)

    def reload_layouts(self) -> None:
        """Re-read every table's layout from the file.

        Needed after rolling back DDL (a ``ROLLBACK TO`` a savepoint undoes a
        ``CREATE TABLE`` but leaves this connection's cached layout behind).
        Tables created or changed by *other* connections are picked up at the
        start of every transaction without this (see :meth:`refresh_layouts`).
        """
        self.layouts.clear()
        self._numbers.clear()
        if self.readonly and not ddl.has_bookkeeping(self.connection):
            # A read-only open of a file one_store never wrote: no tables.
            self._schema_version = self._cookie()
            return
        for name, number, spec in self.connection.execute(
            f"SELECT name, number, indexes FROM {TABLES}"
        ):
            indexes, search = parse_spec(spec)
            self.layouts[name] = TableLayout.build(name, number, indexes, search)
            self._numbers[number] = name
        log = changes.exists(self.connection)
        self._log = changes.ChangeLog(self.connection) if log else changes.NO_LOG
        self._schema_version = self._cookie()

    def _cookie(self) -> int:
        return int(self.connection.execute("PRAGMA schema_version").fetchone()[0])

    def refresh_layouts(self) -> None:
        """Reload the layouts when the file's schema changed since they were read.

        SQLite bumps the ``schema_version`` cookie on every DDL statement of any
        connection: another process that created a table (a schemaless insert,
        the scheduler's system table, a newer schema) is seen here, in the
        transaction that just began, instead of failing with "table already
        exists" or reading an empty table.
        """
        if self._cookie() != self._schema_version:
            self.reload_layouts()

    def _own(self, table: TableInfo) -> TableLayout:
        """This engine's layout of ``table`` (the one it handed out, as a rule)."""
        return table if isinstance(table, TableLayout) else self.layouts[table.name]

    def tables(self) -> list[str]:
        """Names of the user tables in the file (system tables excluded)."""
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
    ) -> TableLayout:
        """Create ``table`` (inside the current write transaction) if it does not exist.

        ``document`` is the validator text to record as checked (see
        :meth:`sync_schema`); a table created by a write records none.
        """
        layout = self.layouts.get(table)
        if layout is not None:
            return layout
        if number is None:
            number = (
                SYSTEM_TABLE_NUMBERS.get(table)
                or max(
                    [ids.FIRST_USER_TABLE_NUMBER - 1]
                    + [n for n in self._numbers if n >= ids.FIRST_USER_TABLE_NUMBER]
                )
                + 1
            )
        if number in self._numbers:
            used = f"table number {number} is already used by {self._numbers[number]!r}"
            raise StorageFailure(StorageError(used))
        indexes = (definition or TableDefinition(_any())).all_indexes()
        search = definition.side_indexes() if definition else ()
        ddl.create_table(self.connection, table, number, indexes, search, document)
        layout = TableLayout.build(table, number, indexes, search)
        self.layouts[table] = layout
        self._numbers[number] = table
        # The cache now matches the file's schema including this DDL; a rollback
        # reloads (and re-reads the cookie), so no other connection's change hides.
        self._schema_version = self._cookie()
        return layout

    def schema_fingerprint(self) -> str | None:
        """The fingerprint of the schema the file was last synced with, if any."""
        return self.meta("schema")

    def checked_documents(self) -> dict[str, str]:
        """Per table, the validator text :meth:`sync_schema` recorded as checked.

        A table with no entry has documents no validator was enforced on.
        """
        return ddl.checked_documents(self.connection)

    def sync_schema(self, schema: Schema, documents: Mapping[str, str]) -> None:
        """Bring the file's tables and indexes in line with ``schema``.

        New tables and indexes are created and back-filled; removed indexes are
        dropped. ``documents`` (table -> validator text) is recorded as checked;
        other tables' records are cleared. Runs in the caller's write
        transaction, after the caller checked the stored documents.
        """
        for name, definition in schema.tables.items():
            layout = self.layouts.get(name)
            if layout is None:
                self.ensure_table(name, definition, document=documents.get(name))
            elif ddl.needs_migration(layout, definition):
                ddl.migrate(self.connection, layout, definition, documents.get(name))
            else:
                ddl.record_spec(self.connection, name, definition, documents.get(name))
        ddl.forget_checked(self.connection, set(schema.tables))
        if self.path != ":memory:":  # no other tool can open a memory database
            views.sync(self.connection, schema, self.layouts)  # <table>_view per table
        self.set_meta("schema", schema.fingerprint())
        self.reload_layouts()

    def rows(self, table: str, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """``(_id, stored JSON)`` of every document, in rowid order, ``batch`` at a time."""
        if table not in self.layouts:
            return
        cursor = self.connection.execute(
            f"SELECT _id, _body FROM {quote(table)} ORDER BY rowid"
        )
        while chunk := cursor.fetchmany(batch):
            yield from chunk

    # ------------------------------------------------------------------ transactions

    def write(self) -> WriteTransaction:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, else roll back.

        Raises:
            ContextError: the file was opened with ``readonly=True``.
        """
        if self.readonly:
            message = f"This store opened {self.path!r} read-only (readonly=True): it cannot write."
            raise ContextError(
                f"{message} Open it without readonly=True to run mutations."
            )
        return WriteTransaction(self)

    transaction = write

    def read(self) -> ReadTransaction:
        """A read transaction: every read inside sees one snapshot."""
        return ReadTransaction(self)

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A sub-transaction of the open one: an exception rolls back only its writes."""
        c = self.connection
        c.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            c.execute("ROLLBACK TO nested")
            c.execute("RELEASE nested")
            # A table created inside it is gone again: forget its layout too.
            self.reload_layouts()
            raise
        c.execute("RELEASE nested")

    def roll_back(self) -> None:
        """Roll back the open transaction, if any, and re-read the layouts."""
        c = self.connection
        if c.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
        # DDL may have been rolled back with it: re-read what really exists.
        with contextlib.suppress(sqlite3.Error):
            self.reload_layouts()

    def next_creation_time(self, now_ms: float) -> float:
        """Base ``_creationTime`` for a write transaction that just began."""
        return self.clock.next(now_ms, self.layouts)

    def record_creation_time(self, last: float) -> None:
        """Remember the last ``_creationTime`` handed out by a committed transaction."""
        self.clock.record(last)

    def note_rollback(self, last_known: float) -> None:
        """Forget creation times handed out by a transaction that rolled back."""
        self.clock.rolled_back(last_known)

    @property
    def last_creation_time(self) -> float:
        """The last ``_creationTime`` committed by this connection (or read from the file)."""
        return self.clock.last

    # ------------------------------------------------------------------ documents

    def get(self, table: TableInfo, doc_id: str) -> Document | None:
        """Read one document by ID from its table."""
        text = self.get_text(table, doc_id)
        if text is None:
            return None
        doc: Document = loads(text)
        return doc

    def get_text(self, table: TableInfo, doc_id: str) -> str | None:
        """Read one document's stored JSON text (every ``db.get`` comes here)."""
        # The layout inline rather than through _own(): a call is ~10% of this.
        layout = table if isinstance(table, TableLayout) else self.layouts[table.name]
        row = self.connection.execute(layout.get_sql, (doc_id,)).fetchone()
        if row is None:
            return None
        text: str = row[0]
        return text

    def insert(self, table: TableInfo, doc: Document, text: str | None = None) -> None:
        """Insert a document (system fields set) and its index keys."""
        layout = self._own(table)
        cursor = self.connection.execute(layout.insert_sql, layout.row(doc, text))
        for s in layout.side:
            self._search_insert(s, cursor.lastrowid or 0, doc)
        self._log.inserted(layout, doc)

    def update(
        self,
        table: TableInfo,
        doc: Document,
        text: str | None = None,
        previous: Document | None = None,
    ) -> None:
        """Overwrite a document (same ``_id``) and its index keys.

        With ``previous`` (the document as stored), unchanged index keys and
        search entries are left alone (no index rewrite, no FTS5 churn).
        """
        layout = self._own(table)
        self._log.updated(layout, previous, doc)
        if previous is None:
            row = layout.row(doc, text)
            self.connection.execute(layout.update_sql, (*row[1:], row[0]))
        else:
            # Set only the key columns whose value changed: SQLite then leaves the
            # other indexes' b-trees alone (a patch of two fields rewrote all
            # three key indexes, about as many WAL pages as the change itself).
            # The system fields, _creationTime included, never change here, so
            # the keys' shared tail does not either: the field parts are compared.
            columns: list[int] = []
            values: list[bytes] = []
            tail = b""
            for position, fn in enumerate(layout.prefix_fns, 3):
                if fn is None:
                    continue
                key = fn(doc)
                if key != fn(previous):
                    if not tail:
                        tail = sort_key(doc["_creationTime"]) + sort_key(doc["_id"])
                    columns.append(position)
                    values.append(key + tail)
            self.connection.execute(
                layout.partial_update_sql(tuple(columns)),
                (dumps(doc) if text is None else text, *values, doc["_id"]),
            )
        if not layout.side:
            return
        stale = [
            s
            for s in layout.side
            if previous is None or not s.same_entry(previous, doc)
        ]
        if not stale:
            return
        (rowid,) = self.connection.execute(layout.rowid_sql, (doc["_id"],)).fetchone()
        for s in stale:
            self.connection.execute(s.delete_sql, (rowid,))
            self._search_insert(s, rowid, doc)

    def _search_insert(self, s: SideLayout, rowid: int, doc: dict[str, Any]) -> None:
        row = s.row(doc)
        if row is None:  # not a string (search), not a vector (vectors): as Convex
            return
        self.connection.execute(s.insert_sql, (rowid, *row))

    def delete(self, table: TableInfo, doc_id: str) -> bool:
        """Delete a document and its index keys; False when there is no such document."""
        layout = self._own(table)
        self._log.deleting(layout, doc_id)
        row = self.connection.execute(layout.delete_sql, (doc_id,)).fetchone()
        if row is None:
            return False
        created, rowid = float(row[0]), row[1]
        for s in layout.side:
            self.connection.execute(s.delete_sql, (rowid,))
        if created >= self.clock.last:
            self.clock.deleted(created)
        return True

    def enable_change_log(self) -> int:
        """Keep a change log from now on (every process); the newest ``seq``."""
        if not changes.exists(self.connection):
            with self.write():
                changes.create(self.connection)
                self.reload_layouts()
        return changes.newest(self.connection)

    def changes_since(self, seq: int) -> list[Change]:
        """The writes logged after ``seq`` (one statement: no transaction needed)."""
        with self.lock:
            logs = self._log is not changes.NO_LOG
            return changes.since(self.connection, seq) if logs else []

    def recent_changes(self, after: int) -> list[Change] | None:
        """This connection's own writes logged after ``after``, if it kept them all."""
        with self.lock:
            return self._log.recent_after(after)

    def data_version(self) -> int:
        """``PRAGMA data_version``: moves when another connection commits."""
        return changes.data_version(self.connection)

    def index_rows(self, scan: IndexScan) -> Rows:
        """The rows of an index range scan (the cursor itself: no wrapper)."""
        if scan.index == "by_id":
            return scans.id_rows(self.connection, scan)
        return self.connection.execute(*scans.index_scan_sql(scan))

    def search_rows(self, scan: SearchScan, max_results: int) -> Rows:
        """The first ``max_results`` matches of a search, in Convex's order."""
        return scans.search_rows(self.connection, scan, max_results)

    def search_top(
        self, scan: SearchScan, n: int, max_results: int
    ) -> list[Row] | None:
        """The first ``n`` matches of a search, ranked on its FTS5 table alone."""
        return scans.search_top(self.connection, scan, n, max_results)

    def vector_search(self, scan: VectorScan) -> list[tuple[str, float]]:
        """The best matches of a vector search (see :mod:`.vectors`), best first."""
        return self.vectors.search(self, scan)

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
        if isinstance(created, float) and created > self.clock.last:
            self.clock.record(created)

    def renumber(self, moves: Mapping[str, int]) -> None:
        """Give existing (empty) tables new ID table numbers (snapshot import).

        Two steps through negative numbers, so swapping two never trips UNIQUE.
        """
        if not moves:
            return
        c = self.connection
        for step, name in enumerate(moves, 1):
            c.execute(f"UPDATE {TABLES} SET number=? WHERE name=?", (-step, name))
        for name, number in moves.items():
            c.execute(f"UPDATE {TABLES} SET number=? WHERE name=?", (number, name))
        self.reload_layouts()

    def clear(self, table: str) -> None:
        """Delete every document of ``table`` (inside the caller's transaction)."""
        layout = self.layouts.get(table)
        if layout is None:
            return
        sql = f"SELECT max(_creationTime) FROM {quote(table)}"
        (created,) = self.connection.execute(sql).fetchone()
        self._log.cleared(layout)
        if created is not None:
            self.clock.deleted(float(created))
        self.connection.execute(f"DELETE FROM {quote(table)}")
        for s in layout.side:
            self.connection.execute(s.clear_sql)

    def count(self, table: str) -> int:
        """Number of documents in ``table``."""
        if table not in self.layouts:
            return 0
        sql = f"SELECT count(*) FROM {quote(table)}"
        return int(self.connection.execute(sql).fetchone()[0])

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self.lock:
            with contextlib.suppress(sqlite3.Error):
                if self.path != ":memory:" and not self.readonly:
                    self.connection.execute("PRAGMA optimize")
            self.connection.close()
            self.blobs.close()


def _any() -> Any:
    from ...model.validators import v

    return v.any()


# Checked by mypy: Storage implements every method of the Backend protocol with
# compatible signatures, so the protocol and the engine cannot drift apart.
_IMPLEMENTS: type[Backend] = Storage
