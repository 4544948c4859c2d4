"""The ``ctx`` handed to handlers: QueryCtx, MutationCtx, ActionCtx and their ``db``.

- :class:`QueryCtx`: ``db`` (a :class:`DatabaseReader`), ``auth``, ``now()``, ``random``,
  ``run_query``.
- :class:`MutationCtx`: ``db`` (a :class:`DatabaseWriter`), ``scheduler``, ``auth``,
  ``now()``, ``random``, ``run_query``, ``run_mutation`` (a sub-transaction).
- :class:`ActionCtx`: ``run_query`` / ``run_mutation`` / ``run_action`` (each its own
  transaction, each returning a ``Result``), ``scheduler``, ``auth``, ``http``; no ``db``.

Every read and write goes through a :class:`Transaction`, which enforces Convex's
per-transaction limits and hands out ``_creationTime`` values.
"""

from __future__ import annotations

import datetime as dt
import operator
import random as random_module
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from returns.result import Result

from ..engine.query import Query
from ..engine.sqlite.storage import Storage, TableLayout
from ..model.errors import (
    ContextError,
    DocumentInvalid,
    DocumentNotFound,
    InvalidId,
    LimitExceeded,
    Problem,
    ProblemError,
    as_user_result,
)
from ..model.ids import IdGenerator, id_error, table_number_of
from ..model.schema import Schema
from ..model.validators import error_text
from ..model.values import (
    MAX_ARRAY_LEN,
    MAX_DOCUMENT_NESTING,
    MAX_DOCUMENT_SIZE,
    MAX_OBJECT_FIELDS,
    MAX_VALUE_NESTING,
    UNSET,
    Document,
    InvalidValue,
    Value,
    check_value,
    convex_size,
    dumps,
    field_name_error,
    loads,
    nesting,
)

if TYPE_CHECKING:
    import httpx

MAX_WRITES = 16_000
MAX_DOCS_READ = 32_000
MAX_BYTES_READ = 16 * 1024 * 1024
MAX_BYTES_WRITTEN = 16 * 1024 * 1024
SYSTEM_FIELDS = ("_id", "_creationTime")
# _id (32-char ID) and _creationTime (float) in Convex's size formula.
_SYSTEM_FIELDS_SIZE = (3 + 1 + 34) + (13 + 1 + 9)


class Transaction:
    """One function execution's view of storage: limits, creation times, ID making."""

    # Counters start at these class defaults (set on the instance when they
    # move): a transaction is made per call, and most calls move few of them.
    writes = 0
    bytes_written = 0
    docs_read = 0
    bytes_read = 0
    inserted = False
    _next_creation_time: float | None = None
    # A call trace recorder (one_store.testing.trace); None outside tests.
    tracer: Any = None

    def __init__(
        self,
        storage: Storage,
        schema: Schema | None,
        now_ms: float,
        ids: IdGenerator,
        writable: bool,
    ) -> None:
        self.storage = storage
        self.schema = schema
        self.now_ms = now_ms
        self.ids = ids
        self.writable = writable
        self.on_commit: list[Callable[[], None]] = []
        # Documents this transaction read from storage, by identity, with the
        # length of their stored JSON and their top-level values as read: while
        # those are unchanged they are valid Convex values already, so returning
        # them needs no second check, and their Convex size is at most 9 bytes per
        # JSON character (see ``check_result``). A handler that sets a field of a
        # read document (``msg["author"] = ...``) gets the walk again.
        self.trusted: dict[int, tuple[Document, int, tuple[object, ...]]] = {}

    # ---------------------------------------------------------------- limits

    def count_read(self, size: int) -> None:
        """Count one scanned document of ``size`` bytes against the read limits."""
        self.docs_read += 1
        self.bytes_read += size
        if self.docs_read > MAX_DOCS_READ:
            raise ProblemError(
                LimitExceeded(
                    "documentsRead",
                    MAX_DOCS_READ,
                    f"Too many documents read in a single function execution (limit: {MAX_DOCS_READ}).",
                )
            )
        if self.bytes_read > MAX_BYTES_READ:
            raise ProblemError(
                LimitExceeded(
                    "bytesRead",
                    MAX_BYTES_READ,
                    f"Too many bytes read in a single function execution (limit: {MAX_BYTES_READ} bytes).",
                )
            )

    def count_write(self, size: int) -> None:
        """Count one document write of ``size`` bytes against the write limits."""
        self.writes += 1
        self.bytes_written += size
        if self.writes > MAX_WRITES:
            raise ProblemError(
                LimitExceeded(
                    "writes",
                    MAX_WRITES,
                    f"Too many writes in a single function execution (limit: {MAX_WRITES})",
                )
            )
        if self.bytes_written > MAX_BYTES_WRITTEN:
            raise ProblemError(
                LimitExceeded(
                    "bytesWritten",
                    MAX_BYTES_WRITTEN,
                    "Too many bytes written in a single function execution (limit: 16 MiB)",
                )
            )

    # ---------------------------------------------------------------- helpers

    def creation_time(self) -> float:
        """The next ``_creationTime``: strictly increasing within and across transactions."""
        import math

        if self._next_creation_time is None:
            self._next_creation_time = self.storage.next_creation_time(self.now_ms)
        value = self._next_creation_time
        self._next_creation_time = math.nextafter(value, math.inf)
        self.inserted = True
        self.last_creation_time = value
        return value

    def check_result(self, value: object) -> tuple[Value, int]:
        """A handler's return value, checked, and a bound of its Convex size.

        The same walk as ``check_value`` (same limits, same error paths), except
        that a document this transaction read is returned as it is at any depth:
        a ``paginate`` result or ``{"thread": doc, "messages": [...]}`` costs a
        look at its shell, not a re-walk of every document (the walk was ~70% of
        a page of 100 documents).

        The size is exact for everything but read documents, which count as 9
        bytes per character of their stored JSON: that bounds their Convex size
        (every JSON token is at least 1/9 of its size: an int64 or float64 is 9
        bytes and at least 1 character, a string's UTF-8 at most 4 bytes per
        character plus the quotes). Within a limit the value is too, so a page
        of documents is not walked a second time just to be sized; above one,
        callers measure exactly before failing. Both come from one walk.
        """
        if not self.trusted:
            checked = check_value(value)
            return checked, convex_size(checked)
        size = [0]
        return self._check(value, 0, size), size[0]

    def _check(self, value: Any, depth: int, size: list[int]) -> Value:
        t = type(value)
        if depth < MAX_VALUE_NESTING:
            if t is dict:
                stored = self._as_read(value)
                if stored is not None:
                    size[0] += 9 * stored
                    return cast("Document", value)
                if len(value) <= MAX_OBJECT_FIELDS:
                    size[0] += 2
                    out: dict[str, Value] = {}
                    for key, item in value.items():
                        error = field_name_error(key)
                        if error is not None:
                            raise InvalidValue(error)
                        if item is UNSET:
                            continue
                        size[0] += len(key) + 1
                        try:
                            out[key] = self._check(item, depth + 1, size)
                        except InvalidValue as e:
                            raise e.at(key) from None
                    return out
            elif t is list and len(value) <= MAX_ARRAY_LEN:
                # A list of read documents (a query's result) is the common
                # return: each item's "as read" test is inlined here.
                n = 2
                trusted = self.trusted
                items: list[Value] = []
                for i, item in enumerate(value):
                    if type(item) is dict:
                        entry = trusted.get(id(item))
                        if (
                            entry is not None
                            and entry[0] is item
                            and len(item) == len(entry[2])
                            and all(map(operator.is_, item.values(), entry[2]))
                        ):
                            n += 9 * entry[1]
                            items.append(item)
                            continue
                    try:
                        items.append(self._check(item, depth + 1, size))
                    except InvalidValue as e:
                        raise e.at(i) from None
                size[0] += n
                return items
        # A leaf, or a container over a limit (check_value raises the usual error).
        checked = check_value(value, depth)
        size[0] += convex_size(checked)
        return checked

    def _as_read(self, value: dict[str, Any]) -> int | None:
        """The stored JSON length of ``value`` if it is a read document as read, else None.

        "As read": the same keys with the same value objects. Edits inside a
        nested object or array of a read document are not seen.
        """
        entry = self.trusted.get(id(value))
        if entry is None or entry[0] is not value:
            return None
        values = entry[2]
        if len(value) != len(values) or not all(
            map(operator.is_, value.values(), values)
        ):
            return None
        return entry[1]

    def resolve(self, number: int) -> str | None:
        """Table number -> user table name (for ``v.id`` checks)."""
        name = self.storage.table_of(number)
        return name if name is not None and not name.startswith("_") else None


def _same(value: object, expected: object) -> bool:
    """Whether a repeated system field equals the document's, by Convex value equality.

    An int64 ``1000`` is not the float64 ``1000.0``, so it does not match
    ``_creationTime``.
    """
    return type(value) is type(expected) and value == expected


_READ_ONLY = (
    "Writes are not allowed in a query (ctx.db is read-only there): use a mutation."
)


def _decode_body(txn: Transaction, body: str) -> Document:
    txn.count_read(len(body))
    doc: Document = loads(body)
    txn.trusted[id(doc)] = (doc, len(body), tuple(doc.values()))
    if txn.tracer is not None:
        txn.tracer.read(doc)
    return doc


class DatabaseReader:
    """``ctx.db`` in queries: ``get``, ``query``, ``normalize_id``, ``system``."""

    def __init__(self, txn: Transaction, system: bool = False) -> None:
        self._txn = txn
        self._system = system

    # ----- used by Query
    def layout(self, table: str) -> TableLayout | None:
        """The storage layout of ``table`` (None when it does not exist yet)."""
        return self._txn.storage.layouts.get(table)

    def execute(self, sql: str, params: list[Any]) -> Any:
        """Run a query's SQL."""
        return self._txn.storage.execute(sql, params)

    def read_row(self, body: str) -> Document:
        """Decode a scanned row, counting it against the read limits."""
        return _decode_body(self._txn, body)

    def read_all(
        self,
        sql: str,
        params: list[Any],
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
        trusted = txn.trusted
        docs: list[Document] = []
        append = docs.append
        n = txn.docs_read
        b = start_b = txn.bytes_read
        stopped = False
        cursor = txn.storage.execute(sql, params)
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
                trusted[id(doc)] = (doc, size, tuple(doc.values()))
                append(doc)
                if keys is not None:
                    keys.append(row[1])
        finally:
            cursor.close()
            txn.docs_read, txn.bytes_read = n, b
        return docs, b - start_b, stopped

    def skip_row(self, size: int) -> None:
        """Count a scanned row a filter dropped in SQL (never decoded) as read."""
        self._txn.count_read(size)

    @property
    def traced(self) -> bool:
        """Whether a trace records every document read (so none may be skipped)."""
        return self._txn.tracer is not None

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
        if self._txn.tracer is not None:
            return self._txn.tracer.query(self, table)  # type: ignore[no-any-return]
        return Query(self, table)

    def _locate(self, doc_id: object, method: str) -> tuple[TableLayout | None, str]:
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
        row = txn.storage.execute(layout.get_sql, (doc_id,)).fetchone()
        return None if row is None else _decode_body(txn, row[0])

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

    def _table_for_write(self, table: str) -> TableLayout:
        if not isinstance(table, str):
            raise ContextError(f"db.insert() takes a table name, got {table!r}")
        if table.startswith("_"):
            raise ContextError("System tables (prefixed with `_`) are read-only.")
        layout = self._txn.storage.layouts.get(table)
        if layout is None:  # Convex creates a table on first insert
            from ..model.values import identifier_error

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
        try:
            if (
                definition is not None
                and schema is not None
                and schema.schema_validation
            ):
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
        text = dumps(doc)
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
        if self._txn.tracer is not None:
            self._txn.tracer.write("insert", table, doc_id)
        return doc_id

    def _existing(
        self, doc_id: str, method: str, operation: str
    ) -> tuple[TableLayout, Document]:
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
        if self._txn.tracer is not None:
            self._txn.tracer.write("patch", layout.name, doc_id)

    def replace(self, doc_id: str, document: Mapping[str, Any]) -> None:
        """Replace a document's fields entirely (system fields are kept)."""
        layout, current = self._existing(doc_id, "replace", "Replace")
        system = {"_id": current["_id"], "_creationTime": current["_creationTime"]}
        doc, text = self._checked(layout.name, document, system)
        self._txn.storage.update(layout, doc, text, current)
        if self._txn.tracer is not None:
            self._txn.tracer.write("replace", layout.name, doc_id)

    def delete(self, doc_id: str) -> None:
        """Delete a document."""
        txn = self._txn
        if txn.tracer is not None:  # a trace records the read of the document too
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
        if txn.tracer is not None:
            txn.tracer.write("delete", layout.name, doc_id)

    def _require_writable(self) -> None:
        if not self._txn.writable:
            raise ContextError("Writes are not allowed in a query: use a mutation.")


class Auth:
    """``ctx.auth``: the caller's identity (set with ``store.with_identity``)."""

    def __init__(self, identity: Mapping[str, Any] | None) -> None:
        self._identity = dict(identity) if identity is not None else None

    def get_user_identity(self) -> dict[str, Any] | None:
        """The identity dict (``subject``, ``issuer``, ``tokenIdentifier``, ...) or None."""
        return None if self._identity is None else dict(self._identity)


Runner = Callable[[str, object, object], Result[Any, Problem]]


class SchedulerApi(Protocol):
    """What ``ctx.scheduler`` offers (``one_store.runtime.scheduler.Scheduler`` implements it).

    Functions are given as a ``FunctionSpec`` or a ``"file:name"`` path.
    """

    def run_after(
        self, delay_ms: float, fn: object, args: dict[str, Any] | None = None
    ) -> str:
        """Run ``fn`` ``delay_ms`` from now; return the job's ``_scheduled_functions`` ID."""
        ...

    def run_at(
        self,
        timestamp_ms: float | dt.datetime,
        fn: object,
        args: dict[str, Any] | None = None,
    ) -> str:
        """Run ``fn`` at ``timestamp_ms`` (ms since the epoch or an aware datetime)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job (a finished one is left alone)."""
        ...


class BaseCtx:
    """What every context has: ``auth``, ``now()``, ``random``, ``run_query``."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
    ) -> None:
        self._runner = runner
        self.auth = auth
        self._now = now_ms
        self._seed = seed
        self._random: random_module.Random | None = None

    @property
    def random(self) -> random_module.Random:
        """A random source seeded per call, so a replay with the same seed is identical."""
        if self._random is None:  # built on first use: most handlers never need it
            self._random = random_module.Random(self._seed)
        return self._random

    def now(self) -> float:
        """Milliseconds since the epoch, frozen when the function started."""
        return self._now

    def run_query(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run a query (function or ``"file:name"`` path); returns a Result."""
        return as_user_result(self._runner("query", fn, args))


class QueryCtx(BaseCtx):
    """The context of a query: a read-only ``db`` at one snapshot."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
        txn: Transaction,
    ) -> None:
        super().__init__(runner, auth, now_ms, seed)
        self.db: DatabaseReader = DatabaseReader(txn)

    @property
    def scheduler(self) -> SchedulerApi:
        """Queries cannot schedule."""
        raise ContextError(
            "ctx.scheduler is not available in a query: use a mutation or an action."
        )


class MutationCtx(BaseCtx):
    """The context of a mutation: ``db`` writer, ``scheduler``, ``run_mutation``."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
        txn: Transaction,
        scheduler: SchedulerApi,
    ) -> None:
        super().__init__(runner, auth, now_ms, seed)
        self.db: DatabaseWriter = DatabaseWriter(txn)
        self.scheduler: SchedulerApi = scheduler

    def run_mutation(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run a mutation inside this one, as a sub-transaction (its writes roll back alone on Failure)."""
        return as_user_result(self._runner("mutation", fn, args))


class ActionCtx(BaseCtx):
    """The context of an action: ``run_query/run_mutation/run_action``, no ``db``."""

    def __init__(
        self,
        runner: Runner,
        auth: Auth,
        now_ms: float,
        seed: int,
        scheduler: SchedulerApi,
        http: httpx.Client | None,
    ) -> None:
        super().__init__(runner, auth, now_ms, seed)
        self.scheduler: SchedulerApi = scheduler
        self._http = http

    @property
    def db(self) -> Any:
        """Actions have no ``db``: read and write through ``run_query``/``run_mutation``."""
        raise ContextError(
            "ctx.db is not available in an action: use ctx.run_query / ctx.run_mutation."
        )

    @property
    def http(self) -> httpx.Client:
        """The outbound HTTP client (inject one with ``Store.open(..., http=...)``)."""
        if self._http is None:
            import httpx

            self._http = httpx.Client(timeout=30.0)
        return self._http

    def run_mutation(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run a mutation in its own transaction; earlier ones stay committed."""
        return as_user_result(self._runner("mutation", fn, args))

    def run_action(self, fn: object, args: object = None) -> Result[Any, Problem]:
        """Run another action."""
        return as_user_result(self._runner("action", fn, args))
