r"""The leading-equality prefilter on PostgreSQL: rows a filter rejects stay undecoded.

As on SQLite (:mod:`one_store.engine.sqlite.scans` explains why and what it
saves): a filtered scan's leading ``eq(field, value)`` conjuncts are tested in
SQL, and a row failing them comes back as ``(None, key, length)``, stepped and
counted against the read limits but never sent whole nor decoded.

The test reads the stored body as ``json`` (not ``jsonb``: ``json`` keeps the
text as written and accepts every escape), type-strict as Convex compares:

- a string: ``json_typeof`` is ``string`` and the unescaped text is equal;
- an int64: ``json_typeof`` is ``number`` and the number's text is the
  integer's (a float64 is stored with a fraction or an exponent, so ``1`` is
  never ``1.0``); floats are left to Python (``-0.0``, NaN);
- a boolean, null: ``json_typeof``; missing: no value at the path.

PostgreSQL cannot unescape ``\u0000`` into text, so a body holding that escape
always comes back whole (Python decides), tested first in a ``CASE``, whose
order PostgreSQL keeps. A path with a ``$`` name (a storage tag), an empty name
or a name that reads as an array position, and a string holding NUL, stop the
run of equalities tested in SQL (Python tests the rest).
"""

from __future__ import annotations

from typing import Any

from ...model.values import UNSET
from ..backend import Equalities


def _usable(path: tuple[str, ...]) -> bool:
    return all(
        part and part[0] != "$" and not part.lstrip("-").isdigit() for part in path
    )


def equality_sql(path: tuple[str, ...], value: object) -> tuple[str, list[Any]] | None:
    """SQL that holds exactly when the field at ``path`` equals ``value``, or None."""
    if not _usable(path):
        return None
    at, where = "(_body::json #> %s)", list(path)
    if value is UNSET:
        return f"{at} IS NULL", [where]
    if value is None:
        return f"json_typeof({at}) = 'null'", [where]
    if type(value) is bool:
        return f"json_typeof({at}) = 'boolean' AND {at}::text = %s", [
            where,
            where,
            "true" if value else "false",
        ]
    if type(value) is int:
        return f"json_typeof({at}) = 'number' AND {at}::text = %s", [
            where,
            where,
            str(value),
        ]
    if type(value) is str and "\x00" not in value:
        return f"json_typeof({at}) = 'string' AND (_body::json #>> %s) = %s", [
            where,
            where,
            value,
        ]
    return None


def prefilter_sql(equalities: Equalities) -> tuple[str, list[Any]] | None:
    r"""The select expression of a body that passes the leading ``equalities``, or None.

    ``CASE`` yields the body when it holds a ``\u0000`` escape (left to Python)
    or passes every equality SQL can test exactly; otherwise NULL.
    """
    tests: list[tuple[str, list[Any]]] = []
    for path, value in equalities:
        test = equality_sql(path, value)
        if test is None:
            break
        tests.append(test)
    if not tests:
        return None
    sql = " AND ".join(f"({t})" for t, _ in tests)
    params = [p for _, ps in tests for p in ps]
    return (
        f"CASE WHEN strpos(_body, '\\u0000') > 0 THEN _body WHEN {sql} THEN _body END",
        params,
    )
