"""The seams between the engine and the code that runs functions.

- :class:`CallObserver`: what one call read and wrote, as it happens (documents by
  ID, index ranges scanned, writes). The runtime hands one to every transaction;
  the default, :data:`NO_OBSERVER`, does nothing. Call traces
  (``one_store.testing.trace``) and, later, the read sets of reactive queries are
  observers; nothing else in the engine knows about them.
- :class:`ReadPort`: what a :class:`~one_store.engine.query.Query` needs from the
  transaction it runs in (table layouts, the rows of a scan, counting reads
  against the function's limits). It is internal: ``ctx.db`` is not a port, so a
  handler never reaches it.
- :class:`Backend`: what an engine offers the runtime (transactions, rows, index
  scans, text search, the layout of tables). :class:`~one_store.engine.sqlite.storage.Storage`
  is the SQLite engine; a second engine implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, Protocol

if TYPE_CHECKING:
    from ..model.schema import Schema, TableDefinition
    from ..model.values import Document, Value
    from .sqlite.storage import TableLayout

# The range calls of ``with_index`` as written: ``("eq", "threadId", tid)``.
Bounds = tuple[tuple[str, str, "Value"], ...]


class CallObserver(Protocol):
    """Watches one transaction's reads and writes (traces, read sets)."""

    def document_read(self, doc: Document) -> None:
        """A document was read (``db.get``, or a row a query decoded)."""

    def range_read(
        self, table: str, index: str, bounds: Bounds, order: str
    ) -> Callable[[str], None] | None:
        """A query starts scanning ``index``; return a sink for the IDs it returns."""

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        """``op`` (insert, patch, replace, delete, schedule) wrote ``doc_id``."""

    def finished(self, committed: bool) -> None:
        """The transaction ended; ``committed`` says whether its writes were kept."""


class _NoObserver:
    """The default observer: watches nothing, costs one call per event."""

    __slots__ = ()

    def document_read(self, doc: Document) -> None:
        return None

    def range_read(
        self, table: str, index: str, bounds: Bounds, order: str
    ) -> Callable[[str], None] | None:
        return None

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        return None

    def finished(self, committed: bool) -> None:
        return None

    def __repr__(self) -> str:
        return "NO_OBSERVER"


NO_OBSERVER: Final[CallObserver] = _NoObserver()


class ReadPort(Protocol):
    """What a query reads through: the transaction it runs in."""

    @property
    def observer(self) -> CallObserver:
        """The transaction's observer (:data:`NO_OBSERVER` when nobody watches)."""

    def layout(self, table: str) -> TableLayout | None:
        """The layout of ``table`` (None when it does not exist yet)."""

    def execute(self, sql: str, params: Sequence[Any]) -> Any:
        """Run a scan's SQL; return its cursor."""

    def read_row(self, body: str) -> Document:
        """Decode one scanned row, counting it against the read limits."""

    def read_all(
        self,
        sql: str,
        params: Sequence[Any],
        keys: list[bytes] | None = None,
        resumable: bool = False,
    ) -> tuple[list[Document], int, bool]:
        """Decode every row of a scan whose rows are all results."""

    def skip_row(self, size: int) -> None:
        """Count a row a SQL prefilter dropped (never decoded) as read."""


class Backend(Protocol):
    """An engine: what the runtime needs from the database under it."""

    layouts: dict[str, TableLayout]

    def write(self) -> AbstractContextManager[None]:
        """A write transaction (takes the write lock at once; commits on exit)."""

    def read(self) -> AbstractContextManager[None]:
        """A read transaction: one consistent snapshot."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A sub-transaction inside a write; an exception rolls back only it."""

    def sync_schema(self, schema: Schema) -> list[tuple[str, Document]]:
        """Create and back-fill what ``schema`` adds; return documents to re-check."""

    def ensure_table(
        self,
        table: str,
        definition: TableDefinition | None,
        number: int | None = None,
    ) -> TableLayout:
        """The layout of ``table``, created (with its indexes) when missing."""

    def table_of(self, number: int) -> str | None:
        """The table with this table number."""

    def tables(self) -> list[str]:
        """User tables, by name."""

    def get(self, layout: TableLayout, doc_id: str) -> Document | None:
        """One document by ID (undecoded text is :meth:`get_text`)."""

    def get_text(self, layout: TableLayout, doc_id: str) -> str | None:
        """One document's stored JSON by ID."""

    def insert(
        self, layout: TableLayout, doc: Document, text: str | None = None
    ) -> None:
        """Insert a checked document (``text`` its JSON, when already made)."""

    def update(
        self,
        layout: TableLayout,
        doc: Document,
        text: str | None = None,
        old: Document | None = None,
    ) -> None:
        """Replace a document (``old`` as read, to touch only changed index keys)."""

    def delete(self, layout: TableLayout, doc_id: str) -> bool:
        """Delete a document; False when it did not exist."""

    def scan(self, table: str) -> Iterator[Document]:
        """Every document of ``table`` in ``_creationTime`` order."""

    def first_in_range(
        self, table: str, index: str, low: bytes, high: bytes
    ) -> Document | None:
        """The first document of an index range (lowest key), or None."""

    def range_documents(
        self, table: str, index: str, low: bytes, high: bytes
    ) -> list[Document]:
        """Every document of an index range, in key order."""

    def next_creation_time(self, now_ms: float) -> float:
        """The next ``_creationTime``: above every one handed out, near ``now_ms``."""

    def record_creation_time(self, last: float) -> None:
        """A write that inserted committed; ``last`` is its newest creation time."""

    def note_rollback(self, last_known: float) -> None:
        """A write rolled back: forget creation times handed out since ``last_known``."""

    @property
    def last_creation_time(self) -> float:
        """The newest ``_creationTime`` handed out so far."""

    def close(self) -> None:
        """Close the database."""
