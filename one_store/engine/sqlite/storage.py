"""SQLite storage: the only module that speaks SQL.

Layout (version 1), readable by any SQLite tool:

- ``_one_store_meta(key, value)``: layout version, schema fingerprint, the last
  ``_creationTime`` handed out (so it keeps increasing across processes).
- ``_one_store_tables(name, number, indexes)``: every table with its ID table number
  and its index definitions (JSON), so a file opened without a schema still knows
  its indexes; the same JSON keeps, under ``"document"``, the document validator
  (Convex's JSON, as text) that every stored document of the table was last
  checked against, so a schema change re-checks only the tables it changes.
- one SQLite table per Convex table, named as the table:
  ``_id TEXT PRIMARY KEY, _creationTime REAL, _body TEXT`` (the whole document as
  JSON, system fields included, so a read is a single ``json.loads``) and one BLOB
  column ``_k_<index>`` per index (``by_creation_time`` and every user index) holding
  the order-preserving key of :func:`one_store.model.values.sort_key` over the index
  fields, ``_creationTime`` and ``_id``, with a real SQLite index on it;
  ``by_id`` uses the primary key.
- one FTS5 table ``<table>$search$<index>`` per search index: the text, and the
  filter fields' sort keys as UNINDEXED columns; its rowid is the document's rowid.

Hot paths (get/insert/update/delete/range scans) go straight to the ``sqlite3``
connection with fixed SQL text (sqlite3 caches the prepared statements); sqlite-utils
would add 2-3x per call. sqlite-utils is used where it is the better tool: DDL
introspection at open time.

A :class:`Storage` is thread-safe: one connection, one re-entrant lock held for the
length of each transaction. Processes serialise writers through SQLite's own lock
(``BEGIN IMMEDIATE`` waits up to ``busy_timeout``).

``Storage(path, readonly=True)`` opens the file with SQLite's ``mode=ro`` URI: nothing
is created, migrated or checkpointed, the layouts come from ``_one_store_tables`` as
stored, and :meth:`Storage.write` refuses. SQLite itself then never writes the file
(a reader of a WAL file may create the empty ``-wal`` / ``-shm`` companions a WAL
reader needs, as the ``sqlite3`` shell does).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import define, field

from ...model import ids
from ...model.errors import Busy, ContextError, Problem, StorageError
from ...model.errors import (
    StorageFailure as StorageFailure,
)  # re-exported: callers catch it here
from ...model.schema import Index, Schema, SearchIndex, TableDefinition
from ...model.values import (
    Document,
    dumps,
    get_path,
    key_function,
    load_parser,
    loads,
    sort_key,
)

if TYPE_CHECKING:
    import sqlite_utils

LAYOUT_VERSION = 1
META = "_one_store_meta"
SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
DEFAULT_CACHE_MIB = 64
TABLES = "_one_store_tables"
SYSTEM_TABLE_NUMBERS = {"_scheduled_functions": 9001, "_storage": 9002}


def classify(error: sqlite3.Error) -> Problem:
    """Map a sqlite3 error to the Problem a caller can act on."""
    text = str(error)
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text
    ):
        return Busy()
    return StorageError(f"SQLite error: {text}")


def quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def key_column(index_name: str) -> str:
    """The BLOB column holding an index's keys."""
    return f"_k_{index_name}"


def search_table(table: str, index_name: str) -> str:
    """The FTS5 table behind a search index."""
    return f"{table}$search${index_name}"


_TOKEN = re.compile(r"[^\W_]+")
MAX_TERM_BYTES = 32
# ASCII bytes -> themselves for digits and lowercase letters, the lowercase letter
# for uppercase ones, a space for everything else: ``[^\W_]+`` runs, lowercased,
# become space-separated words (a bytes.translate is ~8x faster than the regex).
_ASCII_WORDS = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32
    for c in range(256)
)


def search_tokens(text: str) -> list[str]:
    """Tokenise like Convex's ``convex_en`` analyser (Tantivy ``SimpleTokenizer``).

    Runs of alphanumeric characters; tokens of 32 UTF-8 bytes or more are dropped
    (measured before lowercasing, as ``RemoveLongFilter`` runs first), then
    lowercased. Documents and queries both go through it, so FTS5 only ever sees
    these tokens, space-separated.
    """
    if text.isascii():
        # In ASCII a character is a byte and lowercasing maps letters one to one,
        # so the same tokens come from a byte translation (every write tokenises).
        tokens = text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
        if not tokens or max(map(len, tokens)) < MAX_TERM_BYTES:
            return tokens
        return [t for t in tokens if len(t) < MAX_TERM_BYTES]
    return [
        t.lower()
        for t in _TOKEN.findall(text)
        if len(t.encode("utf-8")) < MAX_TERM_BYTES
    ]


@define
class SearchLayout:
    """How one search index is stored."""

    index: SearchIndex
    fts: str
    text_path: tuple[str, ...]
    filter_paths: tuple[tuple[str, ...], ...]
    insert_sql: str = field(init=False)

    @insert_sql.default
    def _insert_sql(self) -> str:
        columns = "".join(f", f{i}" for i in range(len(self.filter_paths)))
        marks = ",".join("?" * (len(self.filter_paths) + 2))
        return f"INSERT INTO {quote(self.fts)}(rowid, text{columns}) VALUES ({marks})"

    @property
    def delete_sql(self) -> str:
        """Remove one document's entry (by its row's rowid)."""
        return f"DELETE FROM {quote(self.fts)} WHERE rowid=?"

    def row(self, doc: dict[str, Any]) -> tuple[Any, ...] | None:
        """The FTS row for ``doc``, or None when its search field is not a string."""
        text = get_path(doc, self.text_path)
        if not isinstance(text, str):
            return None
        return (
            " ".join(search_tokens(text)),
            *(sort_key(get_path(doc, p)) for p in self.filter_paths),
        )

    def same_entry(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``old`` and ``new`` have the same FTS row (so it can stay).

        Compared on the inputs, not on :meth:`row`, so the common case costs two
        lookups instead of two tokenisations: the same search text (a string, or
        no string at all: no row) and the same filter values (by sort key, which
        tells ``1`` from ``1.0`` and ``-0.0`` from ``0.0``).
        """
        a, b = get_path(old, self.text_path), get_path(new, self.text_path)
        a_text, b_text = isinstance(a, str), isinstance(b, str)
        if a_text != b_text or (a_text and a != b):
            return False
        if not a_text:
            return True  # neither has a row
        return all(
            sort_key(get_path(old, p)) == sort_key(get_path(new, p))
            for p in self.filter_paths
        )


@define
class TableLayout:
    """Prepared SQL and key functions for one table."""

    name: str
    number: int
    indexes: dict[str, Index]
    search: dict[str, SearchLayout]
    key_fns: list[tuple[str, Callable[[dict[str, Any]], bytes]]]
    # Per key column (as key_fns): the key of the index's user fields (None for
    # by_creation_time); row() appends the _creationTime/_id part, computed once.
    prefix_fns: list[Callable[[dict[str, Any]], bytes] | None]
    insert_sql: str
    update_sql: str
    get_sql: str
    delete_sql: str
    # UPDATE text by the row() positions of the key columns it sets (see update()).
    _partial_updates: dict[tuple[int, ...], str] = field(factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        number: int,
        indexes: tuple[Index, ...],
        search: tuple[SearchIndex, ...] = (),
    ) -> TableLayout:
        """Compute SQL text and key functions for a table and its indexes."""
        by_name = {i.name: i for i in indexes}
        keyed = [i for i in indexes if i.name != "by_id"]
        key_fns = [
            (i.name, key_function(tuple(tuple(f.split(".")) for f in i.key_fields)))
            for i in keyed
        ]
        prefix_fns = [
            key_function(tuple(tuple(f.split(".")) for f in i.key_fields[:-2]))
            if len(i.key_fields) > 2
            else None
            for i in keyed
        ]
        t = quote(name)
        cols = ["_id", "_creationTime", "_body"] + [key_column(i.name) for i in keyed]
        marks = ",".join("?" * len(cols))
        sets = ",".join(f"{quote(c)}=?" for c in cols[1:])
        searches = {
            s.name: SearchLayout(
                s,
                search_table(name, s.name),
                tuple(s.search_field.split(".")),
                tuple(tuple(f.split(".")) for f in s.filter_fields),
            )
            for s in search
        }
        return cls(
            name=name,
            number=number,
            indexes=by_name,
            search=searches,
            key_fns=key_fns,
            prefix_fns=prefix_fns,
            insert_sql=f"INSERT INTO {t} ({','.join(map(quote, cols))}) VALUES ({marks})",
            update_sql=f"UPDATE {t} SET {sets} WHERE _id=?",
            get_sql=f"SELECT _body FROM {t} WHERE _id=?",
            delete_sql=f"DELETE FROM {t} WHERE _id=? RETURNING _creationTime, rowid",
        )

    def partial_update_sql(self, keys: tuple[int, ...]) -> str:
        """``UPDATE`` of ``_body`` and the key columns at ``row()`` positions ``keys``."""
        sql = self._partial_updates.get(keys)
        if sql is None:
            names = [key_column(self.key_fns[i - 3][0]) for i in keys]
            sets = ",".join(f"{quote(c)}=?" for c in ["_body", *names])
            sql = f"UPDATE {quote(self.name)} SET {sets} WHERE _id=?"
            self._partial_updates[keys] = sql
        return sql

    def row(self, doc: Document, text: str | None = None) -> list[Any]:
        """Column values for ``doc`` (JSON ``text`` if already encoded), as ``insert_sql``."""
        doc_id, created = doc["_id"], doc["_creationTime"]
        # Every key ends with the same _creationTime and _id encodings (sort keys
        # concatenate), so they are encoded once rather than once per index.
        tail = sort_key(created) + sort_key(doc_id)
        return [
            doc_id,
            created,
            dumps(doc) if text is None else text,
            *[tail if fn is None else fn(doc) + tail for fn in self.prefix_fns],
        ]


class Storage:
    """A SQLite file (or memory) holding Convex tables. Thread-safe.

    Args:
        path: a file path, or ``":memory:"``.
        busy_timeout: seconds to wait for another writer's lock before ``Busy``.
        synchronous: SQLite ``synchronous`` setting for WAL files (``"NORMAL"``
            survives process crashes; ``"FULL"`` also survives power loss).
        cache_mib: the connection's page cache, in MiB (SQLite's default is 2).
        readonly: open the file read-only (SQLite's ``mode=ro``); it must exist,
            and :meth:`write` raises ``ContextError``.

    Raises:
        ValueError: ``synchronous`` is not a SQLite setting, ``cache_mib`` is
            not a positive whole number, or ``readonly`` with ``":memory:"``.
        StorageFailure: the file cannot be opened; the message names the path
            and, when the system can tell, why (a missing folder, permissions).
    """

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
        if (
            isinstance(cache_mib, bool)
            or not isinstance(cache_mib, int)
            or cache_mib < 1
        ):
            raise ValueError(
                f"cache_mib must be a whole number of MiB >= 1, got {cache_mib!r}"
            )
        self.path = str(path)
        if readonly and self.path == ":memory:":
            raise ValueError("readonly=True needs a file; a new memory store is empty")
        self.readonly = readonly
        self.lock = threading.RLock()
        try:
            self.connection = _connect(self.path, busy_timeout, readonly)
        except sqlite3.Error as e:
            raise StorageFailure(_open_problem(self.path, e, readonly)) from e
        try:
            self._configure(synchronous, cache_mib)
            self.layouts: dict[str, TableLayout] = {}
            self.numbers: dict[int, str] = {}
            self._last_creation_time = 0.0
            self._data_version = -1
            # The file's schema cookie the cached layouts match (_bootstrap loads them).
            self._schema_version = self._cookie()
            self._bootstrap()
        except sqlite3.Error as e:
            self.connection.close()
            raise StorageFailure(_open_problem(self.path, e, readonly)) from e
        except StorageFailure as e:  # from a transaction of _bootstrap
            self.connection.close()
            raise StorageFailure(_named(self.path, e.problem)) from e
        except BaseException:
            self.connection.close()
            raise
        load_parser()  # deferred from `import one_store`: a store reads documents

    def _configure(self, synchronous: str, cache_mib: int) -> None:
        c = self.connection
        # SQLite's 2 MiB default holds little of a 100,000-document table; a
        # long-lived store keeps a working set up to cache_mib in memory (reads
        # in benchmarks/RESULTS.md). Pages are only allocated as they are read.
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
                if self._has_table(META):
                    self._check_layout_version(self._meta("layout_version"))
                self.reload_layouts()
            return
        c = self.connection
        with self.write():
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {META} (key TEXT PRIMARY KEY, value TEXT)"
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLES} (name TEXT PRIMARY KEY, "
                "number INTEGER NOT NULL UNIQUE, indexes TEXT NOT NULL)"
            )
            version = self._meta("layout_version")
            if version is None:
                self._set_meta("layout_version", str(LAYOUT_VERSION))
            self._check_layout_version(version)
            self.reload_layouts()

    def _check_layout_version(self, version: str | None) -> None:
        if version is not None and int(version) > LAYOUT_VERSION:
            raise StorageFailure(
                StorageError(
                    f"file layout version {version} is newer than this one_store "
                    f"({LAYOUT_VERSION}); upgrade one_store"
                )
            )

    def _has_table(self, name: str) -> bool:
        row = self.connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
        ).fetchone()
        return row is not None

    def _meta(self, key: str) -> str | None:
        row = self.connection.execute(
            f"SELECT value FROM {META} WHERE key=?", (key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.connection.execute(
            f"INSERT INTO {META}(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def reload_layouts(self) -> None:
        """Re-read every table's layout from the file.

        Needed after rolling back DDL (a ``ROLLBACK TO`` a savepoint undoes a
        ``CREATE TABLE`` but leaves this connection's cached layout behind).
        Tables created or changed by *other* connections are picked up at the
        start of every transaction without this (see ``_refresh``).
        """
        self.layouts.clear()
        self.numbers.clear()
        if self.readonly and not self._has_table(TABLES):
            # A read-only open of a file one_store never wrote: no tables.
            self._schema_version = self._cookie()
            return
        for name, number, spec in self.connection.execute(
            f"SELECT name, number, indexes FROM {TABLES}"
        ):
            data = json.loads(spec)
            indexes = tuple(
                Index(i["name"], tuple(i["fields"])) for i in data["indexes"]
            )
            search = tuple(
                SearchIndex(s["name"], s["searchField"], tuple(s["filterFields"]))
                for s in data.get("search", [])
            )
            self.layouts[name] = TableLayout.build(name, number, indexes, search)
            self.numbers[number] = name
        self._schema_version = self._cookie()

    def _cookie(self) -> int:
        return int(self.connection.execute("PRAGMA schema_version").fetchone()[0])

    def _refresh(self) -> None:
        """Reload the layouts when the file's schema changed since they were read.

        SQLite bumps the ``schema_version`` cookie on every DDL statement of any
        connection: another process that created a table (a schemaless insert,
        the scheduler's system table, a newer schema) is seen here, in the
        transaction that just began, instead of failing with "table already
        exists" or reading an empty table.
        """
        if self._cookie() != self._schema_version:
            self.reload_layouts()

    @staticmethod
    def _spec(
        indexes: tuple[Index, ...],
        search: tuple[SearchIndex, ...],
        document: str | None = None,
    ) -> str:
        spec: dict[str, Any] = {
            "indexes": [{"name": i.name, "fields": list(i.fields)} for i in indexes],
            "search": [
                {
                    "name": s.name,
                    "searchField": s.search_field,
                    "filterFields": list(s.filter_fields),
                }
                for s in search
            ],
        }
        if document is not None:
            spec["document"] = document
        return json.dumps(spec)

    def tables(self) -> list[str]:
        """Names of the user tables in the file (system tables excluded)."""
        return sorted(n for n in self.layouts if not n.startswith("_"))

    def table_number(self, table: str) -> int:
        """The ID table number of ``table`` (KeyError if there is no such table)."""
        return self.layouts[table].number

    def table_of(self, number: int) -> str | None:
        """The table an ID's table number belongs to, or None."""
        return self.numbers.get(number)

    def ensure_table(
        self,
        name: str,
        definition: TableDefinition | None = None,
        number: int | None = None,
        document: str | None = None,
    ) -> TableLayout:
        """Create ``name`` (inside the current write transaction) if it does not exist.

        ``document`` is the validator text to record as checked (see
        :meth:`sync_schema`); a table created by a write records none.
        """
        layout = self.layouts.get(name)
        if layout is not None:
            return layout
        if number is None:
            number = (
                SYSTEM_TABLE_NUMBERS.get(name)
                or max(
                    [ids.FIRST_USER_TABLE_NUMBER - 1]
                    + [n for n in self.numbers if n >= ids.FIRST_USER_TABLE_NUMBER]
                )
                + 1
            )
        if number in self.numbers:
            raise StorageFailure(
                StorageError(
                    f"table number {number} is already used by {self.numbers[number]!r}"
                )
            )
        indexes = (
            definition.all_indexes()
            if definition
            else TableDefinition(_any()).all_indexes()
        )
        search = definition.search_indexes if definition else ()
        c = self.connection
        c.execute(
            f"CREATE TABLE {quote(name)} (_id TEXT PRIMARY KEY NOT NULL, "
            "_creationTime REAL NOT NULL, _body TEXT NOT NULL)"
        )
        c.execute(
            f"INSERT INTO {TABLES}(name, number, indexes) VALUES (?, ?, ?)",
            (name, number, self._spec(indexes, search, document)),
        )
        for index in indexes:
            self._add_index_column(name, index)
        for s in search:
            self._create_search(name, s)
        layout = TableLayout.build(name, number, indexes, search)
        self.layouts[name] = layout
        self.numbers[number] = name
        # The cache now matches the file's schema including this DDL; a rollback
        # reloads (and re-reads the cookie), so no other connection's change hides.
        self._schema_version = self._cookie()
        return layout

    def _add_index_column(self, table: str, index: Index) -> None:
        if index.name == "by_id":
            return
        col = key_column(index.name)
        self.connection.execute(
            f"ALTER TABLE {quote(table)} ADD COLUMN {quote(col)} BLOB"
        )
        self.connection.execute(
            f"CREATE INDEX {quote(f'{table}${index.name}')} ON {quote(table)}({quote(col)})"
        )

    def _create_search(self, table: str, index: SearchIndex) -> None:
        filters = "".join(f", f{i} UNINDEXED" for i in range(len(index.filter_fields)))
        self.connection.execute(
            f"CREATE VIRTUAL TABLE {quote(search_table(table, index.name))} USING "
            f"fts5(text{filters}, tokenize='unicode61 remove_diacritics 0')"
        )

    def schema_fingerprint(self) -> str | None:
        """The fingerprint of the schema the file was last synced with, if any."""
        return self._meta("schema")

    def checked_documents(self) -> dict[str, str]:
        """Per table, the document validator its stored documents were checked against.

        The text :meth:`sync_schema` recorded; a table with no entry has
        documents no validator was enforced on (created by a write, written
        under ``schema_validation=False``, left out of the schema, or recorded
        by an older one_store).
        """
        recorded: dict[str, str] = {}
        for name, spec in self.connection.execute(
            f"SELECT name, indexes FROM {TABLES}"
        ):
            document = json.loads(spec).get("document")
            if isinstance(document, str):
                recorded[name] = document
        return recorded

    def sync_schema(self, schema: Schema, documents: dict[str, str]) -> None:
        """Bring the file's tables and indexes in line with ``schema``.

        New tables and indexes are created and back-filled; removed indexes are
        dropped. ``documents`` (table -> validator text) is recorded as what each
        table's documents were checked against; every other user table's record
        is cleared, as its writes are no longer checked. Runs in the caller's
        write transaction, after the caller checked the stored documents.
        """
        for name, definition in schema.tables.items():
            if name in self.layouts:
                self._migrate_indexes(name, definition, documents.get(name))
            else:
                self.ensure_table(name, definition, document=documents.get(name))
        c = self.connection
        for name, text in list(c.execute(f"SELECT name, indexes FROM {TABLES}")):
            spec = json.loads(text)
            if name not in schema.tables and spec.pop("document", None) is not None:
                c.execute(
                    f"UPDATE {TABLES} SET indexes=? WHERE name=?",
                    (json.dumps(spec), name),
                )
        self._set_meta("schema", schema.fingerprint())
        self.reload_layouts()

    def rows(self, table: str, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """``(_id, stored JSON text)`` of every document of ``table``, in rowid order.

        Streamed through one cursor, ``batch`` rows at a time: a table is never
        held in memory whole. Runs in the caller's transaction.
        """
        if table not in self.layouts:
            return
        cursor = self.connection.execute(
            f"SELECT _id, _body FROM {quote(table)} ORDER BY rowid"
        )
        while chunk := cursor.fetchmany(batch):
            yield from chunk

    def _migrate_indexes(
        self, name: str, definition: TableDefinition, document: str | None
    ) -> None:
        layout = self.layouts[name]
        wanted = {i.name: i for i in definition.all_indexes()}
        c = self.connection
        for old_name, old in layout.indexes.items():
            if wanted.get(old_name) != old:
                c.execute(f"DROP INDEX IF EXISTS {quote(f'{name}${old_name}')}")
                c.execute(
                    f"ALTER TABLE {quote(name)} DROP COLUMN {quote(key_column(old_name))}"
                )
        new_indexes = [i for n, i in wanted.items() if layout.indexes.get(n) != i]
        for index in new_indexes:
            self._add_index_column(name, index)
        wanted_search = {s.name: s for s in definition.search_indexes}
        for old_name, s in layout.search.items():
            if wanted_search.get(old_name) != s.index:
                c.execute(f"DROP TABLE {quote(s.fts)}")
        new_search = [
            wanted
            for n, wanted in wanted_search.items()
            if n not in layout.search or layout.search[n].index != wanted
        ]
        for search_index in new_search:
            self._create_search(name, search_index)
        c.execute(
            f"UPDATE {TABLES} SET indexes=? WHERE name=?",
            (
                self._spec(
                    definition.all_indexes(), definition.search_indexes, document
                ),
                name,
            ),
        )
        if new_indexes or new_search:
            fresh = TableLayout.build(
                name, layout.number, definition.all_indexes(), definition.search_indexes
            )
            self._backfill(
                fresh, {i.name for i in new_indexes}, {s.name for s in new_search}
            )

    def _backfill(
        self, layout: TableLayout, indexes: set[str], search: set[str]
    ) -> None:
        fns = [(n, fn) for n, fn in layout.key_fns if n in indexes]
        c = self.connection
        t = quote(layout.name)
        for rowid, body in list(c.execute(f"SELECT rowid, _body FROM {t}")):
            doc = loads(body)
            if fns:
                sets = ",".join(f"{quote(key_column(n))}=?" for n, _ in fns)
                c.execute(
                    f"UPDATE {t} SET {sets} WHERE rowid=?",
                    [fn(doc) for _, fn in fns] + [rowid],
                )
            for name in search:
                self._search_insert(layout.search[name], rowid, doc)

    def _search_insert(self, s: SearchLayout, rowid: int, doc: dict[str, Any]) -> None:
        row = s.row(doc)
        if row is None:  # the search field is not a string: not indexed, as Convex
            return
        self.connection.execute(s.insert_sql, (rowid, *row))

    # ------------------------------------------------------------------ transactions

    def write(self) -> _WriteTransaction:
        """A write transaction (``BEGIN IMMEDIATE``): commit on success, else roll back.

        Raises:
            ContextError: the file was opened with ``readonly=True``.
        """
        if self.readonly:
            raise ContextError(
                f"This store opened {self.path!r} read-only (readonly=True): it "
                "cannot write. Open it without readonly=True to run mutations."
            )
        return _WriteTransaction(self)

    transaction = write

    def read(self) -> _ReadTransaction:
        """A read transaction: every read inside sees one snapshot."""
        return _ReadTransaction(self)

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

    def _rollback(self) -> None:
        c = self.connection
        if c.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
        # DDL may have been rolled back with it: re-read what really exists.
        with contextlib.suppress(sqlite3.Error):
            self.reload_layouts()

    def next_creation_time(self, now_ms: float) -> float:
        """Base ``_creationTime`` for a write transaction that just began.

        Strictly after every ``_creationTime`` in the file: this connection
        remembers the last one it handed out, and when another connection has
        committed since (``PRAGMA data_version`` moved) it re-reads the newest
        document of every table through the ``by_creation_time`` index, and the
        time of the newest document ever deleted (``deleted_creation_time`` in
        ``_one_store_meta``, written only when a delete may remove the newest).
        """
        version = self.connection.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            deleted = float(self._meta("deleted_creation_time") or 0.0)
            self._last_creation_time = max(
                self._last_creation_time, self._newest(), deleted
            )
        return max(math.nextafter(self._last_creation_time, math.inf), now_ms)

    def _newest(self) -> float:
        newest = 0.0
        for name in self.layouts:
            row = self.connection.execute(
                f"SELECT _creationTime FROM {quote(name)} "
                f"ORDER BY {quote(key_column('by_creation_time'))} DESC LIMIT 1"
            ).fetchone()
            if row is not None:
                newest = max(newest, float(row[0]))
        return newest

    def record_creation_time(self, last: float) -> None:
        """Remember the last ``_creationTime`` handed out by a committed transaction."""
        self._last_creation_time = max(self._last_creation_time, last)

    def note_rollback(self, last_known: float) -> None:
        """Forget creation times handed out by a transaction that rolled back."""
        self._last_creation_time = last_known
        # ``last_known`` predates what that transaction may have read from the file:
        # re-read the file's newest time before the next transaction hands one out.
        self._data_version = -1

    @property
    def last_creation_time(self) -> float:
        """The last ``_creationTime`` committed by this connection (or read from the file)."""
        return self._last_creation_time

    # ------------------------------------------------------------------ documents

    def get(self, layout: TableLayout, doc_id: str) -> Document | None:
        """Read one document by ID from its table."""
        row = self.connection.execute(layout.get_sql, (doc_id,)).fetchone()
        return None if row is None else loads(row[0])

    def get_text(self, layout: TableLayout, doc_id: str) -> str | None:
        """Read one document's stored JSON text."""
        row = self.connection.execute(layout.get_sql, (doc_id,)).fetchone()
        return None if row is None else str(row[0])

    def insert(
        self, layout: TableLayout, doc: Document, text: str | None = None
    ) -> None:
        """Insert a document (system fields set) and its index keys."""
        cursor = self.connection.execute(layout.insert_sql, layout.row(doc, text))
        for s in layout.search.values():
            self._search_insert(s, cursor.lastrowid or 0, doc)

    def update(
        self,
        layout: TableLayout,
        doc: Document,
        text: str | None = None,
        previous: Document | None = None,
    ) -> None:
        """Overwrite a document (same ``_id``) and its index keys.

        With ``previous`` (the document as stored before this write, same
        ``_id`` and ``_creationTime``), index keys and search entries that did not
        change are left alone: a patch of other fields then costs no index
        rewrite, and no FTS5 delete and insert (nor their segment flush at commit,
        which was most of a patch's time).
        """
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
        if not layout.search:
            return
        stale = [
            s
            for s in layout.search.values()
            if previous is None or not s.same_entry(previous, doc)
        ]
        if not stale:
            return
        rowid = self._rowid(layout, str(doc["_id"]))
        for s in stale:
            self.connection.execute(s.delete_sql, (rowid,))
            self._search_insert(s, rowid, doc)

    def delete(self, layout: TableLayout, doc_id: str) -> bool:
        """Delete a document and its index keys; False when there is no such document."""
        row = self.connection.execute(layout.delete_sql, (doc_id,)).fetchone()
        if row is None:
            return False
        created, rowid = float(row[0]), row[1]
        for s in layout.search.values():
            self.connection.execute(s.delete_sql, (rowid,))
        if created >= self._last_creation_time:
            self._remember_deleted(created)
        return True

    def _remember_deleted(self, created: float) -> None:
        # The newest document may be going: keep its time (in this transaction), so
        # that _creationTime stays increasing after a reopen or in another process.
        stored = self._meta("deleted_creation_time")
        if stored is None or float(stored) < created:
            self._set_meta("deleted_creation_time", repr(created))

    def _rowid(self, layout: TableLayout, doc_id: str) -> int:
        row = self.connection.execute(
            f"SELECT rowid FROM {quote(layout.name)} WHERE _id=?", (doc_id,)
        ).fetchone()
        return int(row[0])

    def execute(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        """Run one statement (used by the query compiler's SQL)."""
        return self.connection.execute(sql, params)

    # ------------------------------------------------------------------ bulk / tools

    def scan(self, table: str) -> Iterator[Document]:
        """Every document of ``table`` in ``_creationTime`` order."""
        if table not in self.layouts:
            return
        sql = (
            f"SELECT _body FROM {quote(table)} "
            f"ORDER BY {quote(key_column('by_creation_time'))}"
        )
        for (body,) in self.connection.execute(sql):
            yield loads(body)

    def write_raw(self, table: str, doc: Document) -> None:
        """Insert a document whose ``_id`` and ``_creationTime`` are given (imports).

        The table is created when missing, with the number inside the ID.
        """
        number = ids.table_number_of(doc.get("_id"))
        layout = self.layouts.get(table) or self.ensure_table(table, None, number)
        self.insert(layout, doc)
        created = doc.get("_creationTime")
        if isinstance(created, float) and created > self._last_creation_time:
            self.record_creation_time(created)

    def renumber(self, moves: dict[str, int]) -> None:
        """Give existing (empty) tables new ID table numbers, in the current write.

        Two steps through negative numbers, so the UNIQUE constraint never trips
        when two tables swap numbers. Used by snapshot import to keep IDs.
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
        newest = self.connection.execute(
            f"SELECT max(_creationTime) FROM {quote(table)}"
        )
        (created,) = newest.fetchone()
        if created is not None:
            self._remember_deleted(float(created))
        self.connection.execute(f"DELETE FROM {quote(table)}")
        for s in layout.search.values():
            self.connection.execute(f"DELETE FROM {quote(s.fts)}")

    def count(self, table: str) -> int:
        """Number of documents in ``table``."""
        if table not in self.layouts:
            return 0
        row = self.connection.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()
        return int(row[0])

    def utils(self) -> sqlite_utils.Database:
        """A sqlite-utils view of the same connection (introspection, exports)."""
        import sqlite_utils  # ~75 ms to import: only where DDL/introspection runs

        return sqlite_utils.Database(self.connection)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self.lock:
            with contextlib.suppress(sqlite3.Error):
                if self.path != ":memory:" and not self.readonly:
                    self.connection.execute("PRAGMA optimize")
            self.connection.close()


def _connect(path: str, timeout: float, readonly: bool) -> sqlite3.Connection:
    """The store's one connection; ``readonly`` opens the file with ``mode=ro``."""
    target, uri = path, False
    if readonly:
        # A URI keeps SQLite from ever opening the file for writing (or creating
        # it); as_uri() percent-encodes ?, # and % in the path.
        target, uri = Path(path).absolute().as_uri() + "?mode=ro", True
    return sqlite3.connect(
        target,
        timeout=timeout,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # guarded by Storage.lock
        cached_statements=512,
        uri=uri,
    )


def _open_problem(path: str, error: sqlite3.Error, readonly: bool) -> Problem:
    """The Problem of a failed open: SQLite's text, the path, and why if we can tell.

    SQLite's own "unable to open database file" names neither the file nor the
    cause; the file system usually knows the cause.
    """
    problem = _named(path, classify(error))
    why = _why_not_opened(Path(path), readonly) if path != ":memory:" else None
    if why is None or not isinstance(problem, StorageError):
        return problem
    return StorageError(f"{problem.message} ({why})")


def _named(path: str, problem: Problem) -> Problem:
    """``problem`` with the path in its message (Busy's own text is enough)."""
    if not isinstance(problem, StorageError):
        return problem
    return StorageError(f"cannot open {path!r}: {problem.message}")


def _why_not_opened(path: Path, readonly: bool) -> str | None:
    """What the file system says about opening ``path`` (None: nothing wrong seen)."""
    folder = path.absolute().parent
    if not folder.exists():
        return f"the folder {str(folder)!r} does not exist"
    if not folder.is_dir():
        return f"{str(folder)!r} is not a folder"
    if path.is_dir():
        return "it is a folder, not a file"
    if not path.exists():
        if readonly:
            return "the file does not exist"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"permission denied: cannot create a file in {str(folder)!r}"
        return None
    if not os.access(path, os.R_OK):
        return "permission denied: the file is not readable"
    if not readonly and not os.access(path, os.W_OK):
        return "permission denied: the file is not writable (readonly=True reads it)"
    if not readonly and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"permission denied: SQLite needs to create the -wal and -shm files "
            f"in {str(folder)!r} (readonly=True reads the file)"
        )
    return None


class _WriteTransaction:
    """The context manager ``Storage.write()`` returns (a class, as ``_ReadTransaction``)."""

    __slots__ = ("_storage",)

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def __enter__(self) -> None:
        storage = self._storage
        storage.lock.acquire()
        try:
            storage.connection.execute("BEGIN IMMEDIATE")
            storage._refresh()
        except sqlite3.Error as e:
            storage._rollback()
            storage.lock.release()
            raise StorageFailure(classify(e)) from e
        except BaseException:
            storage._rollback()
            storage.lock.release()
            raise

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        storage = self._storage
        try:
            if kind is not None:
                storage._rollback()
                return
            try:
                storage.connection.execute("COMMIT")
            except sqlite3.Error as e:
                storage._rollback()
                raise StorageFailure(classify(e)) from e
        finally:
            storage.lock.release()


class _ReadTransaction:
    """The context manager ``Storage.read()`` returns.

    A class rather than a generator context manager, as every query enters one
    (contextlib's machinery was ~2 us of a 30 us get).
    """

    __slots__ = ("_nested", "_storage")

    def __init__(self, storage: Storage) -> None:
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
            storage._refresh()
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


def _any() -> Any:
    from ...model.validators import v

    return v.any()
