"""Checks shared by the ONE app's functions (not a function file: the leading `_`)."""

import math
from typing import Any

from one_store import ConvexError, MutationCtx, QueryCtx


def now_ms(ctx: QueryCtx | MutationCtx) -> float:
    """``Date.now()`` of the spec's code: the call's time in whole milliseconds.

    ``ctx.now()`` has sub-millisecond digits; ``Date.now()`` never does. The
    value stays a float, the type of the ``v.number()`` timestamp fields.
    """
    return float(math.floor(ctx.now()))


def require_text(value: str, what: str) -> str:
    """Return ``value`` stripped, or reject when it is blank."""
    text = value.strip()
    if not text:
        raise ConvexError(f"{what} must not be empty")
    return text


def require_doc(ctx: QueryCtx | MutationCtx, doc_id: str, what: str) -> dict[str, Any]:
    """Return the document ``doc_id``, or reject naming what was missing."""
    doc = ctx.db.get(doc_id)
    if doc is None:
        raise ConvexError(f"{what} not found")
    return doc


def given(args: dict[str, Any], *names: str) -> dict[str, Any]:
    """The subset of ``args`` that the caller actually passed, among ``names``."""
    return {name: args[name] for name in names if name in args}
