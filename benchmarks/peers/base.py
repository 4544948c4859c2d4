"""The interface every store adapter implements, and shared helpers."""

from __future__ import annotations

import abc
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic_core import from_json, to_json

from benchmarks.workload import SETTINGS, Doc, TokenRange

# Convex caps a transaction at 16,000 writes, so one_store's bulk load is a
# series of mutations of this many documents; every store gets the same batches.
BULK_CHUNK = 8_000


def bulk_chunk() -> int:
    """Documents per bulk transaction: ``BULK_CHUNK``, or fewer for large documents.

    Convex also caps a transaction at 16 MiB written, so the "large" workload's
    10-100 KB documents go in batches that stay under it (every store alike).
    """
    if SETTINGS.notes_kb is None:
        return BULK_CHUNK
    return max(1, (15 << 20) // ((SETTINGS.notes_kb[1] + 1) * 1024))


TEN_TABLES = tuple(f"t{i}" for i in range(10))


# Every store gets the fastest JSON codec a Python program has at hand, the one
# one_store reads with: pydantic-core (already installed with pydantic), compact
# output, object keys interned on decode. The standard library's codec costs
# 2-3x as much per document and would flatter whoever does not use it.
def encode(doc: Any) -> str:
    """Compact JSON text of ``doc`` (pydantic-core)."""
    return to_json(doc).decode()


decode = functools.partial(from_json, cache_strings="keys")
stdlib_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def fts_query(text: str) -> str:
    """FTS5 query with one_store's semantics: terms OR-ed, last term a prefix."""
    terms = [f'"{t}"' for t in text.split()]
    terms[-1] += "*"
    return " OR ".join(terms)


class Peer(abc.ABC):
    """One store holding the ``messages`` table, driven by the harness.

    Keys are whatever the store uses as document ID. Every mutation-like method
    is its own durable transaction; reads return documents as dicts with
    ``_id`` and ``_creationTime``.
    """

    name: ClassVar[str]
    # operation name -> why this store cannot do it comparably (reported as n/a)
    not_comparable: ClassVar[dict[str, str]] = {}

    @classmethod
    @abc.abstractmethod
    def create(cls, path: Path) -> Peer:
        """Create an empty store file with the messages schema and open it."""

    @abc.abstractmethod
    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        """Insert many documents in batches of ``bulk_chunk()``; return their keys."""

    @abc.abstractmethod
    def insert(self, doc: Doc) -> Any: ...

    @abc.abstractmethod
    def patch(self, key: Any, fields: Doc) -> None: ...

    @abc.abstractmethod
    def delete(self, key: Any) -> None: ...

    @abc.abstractmethod
    def get(self, key: Any) -> Doc | None: ...

    @abc.abstractmethod
    def by_thread(self, thread: str) -> list[Doc]:
        """First ``EQ_LIMIT`` messages of a thread, oldest first."""

    @abc.abstractmethod
    def token_range(self, r: TokenRange) -> list[Doc]:
        """All messages with ``role == r.role`` and ``r.lo <= meta.tokens < r.hi``."""

    @abc.abstractmethod
    def latest(self, thread: str) -> list[Doc]:
        """Newest ``LATEST_LIMIT`` messages of a thread (desc take)."""

    @abc.abstractmethod
    def walk(self, total: int) -> int:
        """Page through the table in creation order; return documents seen."""

    @abc.abstractmethod
    def search(self, text: str) -> list[Doc]:
        """Top ``SEARCH_LIMIT`` messages by relevance for ``text``."""

    def action3(self, doc: Doc, fields: Doc) -> None:
        """Insert, patch and delete one message: three transactions."""
        key = self.insert(doc)
        self.patch(key, fields)
        self.delete(key)

    @abc.abstractmethod
    def close(self) -> None: ...

    @classmethod
    @abc.abstractmethod
    def prepare_ten(cls, path: Path, doc: Doc) -> Any:
        """Create a file with a 10-table schema and one document; return its key."""

    @classmethod
    @abc.abstractmethod
    def open_ten(cls, path: Path, key: Any) -> Doc | None:
        """Cold start: open the 10-table file, read one document, close."""
