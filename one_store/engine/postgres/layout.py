"""How a Convex table is laid out in PostgreSQL: names, key columns, the SQL of its rows.

The layout is the SQLite engine's (:mod:`one_store.engine.sqlite.layout`), in
the connection's current schema (``search_path``), so a dump of either reads the
same way:

- ``_one_store_meta(key, value)``: layout version, schema fingerprint, the
  newest ``_creationTime`` handed out (``creation_time``) and ``generation``,
  bumped by every change of the tables' shapes (DDL), so every process reloads
  its layouts at its next transaction.
- ``_one_store_tables(name, number, indexes)``: every table, its ID table number
  and its index definitions (the same JSON text as on SQLite).
- one table per Convex table: ``_id text COLLATE "C" PRIMARY KEY``,
  ``"_creationTime" double precision``, ``_body text`` (the document's JSON,
  system fields included) and one ``bytea`` column ``_k_<index>`` per index
  (``by_creation_time`` and every user index) holding exactly the bytes the
  SQLite engine stores (:func:`one_store.model.keys.sort_key` over the index
  fields, ``_creationTime`` and ``_id``) on a btree index: ``bytea`` compares
  as ``memcmp`` then length, as SQLite compares BLOBs, so ranges, order and
  cursors are the same on both engines. ``by_id`` is the primary key: ``_id``
  compares ``COLLATE "C"`` (UTF-8 bytes), as SQLite's TEXT does.

PostgreSQL truncates identifiers to 63 bytes; :func:`ident` shortens a longer
name to a prefix and a hash, so distinct names never collide.

A :class:`PgTableLayout` is the engine's
:class:`~one_store.engine.backend.TableInfo`: one table's row SQL (fixed text,
so psycopg prepares each once it repeats) and its key functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import define, field

from ...model.keys import key_function, sort_key
from ...model.schema import Index, SearchIndex, VectorIndex
from ...model.values import Document, dumps
from ..sqlite.layout import SideIndex, parse_spec, spec_text
from .side_tables import SearchSide, pg_name

__all__ = [
    "CHANGES",
    "LAYOUT_VERSION",
    "META",
    "TABLES",
    "PgTableLayout",
    "SideIndex",
    "ident",
    "index_ident",
    "key_column",
    "parse_spec",
    "quote",
    "spec_text",
]

LAYOUT_VERSION = 1
META = "_one_store_meta"
TABLES = "_one_store_tables"
CHANGES = "_one_store_changes"


def ident(name: str) -> str:
    """``name`` as a PostgreSQL identifier: itself, or a prefix and a hash past 63 bytes."""
    return pg_name(name)


def quote(name: str) -> str:
    """Quote an identifier (shortened by :func:`ident` first)."""
    return '"' + ident(name).replace('"', '""') + '"'


def key_column(index: str) -> str:
    """The ``bytea`` column holding an index's keys (unquoted, unshortened)."""
    return f"_k_{index}"


def index_ident(table: str, index: str) -> str:
    """The name of the btree index on a key column."""
    return f"{table}${index}"


@define
class PgTableLayout:
    """Prepared SQL and key functions for one table (the engine's ``TableInfo``)."""

    name: str
    number: int
    indexes: dict[str, Index]
    search: dict[str, SearchSide]
    search_indexes: dict[str, SearchIndex]
    vector_indexes: dict[str, VectorIndex]
    key_fns: list[tuple[str, Callable[[dict[str, Any]], bytes]]]
    # Per key column (as key_fns): the key of the index's user fields (None for
    # by_creation_time); row() appends the _creationTime/_id part, computed once.
    prefix_fns: list[Callable[[dict[str, Any]], bytes] | None]
    insert_sql: str
    get_sql: str
    delete_sql: str
    _partial_updates: dict[tuple[int, ...], str] = field(factory=dict)

    @classmethod
    def build(
        cls,
        name: str,
        number: int,
        indexes: tuple[Index, ...],
        side: tuple[SideIndex, ...] = (),
    ) -> PgTableLayout:
        """Compute SQL text and key functions for a table and its indexes."""
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
        search = [s for s in side if isinstance(s, SearchIndex)]
        t = quote(name)
        cols = ["_id", "_creationTime", "_body"] + [key_column(i.name) for i in keyed]
        marks = ",".join(["%s"] * len(cols))
        return cls(
            name=name,
            number=number,
            indexes={i.name: i for i in indexes},
            search={s.name: SearchSide.build(name, s) for s in search},
            search_indexes={s.name: s for s in search},
            vector_indexes={x.name: x for x in side if isinstance(x, VectorIndex)},
            key_fns=key_fns,
            prefix_fns=prefix_fns,
            insert_sql=f"INSERT INTO {t} ({','.join(map(quote, cols))}) VALUES ({marks})",
            get_sql=f"SELECT _body FROM {t} WHERE _id = %s",
            delete_sql=f'DELETE FROM {t} WHERE _id = %s RETURNING "_creationTime", _body',
        )

    @property
    def side(self) -> tuple[SideIndex, ...]:
        """The table's search and vector indexes."""
        return (*self.search_indexes.values(), *self.vector_indexes.values())

    def partial_update_sql(self, keys: tuple[int, ...]) -> str:
        """``UPDATE`` of ``_body`` and the key columns at ``row()`` positions ``keys``."""
        sql = self._partial_updates.get(keys)
        if sql is None:
            names = [key_column(self.key_fns[i - 3][0]) for i in keys]
            sets = ",".join(f"{quote(c)} = %s" for c in ["_body", *names])
            sql = f"UPDATE {quote(self.name)} SET {sets} WHERE _id = %s"
            self._partial_updates[keys] = sql
        return sql

    def row(self, doc: Document, text: str | None = None) -> list[Any]:
        """Column values for ``doc`` (JSON ``text`` if already encoded), as ``insert_sql``."""
        doc_id, created = doc["_id"], doc["_creationTime"]
        tail = sort_key(created) + sort_key(doc_id)
        return [
            doc_id,
            created,
            dumps(doc) if text is None else text,
            *[tail if fn is None else fn(doc) + tail for fn in self.prefix_fns],
        ]

    def keys(self, doc: Document) -> list[bytes]:
        """The document's key in every key column, in column order."""
        return self.row(doc, "")[3:]

    def changed_keys(
        self, doc: Document, previous: Document | None
    ) -> tuple[tuple[int, ...], list[bytes]]:
        """The ``row()`` positions and values of the keys that differ from ``previous``.

        Every key column when ``previous`` is unknown; an update then sets only
        these (an unchanged index is left alone).
        """
        new = self.keys(doc)
        if previous is None:
            return tuple(range(3, 3 + len(new))), new
        changed = [
            i
            for i, (a, b) in enumerate(zip(new, self.keys(previous), strict=True))
            if a != b
        ]
        return tuple(3 + i for i in changed), [new[i] for i in changed]
