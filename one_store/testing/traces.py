"""Call traces: which documents and index ranges each call read, what it wrote."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from attrs import define, field, frozen

from ..model.ids import table_number_of
from ..model.values import Document, Value, show

if TYPE_CHECKING:
    from ..engine.backend import Bounds, CallObserver, SearchScan
    from ..model.errors import Problem
    from ..runtime.functions import Kind
    from ..store import Store


@frozen
class DocumentRead:
    """One document a call read (by ``get`` or as a query result)."""

    table: str
    id: str


@define
class IndexRangeRead:
    """One index range a query scanned, and the documents it returned.

    ``bounds`` are the range calls as written: ``("eq", "threadId", tid)``,
    ``("gt", "_creationTime", t0)``; ``()`` is the whole index. A text search
    has ``("search", field, text)`` and its ``("eq", field, value)`` filters, and
    ``order`` ``"relevance"``. A page of ``paginate`` shows the query's declared
    bounds (the cursor narrows them further).
    """

    table: str
    index: str
    bounds: tuple[tuple[str, str, Value], ...]
    order: str
    documents: list[str] = field(factory=list)

    def describe(self) -> str:
        """``agents.by_name [eq name "Ada"] asc -> 1 document(s)``."""
        bounds = ", ".join(f"{op} {f} {show(value)}" for op, f, value in self.bounds)
        return (
            f"{self.table}.{self.index} [{bounds or 'all'}] {self.order} "
            f"-> {len(self.documents)} document(s)"
        )


@frozen
class DocumentWrite:
    """One write: ``op`` is ``insert``, ``patch``, ``replace``, ``delete`` or ``schedule``."""

    op: str
    table: str
    id: str


@define
class CallTrace:
    """What one transaction (a query, a mutation, an action's step, a job) did.

    ``committed`` is True once a mutation's writes are kept (always False for a query).
    """

    kind: str
    path: str
    reads: list[DocumentRead] = field(factory=list)
    ranges: list[IndexRangeRead] = field(factory=list)
    writes: list[DocumentWrite] = field(factory=list)
    committed: bool = False

    def describe(self) -> str:
        """A few readable lines: the call, then each range, read and write."""
        status = "committed" if self.committed else "not committed"
        if self.kind == "query":
            status = "read"
        lines = [f"{self.kind} {self.path} ({status})"]
        lines += [f"  range {r.describe()}" for r in self.ranges]
        lines += [f"  read  {r.table} {r.id}" for r in self.reads]
        lines += [f"  {w.op:<7}{w.table} {w.id}" for w in self.writes]
        return "\n".join(lines)


@define
class Trace:
    """The calls recorded by :func:`trace`, in the order they started."""

    calls: list[CallTrace] = field(factory=list)

    @property
    def reads(self) -> list[DocumentRead]:
        """Every document read, across calls."""
        return [r for c in self.calls for r in c.reads]

    @property
    def ranges(self) -> list[IndexRangeRead]:
        """Every index range scanned, across calls."""
        return [r for c in self.calls for r in c.ranges]

    @property
    def writes(self) -> list[DocumentWrite]:
        """Every write of a committed call, across calls."""
        return [w for c in self.calls if c.committed for w in c.writes]

    def report(self) -> str:
        """All calls, described one after another."""
        return "\n".join(c.describe() for c in self.calls)


class _Recorder:
    """The observer of one call: fills its :class:`CallTrace`."""

    def __init__(self, call: CallTrace, table_of: Callable[[int], str | None]) -> None:
        self.call = call
        self._table_of = table_of

    def document_read(self, doc: Document) -> None:
        doc_id = str(doc.get("_id"))
        number = table_number_of(doc_id)
        table = self._table_of(number) if number is not None else None
        self.call.reads.append(DocumentRead(table or "?", doc_id))

    def range_read(
        self, table: str, index: str, bounds: Bounds, order: str
    ) -> Callable[[str], None] | None:
        record = IndexRangeRead(table, index, bounds, order)
        self.call.ranges.append(record)
        return record.documents.append

    def scanned(self, table: str, index: str, low: bytes, high: bytes | None) -> None:
        return None  # the range is in ``ranges`` already, as written

    def searched(self, scan: SearchScan) -> None:
        return None  # in ``ranges`` already (order "relevance")

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        self.call.writes.append(DocumentWrite(op, table, doc_id))

    def finished(self, committed: bool) -> None:
        self.call.committed = committed


class _Tracer:
    """The Instrumentation :func:`trace` installs: one recorder per call."""

    def __init__(self, recorded: Trace, table_of: Callable[[int], str | None]) -> None:
        self.recorded = recorded
        self._table_of = table_of

    def fault(self, path: str) -> Problem | None:
        return None

    def observer(self, kind: Kind, path: str) -> CallObserver | None:
        call = CallTrace(kind, path)
        self.recorded.calls.append(call)
        return _Recorder(call, self._table_of)


@contextlib.contextmanager
def trace(store: Store) -> Iterator[Trace]:
    """Record what every call on ``store`` reads and writes inside the block.

    Each transaction becomes a :class:`CallTrace`: a query, a mutation, each
    ``run_query``/``run_mutation`` step of an action (each its own transaction),
    each scheduled mutation. Nested ``ctx.run_query``/``run_mutation`` inside a
    mutation belong to that mutation's trace. ``committed`` says whether its
    writes were kept.

    Example:
        >>> from one_store import Store, define_schema, define_table, mutation, v
        >>> schema = define_schema({"agents": define_table({"name": v.string()}).index("by_name", ["name"])})
        >>> @mutation(args={"name": v.string()})
        ... def create(ctx, args):
        ...     if ctx.db.query("agents").with_index("by_name", lambda q: q.eq("name", args["name"])).first():
        ...         return None
        ...     return ctx.db.insert("agents", {"name": args["name"]})
        >>> store = Store.memory(schema)
        >>> with trace(store) as t:
        ...     _ = store.mutation(create, {"name": "Ada"})
        >>> t.calls[0].ranges[0].describe(), [w.op for w in t.writes]
        ('agents.by_name [eq name "Ada"] asc -> 0 document(s)', ['insert'])
    """
    recorded = Trace()
    remove = store.executor.instrument(_Tracer(recorded, store.storage.table_of))
    try:
        yield recorded
    finally:
        remove()
