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

The entry is a small binary record (length-prefixed byte strings, see
:func:`_pack`): it costs about a microsecond to make, a tenth of JSON with hex
keys, and parsing it runs no code from the file. An entry that cannot be parsed
reads as "touched the whole table" (:class:`~one_store.engine.backend.Change`
with ``keys`` None), never as "touched nothing".

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

from ...model.keys import sort_key
from ..backend import Change, SearchEntry
from .layout import quote

if TYPE_CHECKING:
    from .layout import SearchLayout, TableLayout

CHANGES = "_one_store_changes"
_Q = quote(CHANGES)
# Entries kept: a reader more than this many writes behind re-runs everything.
KEEP = 10_000
PRUNE_EVERY = 1_000
# Entries a connection remembers having made (ChangeLog.recent).
RECENT = 1_024
# The entry of a cleared table (snapshot import, mode replace): it touches every
# reader of the table, as an entry that cannot be read does.
WHOLE_TABLE = b"*"
_NONE = b"\xff\xff\xff\xff"


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
        id_key = sort_key(doc_id)
        # Every key ends with the document's _creationTime and _id: encoded once.
        old_tail = None if old is None else sort_key(old["_creationTime"]) + id_key
        new_tail = None if new is None else sort_key(new["_creationTime"]) + id_key
        keys: list[tuple[str, bytes | None, bytes | None]] = [
            ("by_id", None if old is None else id_key, None if new is None else id_key)
        ]
        for (name, _), prefix in zip(layout.key_fns, layout.prefix_fns, strict=True):
            keys.append(
                (name, _key(old, prefix, old_tail), _key(new, prefix, new_tail))
            )
        search = tuple(
            (name, _entry(s, old), _entry(s, new)) for name, s in layout.search.items()
        )
        cursor = self._connection.execute(
            self._insert, (layout.name, doc_id, _encode(keys, search))
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


def _key(doc: dict[str, Any] | None, prefix: Any, tail: bytes | None) -> bytes | None:
    if doc is None or tail is None:
        return None
    return tail if prefix is None else prefix(doc) + tail


def _entry(s: SearchLayout, doc: dict[str, Any] | None) -> SearchEntry | None:
    """A document's entry in a search index: its tokens and filter keys."""
    row = None if doc is None else s.row(doc)
    return None if row is None else (row[0], tuple(row[1:]))


def _encode(
    keys: list[tuple[str, bytes | None, bytes | None]],
    search: tuple[tuple[str, SearchEntry | None, SearchEntry | None], ...],
) -> bytes:
    """An entry's keys and search entries as one blob (see :func:`decode`)."""
    parts: list[bytes | None] = []
    for name, old, new in keys:
        parts += (name.encode(), old, new)
    for name, old_entry, new_entry in search:
        parts += (b"$" + name.encode(), _pack_entry(old_entry), _pack_entry(new_entry))
    return _pack(parts)


def _pack_entry(entry: SearchEntry | None) -> bytes | None:
    if entry is None:
        return None
    return _pack([entry[0].encode(), *entry[1]])


def _pack(parts: list[bytes | None]) -> bytes:
    """Length-prefixed byte strings (4 bytes big-endian; all ones: None)."""
    out: list[bytes] = []
    for p in parts:
        if p is None:
            out.append(_NONE)
        else:
            out.append(len(p).to_bytes(4, "big"))
            out.append(p)
    return b"".join(out)


def _unpack(blob: bytes) -> list[bytes | None]:
    parts: list[bytes | None] = []
    at, end = 0, len(blob)
    while at < end:
        head = blob[at : at + 4]
        at += 4
        if head == _NONE:
            parts.append(None)
            continue
        size = int.from_bytes(head, "big")
        if len(head) < 4 or at + size > end:
            raise ValueError("truncated change-log entry")
        parts.append(blob[at : at + size])
        at += size
    return parts


def _search_entry(packed: bytes | None) -> SearchEntry | None:
    if packed is None:
        return None
    tokens, *filters = _unpack(packed)
    if tokens is None or any(f is None for f in filters):
        raise ValueError("malformed search entry")
    return tokens.decode(), tuple(f for f in filters if f is not None)


def decode(seq: int, table: str, doc_id: str, blob: bytes) -> Change:
    """One log row as a :class:`Change` (``keys`` None when it cannot be read)."""
    if blob == WHOLE_TABLE:  # a cleared table (ChangeLog.cleared)
        return Change(seq, table, doc_id, None, ())
    try:
        parts = _unpack(bytes(blob))
        if len(parts) % 3:
            raise ValueError("change-log entry of the wrong length")
        keys: list[tuple[str, bytes | None, bytes | None]] = []
        search: list[tuple[str, SearchEntry | None, SearchEntry | None]] = []
        for at in range(0, len(parts), 3):
            name, old, new = parts[at : at + 3]
            if name is None:
                raise ValueError("unnamed change-log part")
            if name.startswith(b"$"):
                entry = (_search_entry(old), _search_entry(new))
                search.append((name[1:].decode(), *entry))
            else:
                keys.append((name.decode(), old, new))
    except (ValueError, UnicodeDecodeError):
        return Change(seq, table, doc_id, None, ())
    return Change(seq, table, doc_id, tuple(keys), tuple(search))


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
