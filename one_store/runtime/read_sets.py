"""Read sets: what a query run read, and which runs a committed write touches.

A :class:`ReadSet` is the :class:`~one_store.engine.backend.CallObserver` of one
watched run: it keeps the IDs of the documents the run read (``db.get`` and every
row a scan decoded), the key interval each index scan reached (a full-table scan
is the whole ``by_creation_time`` range; a ``take(n)`` only up to its n-th key)
and the text searches it ran.

A :class:`ReadIndex` holds the read sets of every open watch, so that a committed
write (a :class:`~one_store.engine.backend.Change`: table, ID, old and new index
keys, old and new search entries) finds the runs it touches without looking at
the others: IDs in a dict, the intervals of each ``(table, index)`` in an
:class:`Intervals` (sorted by low end, with a running maximum of high ends, so a
key finds the intervals containing it by bisection), searches by table. That is
Convex's own rule (convex-backend ``crates/database/src/reads.rs``,
``ReadSet::writes_overlap``): a write overlaps a read set when the old or the new
document's key in an index lies in an interval read from that index, or the old
or new document matches a search read.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from ..engine.search import search_entry_matches

if TYPE_CHECKING:
    from ..engine.backend import Bounds, Change, SearchScan
    from ..model.values import Document

Owner = TypeVar("Owner", bound=Hashable)


class ReadSet:
    """What one query run read (the observer of its transaction)."""

    __slots__ = ("ids", "ranges", "searches")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.ranges: list[tuple[str, str, bytes, bytes | None]] = []
        self.searches: list[SearchScan] = []

    def document_read(self, doc: Document) -> None:
        """Keep the document's ID: any write to it touches this run."""
        self.ids.add(str(doc["_id"]))

    def range_read(
        self, table: str, index: str, bounds: Bounds, order: str
    ) -> Callable[[str], None] | None:
        """Nothing to keep: :meth:`scanned` says what the scan reached."""
        return None

    def scanned(self, table: str, index: str, low: bytes, high: bytes | None) -> None:
        """Keep the key interval a scan reached."""
        self.ranges.append((table, index, low, high))

    def searched(self, scan: SearchScan) -> None:
        """Keep a text search."""
        self.searches.append(scan)

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        """Queries do not write."""

    def finished(self, committed: bool) -> None:
        """Nothing to do: the watch reads the set when its run returns."""


class Intervals(Generic[Owner]):
    """Half-open key intervals of several owners; which contain a given key.

    Rebuilt lazily after a change (sorting n intervals), so a write that
    changes no read set pays one bisection per key and index.
    """

    def __init__(self) -> None:
        self._by_owner: dict[Owner, list[tuple[bytes, bytes | None]]] = {}
        self._open_lows: list[bytes] = []  # intervals with no end, by low
        self._open_owners: list[Owner] = []
        self._lows: list[bytes] = []
        self._highs: list[bytes] = []
        self._owners: list[Owner] = []
        self._reach: list[bytes] = []  # max high over entries 0..i
        self._dirty = False

    def __bool__(self) -> bool:
        return bool(self._by_owner)

    def add(self, owner: Owner, low: bytes, high: bytes | None) -> None:
        """Add ``[low, high)`` (``high`` None: no end) for ``owner``."""
        self._by_owner.setdefault(owner, []).append((low, high))
        self._dirty = True

    def discard(self, owner: Owner) -> None:
        """Forget every interval of ``owner``."""
        if self._by_owner.pop(owner, None) is not None:
            self._dirty = True

    def owners(self) -> Iterable[Owner]:
        """Every owner with an interval here."""
        return self._by_owner.keys()

    def _build(self) -> None:
        spans = [
            (low, high, owner)
            for owner, by_owner in self._by_owner.items()
            for low, high in by_owner
        ]
        # Intervals with no end contain every key from their low on: kept
        # apart, since no bytes value is above every key.
        open_ended = sorted(
            ((low, owner) for low, high, owner in spans if high is None),
            key=lambda e: e[0],
        )
        self._open_lows = [e[0] for e in open_ended]
        self._open_owners = [e[1] for e in open_ended]
        entries = sorted(
            ((low, high, owner) for low, high, owner in spans if high is not None),
            key=lambda e: (e[0], e[1]),
        )
        self._lows = [e[0] for e in entries]
        self._highs = [e[1] for e in entries]
        self._owners = [e[2] for e in entries]
        reach: list[bytes] = []
        top = b""
        for high in self._highs:
            top = max(top, high)
            reach.append(top)
        self._reach = reach
        self._dirty = False

    def containing(self, key: bytes, into: set[Owner]) -> None:
        """Add to ``into`` every owner with an interval that contains ``key``."""
        if self._dirty:
            self._build()
        into.update(self._open_owners[: bisect.bisect_right(self._open_lows, key)])
        i = bisect.bisect_right(self._lows, key) - 1
        reach, highs, owners = self._reach, self._highs, self._owners
        while i >= 0 and reach[i] > key:
            if highs[i] > key:
                into.add(owners[i])
            i -= 1


class ReadIndex(Generic[Owner]):
    """The read sets of many owners (watches), indexed for intersection."""

    def __init__(self) -> None:
        self._ids: dict[str, set[Owner]] = {}
        self._ranges: dict[tuple[str, str], Intervals[Owner]] = {}
        self._searches: dict[str, dict[Owner, list[SearchScan]]] = {}
        self._sets: dict[Owner, ReadSet] = {}

    def __len__(self) -> int:
        return len(self._sets)

    def add(self, owner: Owner, reads: ReadSet) -> None:
        """Index ``reads`` as ``owner``'s (replacing what it had)."""
        old = self._sets.get(owner)
        if old is not None and old.ranges == reads.ranges:
            # A re-run that read the same ranges (the common case): only its
            # IDs may differ, and the intervals need no rebuild.
            self._swap_ids(owner, old, reads)
            return
        self.discard(owner)
        self._sets[owner] = reads
        for doc_id in reads.ids:
            self._ids.setdefault(doc_id, set()).add(owner)
        for table, index, low, high in reads.ranges:
            intervals = self._ranges.get((table, index))
            if intervals is None:
                intervals = self._ranges[table, index] = Intervals()
            intervals.add(owner, low, high)
        for scan in reads.searches:
            self._searches.setdefault(scan.table, {}).setdefault(owner, []).append(scan)

    def _swap_ids(self, owner: Owner, old: ReadSet, reads: ReadSet) -> None:
        for doc_id in old.ids - reads.ids:
            owners = self._ids.get(doc_id)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._ids[doc_id]
        for doc_id in reads.ids - old.ids:
            self._ids.setdefault(doc_id, set()).add(owner)
        for scan in old.searches:
            by_owner = self._searches.get(scan.table)
            if by_owner is not None:
                by_owner.pop(owner, None)
                if not by_owner:
                    del self._searches[scan.table]
        for scan in reads.searches:
            self._searches.setdefault(scan.table, {}).setdefault(owner, []).append(scan)
        self._sets[owner] = reads

    def discard(self, owner: Owner) -> None:
        """Forget ``owner``'s read set."""
        reads = self._sets.pop(owner, None)
        if reads is None:
            return
        for doc_id in reads.ids:
            owners = self._ids.get(doc_id)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._ids[doc_id]
        for table, index, _, _ in reads.ranges:
            intervals = self._ranges.get((table, index))
            if intervals is not None:
                intervals.discard(owner)
                if not intervals:
                    del self._ranges[table, index]
        for scan in reads.searches:
            by_owner = self._searches.get(scan.table)
            if by_owner is not None:
                by_owner.pop(owner, None)
                if not by_owner:
                    del self._searches[scan.table]

    def touched(self, changes: Iterable[Change]) -> set[Owner]:
        """The owners whose read sets the writes ``changes`` intersect."""
        hit: set[Owner] = set()
        for change in changes:
            owners = self._ids.get(change.doc_id)
            if owners:
                hit |= owners
            if change.keys is None:  # unreadable entry or cleared: the whole table
                hit |= self._readers_of(change.table)
                hit.update(*self._ids.values())  # IDs name no table here: all
                continue
            table = change.table
            for index, old, new in change.keys:
                intervals = self._ranges.get((table, index))
                if intervals is not None:
                    if old is not None:
                        intervals.containing(old, hit)
                    if new is not None:
                        intervals.containing(new, hit)
            searches = self._searches.get(table)
            if searches:
                self._search_hits(change, searches, hit)
        return hit

    @staticmethod
    def _search_hits(
        change: Change, searches: dict[Owner, list[SearchScan]], hit: set[Owner]
    ) -> None:
        entries = {name: (old, new) for name, old, new in change.search}
        for owner, scans in searches.items():
            if owner in hit:
                continue
            for scan in scans:
                old, new = entries.get(scan.index, (None, None))
                if search_entry_matches(scan, old) or search_entry_matches(scan, new):
                    hit.add(owner)
                    break

    def _readers_of(self, table: str) -> set[Owner]:
        found: set[Owner] = set(self._searches.get(table, {}))
        for (name, _), intervals in self._ranges.items():
            if name == table:
                found.update(intervals.owners())
        return found
