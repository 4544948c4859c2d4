"""The tables beside a document table on PostgreSQL: their names and their entries.

Each search index and each vector index of a table keeps its entries in a table
of its own, written in the document's transaction (see
:mod:`one_store.engine.postgres.text_search` and
:mod:`one_store.engine.postgres.vector_tables`). This module names those tables
and computes a document's entry in each, the same entries the SQLite engine
keeps (so the change log's search entries are the same bytes on both engines):

- a search entry is the search field's tokens
  (:func:`one_store.engine.search.search_tokens`, space separated) and the sort
  keys of the filter fields; a document whose search field is not a string has
  none;
- a vector entry is the vector as little-endian float32 bytes and the sort keys
  of the filter fields; a document whose field is not an array of exactly
  ``dimensions`` finite floats has none (Convex's ``QdrantSchema::index``).

PostgreSQL cuts identifiers at 63 bytes (``NAMEDATALEN - 1``) with only a
NOTICE, so two long names could silently become the same table:
:func:`pg_name` keeps a name that fits and otherwise ends a shortened one with
a hash of the whole name.
"""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from typing import Any

from attrs import frozen

from ...model.keys import sort_key
from ...model.schema import SearchIndex, VectorIndex
from ...model.values import get_path
from ..backend import SearchEntry
from ..search import search_tokens

MAX_IDENTIFIER = 63  # bytes: PostgreSQL's NAMEDATALEN - 1
_SWAP = sys.byteorder != "little"


def pg_name(name: str) -> str:
    """``name`` as a PostgreSQL identifier: itself when it fits, else cut and hashed."""
    raw = name.encode("utf-8")
    if len(raw) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    head = raw[: MAX_IDENTIFIER - len(digest) - 1].decode("utf-8", "ignore")
    return f"{head}~{digest}"


def quote(name: str) -> str:
    """Quote an identifier (after :func:`pg_name`)."""
    return '"' + pg_name(name).replace('"', '""') + '"'


def search_table(table: str, index: str) -> str:
    """The table behind search index ``index`` of ``table``."""
    return pg_name(f"{table}$search${index}")


def vector_table(table: str, index: str) -> str:
    """The table behind vector index ``index`` of ``table``."""
    return pg_name(f"{table}$vector${index}")


def _paths(fields: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(f.split(".")) for f in fields)


@frozen
class SearchSide:
    """One search index's table and how a document's entry in it is made."""

    table: str
    index: SearchIndex
    name: str
    text_path: tuple[str, ...]
    filter_paths: tuple[tuple[str, ...], ...]

    @classmethod
    def build(cls, table: str, index: SearchIndex) -> SearchSide:
        """The side table of ``index`` on ``table``."""
        return cls(
            table,
            index,
            search_table(table, index.name),
            tuple(index.search_field.split(".")),
            _paths(index.filter_fields),
        )

    def entry(self, doc: dict[str, Any]) -> SearchEntry | None:
        """``doc``'s tokens and filter keys (None: its search field is not a string)."""
        text = get_path(doc, self.text_path)
        if not isinstance(text, str):
            return None
        keys = tuple(sort_key(get_path(doc, p)) for p in self.filter_paths)
        return " ".join(search_tokens(text)), keys

    def same_entry(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``old`` and ``new`` have the same entry (compared on the inputs)."""
        a, b = get_path(old, self.text_path), get_path(new, self.text_path)
        a_text, b_text = isinstance(a, str), isinstance(b, str)
        if a_text != b_text or (a_text and a != b):
            return False
        if not a_text:
            return True
        return all(
            sort_key(get_path(old, p)) == sort_key(get_path(new, p))
            for p in self.filter_paths
        )


def pack(value: object, dimensions: int) -> bytes | None:
    """The float32 bytes of an indexable vector, or None when it is not indexed.

    Indexed: a list of exactly ``dimensions`` floats (not ints, not bools), each
    finite and within float32's range (as the SQLite engine).
    """
    if type(value) is not list or len(value) != dimensions:
        return None
    if not all(type(x) is float for x in value):
        return None
    packed = array("f", value)
    if not math.isfinite(sum(packed)):  # a float beyond float32 packed to inf
        return None
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


@frozen
class VectorSide:
    """One vector index's table and how a document's entry in it is made."""

    table: str
    index: VectorIndex
    name: str
    vector_path: tuple[str, ...]
    filter_paths: tuple[tuple[str, ...], ...]

    @classmethod
    def build(cls, table: str, index: VectorIndex) -> VectorSide:
        """The side table of ``index`` on ``table``."""
        return cls(
            table,
            index,
            vector_table(table, index.name),
            tuple(index.vector_field.split(".")),
            _paths(index.filter_fields),
        )

    def entry(self, doc: dict[str, Any]) -> tuple[bytes, tuple[bytes, ...]] | None:
        """``doc``'s vector bytes and filter keys (None: not indexed)."""
        packed = pack(get_path(doc, self.vector_path), self.index.dimensions)
        if packed is None:
            return None
        return packed, tuple(sort_key(get_path(doc, p)) for p in self.filter_paths)

    def same_entry(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``old`` and ``new`` have the same entry (so it can stay)."""
        a, b = get_path(old, self.vector_path), get_path(new, self.vector_path)
        if a is not b and a != b:
            return False
        return self.entry(old) == self.entry(new)
