"""TinyDB with its default JSON file storage (what its README shows).

TinyDB has no secondary indexes, ordered cursors or text ranking: every query
reads and scans the whole file, and every write rewrites it (with an fsync).
Its per-table query cache is turned off so repeated queries measure the work,
not a cache hit the other stores do not get.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from tinydb import Query, TinyDB
from tinydb.table import Table

from benchmarks.peers.base import TEN_TABLES, Peer, bulk_chunk
from benchmarks.workload import EQ_LIMIT, LATEST_LIMIT, Doc, TokenRange

Q = Query()


def _doc(d: Any) -> Doc:
    doc = dict(d)
    doc["_id"] = d.doc_id
    return doc


def _by_time(d: Any) -> float:
    return float(d["_creationTime"])


class TinyDBPeer(Peer):
    name = "TinyDB"
    not_comparable: ClassVar[dict[str, str]] = {
        "walk": "no ordered cursor: each page would be a full scan and sort",
        "search": "no text index or relevance ranking",
    }

    def __init__(self, db: TinyDB) -> None:
        self.db = db
        self.table: Table = db.table("messages", cache_size=0)
        self._last_time = 0.0

    @classmethod
    def create(cls, path: Path) -> TinyDBPeer:
        return cls(TinyDB(path))

    def _now(self) -> float:
        now = time.time() * 1000.0
        if now <= self._last_time:
            now = self._last_time + 0.001
        self._last_time = now
        return now

    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        keys: list[Any] = []
        for start in range(0, len(docs), size := bulk_chunk()):
            chunk = [
                {**d, "_creationTime": self._now()} for d in docs[start : start + size]
            ]
            keys.extend(self.table.insert_multiple(chunk))
        return keys

    def insert(self, doc: Doc) -> Any:
        return self.table.insert({**doc, "_creationTime": self._now()})

    def patch(self, key: Any, fields: Doc) -> None:
        self.table.update(fields, doc_ids=[key])

    def delete(self, key: Any) -> None:
        self.table.remove(doc_ids=[key])

    def get(self, key: Any) -> Doc | None:
        d = self.table.get(doc_id=key)
        return None if d is None else _doc(d)

    def by_thread(self, thread: str) -> list[Doc]:
        found = sorted(self.table.search(Q.threadId == thread), key=_by_time)
        return [_doc(d) for d in found[:EQ_LIMIT]]

    def token_range(self, r: TokenRange) -> list[Doc]:
        cond = (Q.role == r.role) & (Q.meta.tokens >= r.lo) & (Q.meta.tokens < r.hi)
        found = self.table.search(cond)
        found.sort(key=lambda d: (d["meta"]["tokens"], d["_creationTime"]))
        return [_doc(d) for d in found]

    def latest(self, thread: str) -> list[Doc]:
        found = sorted(
            self.table.search(Q.threadId == thread), key=_by_time, reverse=True
        )
        return [_doc(d) for d in found[:LATEST_LIMIT]]

    def walk(self, total: int) -> int:
        raise NotImplementedError(self.not_comparable["walk"])

    def search(self, text: str) -> list[Doc]:
        raise NotImplementedError(self.not_comparable["search"])

    def close(self) -> None:
        self.db.close()

    @classmethod
    def prepare_ten(cls, path: Path, doc: Doc) -> Any:
        db = TinyDB(path)
        for name in TEN_TABLES[1:]:
            db.table(name).insert({"_placeholder": True})
        key = db.table(TEN_TABLES[0]).insert(
            {**doc, "_creationTime": time.time() * 1000}
        )
        db.close()
        return key

    @classmethod
    def open_ten(cls, path: Path, key: Any) -> Doc | None:
        db = TinyDB(path)
        d = db.table(TEN_TABLES[0], cache_size=0).get(doc_id=key)
        db.close()
        return None if d is None else _doc(d)
