"""What a query read, for an observer: the key ranges its scans reached.

A reactive query re-runs only when a write lands in what its last run read. For
an index scan that is the key interval the scan actually covered: all of its
range when it ran out, and only up to its last key when the caller stopped early
(``take(n)``, ``first()``, ``unique()``, a full page). Convex records the
interval of each page its stream fetched, prefetch included
(convex-backend ``crates/database/src/query/index_range.rs``), a superset of
this; one_store stops at the keys consumed, which re-runs less. A text search is
reported as a search: any write whose document matches it may change its
results.

Nothing here runs unless an observer is installed: a query without one never
calls into this module.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from .ranges import KeyRange

if TYPE_CHECKING:
    from ..model.values import Document
    from .backend import CallObserver, IndexScan, SearchScan

Rows = Generator[tuple["Document", bytes], None, None]
# Where a scan runs: table, index, key range, order.
Where = tuple[str, str, KeyRange, str]


def reached(r: KeyRange, order: str, last: bytes | None) -> tuple[bytes, bytes | None]:
    r"""The part of ``r`` that a scan in ``order`` read when it stopped at ``last``.

    ``last`` None: it read all of ``r``. Keys end with the document's ``_id``, so
    no stored key extends another and ``last + b"\x00"`` is the first key after
    ``last``.
    """
    if last is None:
        return r.low, r.high
    if order == "asc":
        return r.low, last + b"\x00"
    return last, r.high


def observed(
    rows: Rows, observer: CallObserver, where: Where, search: SearchScan | None
) -> Rows:
    """``rows``, then tell ``observer`` what they reached.

    A caller that stops early closes the generator at its last result: the scan
    read up to that key and no further. A scan that ran out, or failed, read its
    whole range.
    """
    last: bytes | None = None
    stopped = False
    try:
        for doc, key in rows:
            last = key
            yield doc, key
    except GeneratorExit:
        stopped = True
        raise
    finally:
        rows.close()
        if search is not None:
            observer.searched(search)
        else:
            table, index, r, order = where
            observer.scanned(
                table, index, *reached(r, order, last if stopped else None)
            )


def report_scan(
    observer: CallObserver,
    scan: IndexScan,
    found: tuple[list[Document], int, bool],
    keys: list[bytes] | None,
) -> None:
    """Tell ``observer`` what a one-loop scan (``ReadPort.read_all``) reached.

    ``keys`` are the keys of the rows it returned; a scan that stopped at its
    limit or at a read limit reached its last one.
    """
    docs, _, stopped = found
    whole = not stopped and (scan.limit is None or len(docs) < scan.limit)
    last = None if whole or not keys else keys[-1]
    r = KeyRange(scan.low, scan.high)
    observer.scanned(scan.table, scan.index, *reached(r, scan.order, last))
