"""peewee models over the same layout (rowid table, unique ``id``, FTS5 model).

Models are built per database (``_models``) because the harness opens several
files at once; a real app would declare them once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import peewee as pw
from playhouse.sqlite_ext import FTS5Model, RowIDField, SearchField

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


def _database(path: Path) -> pw.SqliteDatabase:
    # The same pragmas (WAL, synchronous, 64 MiB page cache) as every store.
    return pw.SqliteDatabase(str(path), pragmas=SETTINGS.pragmas())


def _models(db: pw.Database | pw.DatabaseProxy, table: str) -> tuple[Any, Any]:
    class Message(pw.Model):
        rowid = RowIDField()
        id = pw.CharField(unique=True)
        creation_time = pw.FloatField(index=True)
        body = pw.TextField()
        thread_id = pw.CharField()
        role = pw.CharField()
        tokens = pw.IntegerField()

        class Meta:
            database = db
            table_name = table
            # save() writes only the fields that were set, as peewee's docs
            # recommend for updates of a few fields.
            only_save_dirty = True
            indexes = (
                (("thread_id", "creation_time"), False),
                (("role", "tokens", "creation_time"), False),
            )

    class MessageIndex(FTS5Model):
        content = SearchField()

        class Meta:
            database = db
            table_name = f"{table}_fts"

    return Message, MessageIndex


def _doc(m: Any) -> Doc:
    doc: Doc = decode(m.body)
    doc["_id"] = m.id
    doc["_creationTime"] = m.creation_time
    return doc


class PeeweePeer(Peer):
    name = "peewee"

    def __init__(self, db: pw.SqliteDatabase) -> None:
        self.db = db
        self.Message, self.Index = _models(db, "messages")
        self._last_time = 0.0

    @classmethod
    def create(cls, path: Path) -> PeeweePeer:
        db = _database(path)
        db.connect()
        peer = cls(db)
        db.create_tables(
            [peer.Message, peer.Index] if SETTINGS.search else [peer.Message]
        )
        return peer

    def _now(self) -> float:
        now = time.time() * 1000.0
        if now <= self._last_time:
            now = self._last_time + 0.001
        self._last_time = now
        return now

    def _fields(self, doc: Doc) -> dict[str, Any]:
        return {
            "id": os.urandom(16).hex(),
            "creation_time": self._now(),
            "body": encode(doc),
            "thread_id": doc["threadId"],
            "role": doc["role"],
            "tokens": doc["meta"]["tokens"],
        }

    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        message, index = self.Message, self.Index
        keys: list[Any] = []
        for start in range(0, len(docs), size := bulk_chunk()):
            chunk = docs[start : start + size]
            with self.db.atomic("IMMEDIATE"):
                first = (message.select(pw.fn.MAX(message.rowid)).scalar() or 0) + 1
                rows = [
                    {"rowid": first + i, **self._fields(d)} for i, d in enumerate(chunk)
                ]
                for batch in pw.chunked(rows, 1000):
                    message.insert_many(batch).execute()
                if not SETTINGS.search:
                    keys.extend(r["id"] for r in rows)
                    continue
                texts = [
                    {"rowid": first + i, "content": d["content"]}
                    for i, d in enumerate(chunk)
                ]
                for batch in pw.chunked(texts, 1000):
                    index.insert_many(batch).execute()
            keys.extend(r["id"] for r in rows)
        return keys

    def insert(self, doc: Doc) -> Any:
        fields = self._fields(doc)
        with self.db.atomic("IMMEDIATE"):
            rowid = self.Message.insert(**fields).execute()
            if SETTINGS.search:
                self.Index.insert(rowid=rowid, content=doc["content"]).execute()
        return fields["id"]

    def patch(self, key: Any, fields: Doc) -> None:
        with self.db.atomic("IMMEDIATE"):
            m = self.Message.get(self.Message.id == key)
            doc = decode(m.body)
            doc.update(fields)
            m.body = encode(doc)
            m.role = doc["role"]
            m.tokens = doc["meta"]["tokens"]
            m.save()  # only the dirty fields (only_save_dirty)
            if SETTINGS.search and "content" in fields:
                self.Index.update(content=doc["content"]).where(
                    self.Index.rowid == m.rowid
                ).execute()

    def delete(self, key: Any) -> None:
        with self.db.atomic("IMMEDIATE"):
            m = self.Message.get(self.Message.id == key)
            if SETTINGS.search:
                self.Index.delete().where(self.Index.rowid == m.rowid).execute()
            m.delete_instance()

    def get(self, key: Any) -> Doc | None:
        m = self.Message.get_or_none(self.Message.id == key)
        return None if m is None else _doc(m)

    def by_thread(self, thread: str) -> list[Doc]:
        m = self.Message
        q = m.select().where(m.thread_id == thread).order_by(m.creation_time)
        return [_doc(x) for x in q.limit(EQ_LIMIT)]

    def token_range(self, r: TokenRange) -> list[Doc]:
        m = self.Message
        q = (
            m.select()
            .where((m.role == r.role) & (m.tokens >= r.lo) & (m.tokens < r.hi))
            .order_by(m.tokens, m.creation_time)
        )
        return [_doc(x) for x in q]

    def latest(self, thread: str) -> list[Doc]:
        m = self.Message
        q = m.select().where(m.thread_id == thread).order_by(m.creation_time.desc())
        return [_doc(x) for x in q.limit(LATEST_LIMIT)]

    def walk(self, total: int) -> int:
        m = self.Message
        seen = 0
        after = float("-inf")
        while seen < total:
            q = m.select().where(m.creation_time > after).order_by(m.creation_time)
            page = [_doc(x) for x in q.limit(PAGE_SIZE)]
            seen += len(page)
            if len(page) < PAGE_SIZE:
                break
            after = page[-1]["_creationTime"]
        return seen

    def search(self, text: str) -> list[Doc]:
        m, index = self.Message, self.Index
        q = (
            m.select()
            .join(index, on=(m.rowid == index.rowid))
            .where(index.match(fts_query(text)))
            .order_by(index.rank())
            .limit(SEARCH_LIMIT)
        )
        return [_doc(x) for x in q]

    def close(self) -> None:
        self.db.close()

    @classmethod
    def prepare_ten(cls, path: Path, doc: Doc) -> Any:
        db = _database(path)
        _TEN_PROXY.initialize(db)
        db.connect()
        db.create_tables(_TEN_MODELS)
        fields = cls(db)._fields(doc)
        _TEN_MODELS[0].insert(**fields).execute()
        db.close()
        return fields["id"]

    @classmethod
    def open_ten(cls, path: Path, key: Any) -> Doc | None:
        # An app's start-up: models are declared once at import; connect,
        # create_tables (safe: IF NOT EXISTS), serve the first read.
        db = _database(path)
        _TEN_PROXY.initialize(db)
        db.connect()
        db.create_tables(_TEN_MODELS)
        m = _TEN_MODELS[0]
        found = m.get_or_none(m.id == key)
        db.close()
        return None if found is None else _doc(found)


_TEN_PROXY = pw.DatabaseProxy()
_TEN_MODELS = [model for t in TEN_TABLES for model in _models(_TEN_PROXY, t)]
