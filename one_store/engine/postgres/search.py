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

The entry is written in the document's transaction by :func:`write` (the
storage calls it for every insert, update and delete), so a rolled-back write
leaves the index as it was. A document whose search field is not a string has
no entry.

A search is one ``SELECT``: the query's terms OR-ed as a ``tsquery`` (each term
quoted, the last also a prefix, ``:*``), every filter an equality on its
``bytea`` column, ranked by ``ts_rank(tokens, query, 1)`` (term frequency with
PostgreSQL's proximity weighting, divided by ``1 + log(length)``), ties newest
first, then by ``_id``: Convex's order, with ``ts_rank`` in the place of
Convex's BM25 (docs/differences-from-convex.md says how the order differs). The
ranking is read from the side table alone, with the ``LIMIT`` applied before the
documents are joined, so a ``take(10)`` reads ten documents.

``tsvector`` positions stop at 16,383 and a lexeme keeps at most 256 of them
(later occurrences of a word count as that many for ranking); a ``tsvector`` is
at most 1 MB, so a search field with more distinct words than that holds makes
the write fail with ``StorageError``.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ...model.keys import sort_key
from ...model.schema import SearchIndex
from ..backend import Row, SearchScan
from .layout import quote
from .side_tables import SearchSide, search_table

if TYPE_CHECKING:
    from psycopg import Connection

    from ...model.values import Document

# The ts_rank normalisation: 1 divides by 1 + log(document length), as BM25
# penalises long documents (PostgreSQL docs, "Ranking Search Results").
RANK_NORMALIZATION = 1
MAX_POSITION = 16383  # tsvector positions are 1..16383


@functools.lru_cache(maxsize=256)
def side(table: str, index: SearchIndex) -> SearchSide:
    """The side table of search index ``index`` of ``table``."""
    return SearchSide.build(table, index)


# ---------------------------------------------------------------------- DDL


def create(connection: Connection[Any], table: str, index: SearchIndex) -> None:
    """Create the side table of a search index (empty) and its GIN index."""
    s = side(table, index)
    t = quote(s.name)
    filters = "".join(f", f{i} bytea" for i in range(len(s.filter_paths)))
    connection.execute(
        f'CREATE TABLE {t} (id text COLLATE "C" PRIMARY KEY, '
        f"created double precision NOT NULL, tokens tsvector NOT NULL{filters})"
    )
    connection.execute(
        f"CREATE INDEX {quote(s.name + '$gin')} ON {t} USING gin (tokens)"
    )


def drop(connection: Connection[Any], table: str, index: SearchIndex) -> None:
    """Drop a search index's side table (its GIN index goes with it)."""
    connection.execute(f"DROP TABLE IF EXISTS {quote(side(table, index).name)}")


def clear(connection: Connection[Any], table: str, index: SearchIndex) -> None:
    """Remove every entry (the table is being emptied)."""
    connection.execute(f"DELETE FROM {quote(side(table, index).name)}")


# ---------------------------------------------------------------------- writes


def tsvector_text(tokens: str) -> str:
    """The ``tsvector`` literal of space-separated tokens, with their positions."""
    return " ".join(
        "'" + token.replace("\\", "\\\\").replace("'", "''") + f"':{position}"
        for position, token in enumerate(tokens.split()[:MAX_POSITION], 1)
    )


def _insert_sql(s: SearchSide) -> str:
    n = len(s.filter_paths)
    columns = "".join(f", f{i}" for i in range(n))
    marks = ", %s" * n
    return (
        f"INSERT INTO {quote(s.name)} (id, created, tokens{columns}) "
        f"VALUES (%s, %s, %s::tsvector{marks})"
    )


def write(
    connection: Connection[Any],
    table: str,
    index: SearchIndex,
    doc_id: str,
    old: Document | None,
    new: Document | None,
) -> None:
    """Keep ``doc_id``'s entry in step with an insert (``old`` None), update or delete.

    Runs in the writing transaction; an unchanged entry is left as it is.
    """
    s = side(table, index)
    if old is not None and new is not None and s.same_entry(old, new):
        return
    if old is not None:
        connection.execute(f"DELETE FROM {quote(s.name)} WHERE id = %s", (doc_id,))
    entry = None if new is None else s.entry(new)
    if new is not None and entry is not None:
        tokens, keys = entry
        connection.execute(
            _insert_sql(s), (doc_id, new["_creationTime"], tsvector_text(tokens), *keys)
        )


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
