"""sqlite-utils, used the way its docs show: ``Table`` objects, ``db.atomic()``.

Same physical layout as the raw reference (JSON body + index columns, FTS5 table
keyed by rowid), so the difference is sqlite-utils' per-call work.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from benchmarks.peers.base import (
    TEN_TABLES,
    Peer,
    bulk_chunk,
    decode,
    encode,
    fts_query,
)
from benchmarks.peers.raw_sqlite import SEARCH
from benchmarks.workload import (
    EQ_LIMIT,
    LATEST_LIMIT,
    PAGE_SIZE,
    SETTINGS,
    Doc,
    TokenRange,
)

COLUMNS = {
    "id": str,
    "creation_time": float,
    "body": str,
    "thread_id": str,
    "role": str,
    "tokens": int,
}
SELECT = "id, creation_time, body"


def _open(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path)
    db.enable_wal()
    for name, value in SETTINGS.pragmas().items():  # the same as every store
        db.execute(f"PRAGMA {name}={value}")
    return db


def _ensure(db: sqlite_utils.Database, name: str) -> None:
    table = db.table(name)
    table.create(COLUMNS, pk="id", not_null=set(COLUMNS), if_not_exists=True)
    table.create_index(["creation_time"], if_not_exists=True)
    table.create_index(["thread_id", "creation_time"], if_not_exists=True)
    table.create_index(["role", "tokens", "creation_time"], if_not_exists=True)
    if SETTINGS.search and not db.table(f"{name}_fts").exists():
        db.execute(f"CREATE VIRTUAL TABLE {name}_fts USING fts5(content)")


def _doc(row: dict[str, Any]) -> Doc:
    doc: Doc = decode(row["body"])
    doc["_id"] = row["id"]
    doc["_creationTime"] = row["creation_time"]
    return doc


class SqliteUtilsPeer(Peer):
    name = "sqlite-utils"

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        self.table = db.table("messages")
        self.fts = db.table("messages_fts")
        self._last_time = 0.0

    @classmethod
    def create(cls, path: Path) -> SqliteUtilsPeer:
        db = _open(path)
        _ensure(db, "messages")
        return cls(db)

    def _now(self) -> float:
        now = time.time() * 1000.0
        if now <= self._last_time:
            now = self._last_time + 0.001
        self._last_time = now
        return now

    def _record(self, doc: Doc) -> dict[str, Any]:
        return {
            "id": os.urandom(16).hex(),
            "creation_time": self._now(),
            "body": encode(doc),
            "thread_id": doc["threadId"],
            "role": doc["role"],
            "tokens": doc["meta"]["tokens"],
        }

    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        keys: list[Any] = []
        for start in range(0, len(docs), size := bulk_chunk()):
            records = [self._record(d) for d in docs[start : start + size]]
            with self.db.atomic():
                (first,) = self.db.execute(
                    "SELECT coalesce(max(rowid), 0) FROM messages"
                ).fetchone()
                self.table.insert_all(records, batch_size=1000)
                if not SETTINGS.search:
                    keys.extend(r["id"] for r in records)
                    continue
                self.db.execute(
                    "INSERT INTO messages_fts (rowid, content) SELECT rowid, "
                    "json_extract(body, '$.content') FROM messages WHERE rowid > ?",
                    [first],
                )
            keys.extend(r["id"] for r in records)
        return keys

    def insert(self, doc: Doc) -> Any:
        record = self._record(doc)
        with self.db.atomic():
            rowid = self.table.insert(record).last_rowid
            if SETTINGS.search:
                self.fts.insert({"rowid": rowid, "content": doc["content"]})
        return record["id"]

    def patch(self, key: Any, fields: Doc) -> None:
        with self.db.atomic():
            doc = decode(self.table.get(key)["body"])
            doc.update(fields)
            # The columns the patch can change (a user knows thread_id stays).
            self.table.update(
                key,
                {
                    "body": encode(doc),
                    "role": doc["role"],
                    "tokens": doc["meta"]["tokens"],
                },
            )
            if SETTINGS.search and "content" in fields:
                (rowid,) = self.db.execute(
                    "SELECT rowid FROM messages WHERE id = ?", [key]
                ).fetchone()
                self.fts.update(rowid, {"content": doc["content"]})

    def delete(self, key: Any) -> None:
        with self.db.atomic():
            if not SETTINGS.search:
                self.table.delete(key)
                return
            row = next(self.table.rows_where("id = ?", [key], select="rowid"))
            self.fts.delete_where("rowid = ?", [row["rowid"]])
            self.table.delete(key)

    def get(self, key: Any) -> Doc | None:
        try:
            return _doc(self.table.get(key))
        except sqlite_utils.db.NotFoundError:
            return None

    def _rows(
        self, where: str, args: list[Any], order_by: str, limit: int | None
    ) -> list[Doc]:
        rows = self.table.rows_where(
            where, args, order_by=order_by, select=SELECT, limit=limit
        )
        return [_doc(r) for r in rows]

    def by_thread(self, thread: str) -> list[Doc]:
        return self._rows("thread_id = ?", [thread], "creation_time", EQ_LIMIT)

    def token_range(self, r: TokenRange) -> list[Doc]:
        return self._rows(
            "role = ? AND tokens >= ? AND tokens < ?",
            [r.role, r.lo, r.hi],
            "tokens, creation_time",
            None,
        )

    def latest(self, thread: str) -> list[Doc]:
        return self._rows("thread_id = ?", [thread], "creation_time DESC", LATEST_LIMIT)

    def walk(self, total: int) -> int:
        seen = 0
        after = float("-inf")
        while seen < total:
            page = self._rows("creation_time > ?", [after], "creation_time", PAGE_SIZE)
            seen += len(page)
            if len(page) < PAGE_SIZE:
                break
            after = page[-1]["_creationTime"]
        return seen

    def search(self, text: str) -> list[Doc]:
        return [_doc(r) for r in self.db.query(SEARCH, [fts_query(text)])]

    def close(self) -> None:
        self.db.close()

    @classmethod
    def prepare_ten(cls, path: Path, doc: Doc) -> Any:
        db = _open(path)
        for name in TEN_TABLES:
            _ensure(db, name)
        peer = cls(db)
        record = peer._record(doc)
        db.table("t0").insert(record)
        db.close()
        return record["id"]

    @classmethod
    def open_ten(cls, path: Path, key: Any) -> Doc | None:
        db = _open(path)
        for name in TEN_TABLES:
            _ensure(db, name)
        doc = _doc(db.table("t0").get(key))
        db.close()
        return doc
