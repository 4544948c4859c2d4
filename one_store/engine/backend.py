"""The seams between the engine and the code that runs functions.

- :class:`Backend`: what an engine offers the runtime (transactions, rows, index
  scans, text search, vector search, the tables and their indexes, creation-time
  bookkeeping).
  :class:`~one_store.engine.sqlite.storage.Storage` is the SQLite engine; a
  second engine (PostgreSQL) implements the same protocol. Nothing in it names
  an engine's types: tables are :class:`TableInfo`, a scan is asked for with an
  :class:`IndexScan` or a :class:`SearchScan` (data, not SQL), and rows come back
  as tuples. What differs between engines and a caller may ask about is in
  :class:`Features` (Django's ``features``), never an ``if vendor == ...``.
- :class:`ReadPort`: what a :class:`~one_store.engine.query.Query` needs from the
  transaction it runs in (table layouts, the engine's scans, counting reads
  against the function's limits). It is internal: ``ctx.db`` is not a port, so a
  handler never reaches it.
- :class:`BlobStore`: the bodies of stored files, kept beside the database and
  made atomic with the transaction that writes their ``_storage`` row.
- :class:`CallObserver`: what one call read and wrote, as it happens (documents by
  ID, index ranges scanned, writes). The runtime hands one to every transaction;
  the default, :data:`NO_OBSERVER`, does nothing. Call traces
  (``one_store.testing.trace``) and, later, the read sets of reactive queries are
  observers; nothing else in the engine knows about them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, BinaryIO, Final, NamedTuple, Protocol

from attrs import define, frozen

if TYPE_CHECKING:
    from ..model.schema import (
        Index,
        Schema,
        SearchIndex,
        TableDefinition,
        VectorIndex,
    )
    from ..model.values import Document, Value
    from .ranges import Order

# The range calls of ``with_index`` as written: ``("eq", "threadId", tid)``.
Bounds = tuple[tuple[str, str, "Value"], ...]
# ``eq(field, value)`` conjuncts every filter evaluation starts with: (path, value).
Equalities = tuple[tuple[tuple[str, ...], object], ...]
# One scanned row (see IndexScan and SearchScan for its shape).
Row = tuple[Any, ...]
# A document's entry in a search index: its search field's tokens (space
# separated) and the sort keys of its filter fields, in the index's order.
SearchEntry = tuple[str, tuple[bytes, ...]]


class Change(NamedTuple):
    """One committed write, as the change log keeps it (reactive queries).

    Attributes:
        seq: its position in the log (increasing, never reused).
        table: the table written.
        doc_id: the document written.
        keys: per index (``by_id`` and ``by_creation_time`` included), the
            document's key before and after the write (None: it was not there,
            or is not any more); None when the entry cannot be read (then the
            write must be taken to touch the whole table).
        search: per search index, the document's entry before and after (None:
            no entry).
    """

    seq: int
    table: str
    doc_id: str
    keys: tuple[tuple[str, bytes | None, bytes | None], ...] | None
    search: tuple[tuple[str, SearchEntry | None, SearchEntry | None], ...]


@define
class IndexScan:
    """One index range scan, as a query asks the engine for it.

    A value: never changed once made (mutable slots only because a frozen attrs
    class costs four times as much to make, on every query).

    Rows come in key order (``order``), each ``(body, key)``: the document's
    stored JSON and its key in the index (the bytes of
    :func:`~one_store.model.values.sort_key` over the index's fields,
    ``_creationTime`` and ``_id``). With ``equalities``, an engine that
    :attr:`Features.equality_prefilter` tests them while scanning: each row is
    then ``(body | None, key, size)``, ``body`` None for a row failing them (never
    decoded, but scanned: ``size`` is its stored length, for the read limits).
    With ``bodies_only`` each row is ``(body,)``.

    Attributes:
        table: the table.
        index: the index (``by_id`` and ``by_creation_time`` included).
        low: the first key in range (``b""``: from the start).
        high: the first key past the range (None: to the end).
        order: ``"asc"`` or ``"desc"``.
        limit: at most this many rows (None: all).
        equalities: leading ``eq(field, value)`` conjuncts of the query's filters.
        bodies_only: rows are ``(body,)`` (no key is needed).
    """

    table: str
    index: str
    low: bytes = b""
    high: bytes | None = None
    order: Order = "asc"
    limit: int | None = None
    equalities: Equalities = ()
    bodies_only: bool = False


@frozen
class SearchScan:
    """One text search over a search index, as a query asks the engine for it.

    Matches contain any of ``terms`` (the last one also as a prefix), and each
    filter field equals its value. Rows come in Convex's order (relevance, then
    newest first, then ``_id``), each ``(body, key)``, ``key`` the bytes of
    ``sort_key([score, -_creationTime, _id])`` (a lower score is more relevant).

    Attributes:
        table: the table.
        index: the search index.
        terms: the query's tokens (at most 16; none: no results).
        filters: ``(position in the index's filter_fields, sort key of the value)``.
    """

    table: str
    index: str
    terms: tuple[str, ...]
    filters: tuple[tuple[int, bytes], ...] = ()


@frozen
class VectorScan:
    """One vector search, as ``ctx.vector_search`` asks the engine for it.

    Attributes:
        table: the table.
        index: the vector index.
        vector: the query vector (finite numbers; its length is checked
            against the index by :func:`one_store.engine.vectors.plan`).
        limit: how many results at most (checked by ``plan``: 1..256).
        conditions: ``(filter field, value)`` pairs, OR-ed (none: no filter).
    """

    table: str
    index: str
    vector: tuple[float, ...]
    limit: int
    conditions: tuple[tuple[str, object], ...] = ()


class Rows(Protocol):
    """The rows of a scan, stepped one at a time; close it when done early."""

    def __iter__(self) -> Iterator[Row]:
        """Step through the rows."""

    def close(self) -> None:
        """Stop the scan and release what it holds."""


@frozen
class Features:
    """What an engine can do, for callers to ask (Django's ``features``).

    Attributes:
        vendor: the engine's name, for messages only (never branch on it).
        equality_prefilter: an :class:`IndexScan`'s ``equalities`` are tested
            in the engine (rows failing them come back undecoded); otherwise
            the query leaves them out and every row comes back with its body.
        ranked_search_top: :meth:`Scanner.search_top` can rank on the search
            index alone; otherwise a top-n search reads the full ranked scan.
        local: a call waits on no network (the database is a file of this
            machine): a server may run short calls on its event loop's thread;
            otherwise each waits on the network and runs on a worker thread.
    """

    vendor: str
    equality_prefilter: bool
    ranked_search_top: bool
    local: bool = True


class TableInfo(Protocol):
    """One table, as the engine describes it: name, ID number, indexes."""

    @property
    def name(self) -> str:
        """The table's name."""

    @property
    def number(self) -> int:
        """The table number inside its documents' IDs."""

    @property
    def indexes(self) -> Mapping[str, Index]:
        """Its indexes by name (``by_id`` and ``by_creation_time`` included)."""

    @property
    def search_indexes(self) -> Mapping[str, SearchIndex]:
        """Its search indexes by name."""

    @property
    def vector_indexes(self) -> Mapping[str, VectorIndex]:
        """Its vector indexes by name."""


class CallObserver(Protocol):
    """Watches one transaction's reads and writes (traces, read sets)."""

    def document_read(self, doc: Document) -> None:
        """A document was read (``db.get``, or a row a query decoded)."""

    def range_read(
        self, table: str, index: str, bounds: Bounds, order: str
    ) -> Callable[[str], None] | None:
        """A query starts scanning ``index``; return a sink for the IDs it returns."""

    def scanned(self, table: str, index: str, low: bytes, high: bytes | None) -> None:
        """A scan of ``index`` read the key interval ``[low, high)`` (None: no end).

        Told once per scan when it stops, with the keys it actually reached: a
        ``take(n)`` that stopped at its n-th key reports the range up to that key.
        """

    def searched(self, scan: SearchScan) -> None:
        """A text search ran (any write matching it may change its results)."""

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

    def scanned(self, table: str, index: str, low: bytes, high: bytes | None) -> None:
        return None

    def searched(self, scan: SearchScan) -> None:
        return None

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        return None

    def finished(self, committed: bool) -> None:
        return None

    def __repr__(self) -> str:
        return "NO_OBSERVER"


NO_OBSERVER: Final[CallObserver] = _NoObserver()


class Scanner(Protocol):
    """The read side of an engine that queries use: tables, scans, search."""

    @property
    def features(self) -> Features:
        """What this engine can do."""

    @property
    def layouts(self) -> Mapping[str, TableInfo]:
        """Every table (system tables included) by name."""

    def index_rows(self, scan: IndexScan) -> Rows:
        """The rows of an index range scan (see :class:`IndexScan`)."""

    def search_rows(self, scan: SearchScan, max_results: int) -> Rows:
        """The first ``max_results`` matches of a search, in Convex's order."""

    def search_top(
        self, scan: SearchScan, n: int, max_results: int
    ) -> list[Row] | None:
        """The first ``n`` matches of a search, reading only their documents.

        None when this cannot be answered without reading more than
        ``max_results`` matches: :meth:`search_rows` then applies. Asked only of
        an engine whose :attr:`Features.ranked_search_top` says it can.
        """

    def vector_search(self, scan: VectorScan) -> list[tuple[str, float]]:
        """``(_id, score)`` of the best ``scan.limit`` matches, best first.

        Exact: the cosine similarity against every indexed vector of the
        latest committed state (other processes' writes included), ties by
        internal ID, highest first. Runs outside any transaction (actions).

        Raises:
            ProblemError: an unknown index, or a scan that breaks Convex's rules
                (:func:`one_store.engine.vectors.plan`).
        """


class ReadPort(Protocol):
    """What a query reads through: the transaction it runs in."""

    @property
    def observer(self) -> CallObserver:
        """The transaction's observer (:data:`NO_OBSERVER` when nobody watches)."""

    @property
    def scanner(self) -> Scanner:
        """The engine the transaction reads from."""

    def layout(self, table: str) -> TableInfo | None:
        """The table ``table`` (None when it does not exist yet)."""

    def read_row(self, body: str, table: str) -> Document:
        """Decode one scanned row of ``table``, counting it against the read limits."""

    def read_all(
        self,
        scan: IndexScan,
        keys: list[bytes] | None = None,
        resumable: bool = False,
    ) -> tuple[list[Document], int, bool]:
        """Decode every row of a scan whose rows are all results."""

    def skip_row(self, size: int) -> None:
        """Count a row the engine's prefilter dropped (never decoded) as read."""


class PendingBlob(Protocol):
    """A file body being written (see :class:`BlobStore`)."""

    @property
    def key(self) -> str:
        """The ``_storage`` ID the body belongs to."""

    @property
    def size(self) -> int:
        """Bytes written so far."""

    @property
    def sha256(self) -> bytes:
        """The SHA-256 digest of what was written so far."""

    def write(self, data: bytes) -> None:
        """Append ``data``."""

    def seal(self) -> None:
        """Make the body durable under its key; it stays claimed until released."""

    def release(self) -> None:
        """The body's ``_storage`` row committed: let it go."""

    def discard(self) -> None:
        """The row did not commit: remove the body."""


class BlobStore(Protocol):
    """Where an engine keeps the bodies of stored files (``_storage`` documents).

    A body is written before its row commits, claimed until then (see
    :class:`PendingBlob`), and removed after a delete of its row commits;
    :meth:`recover` removes what a crash between those steps left behind.
    """

    def begin(self, key: str) -> PendingBlob:
        """Start writing the body of ``key``."""

    def open(self, key: str) -> BinaryIO | None:
        """The body of ``key`` for reading (None when there is none)."""

    def remove(self, key: str) -> None:
        """Remove the body of ``key``."""

    def names(self) -> list[str]:
        """The keys of every body held."""

    def recover(self, live: Callable[[str], bool]) -> list[str]:
        """Remove unclaimed bodies with no committed row; the keys removed."""

    def close(self) -> None:
        """Release what the store holds (a temporary folder)."""


class Backend(Scanner, Protocol):
    """An engine: what the runtime needs from the database under it.

    Transactions are context managers: :meth:`write` takes the write lock at
    once and commits on a clean exit (rolls back on an exception);
    :meth:`read` sees one snapshot; :meth:`savepoint` nests inside a write.
    Failures of the database itself come out as
    :class:`~one_store.model.errors.StorageFailure` carrying ``Busy`` or
    ``StorageError``.
    """

    # ------------------------------------------------------------ transactions

    def write(self) -> AbstractContextManager[None]:
        """A write transaction (takes the write lock at once; commits on exit)."""

    def read(self) -> AbstractContextManager[None]:
        """A read transaction: one consistent snapshot."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A sub-transaction inside a write; an exception rolls back only it."""

    # ------------------------------------------------------------ tables and schema

    readonly: bool
    # Where the data is, for messages: a file's path, or a DSN without its password.
    location: str
    # Whether other connections (processes, machines) may write the same tables,
    # so watches must follow them (False only for a private memory database).
    follows_others: bool

    @property
    def blobs(self) -> BlobStore:
        """The bodies of stored files (the SQLite engine's: engine/sqlite/blobs.py)."""

    # ------------------------------------------------------------ change log
    # What each committed write touched, for watchers in other processes
    # (engine/sqlite/changes.py): entries are made in the writing transaction.

    def enable_change_log(self) -> int:
        """Start logging writes (in every process on the database); the newest seq."""

    def changes_since(self, seq: int) -> list[Change]:
        """The logged writes committed after ``seq``, oldest first (one statement)."""

    def recent_changes(self, after: int) -> list[Change] | None:
        """This connection's own logged writes after ``after``, if it kept them all.

        None when it cannot tell (another connection wrote in between, a
        rollback, a reopened file): then :meth:`changes_since` reads the log.
        """

    def data_version(self) -> int:
        """A number that changes when another connection commits to the database.

        Called outside any transaction (the watch thread asks every 10 ms).
        """

    def schema_fingerprint(self) -> str | None:
        """The fingerprint of the schema the database was last synced with."""

    def checked_documents(self) -> dict[str, str]:
        """Per table, the document validator its stored documents were checked against."""

    def sync_schema(self, schema: Schema, documents: Mapping[str, str]) -> None:
        """Create and back-fill what ``schema`` adds; record ``documents`` as checked."""

    def rows(self, table: str, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """``(_id, stored JSON)`` of every document of ``table``, streamed."""

    def ensure_table(
        self,
        table: str,
        definition: TableDefinition | None = None,
        number: int | None = None,
        document: str | None = None,
    ) -> TableInfo:
        """The table ``table``, created (with its indexes) when missing."""

    def table_of(self, number: int) -> str | None:
        """The table with this table number."""

    def table_number(self, table: str) -> int:
        """The table number of ``table`` (KeyError when there is no such table)."""

    def tables(self) -> list[str]:
        """User tables, by name."""

    def meta(self, key: str) -> str | None:
        """A setting the store keeps in the file (the schema's fingerprint)."""

    def set_meta(self, key: str, value: str) -> None:
        """Keep a setting in the file, in the current write."""

    # ------------------------------------------------------------ rows

    def get(self, table: TableInfo, doc_id: str) -> Document | None:
        """One document by ID (its stored JSON is :meth:`get_text`)."""

    def get_text(self, table: TableInfo, doc_id: str) -> str | None:
        """One document's stored JSON by ID."""

    def insert(self, table: TableInfo, doc: Document, text: str | None = None) -> None:
        """Insert a checked document (``text`` its JSON, when already made)."""

    def update(
        self,
        table: TableInfo,
        doc: Document,
        text: str | None = None,
        previous: Document | None = None,
    ) -> None:
        """Replace a document (``previous`` as read, to touch only changed keys)."""

    def delete(self, table: TableInfo, doc_id: str) -> bool:
        """Delete a document; False when it did not exist."""

    # ------------------------------------------------------------ whole tables and ranges

    def scan(self, table: str) -> Iterator[Document]:
        """Every document of ``table`` in ``_creationTime`` order (none if missing)."""

    def first_in_range(
        self, table: str, index: str, low: bytes, high: bytes | None
    ) -> Document | None:
        """The first document of an index range (lowest key), or None."""

    def range_documents(
        self, table: str, index: str, low: bytes, high: bytes | None
    ) -> list[Document]:
        """Every document of an index range, in key order."""

    def count(self, table: str) -> int:
        """How many documents ``table`` holds (0 when it does not exist)."""

    def clear(self, table: str) -> None:
        """Delete every document of ``table`` (inside the current write)."""

    def write_raw(self, table: str, doc: Document) -> None:
        """Insert a document whose ``_id`` and ``_creationTime`` are given (imports)."""

    def renumber(self, moves: Mapping[str, int]) -> None:
        """Give existing (empty) tables new table numbers, in the current write."""

    # ------------------------------------------------------------ creation times

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
