"""The change log: what each committed write touched, in order.

A reactive query in one process must notice a write made by another process on
the same file, and only the writes that concern it. The log is a table,
``_one_store_changes(seq, table_name, doc_id, keys)``, appended to in the same
transaction as each insert, patch, replace and delete, so a rolled-back write
leaves no entry; ``seq`` is AUTOINCREMENT, so a position is never reused after
pruning (and survives a restart: a server can number its updates with it).
``keys`` holds what a precise intersection needs, the document's key in every
index (``by_id`` and ``by_creation_time`` included) and its entry in every search
index, before and after the write: a watcher tests them against the key ranges
its queries read, without reading the document (which may be gone).

The entry (its keys, its bytes, how it is read back) is the same on every engine:
:mod:`one_store.engine.change_entries`.

The log costs nothing until someone needs it: :func:`create` makes the table,
which bumps the file's schema cookie, and every connection (other processes
included) reloads its layouts at its next transaction and starts logging. It is
bounded: every :data:`PRUNE_EVERY`-th entry deletes those more than :data:`KEEP`
entries old, in the same transaction. A reader that fell further behind sees the
gap (its next ``seq`` is gone) and must take everything as changed.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from typing import TYPE_CHECKING, Any

from ..backend import Change, SearchEntry
from ..change_entries import (
    KEEP,
    PRUNE_EVERY,
    RECENT,
    WHOLE_TABLE,
    decode,
    encode,
    index_keys,
    search_entries,
)
from .layout import quote

if TYPE_CHECKING:
    from .layout import SearchLayout, TableLayout

CHANGES = "_one_store_changes"
_Q = quote(CHANGES)
__all__ = ["KEEP", "PRUNE_EVERY", "RECENT", "WHOLE_TABLE", "decode"]


def exists(connection: sqlite3.Connection) -> bool:
    """Whether the file keeps a change log (in this layout: with its keys)."""
    columns = [
        row[1] for row in connection.execute(f"PRAGMA table_info({_Q})").fetchall()
    ]
    return "keys" in columns


def create(connection: sqlite3.Connection) -> None:
    """Start keeping the log (inside the caller's write transaction)."""
    # A log of an earlier layout (no keys) is of no use to anyone: start afresh.
    connection.execute(f"DROP TABLE IF EXISTS {_Q}")
    connection.execute(
        f"CREATE TABLE {_Q}(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "table_name TEXT NOT NULL, doc_id TEXT NOT NULL, keys BLOB NOT NULL)"
    )


class ChangeLog:
    """Logs each written document of a connection, in the writing transaction.

    :class:`~one_store.engine.sqlite.storage.Storage` calls it before it
    changes a row, with the document before (None: unknown, read here) and after.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._insert = f"INSERT INTO {_Q}(table_name, doc_id, keys) VALUES (?, ?, ?)"
        # The entries it made lately, for its own store's watches (no re-read).
        # A rollback replaces this object (Storage.reload_layouts), so an entry
        # rolled back never stays here.
        self.recent: deque[Change] = deque(maxlen=RECENT)
        # Kept only once someone asked (a store with watches): other writers
        # on the file do not pay for it.
        self.keep = False

    def inserted(self, layout: TableLayout, doc: dict[str, Any]) -> None:
        """``doc`` is being inserted."""
        self._record(layout, str(doc["_id"]), None, doc)

    def updated(
        self,
        layout: TableLayout,
        previous: dict[str, Any] | None,
        doc: dict[str, Any],
    ) -> None:
        """``doc`` replaces its stored version (``previous``, when the caller has it)."""
        doc_id = str(doc["_id"])
        if previous is None:
            previous = self._stored(layout, doc_id)
        self._record(layout, doc_id, previous, doc)

    def deleting(self, layout: TableLayout, doc_id: str) -> None:
        """``doc_id`` is about to be deleted (nothing is logged if it is not there)."""
        previous = self._stored(layout, doc_id)
        if previous is not None:
            self._record(layout, doc_id, previous, None)

    def cleared(self, layout: TableLayout) -> None:
        """Every document of ``layout`` is being deleted: an entry touching it all."""
        cursor = self._connection.execute(self._insert, (layout.name, "", WHOLE_TABLE))
        if self.keep:
            self.recent.append(Change(cursor.lastrowid or 0, layout.name, "", None, ()))

    def _stored(self, layout: TableLayout, doc_id: str) -> dict[str, Any] | None:
        from ...model.values import loads

        row = self._connection.execute(layout.get_sql, (doc_id,)).fetchone()
        return None if row is None else dict(loads(row[0]))

    def _record(
        self,
        layout: TableLayout,
        doc_id: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        keys = index_keys(layout.key_fns, layout.prefix_fns, doc_id, old, new)
        search = search_entries(layout.search, _entry, old, new)
        cursor = self._connection.execute(
            self._insert, (layout.name, doc_id, encode(keys, search))
        )
        seq = cursor.lastrowid or 0
        if self.keep:
            self.recent.append(Change(seq, layout.name, doc_id, tuple(keys), search))
        if seq % PRUNE_EVERY == 0 and seq > KEEP:
            prune(self._connection, seq - KEEP)

    def recent_after(self, after: int) -> list[Change] | None:
        """The entries this connection made after ``after``, if it has them all.

        Only when they are every entry from ``after + 1`` on, one after the
        other (another connection's write in between, or a rollback that
        replaced this log object, makes the caller read the table instead).
        """
        if not self.keep:  # the first question: nothing kept yet, read the table
            self.keep = True
            return None
        recent = self.recent
        while recent and recent[0].seq <= after:  # handed out already
            recent.popleft()
        found = list(recent)
        if not found or found[0].seq != after + 1:
            return None
        if found[-1].seq - found[0].seq != len(found) - 1:
            return None
        return found


class NoLog:
    """What a write logs while the file keeps no change log: nothing."""

    def inserted(self, layout: TableLayout, doc: dict[str, Any]) -> None:
        """Log nothing."""

    def updated(
        self,
        layout: TableLayout,
        previous: dict[str, Any] | None,
        doc: dict[str, Any],
    ) -> None:
        """Log nothing."""

    def deleting(self, layout: TableLayout, doc_id: str) -> None:
        """Log nothing."""

    def cleared(self, layout: TableLayout) -> None:
        """Log nothing."""

    def recent_after(self, after: int) -> list[Change] | None:
        """Nothing kept: the caller reads the table."""
        return None


NO_LOG = NoLog()


def _entry(s: SearchLayout, doc: dict[str, Any]) -> SearchEntry | None:
    """A document's entry in a search index: its tokens and filter keys."""
    row = s.row(doc)
    return None if row is None else (row[0], tuple(row[1:]))


def newest(connection: sqlite3.Connection) -> int:
    """The ``seq`` of the newest entry ever made (0 when none)."""
    row = connection.execute(
        "SELECT seq FROM sqlite_sequence WHERE name=?", (CHANGES,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def since(connection: sqlite3.Connection, seq: int) -> list[Change]:
    """Every entry after ``seq``, oldest first."""
    rows = connection.execute(
        f"SELECT seq, table_name, doc_id, keys FROM {_Q} WHERE seq > ? ORDER BY seq",
        (seq,),
    )
    return [decode(int(s), str(t), str(d), k) for s, t, d, k in rows]


def data_version(connection: sqlite3.Connection) -> int:
    """SQLite's ``PRAGMA data_version``: moves when another connection commits."""
    return int(connection.execute("PRAGMA data_version").fetchone()[0])


def prune(connection: sqlite3.Connection, upto: int) -> None:
    """Forget the entries up to and including ``upto``."""
    connection.execute(f"DELETE FROM {_Q} WHERE seq <= ?", (upto,))
