"""Text search on PostgreSQL: a ``tsvector`` table per search index, with a GIN index.

Each search index ``i`` of table ``t`` is a table ``t$search$i``
(:func:`~one_store.engine.postgres.side_tables.search_table`):

- ``id text COLLATE "C" PRIMARY KEY``: the document's ``_id`` (its row in ``t``);
- ``created double precision``: its ``_creationTime``, so ties are broken
  without reading the document;
- ``tokens tsvector``: the search field's tokens with their positions, under a
  GIN index. The tokens are one_store's own (Convex's tokeniser,
  :func:`one_store.engine.search.search_tokens`), written as a ``tsvector``
  literal, so PostgreSQL's parser and dictionaries never see the text: a lexeme
  is exactly a token (the ``simple`` configuration's lowercasing is already
  done, and nothing is stemmed);
- ``f0``, ``f1``, ...: the sort keys of the filter fields as ``bytea`` (so ``1``
  is not ``1.0`` and a missing field is its own value, as on SQLite).

The entry is written in the document's transaction by :func:`index_document`,
:func:`reindex_document` and :func:`unindex_document` (the storage calls them
for every insert, replace and delete), so a rolled-back write
leaves the index as it was. A document whose search field is not a string has
no entry.

A search is one ``SELECT``: the query's terms OR-ed as a ``tsquery`` (each term
quoted, the last also a prefix, ``:*``), every filter an equality on its
``bytea`` column, ranked by ``ts_rank(tokens, query, 1)`` (how often the terms
occur, divided by ``1 + log(length)``), ties newest
first, then by ``_id``: Convex's order, with ``ts_rank`` in the place of
Convex's BM25 (docs/differences-from-convex.md says how the order differs). The
ranking is read from the side table alone, with the ``LIMIT`` applied before the
documents are joined, so a ``take(10)`` reads ten documents.

``tsvector`` positions stop at 16,383 and a lexeme keeps at most 256 of them
(later occurrences of a word count as that many for ranking). Its lexemes may
total 1 MB, more than the distinct words of a 1 MiB document can (measured:
180,000 distinct words in 900 KB of text index fine).
"""

from __future__ import annotations

import functools
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

from ...model.keys import sort_key
from ...model.values import loads
from ..backend import Row, SearchEntry, SearchScan
from .side_tables import SearchSide, quote, search_table

if TYPE_CHECKING:
    from psycopg import Connection

    from ..backend import TableInfo

# The ts_rank normalisation: 1 divides by 1 + log(document length), as BM25
# penalises long documents (PostgreSQL docs, "Ranking Search Results").
RANK_NORMALIZATION = 1
MAX_POSITION = 16383  # tsvector positions are 1..16383


def sides(table: TableInfo) -> list[SearchSide]:
    """The side tables of ``table``'s search indexes, by index name."""
    return [
        _side(table.name, index) for _, index in sorted(table.search_indexes.items())
    ]


# Built once per (table, index): every write of the table asks for its sides.
_side = functools.lru_cache(maxsize=1024)(SearchSide.build)


# ---------------------------------------------------------------------- DDL


def create(connection: Connection[Any], side: SearchSide) -> None:
    """Create the side table of a search index (empty) and its GIN index."""
    t = quote(side.name)
    filters = "".join(f", f{i} bytea" for i in range(len(side.filter_paths)))
    connection.execute(
        f'CREATE TABLE {t} (id text COLLATE "C" PRIMARY KEY, '
        f"created double precision NOT NULL, tokens tsvector NOT NULL{filters})"
    )
    connection.execute(
        f"CREATE INDEX {quote(side.name + '$gin')} ON {t} USING gin (tokens)"
    )


def drop(connection: Connection[Any], side: SearchSide) -> None:
    """Drop a search index's side table (its GIN index goes with it)."""
    connection.execute(f"DROP TABLE IF EXISTS {quote(side.name)}")


def backfill(
    connection: Connection[Any], side: SearchSide, bodies: Iterable[str]
) -> int:
    """Index documents (their stored JSON) in a new search index; how many got an entry."""
    count = 0
    for body in bodies:
        doc = loads(body)
        entry = side.entry(doc)
        if entry is not None:
            _insert(connection, side, doc["_id"], doc["_creationTime"], entry)
            count += 1
    return count


# ---------------------------------------------------------------------- writes


def tsvector_text(tokens: str) -> str:
    """The ``tsvector`` literal of space-separated tokens, with their positions."""
    # Every token is kept (a word past position 16,383 must still match):
    # later ones all take the last position, as PostgreSQL's own parser does.
    return " ".join(
        "'"
        + token.replace("\\", "\\\\").replace("'", "''")
        + "':"
        + str(min(position, MAX_POSITION))
        for position, token in enumerate(tokens.split(), 1)
    )


def _insert_sql(side: SearchSide) -> str:
    n = len(side.filter_paths)
    columns = "".join(f", f{i}" for i in range(n))
    marks = ", %s" * n
    return (
        f"INSERT INTO {quote(side.name)} (id, created, tokens{columns}) "
        f"VALUES (%s, %s, %s::tsvector{marks})"
    )


def _insert(
    connection: Connection[Any],
    side: SearchSide,
    doc_id: str,
    created: float,
    entry: SearchEntry,
) -> None:
    tokens, keys = entry
    connection.execute(
        _insert_sql(side), (doc_id, created, tsvector_text(tokens), *keys)
    )


def index_document(connection: Connection[Any], table: TableInfo, doc: Any) -> None:
    """Write a new document's entries in every search index of ``table``."""
    for side in sides(table):
        entry = side.entry(doc)
        if entry is not None:
            _insert(connection, side, doc["_id"], doc["_creationTime"], entry)


def reindex_document(
    connection: Connection[Any], table: TableInfo, old: Any, new: Any
) -> None:
    """Bring the entries of a replaced document up to date (unchanged ones stay)."""
    for side in sides(table):
        if side.same_entry(old, new):
            continue
        connection.execute(
            f"DELETE FROM {quote(side.name)} WHERE id = %s", (new["_id"],)
        )
        entry = side.entry(new)
        if entry is not None:
            _insert(connection, side, new["_id"], new["_creationTime"], entry)


def unindex_document(
    connection: Connection[Any], table: TableInfo, doc_id: str
) -> None:
    """Remove a deleted document's entries."""
    for side in sides(table):
        connection.execute(f"DELETE FROM {quote(side.name)} WHERE id = %s", (doc_id,))


def clear(connection: Connection[Any], table: TableInfo) -> None:
    """Remove every entry of ``table``'s search indexes (the table is being emptied)."""
    for side in sides(table):
        connection.execute(f"DELETE FROM {quote(side.name)}")


# ---------------------------------------------------------------------- reads


def tsquery_text(terms: tuple[str, ...]) -> str:
    """The ``tsquery`` of a search: the terms OR-ed, each quoted, the last a prefix."""
    quoted = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms]
    quoted[-1] += ":*"
    return " | ".join(quoted)


def search_sql(
    scan: SearchScan, limit: int, body: str = "d._body"
) -> tuple[str, list[Any]]:
    """The ``(sql, params)`` of a search's first ``limit`` matches in Convex's order.

    Selects ``body, rank, created, id``; ``body`` is the expression of the
    document's stored JSON in the table ``d``.
    """
    side = quote(search_table(scan.table, scan.index))
    where = "".join(f" AND s.f{position} = %s" for position, _ in scan.filters)
    sql = (
        f"SELECT {body}, m.rank, m.created, m.id FROM ("
        f"SELECT s.id, s.created, ts_rank(s.tokens, q, {RANK_NORMALIZATION}) AS rank "
        f"FROM {side} s, CAST(%s AS tsquery) q WHERE s.tokens @@ q{where} "
        f'ORDER BY rank DESC, s.created DESC, s.id COLLATE "C" LIMIT {int(limit)}) m '
        f"JOIN {quote(scan.table)} d ON d._id = m.id "
        f'ORDER BY m.rank DESC, m.created DESC, m.id COLLATE "C"'
    )
    return sql, [tsquery_text(scan.terms), *(key for _, key in scan.filters)]


def _rows(
    connection: Connection[Any], scan: SearchScan, limit: int
) -> Generator[Row, None, None]:
    if not scan.terms:
        return
    cursor = connection.execute(*search_sql(scan, limit))
    try:
        for body, rank, created, doc_id in cursor:
            # Convex's key of a result: (-score, -creationTime, id).
            yield body, sort_key([-float(rank), -float(created), doc_id])
    finally:
        cursor.close()


def search_rows(
    connection: Connection[Any], scan: SearchScan, max_results: int
) -> Generator[Row, None, None]:
    """``(body, key)`` of a search's first ``max_results`` matches, in Convex's order."""
    return _rows(connection, scan, max_results)


def search_top(
    connection: Connection[Any], scan: SearchScan, n: int, max_results: int
) -> list[Row]:
    """The first ``n`` matches (``n <= max_results``), reading only their documents.

    The whole order (rank, newest, ``_id``) is in SQL, so the answer never needs
    the full ranked scan (the protocol's None is never returned).
    """
    return list(_rows(connection, scan, min(n, max_results)))
