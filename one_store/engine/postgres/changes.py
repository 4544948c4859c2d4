"""The change log on PostgreSQL: what each committed write touched, and who to tell.

The same log as the SQLite engine's (:mod:`one_store.engine.sqlite.changes`,
with the same entries: :mod:`one_store.engine.change_entries`): ``_one_store_changes(seq, table_name,
doc_id, keys)``, written in the writing transaction. ``seq`` is the newest
``seq`` plus one, assigned under the write lock: no gaps (a rolled-back write
takes none) and commit order. Every write that logged ends with ``NOTIFY`` on
the schema's channel (:func:`~one_store.engine.postgres.connection.channel`),
delivered at commit; :class:`Listener` holds a dedicated connection that
``LISTEN``s on it, and its :meth:`~Listener.version` moves with every
notification, which is how a watch of any process on any machine learns that
another committed.

Bounded as on SQLite, with its settings: every :data:`PRUNE_EVERY`-th entry
deletes those more than :data:`KEEP` entries old.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ..backend import Change
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
from .layout import CHANGES, quote

if TYPE_CHECKING:
    import psycopg

    from ..backend import SearchEntry
    from .layout import PgTableLayout
    from .side_tables import SearchSide

    Connection = psycopg.Connection[tuple[Any, ...]]

_Q = quote(CHANGES)
_INSERT = (
    f"INSERT INTO {_Q}(seq, table_name, doc_id, keys) "
    f"SELECT coalesce(max(seq), 0) + 1, %s, %s, %s FROM {_Q} RETURNING seq"
)


def create(connection: Connection) -> None:
    """Start keeping the log (inside the caller's write transaction)."""
    connection.execute(
        f'CREATE TABLE IF NOT EXISTS {_Q}(seq bigint PRIMARY KEY, table_name text COLLATE "C" '
        "NOT NULL, doc_id text NOT NULL, keys bytea NOT NULL)"
    )


def newest(connection: Connection) -> int:
    """The ``seq`` of the newest entry (0 when none)."""
    row = connection.execute(f"SELECT coalesce(max(seq), 0) FROM {_Q}").fetchone()
    return 0 if row is None else int(row[0])


def since(connection: Connection, seq: int) -> list[Change]:
    """Every entry after ``seq``, oldest first."""
    rows = connection.execute(
        f"SELECT seq, table_name, doc_id, keys FROM {_Q} WHERE seq > %s ORDER BY seq",
        (seq,),
    ).fetchall()
    return [decode(int(s), str(t), str(d), bytes(k)) for s, t, d, k in rows]


class ChangeLog:
    """Logs each written document of the storage's connection, in the writing transaction."""

    def __init__(self) -> None:
        self.recent: deque[Change] = deque(maxlen=RECENT)
        self.keep = False
        self.wrote = False  # this write logged something (NOTIFY at commit)

    def record(
        self,
        connection: Connection,
        layout: PgTableLayout,
        doc_id: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        """Log one write of ``doc_id`` (``old`` / ``new``: None when absent)."""
        keys = index_keys(layout.key_fns, layout.prefix_fns, doc_id, old, new)
        search = search_entries(layout.search, _entry, old, new)
        row = connection.execute(
            _INSERT, (layout.name, doc_id, encode(keys, search))
        ).fetchone()
        seq = 0 if row is None else int(row[0])
        self.wrote = True
        if self.keep:
            self.recent.append(Change(seq, layout.name, doc_id, tuple(keys), search))
        if seq % PRUNE_EVERY == 0 and seq > KEEP:
            connection.execute(f"DELETE FROM {_Q} WHERE seq <= %s", (seq - KEEP,))

    def cleared(self, connection: Connection, layout: PgTableLayout) -> None:
        """Every document of ``layout`` is being deleted: an entry touching it all."""
        row = connection.execute(_INSERT, (layout.name, "", WHOLE_TABLE)).fetchone()
        self.wrote = True
        if self.keep:
            seq = 0 if row is None else int(row[0])
            self.recent.append(Change(seq, layout.name, "", None, ()))

    def recent_after(self, after: int) -> list[Change] | None:
        """The entries this connection made after ``after``, if it has them all."""
        if not self.keep:
            self.keep = True
            return None
        recent = self.recent
        while recent and recent[0].seq <= after:
            recent.popleft()
        found = list(recent)
        if not found or found[0].seq != after + 1:
            return None
        if found[-1].seq - found[0].seq != len(found) - 1:
            return None
        return found

    def forget(self) -> None:
        """A write rolled back: what it logged never happened."""
        self.recent.clear()
        self.wrote = False


class Listener:
    """A dedicated connection ``LISTEN``ing on the schema's channel.

    :meth:`version` counts the notifications received so far (each a commit
    of some process that logged changes); it never blocks.
    """

    def __init__(self, dsn: str, channel: str, timeout: float) -> None:
        self._dsn, self._channel, self._timeout = dsn, channel, timeout
        self._lock = threading.Lock()
        self._count = 0
        self._connection: Connection | None = None

    def _connect(self) -> Connection:
        from .connection import connect

        connection = connect(self._dsn, self._timeout)
        connection.execute(f"LISTEN {self._channel}")
        # Anything committed while no connection listened is unknown: count it
        # as a change (the caller then reads the log).
        self._count += 1
        return connection

    def version(self) -> int:
        """A number that moves when some process committed logged changes."""
        with self._lock:
            connection = self._connection
            if connection is None or connection.closed or connection.broken:
                if connection is not None:
                    connection.close()
                self._connection = connection = self._connect()
            for _ in connection.notifies(timeout=0):
                self._count += 1
            return self._count

    def close(self) -> None:
        """Close the listening connection."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _entry(s: SearchSide, doc: dict[str, Any]) -> SearchEntry | None:
    return s.entry(doc)
