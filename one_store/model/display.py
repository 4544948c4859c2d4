"""Documents as people read them: cells, times, and small tables in HTML and text.

What a notebook (``_repr_html_``) and a terminal (``__repr__``) show of a table
view, a store, a page of results and a Problem. Pure: it formats values it is
given and never reads a store, so a caller decides how many rows to show (the
first few, with the total count beside them) and a large table is never loaded
to be displayed.

Rules, the same in both renderings:

- ``_creationTime`` (milliseconds since the epoch) reads as a UTC time
  (``2026-12-07 19:20:52.123 UTC``);
- strings are shown as they are, IDs whole; only a long string (more than
  :data:`MAX_TEXT` characters) is cut, with an ellipsis;
- ``None`` is ``null``; a missing field is an empty cell;
- bytes show their size (``<12 bytes>``); objects and arrays are compact JSON.
"""

from __future__ import annotations

import datetime
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from returns.result import Failure, Success

from .values import Value

MAX_TEXT = 80
"""Characters of a string (or of JSON) a cell shows before it is cut."""
MAX_TEXT_COLUMN = 40
"""The widest a column of the text rendering gets (``_id`` is never cut)."""
SYSTEM_FIELDS = ("_id", "_creationTime")


def format_time(ms: float) -> str:
    """Milliseconds since the epoch as a UTC time, to the millisecond.

    Example:
        >>> format_time(1796218209690.7683)
        '2026-12-01 14:50:09.690 UTC'
    """
    if not math.isfinite(ms):
        return repr(ms)
    try:
        moment = datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return repr(ms)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{int(ms % 1000):03d} UTC"


def cell(value: Value, column: str = "", limit: int | None = MAX_TEXT) -> str:
    """One value as the text of a table cell (see the module's rules)."""
    if column == "_creationTime" and isinstance(value, int | float):
        return format_time(float(value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    elif isinstance(value, int | float):
        return repr(value)
    else:
        text = json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"))
    if limit is not None and column != "_id" and len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def _plain(value: Any) -> Any:
    """``value`` with bytes and non-finite floats made JSON-safe, for display only."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def columns_of(
    rows: Iterable[Mapping[str, Any]],
    declared: Sequence[str] = (),
    *,
    documents: bool = False,
) -> list[str]:
    """``_id`` and ``_creationTime``, the ``declared`` fields, then any others.

    The system fields come first when a row has them (always, with
    ``documents``); other fields follow in the order they are first seen.
    """
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key)
    system = [f for f in SYSTEM_FIELDS if documents or f in seen]
    named = [f for f in declared if f not in SYSTEM_FIELDS]
    rest = [k for k in seen if k not in SYSTEM_FIELDS and k not in named]
    return [*system, *named, *rest]


def html_table(
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    caption: str,
) -> str:
    """An HTML table of ``rows`` under ``caption`` (escaped; a missing field is empty)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(cell(row[c], c)) if c in row else ''}</td>"
            for c in columns
        )
        + "</tr>"
        for row in rows
    )
    return (
        '<table class="one-store">'
        f'<caption style="text-align:left">{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def text_table(
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    caption: str,
) -> str:
    """A plain-text table of ``rows`` under ``caption``, for ``repr`` in a terminal.

    Columns are at most :data:`MAX_TEXT_COLUMN` characters wide, except ``_id``.
    """
    grid = [
        [
            cell(row[c], c, None if c == "_id" else MAX_TEXT_COLUMN) if c in row else ""
            for c in columns
        ]
        for row in rows
    ]
    widths = [max([len(c), *(len(r[i]) for r in grid)]) for i, c in enumerate(columns)]
    lines = [caption]
    if columns:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
        )
        lines.extend(
            "  ".join(t.ljust(w) for t, w in zip(r, widths, strict=True)).rstrip()
            for r in grid
        )
    return "\n".join(line.rstrip() for line in lines)


def problem_html(problem: object) -> str:
    """A Problem for a notebook: its code and message, then each of its fields."""
    code = html.escape(str(getattr(problem, "code", type(problem).__name__)))
    fields = getattr(type(problem), "__attrs_attrs__", ())
    rows = "".join(
        f"<tr><th>{html.escape(f.name)}</th>"
        f"<td>{html.escape(cell(_shown(getattr(problem, f.name)), limit=None))}</td></tr>"
        for f in fields
    )
    return (
        '<div class="one-store-problem">'
        f"<strong>{code}</strong>: {html.escape(str(problem))}"
        f"<table>{rows}</table></div>"
    )


def _shown(value: object) -> Value:
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    return repr(value)


def value_html(value: object, caption: str, shown: int = 10) -> str:
    """A function's result for a notebook: documents as a table, else the value.

    A list of objects shows its first ``shown`` as rows (and how many there are);
    anything else is its cell text, whole, in a ``<pre>``.
    """
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        rows = value[:shown]
        count = f"first {len(rows)} of {len(value)}" if len(rows) < len(value) else ""
        where = f"{caption}: {count or len(value)} item{'s' * (len(value) != 1)}"
        return html_table(columns_of(rows), rows, where)
    text = cell(_shown(value), limit=None)
    return (
        f'<div class="one-store-value"><strong>{html.escape(caption)}</strong>'
        f"<pre>{html.escape(text)}</pre></div>"
    )


def result_html(result: object, caption: str) -> str:
    """A call's ``Result`` for a notebook: its value (:func:`value_html`) or its Problem."""
    if isinstance(result, Failure):
        return f"<div>{html.escape(caption)}: Failure</div>{problem_html(result.failure())}"
    if isinstance(result, Success):
        return value_html(result.value_or(None), caption)
    return value_html(result, caption)
