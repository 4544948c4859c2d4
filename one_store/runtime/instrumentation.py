"""How tests look inside calls: the Instrumentation protocol.

An :class:`Instrumentation` is installed on a store's executor
(``store.executor.instrument(...)``). Before a mutation runs it may inject a
fault (a Problem the call fails with, nothing written); for each call it may hand
out a :class:`~one_store.engine.backend.CallObserver` that sees the call's reads
and writes as they happen. ``one_store.testing``'s ``inject_faults`` and
``trace`` are the two the library ships; with none installed a call pays nothing
but an empty-tuple test. Several can be installed at once (:class:`Observers`
fans one call's events out to each).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..engine.backend import Bounds, CallObserver, SearchScan
    from ..model.errors import Problem
    from .functions import Kind


class Instrumentation(Protocol):
    """How tests look inside calls: injected faults and call observers.

    Install one with :meth:`Executor.instrument`; ``one_store.testing``'s
    ``inject_faults`` and ``trace`` are the two the library ships.
    """

    def fault(self, path: str) -> Problem | None:
        """A Problem to fail the mutation (or scheduled job) ``path`` with, or None."""

    def observer(self, kind: Kind, path: str) -> CallObserver | None:
        """An observer for one call's transaction, or None to leave it unobserved."""


class Observers:
    """Several observers of one call (a trace and a read set, say)."""

    def __init__(self, observers: list[CallObserver]) -> None:
        self.observers = observers

    def document_read(self, doc: Any) -> None:
        """Tell each observer."""
        for o in self.observers:
            o.document_read(doc)

    def range_read(
        self, table: str, index: str, bounds: Bounds, order: str
    ) -> Callable[[str], None] | None:
        """Tell each observer; one sink that feeds theirs."""
        sinks = [
            s
            for s in (o.range_read(table, index, bounds, order) for o in self.observers)
            if s is not None
        ]
        if not sinks:
            return None

        def sink(doc_id: str) -> None:
            for s in sinks:
                s(doc_id)

        return sink

    def scanned(self, table: str, index: str, low: bytes, high: bytes | None) -> None:
        """Tell each observer."""
        for o in self.observers:
            o.scanned(table, index, low, high)

    def searched(self, scan: SearchScan) -> None:
        """Tell each observer."""
        for o in self.observers:
            o.searched(scan)

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        """Tell each observer."""
        for o in self.observers:
            o.document_written(op, table, doc_id)

    def finished(self, committed: bool) -> None:
        """Tell each observer."""
        for o in self.observers:
            o.finished(committed)
