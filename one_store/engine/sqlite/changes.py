"""The change log: which documents each committed write touched, in order.

A reactive query in one process must notice a write made by another process on
the same file, and only the writes that concern it. The log is a table,
``_one_store_changes(seq, table_name, doc_id)``, appended to in the same
transaction as each insert, patch, replace and delete, so a rolled-back write
leaves no entry; ``seq`` is AUTOINCREMENT, so a position is never reused after
pruning. A reader asks for what came after the last ``seq`` it saw and reads the
documents' current state itself (their new index keys; the old ones are in its
own read set, by ID).

The log costs nothing until someone needs it: :func:`create` makes the table,
which bumps the file's schema cookie, and every connection (other processes
included) reloads its layouts at its next transaction and starts logging.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .layout import quote

CHANGES = "_one_store_changes"
_Q = quote(CHANGES)


def exists(connection: sqlite3.Connection) -> bool:
    """Whether the file keeps a change log."""
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (CHANGES,)
    ).fetchone()
    return row is not None


def create(connection: sqlite3.Connection) -> None:
    """Start keeping the log (inside the caller's write transaction)."""
    connection.execute(
        f"CREATE TABLE IF NOT EXISTS {_Q}(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "table_name TEXT NOT NULL, doc_id TEXT NOT NULL)"
    )


def recorder(connection: sqlite3.Connection) -> Callable[[str, str], None]:
    """A function that logs one written document (in the caller's transaction)."""
    sql = f"INSERT INTO {_Q}(table_name, doc_id) VALUES (?, ?)"
    execute = connection.execute

    def record(table: str, doc_id: str) -> None:
        execute(sql, (table, doc_id))

    return record


def no_record(table: str, doc_id: str) -> None:
    """What a write logs while the file keeps no change log: nothing."""


def newest(connection: sqlite3.Connection) -> int:
    """The ``seq`` of the newest entry ever made (0 when none)."""
    row = connection.execute(
        "SELECT seq FROM sqlite_sequence WHERE name=?", (CHANGES,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def since(connection: sqlite3.Connection, seq: int) -> list[tuple[int, str, str]]:
    """``(seq, table, doc_id)`` of every entry after ``seq``, oldest first."""
    rows = connection.execute(
        f"SELECT seq, table_name, doc_id FROM {_Q} WHERE seq > ? ORDER BY seq", (seq,)
    )
    return [(int(s), str(t), str(d)) for s, t, d in rows]


def prune(connection: sqlite3.Connection, upto: int) -> None:
    """Forget the entries up to and including ``upto`` (every reader is past them)."""
    connection.execute(f"DELETE FROM {_Q} WHERE seq <= ?", (upto,))
