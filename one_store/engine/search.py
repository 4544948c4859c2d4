"""Text search: Convex's tokeniser, ``with_search_index``'s builder, and the result rows.

Query text is tokenised like Convex's ``convex_en`` analyser (Tantivy's
``SimpleTokenizer``, tokens of 32 bytes or more dropped, lowercased); every engine
indexes documents with the same tokeniser (:func:`search_tokens`), so its index
only ever sees these tokens. The first 16 terms are searched (OR-ed, the last one
also as a prefix), results come in relevance order with ties newest first, and
reading past 1,024 candidates raises ``LimitExceeded`` as Convex's
``SearchQueryScannedTooManyDocumentsError`` (convex-backend ``crates/search``,
``search_query.rs``).

This module is engine-neutral: it builds a
:class:`~one_store.engine.backend.SearchScan` and walks the rows the engine
returns for it. The SQLite engine's FTS5 text is in
:mod:`one_store.engine.sqlite.scans`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator

from ..model.errors import InvalidIndexRange, LimitExceeded, ProblemError
from ..model.keys import sort_key
from ..model.schema import SearchIndex
from ..model.values import show
from .backend import Row, Scanner, SearchEntry, SearchScan
from .ranges import KeyRange, fail, range_value

MAX_SEARCH_TERMS = 16
MAX_SEARCH_FILTERS = 8
MAX_SEARCH_RESULTS = 1024
MAX_TERM_BYTES = 32

_TOKEN = re.compile(r"[^\W_]+")
# ASCII bytes -> themselves for digits and lowercase letters, the lowercase letter
# for uppercase ones, a space for everything else: ``[^\W_]+`` runs, lowercased,
# become space-separated words (a bytes.translate is ~8x faster than the regex).
_ASCII_WORDS = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32
    for c in range(256)
)


def search_tokens(text: str) -> list[str]:
    """Tokenise like Convex's ``convex_en`` analyser (Tantivy ``SimpleTokenizer``).

    Runs of alphanumeric characters; tokens of 32 UTF-8 bytes or more are dropped
    (measured before lowercasing, as ``RemoveLongFilter`` runs first), then
    lowercased. Documents and queries both go through it.
    """
    if text.isascii():
        # In ASCII a character is a byte and lowercasing maps letters one to one,
        # so the same tokens come from a byte translation (every write tokenises).
        tokens = text.encode("ascii").translate(_ASCII_WORDS).decode("ascii").split()
        if not tokens or max(map(len, tokens)) < MAX_TERM_BYTES:
            return tokens
        return [t for t in tokens if len(t) < MAX_TERM_BYTES]
    return [
        t.lower()
        for t in _TOKEN.findall(text)
        if len(t.encode("utf-8")) < MAX_TERM_BYTES
    ]


def search_terms(text: str) -> list[str]:
    """The terms Convex searches for: the first 16 tokens (the rest are ignored, as Convex)."""
    return search_tokens(text)[:MAX_SEARCH_TERMS]


class SearchFilterBuilder:
    """The ``q`` of ``with_search_index(name, lambda q: q.search(f, text).eq(g, x))``."""

    def __init__(self) -> None:
        self.search_calls: list[tuple[str, str]] = []
        self.eqs: list[tuple[str, object]] = []

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        """Match documents whose ``field`` contains any term of ``text``."""
        self.search_calls.append((field, text))
        return self

    def eq(self, field: str, value: object) -> SearchFilterBuilder:
        """Only documents whose filter field equals ``value`` (``UNSET`` = missing)."""
        self.eqs.append((field, value))
        return self


def compile_search(
    table: str,
    name: str,
    index: SearchIndex | None,
    filter_fn: Callable[[SearchFilterBuilder], SearchFilterBuilder],
) -> tuple[SearchScan, tuple[tuple[str, str, object], ...]]:
    """The scan of ``with_search_index(name, filter_fn)``, and its calls as written.

    Raises:
        ProblemError: ``InvalidIndexRange`` for an unknown index, a missing or
            repeated ``q.search``, a wrong field or more than 8 ``eq`` filters,
            with Convex's error names and texts.
    """
    index_id = f"{table}.{name}"

    def bad(field: str | None, message: str) -> ProblemError:
        return fail(InvalidIndexRange(index_id, field, message))

    if index is None:
        raise bad(None, f"IndexNotFoundError: Search index {index_id} not found.")
    builder = filter_fn(SearchFilterBuilder())
    if not isinstance(builder, SearchFilterBuilder):
        raise bad(
            None, "The search filter function must return the builder it was given."
        )
    search_field = index.search_field
    if not builder.search_calls:
        raise bad(
            None,
            f"MissingSearchFilterError: Search query against {index_id} does not "
            "contain any search filters. You must include a search filter like "
            f'q.search("{search_field}", search_text).',
        )
    for field, _ in builder.search_calls:
        if field != search_field:
            raise bad(
                field,
                f"IncorrectSearchField: Search query against {index_id} contains a "
                f"search filter against {field!r}, which doesn't match the indexed "
                f"search_field {search_field!r}.",
            )
    if len(builder.search_calls) > 1:
        raise bad(
            search_field,
            f"DuplicateSearchFiltersError: Search query against {index_id} contains "
            f"multiple search filters against {search_field!r}. Only one is allowed.",
        )
    filters = []
    for field, raw in builder.eqs:
        if field not in index.filter_fields:
            raise bad(
                field,
                f"IncorrectFilterFieldError: Search query against {index_id} contains "
                f"an equality filter on {field!r} but that field isn't indexed for "
                "filtering in filter_fields.",
            )
        value = range_value(index_id, field, raw)
        filters.append((index.filter_fields.index(field), sort_key(value)))
    if len(filters) > MAX_SEARCH_FILTERS:
        raise bad(
            None,
            f"TooManyFilterConditionsInSearchQueryError: Search query against "
            f"{index_id} has too many filter conditions. Max: {MAX_SEARCH_FILTERS} "
            f"Actual: {len(filters)}",
        )
    text = builder.search_calls[0][1]
    if not isinstance(text, str):
        raise bad(search_field, f"The search text must be a string, got {show(text)}.")
    scan = SearchScan(table, name, tuple(search_terms(text)), tuple(filters))
    bounds = (
        ("search", search_field, text),
        *(("eq", field, raw) for field, raw in builder.eqs),
    )
    return scan, bounds


def search_rows(
    scanner: Scanner, scan: SearchScan, r: KeyRange, limit: int | None = None
) -> Generator[Row, None, None]:
    """The ``(body, key, 0)`` rows of a search within key range ``r``, best first.

    With ``limit`` (a ``take(n)`` from the start) the engine is first asked for
    the top ``n`` alone (:meth:`~one_store.engine.backend.Scanner.search_top`).

    Raises:
        ProblemError: ``LimitExceeded("searchResults")`` once 1,024 candidates
            were read, as Convex.
    """
    if not scan.terms:  # no terms: no results, as Convex
        return
    if limit is not None and scanner.features.ranked_search_top:
        top = scanner.search_top(
            scan, min(limit, MAX_SEARCH_RESULTS), MAX_SEARCH_RESULTS
        )
        if top is not None:
            for body, key in top:
                yield body, key, 0
            return
    # Stream the ranked rows: take(10) transfers and decodes 10 rows, not the
    # 1,024 candidates the engine allows (fetchall was ~13% of a top-10 search).
    candidates = scanner.search_rows(scan, MAX_SEARCH_RESULTS)
    try:
        for position, (body, key) in enumerate(candidates, 1):
            if r.contains(key):
                yield body, key, 0
            if position == MAX_SEARCH_RESULTS:
                break
        else:
            return
    finally:
        candidates.close()
    raise fail(
        LimitExceeded(
            "searchResults",
            MAX_SEARCH_RESULTS,
            f"Search query scanned too many documents (fetched {MAX_SEARCH_RESULTS}). "
            "Consider using a smaller limit, paginating the query, or using a filter "
            "field to limit the number of documents pulled from the search index.",
        )
    )


def search_entry_matches(scan: SearchScan, entry: SearchEntry | None) -> bool:
    """Whether a document's search entry is a match of ``scan`` (reactive queries).

    ``entry`` is the document's tokens and filter keys (see
    :class:`~one_store.engine.backend.Change`): it matches when every filter of
    the search equals the document's and a term is one of its tokens, the last
    term also as a prefix, as the engines' search does.
    """
    if entry is None or not scan.terms:
        return False
    tokens, filters = entry
    for position, key in scan.filters:
        if position >= len(filters) or filters[position] != key:
            return False
    words = tokens.split()
    terms = set(scan.terms)
    last = scan.terms[-1]
    return any(w in terms or w.startswith(last) for w in words)
