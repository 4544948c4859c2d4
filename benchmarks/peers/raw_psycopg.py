"""The PostgreSQL reference: hand-written psycopg doing the same SQL work (1.0x).

The floor of benchmarks/postgres.py, as raw sqlite3 is the floor on SQLite. Layout
(in the connection's schema, as one_store's): the JSON body plus one column per
indexed field, a btree index per secondary index (creation time appended, as
Convex does), one on the creation time for ordered pages, and a search table of
``tsvector``s under a GIN index written in the document's transaction.

Each write holds the schema's advisory lock for its transaction, as one_store's
writes do (one writer at a time, the guarantee the harness compares): ``BEGIN``,
``pg_advisory_xact_lock``, the statements, ``COMMIT``. It is a floor: the same
JSON codec as one_store (pydantic-core, ``base``), the same connection (the same
DSN, autocommit with explicit transactions, psycopg's automatic prepared
statements), and the fewest round trips each operation needs: a write whose
statements do not depend on a read goes as one pipeline (one round trip), a read
is one statement (a single statement is its own snapshot).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from benchmarks.peers.base import TEN_TABLES, Peer, bulk_chunk, decode, encode
from benchmarks.workload import (
    EQ_LIMIT,
    LATEST_LIMIT,
    PAGE_SIZE,
    SEARCH_LIMIT,
    SETTINGS,
    Doc,
    TokenRange,
)


def ddl(t: str) -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {t} (
    id text COLLATE "C" PRIMARY KEY, creation_time double precision NOT NULL,
    body text NOT NULL, thread_id text COLLATE "C" NOT NULL,
    role text COLLATE "C" NOT NULL, tokens bigint NOT NULL);
CREATE INDEX IF NOT EXISTS {t}_by_creation ON {t} (creation_time);
CREATE INDEX IF NOT EXISTS {t}_by_thread ON {t} (thread_id, creation_time);
CREATE INDEX IF NOT EXISTS {t}_by_role_tokens ON {t} (role, tokens, creation_time);
CREATE TABLE IF NOT EXISTS {t}_fts (
    id text COLLATE "C" PRIMARY KEY, tokens tsvector NOT NULL);
CREATE INDEX IF NOT EXISTS {t}_fts_gin ON {t}_fts USING gin (tokens);
"""


SELECT = "SELECT id, creation_time, body FROM messages"
INSERT = (
    "INSERT INTO messages (id, creation_time, body, thread_id, role, tokens) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
INSERT_FTS = (
    "INSERT INTO messages_fts (id, tokens) VALUES (%s, to_tsvector('simple', %s))"
)
UPDATE_FTS = "UPDATE messages_fts SET tokens = to_tsvector('simple', %s) WHERE id = %s"
GET = "SELECT body, creation_time FROM messages WHERE id = %s"
GET_FOR_PATCH = "SELECT body FROM messages WHERE id = %s"
DELETE = "DELETE FROM messages WHERE id = %s"
DELETE_FTS = "DELETE FROM messages_fts WHERE id = %s"
BY_THREAD = f"{SELECT} WHERE thread_id = %s ORDER BY creation_time LIMIT {EQ_LIMIT}"
LATEST = (
    f"{SELECT} WHERE thread_id = %s ORDER BY creation_time DESC LIMIT {LATEST_LIMIT}"
)
RANGE = (
    f"{SELECT} WHERE role = %s AND tokens >= %s AND tokens < %s "
    "ORDER BY tokens, creation_time"
)
PAGE = f"{SELECT} WHERE creation_time > %s ORDER BY creation_time LIMIT {PAGE_SIZE}"
SEARCH = (
    "SELECT m.id, m.creation_time, m.body FROM messages_fts f "
    "JOIN messages m ON m.id = f.id, to_tsquery('simple', %s) q "
    f"WHERE f.tokens @@ q ORDER BY ts_rank(f.tokens, q, 1) DESC LIMIT {SEARCH_LIMIT}"
)
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
        sets = ", ".join(f"{c} = %s" for c in ("body", *columns))
        sql = _UPDATES[columns] = f"UPDATE messages SET {sets} WHERE id = %s"
    return sql


def ts_query(text: str) -> str:
    """one_store's search semantics: terms OR-ed, the last a prefix."""
    terms = [t.replace("'", "") for t in text.split()]
    terms[-1] += ":*"
    return " | ".join(terms)


def lock_sql(dsn: str) -> str:
    """The advisory lock of this benchmark's schema (a key of its own)."""
    key = int.from_bytes(hashlib.sha256(dsn.encode()).digest()[:8], "big", signed=True)
    return f"SELECT pg_advisory_xact_lock({key})"


def _doc(key: str, creation_time: float, body: str) -> Doc:
    doc: Doc = decode(body)
    doc["_id"] = key
    doc["_creationTime"] = creation_time
    return doc


class RawPsycopg(Peer):
    name = "raw psycopg"

    def __init__(self, conn: psycopg.Connection[Any], dsn: str, locked: bool) -> None:
        self.conn = conn
        self.lock = lock_sql(dsn) if locked else None
        self._last_time = 0.0
        self.search_index = SETTINGS.search

    @classmethod
    def create(cls, path: Any, locked: bool = True) -> RawPsycopg:
        dsn = str(path)
        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute(ddl("messages").encode())
        return cls(conn, dsn, locked)

    def _now(self) -> float:
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

    def _begin(self, cur: psycopg.Cursor[Any]) -> None:
        cur.execute("BEGIN")
        if self.lock is not None:
            cur.execute(self.lock)

    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        keys: list[Any] = []
        for start in range(0, len(docs), size := bulk_chunk()):
            chunk = docs[start : start + size]
            rows = [self._row(d) for d in chunk]
            with self.conn.pipeline(), self.conn.cursor() as cur:
                self._begin(cur)
                cur.executemany(INSERT, rows)
                if self.search_index:
                    texts = [
                        (r[0], d["content"]) for r, d in zip(rows, chunk, strict=True)
                    ]
                    cur.executemany(INSERT_FTS, texts)
                cur.execute("COMMIT")
            keys.extend(r[0] for r in rows)
        return keys

    def insert(self, doc: Doc) -> Any:
        row = self._row(doc)
        with self.conn.pipeline(), self.conn.cursor() as cur:
            self._begin(cur)
            cur.execute(INSERT, row)
            if self.search_index:
                cur.execute(INSERT_FTS, (row[0], doc["content"]))
            cur.execute("COMMIT")
        return row[0]

    def patch(self, key: Any, fields: Doc) -> None:
        with self.conn.cursor() as cur:
            with self.conn.pipeline():
                self._begin(cur)
                cur.execute(GET_FOR_PATCH, (key,))
            (body,) = cur.fetchone() or (None,)
            old = decode(body)
            doc = {**old, **fields}
            changed = [(c, f(doc)) for c, f in INDEXED if f(doc) != f(old)]
            sql = update_sql(tuple(c for c, _ in changed))
            with self.conn.pipeline():
                cur.execute(sql, (encode(doc), *(v for _, v in changed), key))
                if self.search_index and doc["content"] != old["content"]:
                    cur.execute(UPDATE_FTS, (doc["content"], key))
                cur.execute("COMMIT")

    def delete(self, key: Any) -> None:
        with self.conn.pipeline(), self.conn.cursor() as cur:
            self._begin(cur)
            cur.execute(DELETE, (key,))
            if self.search_index:
                cur.execute(DELETE_FTS, (key,))
            cur.execute("COMMIT")

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
        return self._docs(SEARCH, (ts_query(text),))

    def close(self) -> None:
        self.conn.close()

    @classmethod
    def prepare_ten(cls, path: Any, doc: Doc) -> Any:
        with psycopg.connect(str(path), autocommit=True) as conn:
            conn.execute("".join(ddl(t) for t in TEN_TABLES).encode())
            key = os.urandom(16).hex()
            conn.execute(
                INSERT.replace("messages", "t0"),
                (
                    key,
                    time.time() * 1000.0,
                    encode(doc),
                    doc["threadId"],
                    doc["role"],
                    doc["meta"]["tokens"],
                ),
            )
        return key

    @classmethod
    def open_ten(cls, path: Any, key: Any) -> Doc | None:
        # A raw app's start-up: connect, make sure the tables exist, first read.
        with psycopg.connect(str(path), autocommit=True) as conn:
            conn.execute("".join(ddl(t) for t in TEN_TABLES).encode())
            row = conn.execute(GET.replace("messages", "t0"), (key,)).fetchone()
        return None if row is None else _doc(key, row[1], row[0])
