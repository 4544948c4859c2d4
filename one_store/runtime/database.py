"""``ctx.db``: :class:`DatabaseReader` in queries, :class:`DatabaseWriter` in mutations.

Both have Convex's methods and nothing else (``get``, ``query``,
``normalize_id``, ``system``; the writer adds ``insert``, ``patch``, ``replace``,
``delete``). What a :class:`~one_store.engine.query.Query` reads through is a
separate, internal object (:class:`_Port`), so no route from ``ctx.db`` reaches
SQL or the rows of another transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.backend import NO_OBSERVER, CallObserver, IndexScan, Scanner, TableInfo
from ..engine.query import Query
from ..model.errors import (
    ContextError,
    DocumentInvalid,
    DocumentNotFound,
    InvalidId,
    ProblemError,
)
from ..model.ids import id_error, table_number_of
from ..model.keys import sort_key
from ..model.validators import error_text
from ..model.values import (
    MAX_DOCUMENT_NESTING,
    MAX_DOCUMENT_SIZE,
    UNSET,
    Document,
    InvalidValue,
    Value,
    check_value,
    convex_size,
    dumps,
    dumps_plain,
    identifier_error,
    loads,
    nesting,
)
from .transaction import (
    GENERIC,
    MAX_BYTES_READ,
    MAX_DOCS_READ,
    SYSTEM_FIELDS,
    Transaction,
)

# _id (32-char ID) and _creationTime (float) in Convex's size formula.
_SYSTEM_FIELDS_SIZE = (3 + 1 + 34) + (13 + 1 + 9)


def _same(value: object, expected: object) -> bool:
    """Whether a repeated system field equals the document's, by Convex value equality.

    An int64 ``1000`` is not the float64 ``1000.0``, so it does not match
    ``_creationTime``.
    """
    return type(value) is type(expected) and value == expected


_READ_ONLY = (
    "Writes are not allowed in a query (ctx.db is read-only there): use a mutation."
)


def _decode_body(txn: Transaction, body: str, table: str) -> Document:
    txn.count_read(len(body))
    doc: Document = loads(body)
    txn.trust(doc, len(body), txn.check_for(table))
    txn.observer.document_read(doc)
    return doc


class _Port:
    """What a query reads through: its transaction's rows, limits and observer.

    Internal: ``ctx.db`` hands it to the queries it builds and keeps it private.
    """

    __slots__ = ("_txn",)

    def __init__(self, txn: Transaction) -> None:
        self._txn = txn

    def layout(self, table: str) -> TableInfo | None:
        """The table ``table`` (None when it does not exist yet)."""
        return self._txn.storage.layouts.get(table)

    @property
    def scanner(self) -> Scanner:
        """The engine the transaction reads from (its scans)."""
        return self._txn.storage

    def read_row(self, body: str, table: str) -> Document:
        """Decode a scanned row of ``table``, counting it against the read limits."""
        return _decode_body(self._txn, body, table)

    def read_all(
        self,
        scan: IndexScan,
        keys: list[bytes] | None = None,
        resumable: bool = False,
    ) -> tuple[list[Document], int, bool]:
        """Decode every row of a scan whose rows are all results.

        One loop for the common query (an index range, no filter): what
        ``read_row`` does per row, without a generator and three calls per row
        between the cursor and the list. Rows are ``(_body,)``, or ``(_body,
        key)`` with ``keys`` (a page: each key is appended there). Returns the
        documents, the bytes they read, and whether a read limit stopped the
        scan. A read limit raises its ``LimitExceeded``, except in a page that
        has a position to continue from (a row it read, or ``resumable``: it
        started after a cursor), which ends there instead (Convex's
        ``SplitRequired``, as :class:`~one_store.engine.query.PageScan`).
        """
        txn = self._txn
        remember = txn.check_for(scan.table)
        trusted = txn.trusted
        docs: list[Document] = []
        append = docs.append
        n = txn.docs_read
        b = start_b = txn.bytes_read
        stopped = False
        cursor = txn.storage.index_rows(scan)
        try:
            for row in cursor:
                body = row[0]
                size = len(body)
                if n >= MAX_DOCS_READ or b + size > MAX_BYTES_READ:
                    if keys is not None and (docs or resumable):
                        # The row is counted, as when the general path's
                        # count_read raises and the page ends there.
                        n, b, stopped = n + 1, b + size, True
                        break
                    txn.docs_read, txn.bytes_read = n, b
                    try:
                        txn.count_read(size)  # raises the limit's Problem
                    finally:  # and keeps counting the row, as a single read does
                        n, b = txn.docs_read, txn.bytes_read
                n += 1
                b += size
                doc: Document = loads(body)
                try:
                    trusted[id(doc)] = remember(doc, size)  # txn.trust
                except (KeyError, TypeError):  # it does not match its validator
                    trusted[id(doc)] = GENERIC(doc, size)
                append(doc)
                if keys is not None:
                    keys.append(row[1])
        finally:
            cursor.close()
            txn.docs_read, txn.bytes_read = n, b
        observer = txn.observer
        for doc in docs:
            observer.document_read(doc)
        return docs, b - start_b, stopped

    def skip_row(self, size: int) -> None:
        """Count a scanned row a filter dropped in SQL (never decoded) as read."""
        self._txn.count_read(size)

    @property
    def observer(self) -> CallObserver:
        """The transaction's observer."""
        return self._txn.observer


class DatabaseReader:
    """``ctx.db`` in queries: ``get``, ``query``, ``normalize_id``, ``system``."""

    __slots__ = ("_port", "_system", "_txn")

    def __init__(self, txn: Transaction, system: bool = False) -> None:
        self._txn = txn
        self._system = system
        self._port = _Port(txn)

    # ----- public
    def _check_table_access(self, table: str) -> None:
        if table.startswith("_") and not self._system:
            raise ContextError(
                "System tables can only be accessed from db.system.query() / db.system.get()."
            )
        if self._system and not table.startswith("_"):
            raise ContextError(
                f"db.system can only read system tables (_scheduled_functions, _storage), not {table!r}."
            )

    def query(self, table: str) -> Query:
        """Start a query over ``table`` (by ``_creationTime`` until ``with_index``)."""
        if not isinstance(table, str):
            raise ContextError(f"db.query() takes a table name, got {table!r}")
        self._check_table_access(table)
        return Query(self._port, table)

    def _locate(self, doc_id: object, method: str) -> tuple[TableInfo | None, str]:
        if not isinstance(doc_id, str):
            raise ProblemError(
                InvalidId(
                    repr(doc_id),
                    f"Invalid argument `id` for `db.{method}`: expected a string ID, got {doc_id!r}",
                )
            )
        number = table_number_of(doc_id)
        if number is None:
            error = id_error(doc_id) or "Unable to decode ID"
            raise ProblemError(
                InvalidId(doc_id, f"Invalid argument `id` for `db.{method}`: {error}")
            )
        table = self._txn.storage.table_of(number)
        if table is not None and table.startswith("_") != self._system:
            # The ID is data (often a function argument), so reaching the wrong kind
            # of table through it is a Failure, as Convex's SystemTableError is an
            # error the function sees, not library misuse.
            raise ProblemError(
                InvalidId(
                    doc_id,
                    "System tables can only be accessed with db.system."
                    if not self._system
                    else "User tables cannot be accessed with db.system.",
                )
            )
        return (None if table is None else self._txn.storage.layouts[table]), doc_id

    def get(self, doc_id: str) -> Document | None:
        """The document with this ID, or None (deleted, or an unknown table)."""
        layout, doc_id = self._locate(doc_id, "get")
        if layout is None:
            return None
        txn = self._txn
        body = txn.storage.get_text(layout, doc_id)
        if body is None:
            # Read sets: a watch that found nothing re-runs when the ID appears
            # (an import restoring it): the point interval of its by_id key.
            key = sort_key(doc_id)
            txn.observer.scanned(layout.name, "by_id", key, key + b"\x00")
            return None
        return _decode_body(txn, body, layout.name)

    def normalize_id(self, table: str, doc_id: str) -> str | None:
        """``doc_id`` if it is a valid ID of ``table``, else None."""
        number = table_number_of(doc_id)
        layout = self._txn.storage.layouts.get(table)
        if number is None or layout is None or layout.number != number:
            return None
        return doc_id

    @property
    def system(self) -> DatabaseReader:
        """Read-only access to system tables (``_scheduled_functions``, ``_storage``)."""
        return DatabaseReader(self._txn, system=True)

    # A write through a reader is library misuse (a query cannot write): raise
    # ContextError at once, rather than an AttributeError that would come out as
    # a HandlerError Failure.
    def insert(self, table: str, document: Mapping[str, Any]) -> str:
        """Refuse: queries cannot write."""
        raise ContextError(_READ_ONLY)

    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        """Refuse: queries cannot write."""
        raise ContextError(_READ_ONLY)

    def replace(self, doc_id: str, document: Mapping[str, Any]) -> None:
        """Refuse: queries cannot write."""
        raise ContextError(_READ_ONLY)

    def delete(self, doc_id: str) -> None:
        """Refuse: queries cannot write."""
        raise ContextError(_READ_ONLY)


class DatabaseWriter(DatabaseReader):
    """``ctx.db`` in mutations: the reader plus ``insert``, ``patch``, ``replace``, ``delete``."""

    def _table_for_write(self, table: str) -> TableInfo:
        if not isinstance(table, str):
            raise ContextError(f"db.insert() takes a table name, got {table!r}")
        if table.startswith("_"):
            raise ContextError("System tables (prefixed with `_`) are read-only.")
        layout = self._txn.storage.layouts.get(table)
        if layout is None:  # Convex creates a table on first insert
            error = identifier_error(table, "Table name")
            if error is not None:
                raise ContextError(error)
            schema = self._txn.schema
            definition = schema.tables.get(table) if schema else None
            layout = self._txn.storage.ensure_table(table, definition)
        return layout

    def _checked(
        self, table: str, body: object, system: Mapping[str, Value]
    ) -> tuple[Document, str]:
        """Validate a document body for ``table``; return the full stored document."""
        if not isinstance(body, dict):
            raise ProblemError(
                DocumentInvalid(
                    table, "", f"Value must be an Object, got {type(body).__name__}"
                )
            )
        fields: dict[str, Any] = {}
        for key, value in body.items():
            if isinstance(key, str) and key.startswith("_"):
                if key in SYSTEM_FIELDS:
                    if value is UNSET or _same(value, system.get(key)):
                        continue
                    raise ProblemError(
                        DocumentInvalid(
                            table,
                            f".{key}",
                            f"Provided {key} {value!r} doesn't match the document's {key} "
                            f"{system.get(key)!r}: system fields cannot be written.",
                        )
                    )
                raise ProblemError(
                    DocumentInvalid(
                        table,
                        f".{key}",
                        f"Field '{key}' starts with an underscore, which is only allowed for system fields like '_id'",
                    )
                )
            fields[key] = value
        schema = self._txn.schema
        definition = schema.tables.get(table) if schema else None
        validated = False
        try:
            if (
                definition is not None
                and schema is not None
                and schema.schema_validation
            ):
                validated = True
                checked = definition.document.check(fields, self._txn.resolve)
            else:
                checked = check_value(fields)
        except InvalidValue as e:
            raise ProblemError(
                DocumentInvalid(table, e.path_text(), error_text(e))
            ) from None
        limit = definition.document.max_nesting if definition is not None else None
        depth = (
            limit
            if limit is not None and limit <= MAX_DOCUMENT_NESTING
            else nesting(checked)
        )
        if depth > MAX_DOCUMENT_NESTING:
            raise ProblemError(
                DocumentInvalid(
                    table,
                    "",
                    f"Document is too nested (nested {depth} levels deep > maximum nesting {MAX_DOCUMENT_NESTING})",
                )
            )
        doc = {**system, **checked}
        # A validator without bytes (or v.any()) lets the faster encoder write it.
        plain = (
            validated and definition is not None and definition.document.holds_no_bytes
        )
        text = dumps_plain(doc) if plain else dumps(doc)
        # Convex's size is at most 9 bytes per JSON character (a 1-char int is 9),
        # so small documents skip the exact walk; the text length stands in for it.
        size = len(text)
        if 9 * size > MAX_DOCUMENT_SIZE:
            size = convex_size(checked) + _SYSTEM_FIELDS_SIZE
        if size > MAX_DOCUMENT_SIZE:
            raise ProblemError(
                DocumentInvalid(
                    table, "", f"Value is too large ({size} > maximum size 1 MiB)"
                )
            )
        self._txn.count_write(size)
        return doc, text

    def insert(self, table: str, document: Mapping[str, Any]) -> str:
        """Insert a document; return its new ID."""
        self._require_writable()
        layout = self._table_for_write(table)
        if isinstance(document, dict):
            for key in SYSTEM_FIELDS:
                if key in document:
                    raise ProblemError(
                        DocumentInvalid(
                            table,
                            f".{key}",
                            f"Field '{key}' is a system field and cannot be set on insert",
                        )
                    )
        created = self._txn.creation_time()
        doc_id = self._txn.ids.new(layout.number, self._txn.now_ms)
        doc, text = self._checked(
            table, document, {"_id": doc_id, "_creationTime": created}
        )
        self._txn.storage.insert(layout, doc, text)
        self._txn.observer.document_written("insert", table, doc_id)
        return doc_id

    def _existing(
        self, doc_id: str, method: str, operation: str
    ) -> tuple[TableInfo, Document]:
        self._require_writable()
        layout, doc_id = self._locate(doc_id, method)
        if layout is None or layout.name.startswith("_"):
            if layout is None:
                raise ProblemError(DocumentNotFound(doc_id, operation))
            raise ContextError("System tables (prefixed with `_`) are read-only.")
        current = self.get(doc_id)
        if current is None:
            raise ProblemError(DocumentNotFound(doc_id, operation))
        return layout, current

    def patch(self, doc_id: str, fields: Mapping[str, Any]) -> None:
        """Shallow-merge ``fields`` into a document; ``UNSET`` removes a field."""
        layout, current = self._existing(doc_id, "patch", "Update")
        if not isinstance(fields, Mapping):
            raise ProblemError(
                DocumentInvalid(
                    layout.name,
                    "",
                    f"patch() takes an object of fields, got {type(fields).__name__}",
                )
            )
        merged = {k: v for k, v in current.items() if k not in SYSTEM_FIELDS}
        for key, value in fields.items():
            if value is UNSET:
                merged.pop(key, None)
            elif key not in SYSTEM_FIELDS:
                merged[key] = value
            elif not _same(value, current[key]):
                merged[key] = value  # let _checked report the mismatch
        system = {"_id": current["_id"], "_creationTime": current["_creationTime"]}
        doc, text = self._checked(layout.name, merged, system)
        self._txn.storage.update(layout, doc, text, current)
        self._txn.observer.document_written("patch", layout.name, doc_id)

    def replace(self, doc_id: str, document: Mapping[str, Any]) -> None:
        """Replace a document's fields entirely (system fields are kept)."""
        layout, current = self._existing(doc_id, "replace", "Replace")
        system = {"_id": current["_id"], "_creationTime": current["_creationTime"]}
        doc, text = self._checked(layout.name, document, system)
        self._txn.storage.update(layout, doc, text, current)
        self._txn.observer.document_written("replace", layout.name, doc_id)

    def delete(self, doc_id: str) -> None:
        """Delete a document."""
        txn = self._txn
        if txn.observer is not NO_OBSERVER:  # it sees the read of the document too
            layout, current = self._existing(doc_id, "delete", "Delete")
            doc_id = str(current["_id"])
        else:
            # No read of the document: the DELETE itself says whether it existed.
            self._require_writable()
            found, doc_id = self._locate(doc_id, "delete")
            if found is None:
                raise ProblemError(DocumentNotFound(doc_id, "Delete"))
            if found.name.startswith("_"):
                raise ContextError("System tables (prefixed with `_`) are read-only.")
            layout = found
        txn.count_write(0)
        if not txn.storage.delete(layout, doc_id):
            txn.writes -= 1  # nothing was written
            raise ProblemError(DocumentNotFound(doc_id, "Delete"))
        txn.observer.document_written("delete", layout.name, doc_id)

    def _require_writable(self) -> None:
        if not self._txn.writable:
            raise ContextError("Writes are not allowed in a query: use a mutation.")
