"""Vector search: the request of ``ctx.vector_search``, its filter builder, Convex's rules.

A request is ``{"vector": [...], "limit": n, "filter": lambda q: ...}``
(convex-js ``src/server/vector_search.ts``). :func:`vector_scan` checks its shape
and builds a :class:`~one_store.engine.backend.VectorScan`; the engine then
finds the index and applies :func:`plan`, which checks the rest in the order
convex-backend does (``crates/vector/src/query.rs``, ``QdrantSchema::compile``):

1. the index exists and is a vector index (``IndexNotFoundError``);
2. the vector has at most 4,096 numbers (``VectorDimensionsMismatch``);
3. ``limit`` is at most 256 (``VectorLimitTooLargeError``); one_store also
   refuses less than 1, where Convex lets ``limit: 0`` through and returns
   nothing;
4. every filter is on one of the index's ``filter_fields``
   (``IncorrectVectorFilterField``);
5. at most 64 distinct ``(field, value)`` conditions
   (``TooManyElementsInVectorQueryError``);
6. the vector has exactly the index's ``dimensions`` (``VectorDimensionsMismatch``).

Filters are Convex's: ``q.eq(field, value)`` and ``q.or_(...)`` of them, nested
at will; every condition is OR-ed, within a field and across fields (there is no
AND), and duplicates collapse (``assemble_filter_map``). Values compare by sort
key, so ``1`` (int64) is not ``1.0`` and ``UNSET`` matches a missing field.

This module is engine-neutral: the ranking itself is
:class:`~one_store.engine.vector_matrix.VectorMatrix`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from attrs import frozen

from ..model.errors import ArgsInvalid, InvalidIndexRange, ProblemError
from ..model.keys import sort_key
from ..model.schema import VectorIndex
from ..model.values import show
from .backend import VectorScan
from .ranges import fail, range_value

MAX_DIMENSIONS = 4096
MAX_LIMIT = 256
DEFAULT_LIMIT = 10
MAX_CONDITIONS = 64
REQUEST_KEYS = ("vector", "limit", "filter")


@frozen
class VectorFilter:
    """What ``q.eq`` and ``q.or_`` build: ``(field, value)`` conditions, OR-ed."""

    conditions: tuple[tuple[str, object], ...]


class VectorFilterBuilder:
    """The ``q`` of ``"filter": lambda q: q.or_(q.eq("a", 1), q.eq("b", 2))``."""

    def eq(self, field: str, value: object) -> VectorFilter:
        """Documents whose filter field ``field`` equals ``value`` (``UNSET``: missing)."""
        if not isinstance(field, str):
            raise _bad_filter("The first argument to `q.eq` must be a field name.")
        return VectorFilter(((field, value),))

    def or_(self, *filters: VectorFilter) -> VectorFilter:
        """Documents matching any of ``filters`` (none at all: no filter)."""
        conditions: list[tuple[str, object]] = []
        for f in filters:
            if not isinstance(f, VectorFilter):
                raise _bad_filter(
                    "InvalidVectorSearchFilter: Filters should be a combination of "
                    f"`q.eq` and `q.or`, got {show(f)}."
                )
            conditions.extend(f.conditions)
        return VectorFilter(tuple(conditions))


def _bad_filter(message: str) -> ProblemError:
    return fail(ArgsInvalid(".filter", message))


def _bad(key: str, message: str) -> ProblemError:
    return fail(ArgsInvalid(f".{key}", message))


def vector_scan(table: str, index: str, request: object) -> VectorScan:
    """Check a request's shape and build its scan (the index is checked by :func:`plan`).

    Raises:
        ProblemError: ``ArgsInvalid`` naming what is wrong: a request that is not
            a dict, an unknown key, a missing or empty vector, a vector item that
            is not a finite number, a limit that is not an integer, a filter that
            is not a function returning ``q.eq`` / ``q.or_``.
    """
    if not isinstance(table, str) or not isinstance(index, str):
        raise fail(
            ArgsInvalid(
                "", "vector_search(table, index, request): table and index are names"
            )
        )
    if not isinstance(request, Mapping):
        raise _bad(
            "",
            "The vector search request must be a dict with a 'vector', got "
            f"{show(request)}.",
        )
    unknown = sorted(str(k) for k in request if k not in REQUEST_KEYS)
    if unknown:
        raise _bad(
            unknown[0],
            f"Unknown key {unknown[0]!r} in the vector search request: it takes "
            "'vector', 'limit' and 'filter'.",
        )
    vector = _vector(request.get("vector"))
    limit = request.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise _bad("limit", f"`limit` must be an integer, got {show(limit)}.")
    conditions = _conditions(request.get("filter"))
    return VectorScan(table, index, vector, limit, conditions)


def _vector(raw: object) -> tuple[float, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise _bad(
            "vector",
            "`vector` must be a non-empty list of numbers in vectorSearch, got "
            f"{show(raw)}.",
        )
    for i, x in enumerate(raw):
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise _bad(f"vector[{i}]", f"`vector[{i}]` is not a number: {show(x)}.")
        if not math.isfinite(x):
            raise _bad(
                f"vector[{i}]",
                f"`vector[{i}]` is {x!r}: a query vector must be finite (Convex's "
                "JSON has no NaN or infinity).",
            )
    return tuple(float(x) for x in raw)


def _conditions(raw: object) -> tuple[tuple[str, object], ...]:
    if raw is None:
        return ()
    if not callable(raw):
        raise _bad_filter(
            f"`filter` must be a function of the filter builder, got {show(raw)}."
        )
    built = _call(raw)
    if not isinstance(built, VectorFilter):
        raise _bad_filter(
            "InvalidVectorSearchFilter: Filters should be a combination of `q.eq` "
            f"and `q.or`, got {show(built)}."
        )
    return built.conditions


def _call(fn: Callable[[VectorFilterBuilder], Any]) -> object:
    return fn(VectorFilterBuilder())


@frozen
class VectorQuery:
    """A checked search, as the matrix ranks it.

    Attributes:
        vector: the query vector (its length is the index's dimensions).
        limit: how many results at most (1..256).
        filters: ``(position in filter_fields, sort key)``, OR-ed; none: every
            indexed document.
    """

    vector: tuple[float, ...]
    limit: int
    filters: tuple[tuple[int, bytes], ...]


def plan(scan: VectorScan, index: VectorIndex | None) -> VectorQuery:
    """Apply Convex's rules to ``scan`` on ``index`` (None: no such vector index).

    Raises:
        ProblemError: ``InvalidIndexRange`` for an unknown index, a filter on a
            field that is not a filter field or too many conditions;
            ``ArgsInvalid`` for a vector of the wrong length or a limit outside
            1..256. Texts are Convex's, led by its error names.
    """
    index_id = f"{scan.table}.{scan.index}"
    if index is None:
        raise fail(
            InvalidIndexRange(
                index_id, None, f"IndexNotFoundError: Index {index_id} not found."
            )
        )
    length = len(scan.vector)
    if length > MAX_DIMENSIONS:
        raise _dimensions(MAX_DIMENSIONS, length)
    if scan.limit > MAX_LIMIT:
        raise _bad(
            "limit",
            "VectorLimitTooLargeError: Vector queries can fetch at most "
            f"{MAX_LIMIT} results, requested {scan.limit}.",
        )
    if scan.limit < 1:
        raise _bad(
            "limit",
            f"`limit` must be between 1 and {MAX_LIMIT}, requested {scan.limit}.",
        )
    filters = _filters(index_id, index, scan.conditions)
    if length != index.dimensions:
        raise _dimensions(index.dimensions, length)
    return VectorQuery(scan.vector, scan.limit, filters)


def _dimensions(expected: int, length: int) -> ProblemError:
    return _bad(
        "vector",
        f"VectorDimensionsMismatch: Expected a vector with dimensions {expected}, "
        f"received {length}.",
    )


def _filters(
    index_id: str, index: VectorIndex, conditions: tuple[tuple[str, object], ...]
) -> tuple[tuple[int, bytes], ...]:
    found: dict[tuple[int, bytes], None] = {}  # ordered, duplicates collapse
    for field, value in conditions:
        if field not in index.filter_fields:
            raise fail(
                InvalidIndexRange(
                    index_id,
                    field,
                    f"IncorrectVectorFilterField: Vector query against {index_id} "
                    f'contains a filter on "{field}" but that field isn\'t indexed '
                    "for filtering in `filterFields`.",
                )
            )
        checked = range_value(index_id, field, value)
        found[(index.filter_fields.index(field), sort_key(checked))] = None
    if len(found) > MAX_CONDITIONS:
        raise fail(
            InvalidIndexRange(
                index_id,
                None,
                f"TooManyElementsInVectorQueryError: Vector query against "
                f"{index_id} has too many conditions. Max: {MAX_CONDITIONS} "
                f"Actual: {len(found)}",
            )
        )
    return tuple(found)
