"""How a Convex table is laid out in SQLite: names, key columns, the SQL of its rows.

Layout (version 1), readable by any SQLite tool:

- ``_one_store_meta(key, value)``: layout version, schema fingerprint, the last
  ``_creationTime`` handed out (so it keeps increasing across processes).
- ``_one_store_tables(name, number, indexes)``: every table with its ID table number
  and its index definitions (JSON), so a file opened without a schema still knows
  its indexes.
- one SQLite table per Convex table, named as the table:
  ``_id TEXT PRIMARY KEY, _creationTime REAL, _body TEXT`` (the whole document as
  JSON, system fields included, so a read is a single ``json.loads``) and one BLOB
  column ``_k_<index>`` per index (``by_creation_time`` and every user index) holding
  the order-preserving key of :func:`one_store.model.values.sort_key` over the index
  fields, ``_creationTime`` and ``_id``, with a real SQLite index on it;
  ``by_id`` uses the primary key.
- one FTS5 table ``<table>$search$<index>`` per search index: the text, and the
  filter fields' sort keys as UNINDEXED columns; its rowid is the document's rowid.
- one table ``<table>$vector$<index>`` per vector index: the vector as float32
  bytes, the document's ``_id``, the filter fields' sort keys and a ``seq`` that
  grows with every change (see :mod:`one_store.engine.sqlite.vectors`).

A :class:`TableLayout` holds one table's row SQL (fixed text, so sqlite3's
statement cache prepares each once) and its key functions; it is the SQLite
engine's :class:`~one_store.engine.backend.TableInfo`.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from array import array
from collections.abc import Callable
from typing import Any, Protocol

from attrs import define, field

from ...model.keys import key_function, sort_key
from ...model.schema import Index, SearchIndex, VectorIndex
from ...model.values import UNSET, Document, dumps, get_path
from ..search import search_tokens

# What sits beside a table's key columns, kept in step by every write.
SideIndex = SearchIndex | VectorIndex

LAYOUT_VERSION = 1
META = "_one_store_meta"
TABLES = "_one_store_tables"


def quote(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def key_column(index_name: str) -> str:
    """The BLOB column holding an index's keys."""
    return f"_k_{index_name}"


def index_name(table: str, index: str) -> str:
    """The SQLite index on a key column."""
    return f"{table}${index}"


def search_table(table: str, index_name: str) -> str:
    """The FTS5 table behind a search index."""
    return f"{table}$search${index_name}"


def read_meta(connection: sqlite3.Connection, key: str) -> str | None:
    """A setting kept in ``_one_store_meta``."""
    row = connection.execute(f"SELECT value FROM {META} WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def write_meta(connection: sqlite3.Connection, key: str, value: str) -> None:
    """Keep a setting in ``_one_store_meta`` (inside the caller's write)."""
    connection.execute(
        f"INSERT INTO {META}(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (key, value),
    )


def spec_text(
    indexes: tuple[Index, ...],
    search: tuple[SideIndex, ...],
    document: str | None = None,
) -> str:
    """A table's indexes as ``_one_store_tables.indexes`` keeps them (JSON).

    ``document``, when given, is the document validator (Convex's JSON, as
    text) that every stored document of the table was last checked against.
    """
    spec: dict[str, Any] = {
        "indexes": [{"name": i.name, "fields": list(i.fields)} for i in indexes],
        "search": [
            {
                "name": s.name,
                "searchField": s.search_field,
                "filterFields": list(s.filter_fields),
            }
            for s in search
            if isinstance(s, SearchIndex)
        ],
    }
    vectors = [x for x in search if isinstance(x, VectorIndex)]
    if vectors:  # absent when there are none: files without vectors keep their text
        spec["vector"] = [
            {
                "name": x.name,
                "vectorField": x.vector_field,
                "dimensions": x.dimensions,
                "filterFields": list(x.filter_fields),
            }
            for x in vectors
        ]
    if document is not None:
        spec["document"] = document
    return json.dumps(spec)


def parse_spec(text: str) -> tuple[tuple[Index, ...], tuple[SideIndex, ...]]:
    """The indexes, then the search and vector indexes, of a ``_one_store_tables`` text."""
    data = json.loads(text)
    indexes = tuple(Index(i["name"], tuple(i["fields"])) for i in data["indexes"])
    search: tuple[SideIndex, ...] = tuple(
        SearchIndex(s["name"], s["searchField"], tuple(s["filterFields"]))
        for s in data.get("search", [])
    )
    search += tuple(
        VectorIndex(
            x["name"], x["vectorField"], int(x["dimensions"]), tuple(x["filterFields"])
        )
        for x in data.get("vector", [])
    )
    return indexes, search


class SideLayout(Protocol):
    """A search or vector index's entries, kept by rowid beside the document rows.

    Every insert writes :meth:`row` (when not None) with ``insert_sql``; a
    delete runs ``delete_sql``; an update rewrites the entry unless
    :meth:`same_entry`; emptying the table runs ``clear_sql``.
    """

    @property
    def insert_sql(self) -> str:
        """Add one entry: ``(rowid, *row)``."""

    @property
    def delete_sql(self) -> str:
        """Remove one document's entry: ``(rowid,)``."""

    @property
    def clear_sql(self) -> str:
        """Remove every entry."""

    def row(self, doc: dict[str, Any]) -> tuple[Any, ...] | None:
        """The entry of ``doc`` (None: not indexed)."""

    def same_entry(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``old`` and ``new`` have the same entry."""


@define
class SearchLayout:
    """How one search index is stored."""

    index: SearchIndex
    fts: str
    text_path: tuple[str, ...]
    filter_paths: tuple[tuple[str, ...], ...]
    insert_sql: str = field(init=False)

    @insert_sql.default
    def _insert_sql(self) -> str:
        columns = "".join(f", f{i}" for i in range(len(self.filter_paths)))
        marks = ",".join("?" * (len(self.filter_paths) + 2))
        return f"INSERT INTO {quote(self.fts)}(rowid, text{columns}) VALUES ({marks})"

    @property
    def delete_sql(self) -> str:
        """Remove one document's entry (by its row's rowid)."""
        return f"DELETE FROM {quote(self.fts)} WHERE rowid=?"

    @property
    def clear_sql(self) -> str:
        """Remove every entry (the table is being emptied)."""
        return f"DELETE FROM {quote(self.fts)}"

    def row(self, doc: dict[str, Any]) -> tuple[Any, ...] | None:
        """The FTS row for ``doc``, or None when its search field is not a string."""
        text = get_path(doc, self.text_path)
        if not isinstance(text, str):
            return None
        return (
            " ".join(search_tokens(text)),
            *(sort_key(get_path(doc, p)) for p in self.filter_paths),
        )

    def same_entry(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``old`` and ``new`` have the same FTS row (so it can stay).

        Compared on the inputs, not on :meth:`row`, so the common case costs two
        lookups instead of two tokenisations: the same search text (a string, or
        no string at all: no row) and the same filter values (by sort key, which
        tells ``1`` from ``1.0`` and ``-0.0`` from ``0.0``).
        """
        a, b = get_path(old, self.text_path), get_path(new, self.text_path)
        a_text, b_text = isinstance(a, str), isinstance(b, str)
        if a_text != b_text or (a_text and a != b):
            return False
        if not a_text:
            return True  # neither has a row
        return all(
            sort_key(get_path(old, p)) == sort_key(get_path(new, p))
            for p in self.filter_paths
        )


# array('f') packs native floats; the cache reads them as little-endian float32.
_SWAP = sys.byteorder != "little"


def vector_table(table: str, index: str) -> str:
    """The table behind a vector index."""
    return f"{table}$vector${index}"


def pack(value: object, dimensions: int) -> bytes | None:
    """The float32 bytes of an indexable vector, or None when it is not indexed.

    Indexed: a list of exactly ``dimensions`` floats (not ints, not bools), each
    finite and within float32's range.
    """
    if type(value) is not list or len(value) != dimensions:
        return None
    if not all(type(x) is float for x in value):
        return None
    packed = array("f", value)
    # A float beyond float32 packs to an infinity; the sum of finite float32
    # values cannot overflow a float64, so it is finite exactly when all are.
    if not math.isfinite(sum(packed)):
        return None
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


@define
class VectorLayout:
    """How one vector index is stored, and the SQL that keeps it in step."""

    index: VectorIndex
    table: str
    vector_path: tuple[str, ...]
    filter_paths: tuple[tuple[str, ...], ...]
    insert_sql: str = field(init=False)
    delete_sql: str = field(init=False)
    clear_sql: str = field(init=False)
    changes_sql: str = field(init=False)
    load_sql: str = field(init=False)

    @classmethod
    def build(cls, table: str, index: VectorIndex) -> VectorLayout:
        """The layout of ``index`` on ``table``."""
        return cls(
            index,
            vector_table(table, index.name),
            tuple(index.vector_field.split(".")),
            tuple(tuple(f.split(".")) for f in index.filter_fields),
        )

    def __attrs_post_init__(self) -> None:
        t = quote(self.table)
        n = len(self.filter_paths)
        filters = "".join(f", f{i}" for i in range(n))
        marks = ", ?" * n
        next_seq = f"(SELECT coalesce(max(seq), 0) + 1 FROM {t})"
        # INSERT OR REPLACE: a patch that re-indexes the document writes over
        # the tombstone its own delete_sql left a moment before.
        self.insert_sql = (
            f"INSERT OR REPLACE INTO {t}(doc, seq, id, vector{filters}) "
            f"VALUES (?, {next_seq}, ?, ?{marks})"
        )
        self.delete_sql = (
            f"UPDATE {t} SET vector=NULL, seq={next_seq} "
            "WHERE doc=? AND vector IS NOT NULL"
        )
        self.clear_sql = (
            f"UPDATE {t} SET vector=NULL, seq={next_seq} WHERE vector IS NOT NULL"
        )
        # Each document has one row (its latest state), so no order is needed.
        self.changes_sql = f"SELECT doc, id, vector{filters} FROM {t} WHERE seq > ?"
        # A first load reads the table in rowid order (sequential pages), not
        # through the seq index (a page per row).
        self.load_sql = (
            f"SELECT doc, id, vector{filters} FROM {t} NOT INDEXED "
            "WHERE vector IS NOT NULL"
        )

    def row(self, doc: dict[str, Any]) -> tuple[Any, ...] | None:
        """``(_id, vector bytes, *filter keys)`` for ``doc``, or None: not indexed."""
        packed = pack(get_path(doc, self.vector_path), self.index.dimensions)
        if packed is None:
            return None
        return (
            doc["_id"],
            packed,
            *(sort_key(get_path(doc, p)) for p in self.filter_paths),
        )

    def same_entry(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``old`` and ``new`` have the same entry (so it can stay)."""
        a, b = get_path(old, self.vector_path), get_path(new, self.vector_path)
        if a is not b and a != b:
            return False
        return self.row(old) == self.row(new)


@define
class TableLayout:
    """Prepared SQL and key functions for one table (the engine's ``TableInfo``)."""

    name: str
    number: int
    indexes: dict[str, Index]
    search: dict[str, SearchLayout]
    search_indexes: dict[str, SearchIndex]
    vectors: dict[str, VectorLayout]
    vector_indexes: dict[str, VectorIndex]
    # Search and vector entries: what insert/update/delete keep in step by rowid.
    side: tuple[SideLayout, ...]
    key_fns: list[tuple[str, Callable[[dict[str, Any]], bytes]]]
    # Per key column (as key_fns): the key of the index's user fields (None for
    # by_creation_time); row() appends the _creationTime/_id part, computed once.
    prefix_fns: list[Callable[[dict[str, Any]], bytes] | None]
    # Per key column: the top-level fields its key reads (see changed_keys()).
    prefix_tops: list[tuple[str, ...]]
    insert_sql: str
    update_sql: str
    get_sql: str
    delete_sql: str
    rowid_sql: str
    # UPDATE text by the row() positions of the key columns it sets (see update()).
    _partial_updates: dict[tuple[int, ...], str] = field(factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        number: int,
        indexes: tuple[Index, ...],
        side: tuple[SideIndex, ...] = (),
    ) -> TableLayout:
        """Compute SQL text and key functions for a table and its indexes."""
        search = [s for s in side if isinstance(s, SearchIndex)]
        vector_indexes = {x.name: x for x in side if isinstance(x, VectorIndex)}
        vectors = {x.name: VectorLayout.build(name, x) for x in vector_indexes.values()}
        keyed = [i for i in indexes if i.name != "by_id"]
        key_fns = [
            (i.name, key_function(tuple(tuple(f.split(".")) for f in i.key_fields)))
            for i in keyed
        ]
        prefix_fns = [
            key_function(tuple(tuple(f.split(".")) for f in i.key_fields[:-2]))
            if len(i.key_fields) > 2
            else None
            for i in keyed
        ]
        prefix_tops = [
            tuple(dict.fromkeys(f.split(".")[0] for f in i.key_fields[:-2]))
            for i in keyed
        ]
        t = quote(name)
        cols = ["_id", "_creationTime", "_body"] + [key_column(i.name) for i in keyed]
        marks = ",".join("?" * len(cols))
        sets = ",".join(f"{quote(c)}=?" for c in cols[1:])
        searches = {
            s.name: SearchLayout(
                s,
                search_table(name, s.name),
                tuple(s.search_field.split(".")),
                tuple(tuple(f.split(".")) for f in s.filter_fields),
            )
            for s in search
        }
        return cls(
            name=name,
            number=number,
            indexes={i.name: i for i in indexes},
            search=searches,
            search_indexes={s.name: s for s in search},
            vectors=vectors,
            vector_indexes=vector_indexes,
            side=(*searches.values(), *vectors.values()),
            key_fns=key_fns,
            prefix_fns=prefix_fns,
            prefix_tops=prefix_tops,
            insert_sql=f"INSERT INTO {t} ({','.join(map(quote, cols))}) VALUES ({marks})",
            update_sql=f"UPDATE {t} SET {sets} WHERE _id=?",
            get_sql=f"SELECT _body FROM {t} WHERE _id=?",
            delete_sql=f"DELETE FROM {t} WHERE _id=? RETURNING _creationTime, rowid",
            rowid_sql=f"SELECT rowid FROM {t} WHERE _id=?",
        )

    def partial_update_sql(self, keys: tuple[int, ...]) -> str:
        """``UPDATE`` of ``_body`` and the key columns at ``row()`` positions ``keys``."""
        sql = self._partial_updates.get(keys)
        if sql is None:
            names = [key_column(self.key_fns[i - 3][0]) for i in keys]
            sets = ",".join(f"{quote(c)}=?" for c in ["_body", *names])
            sql = f"UPDATE {quote(self.name)} SET {sets} WHERE _id=?"
            self._partial_updates[keys] = sql
        return sql

    def changed_keys(
        self, doc: Document, previous: Document
    ) -> tuple[tuple[int, ...], list[bytes]]:
        """The key columns (``row()`` positions) whose key differs between two versions.

        Of one document (same ``_id`` and ``_creationTime``, so the keys' shared
        tail is the same): an index none of whose top-level fields holds a
        different object is skipped without computing its key (a patch leaves
        the fields it does not name as the very objects it read), the others'
        keys are compared. Returns the positions and their new full keys.
        """
        columns: list[int] = []
        values: list[bytes] = []
        tail = b""
        position = 2
        for fn, tops in zip(self.prefix_fns, self.prefix_tops, strict=True):
            position += 1
            if fn is None:
                continue
            for top in tops:
                if doc.get(top, UNSET) is not previous.get(top, UNSET):
                    break
            else:
                continue  # every field it reads is the object it was: same key
            key = fn(doc)
            if key != fn(previous):
                if not tail:
                    tail = sort_key(doc["_creationTime"]) + sort_key(doc["_id"])
                columns.append(position)
                values.append(key + tail)
        return tuple(columns), values

    def row(self, doc: Document, text: str | None = None) -> list[Any]:
        """Column values for ``doc`` (JSON ``text`` if already encoded), as ``insert_sql``."""
        doc_id, created = doc["_id"], doc["_creationTime"]
        # Every key ends with the same _creationTime and _id encodings (sort keys
        # concatenate), so they are encoded once rather than once per index.
        tail = sort_key(created) + sort_key(doc_id)
        return [
            doc_id,
            created,
            dumps(doc) if text is None else text,
            *[tail if fn is None else fn(doc) + tail for fn in self.prefix_fns],
        ]
