"""The reference: hand-written ``sqlite3`` doing the same SQL work (1.0x).

Layout per table: the JSON body plus one column per indexed field, a real
SQLite index per secondary index (with the creation time appended, as Convex
does), an index on the creation time for ordered pages, and an FTS5 table
whose rowid is the message's rowid (none when the run's workload has no search
index). WAL, the run's ``synchronous`` (NORMAL unless told), the same 64 MiB
page cache as one_store, explicit ``BEGIN IMMEDIATE ... COMMIT`` per mutation
and the same SQL strings every call, so ``sqlite3``'s statement cache reuses the
prepared statements.

It is a floor: the same JSON codec as one_store (pydantic-core, see ``base``),
and the fewest statements each operation needs. A patch reads the row and
updates the body and only the index columns whose value changed; a delete is
one ``DELETE ... RETURNING rowid`` (plus the FTS5 row's, when there is one).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.peers.base import (
    TEN_TABLES,
    Peer,
    bulk_chunk,
    decode,
    encode,
    fts_query,
)
from benchmarks.workload import (
    EQ_LIMIT,
    LATEST_LIMIT,
    PAGE_SIZE,
    SEARCH_LIMIT,
    SETTINGS,
    Doc,
    TokenRange,
)


def ddl(t: str, search: bool = True) -> str:
    fts = f"CREATE VIRTUAL TABLE IF NOT EXISTS {t}_fts USING fts5(content);"
    return f"""
CREATE TABLE IF NOT EXISTS {t} (
    id TEXT PRIMARY KEY, creation_time REAL NOT NULL, body TEXT NOT NULL,
    thread_id TEXT NOT NULL, role TEXT NOT NULL, tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS {t}_by_creation ON {t}(creation_time);
CREATE INDEX IF NOT EXISTS {t}_by_thread ON {t}(thread_id, creation_time);
CREATE INDEX IF NOT EXISTS {t}_by_role_tokens ON {t}(role, tokens, creation_time);
{fts if search else ""}
"""


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, like one_store.
    conn = sqlite3.connect(path, isolation_level=None, cached_statements=512)
    for name, value in SETTINGS.pragmas().items():
        conn.execute(f"PRAGMA {name}={value}")
    return conn


def _doc(key: str, creation_time: float, body: str) -> Doc:
    doc: Doc = decode(body)
    doc["_id"] = key
    doc["_creationTime"] = creation_time
    return doc


SELECT = "SELECT id, creation_time, body FROM messages"
INSERT = (
    "INSERT INTO messages (id, creation_time, body, thread_id, role, tokens) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_ROWID = (
    "INSERT INTO messages (rowid, id, creation_time, body, thread_id, role, tokens) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_FTS = "INSERT INTO messages_fts (rowid, content) VALUES (?, ?)"
GET = "SELECT body, creation_time FROM messages WHERE id = ?"
GET_FOR_PATCH = "SELECT rowid, body FROM messages WHERE id = ?"
UPDATE_FTS = "UPDATE messages_fts SET content = ? WHERE rowid = ?"
DELETE = "DELETE FROM messages WHERE id = ? RETURNING rowid"
DELETE_FTS = "DELETE FROM messages_fts WHERE rowid = ?"
# The index columns and where each comes from in a document.
INDEXED: tuple[tuple[str, Callable[[Doc], Any]], ...] = (
    ("thread_id", lambda d: d["threadId"]),
    ("role", lambda d: d["role"]),
    ("tokens", lambda d: d["meta"]["tokens"]),
)
_UPDATES: dict[tuple[str, ...], str] = {}


def update_sql(columns: tuple[str, ...]) -> str:
    """``UPDATE`` of the body and ``columns`` (text cached: one prepared statement each)."""
    sql = _UPDATES.get(columns)
    if sql is None:
        sets = ", ".join(f"{c} = ?" for c in ("body", *columns))
        sql = _UPDATES[columns] = f"UPDATE messages SET {sets} WHERE rowid = ?"
    return sql


BY_THREAD = f"{SELECT} WHERE thread_id = ? ORDER BY creation_time LIMIT {EQ_LIMIT}"
LATEST = (
    f"{SELECT} WHERE thread_id = ? ORDER BY creation_time DESC LIMIT {LATEST_LIMIT}"
)
RANGE = (
    f"{SELECT} WHERE role = ? AND tokens >= ? AND tokens < ? "
    "ORDER BY tokens, creation_time"
)
PAGE = f"{SELECT} WHERE creation_time > ? ORDER BY creation_time LIMIT {PAGE_SIZE}"
SEARCH = (
    "SELECT m.id, m.creation_time, m.body FROM messages_fts "
    "JOIN messages m ON m.rowid = messages_fts.rowid "
    f"WHERE messages_fts MATCH ? ORDER BY messages_fts.rank LIMIT {SEARCH_LIMIT}"
)


class RawSqlite(Peer):
    name = "raw sqlite3"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._last_time = 0.0
        self.search_index = SETTINGS.search

    @classmethod
    def create(cls, path: Path) -> RawSqlite:
        conn = connect(path)
        conn.executescript(ddl("messages", SETTINGS.search))
        return cls(conn)

    def _now(self) -> float:
        # Strictly increasing creation times, as Convex guarantees.
        now = time.time() * 1000.0
        if now <= self._last_time:
            now = self._last_time + 0.001
        self._last_time = now
        return now

    def _row(self, doc: Doc) -> tuple[Any, ...]:
        return (
            os.urandom(16).hex(),
            self._now(),
            encode(doc),
            doc["threadId"],
            doc["role"],
            doc["meta"]["tokens"],
        )

    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        conn = self.conn
        keys: list[Any] = []
        for start in range(0, len(docs), size := bulk_chunk()):
            chunk = docs[start : start + size]
            conn.execute("BEGIN IMMEDIATE")
            try:
                (first,) = conn.execute(
                    "SELECT coalesce(max(rowid), 0) + 1 FROM messages"
                ).fetchone()
                rows = [(first + i, *self._row(d)) for i, d in enumerate(chunk)]
                conn.executemany(INSERT_ROWID, rows)
                if self.search_index:
                    texts = [(first + i, d["content"]) for i, d in enumerate(chunk)]
                    conn.executemany(INSERT_FTS, texts)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            keys.extend(r[1] for r in rows)
        return keys

    def insert(self, doc: Doc) -> Any:
        conn = self.conn
        row = self._row(doc)
        conn.execute("BEGIN IMMEDIATE")
        try:
            rowid = conn.execute(INSERT, row).lastrowid
            if self.search_index:
                conn.execute(INSERT_FTS, (rowid, doc["content"]))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return row[0]

    def patch(self, key: Any, fields: Doc) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            rowid, body = conn.execute(GET_FOR_PATCH, (key,)).fetchone()
            old = decode(body)
            doc = {**old, **fields}
            # Only the index columns whose value changed (the others' b-trees
            # are left alone), as one_store does.
            changed = [(c, f(doc)) for c, f in INDEXED if f(doc) != f(old)]
            sql = update_sql(tuple(c for c, _ in changed))
            conn.execute(sql, (encode(doc), *(v for _, v in changed), rowid))
            if self.search_index and doc["content"] != old["content"]:
                conn.execute(UPDATE_FTS, (doc["content"], rowid))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def delete(self, key: Any) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            (rowid,) = conn.execute(DELETE, (key,)).fetchone()
            if self.search_index:
                conn.execute(DELETE_FTS, (rowid,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def get(self, key: Any) -> Doc | None:
        row = self.conn.execute(GET, (key,)).fetchone()
        if row is None:
            return None
        return _doc(key, row[1], row[0])

    def _docs(self, sql: str, params: tuple[Any, ...]) -> list[Doc]:
        return [_doc(*row) for row in self.conn.execute(sql, params)]

    def by_thread(self, thread: str) -> list[Doc]:
        return self._docs(BY_THREAD, (thread,))

    def token_range(self, r: TokenRange) -> list[Doc]:
        return self._docs(RANGE, (r.role, r.lo, r.hi))

    def latest(self, thread: str) -> list[Doc]:
        return self._docs(LATEST, (thread,))

    def walk(self, total: int) -> int:
        seen = 0
        after = float("-inf")
        while seen < total:
            page = self._docs(PAGE, (after,))
            seen += len(page)
            if len(page) < PAGE_SIZE:
                break
            after = page[-1]["_creationTime"]
        return seen

    def search(self, text: str) -> list[Doc]:
        return self._docs(SEARCH, (fts_query(text),))

    def close(self) -> None:
        self.conn.close()

    @classmethod
    def prepare_ten(cls, path: Path, doc: Doc) -> Any:
        conn = connect(path)
        conn.executescript("".join(ddl(t) for t in TEN_TABLES))
        key = os.urandom(16).hex()
        row = (key, time.time() * 1000.0, encode(doc), doc["threadId"], doc["role"])
        conn.execute(
            "INSERT INTO t0 (id, creation_time, body, thread_id, role, tokens) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*row, doc["meta"]["tokens"]),
        )
        conn.close()
        return key

    @classmethod
    def open_ten(cls, path: Path, key: Any) -> Doc | None:
        # A raw app's start-up: connect, set the pragmas, make sure the schema
        # exists (IF NOT EXISTS), then serve the first read.
        conn = connect(path)
        conn.executescript("".join(ddl(t) for t in TEN_TABLES))
        row = conn.execute(
            "SELECT body, creation_time FROM t0 WHERE id = ?", (key,)
        ).fetchone()
        conn.close()
        return None if row is None else _doc(key, row[1], row[0])
