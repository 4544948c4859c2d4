"""Pagination: Convex's ``queryPage`` options, page limits, cursors and the page dict.

``paginate`` (:meth:`one_store.engine.query.Query.paginate`) is Convex's
``queryPage``: a cursor is a key position tied to the query's fingerprint, so
documents inserted or deleted elsewhere do not shift later pages and a cursor
stays valid after the file is reopened. ``maximumRowsRead``/``maximumBytesRead``
and the function's read limits end a page early with ``pageStatus:
"SplitRequired"`` (:class:`PageScan`); a page past 3/4 of a limit is
``"SplitRecommended"`` (Convex's ``read_page_from_query`` and
``SOFT_MAX_PAGE_LEN``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from attrs import Factory, define

from ..model.errors import ArgsInvalid, InvalidCursor, LimitExceeded, Problem
from ..model.values import Value, show
from .ranges import fail

MAX_PAGE_SIZE = 32_000
# The transaction's read limits (runtime.transaction.MAX_DOCS_READ /
# MAX_BYTES_READ; the runtime sits above the engine, so they are repeated): a
# page is "approaching" them past 3/4.
TX_MAX_ROWS = 32_000
TX_MAX_BYTES = 16 * 1024 * 1024
SOFT_MAX_PAGE_LEN = 6144  # 3/4 of 8192, Convex's SOFT_MAX_PAGE_LEN


@define
class PageScan:
    """What one ``paginate`` call scanned, for its cursors and read limits.

    As Convex's ``IndexRange``: ``maximum_rows``/``maximum_bytes`` (the page's
    ``maximumRowsRead``/``maximumBytesRead``) count every row the range yields,
    filtered out or not, and stop the page once reached (after at least one row,
    so a page always makes progress); a transaction read limit hit once the page
    has a position (a row it scanned, or its start cursor) stops the page too
    instead of failing the function (``read_page_from_query``: a "pagination
    limit" error becomes ``pageStatus: "SplitRequired"``).
    """

    maximum_rows: int | None = None
    maximum_bytes: int | None = None
    resume: bytes | None = None  # the position the page started after, if any
    keys: list[bytes] = Factory(list)
    bytes_read: int = 0
    split_required: bool = False

    def over_page_limits(self) -> bool:
        """Whether the page's own limits are used up (checked before each next row)."""
        return (
            self.maximum_rows is not None and len(self.keys) >= self.maximum_rows
        ) or (self.maximum_bytes is not None and self.bytes_read >= self.maximum_bytes)

    def stops_at(self, problem: Problem) -> bool:
        """Whether ``problem`` ends the page early rather than failing the function."""
        return (
            isinstance(problem, LimitExceeded)
            and problem.limit in ("documentsRead", "bytesRead")
            # Convex needs a position to continue from: a row this page read,
            # or the cursor it started at.
            and (bool(self.keys) or self.resume is not None)
        )

    def last_position(self) -> bytes | None:
        """Where a page cut short continues from."""
        return self.keys[-1] if self.keys else self.resume

    def status(self, page_length: int) -> str | None:
        """Convex's ``pageStatus``: SplitRequired, SplitRecommended or None."""
        if self.split_required:
            return "SplitRequired"
        soft_rows = min(self.maximum_rows or TX_MAX_ROWS, TX_MAX_ROWS) * 3 // 4
        soft_bytes = min(self.maximum_bytes or TX_MAX_BYTES, TX_MAX_BYTES) * 3 // 4
        if (
            len(self.keys) > soft_rows
            or self.bytes_read > soft_bytes
            or page_length > SOFT_MAX_PAGE_LEN
        ):
            return "SplitRecommended"
        return None

    def split_key(self) -> bytes | None:
        """The middle scanned position, once three or more rows were scanned."""
        return self.keys[len(self.keys) // 2] if len(self.keys) > 2 else None


def encode_cursor(fingerprint: str, key: bytes | None) -> str:
    """The cursor of position ``key`` (None: the end) in the query ``fingerprint``."""
    payload = {"q": fingerprint, "k": None if key is None else key.hex()}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_cursor(
    cursor: object, name: str, fingerprint: str, where: str
) -> bytes | None:
    """``b""`` for the start, the key to continue after, or None for the end.

    Args:
        cursor: the option's value (None: the start).
        name: the option's name, for messages (``cursor``, ``endCursor``).
        fingerprint: the query's (a cursor of another query is refused).
        where: ``table.index``, for messages.

    Raises:
        ProblemError: ``InvalidCursor`` for a garbage cursor or another query's.
    """
    if cursor is None:
        return b""
    try:
        if not isinstance(cursor, str):
            raise TypeError(cursor)
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        found, key = payload["q"], payload["k"]
        position = None if key is None else bytes.fromhex(key)
    except (ValueError, KeyError, TypeError, UnicodeError):
        raise fail(
            InvalidCursor(
                str(cursor),
                f"InvalidCursor: {name} {show(cursor)} is not a cursor returned by "
                f"paginate() on {where}.",
            )
        ) from None
    if found != fingerprint:
        raise fail(
            InvalidCursor(
                cursor,
                "InvalidCursor: Tried to run a query starting from a cursor, but it "
                f"looks like this cursor is from a different query (on {where} now).",
            )
        )
    return position


def page_result(
    page: list[Value], done: bool, cursor: Value, scan: PageScan, split: Value
) -> dict[str, Value]:
    """Convex's page: ``{"page", "isDone", "continueCursor", "splitCursor", "pageStatus"}``."""
    return {
        "page": page,
        "isDone": done,
        "continueCursor": cursor,
        "splitCursor": split,
        "pageStatus": scan.status(len(page)),
    }


def page_size(num: object) -> int:
    """Check ``numItems`` as Convex: a whole number from 1 to 32,000."""
    if (
        isinstance(num, bool)
        or not isinstance(num, int | float)
        or num != num
        or num in (math.inf, -math.inf)
        or num != int(num)
    ):
        raise fail(
            ArgsInvalid(
                ".numItems", f"numItems must be a whole number >= 1, got {show(num)}"
            )
        )
    if num < 1:
        raise fail(
            ArgsInvalid(
                ".numItems",
                f"Must request at least 1 document while paginating (numItems: {show(num)})",
            )
        )
    if num > MAX_PAGE_SIZE:
        raise fail(
            ArgsInvalid(
                ".numItems",
                f"PageSizeTooLarge: numItems {int(num)} is larger than the maximum page "
                f"size {MAX_PAGE_SIZE}",
            )
        )
    return int(num)


def read_limit(options: Mapping[str, Any], name: str) -> int | None:
    """Check ``maximumRowsRead``/``maximumBytesRead``: absent/None, or a whole number >= 1."""
    value = options.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or value in (math.inf, -math.inf)
        or value != int(value)
        or value < 0
    ):
        raise fail(
            ArgsInvalid(
                f".{name}", f"{name} must be a whole number >= 1, got {show(value)}"
            )
        )
    if value == 0:
        raise fail(
            ArgsInvalid(
                f".{name}",
                "InvalidPaginationLimit: maximumRowsRead and maximumBytesRead must be "
                "greater than 0",
            )
        )
    return int(value)
