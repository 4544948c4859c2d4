"""Convex snapshot ZIPs: ``export_snapshot`` and ``import_snapshot``.

The layout is what ``npx convex export`` downloads (docs.convex.dev/database/import-export)::

    README.md
    _tables/documents.jsonl            {"name": "messages", "id": 10001} per user table
    <table>/documents.jsonl            one document per line, in export_json form
    <table>/generated_schema.jsonl     the single line "uniform"

``export_json`` writes int64 as a bare JSON integer and float64 always with a dot or
an exponent (``5.0``), NaN/±inf as ``{"$float": b64}`` and bytes as ``{"$bytes":
b64}``, keys sorted, ``_id`` and ``_creationTime`` inline; that is the only thing that
keeps ``5`` and ``5.0`` apart, so the round trip is exact. IDs keep their table
numbers: ``_tables`` records them and an import gives each table the number its IDs
carry.

An import checks every document (ID format and table, duplicates, schema, field
names, size) while it writes, inside one write transaction: the first bad line
aborts it with its table and line number, and nothing of the import remains.
Modes as ``npx convex import``: ``require_empty`` (the default) refuses tables that
already hold documents, ``replace`` empties the imported tables first, ``append``
adds. ``_storage`` (stored files, exported with ``include_file_storage=True``) is
imported with its bodies (:mod:`one_store.runtime.file_snapshot`); ``_components/``
entries are not.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable, Iterator
from typing import IO, Any, Final, Literal, Protocol, TypeAlias, cast

from attrs import frozen
from returns.result import Result, Success

from .model.errors import ProblemFailure, StorageFailure
from .model.ids import FIRST_USER_TABLE_NUMBER, decode_id, encode_id
from .model.validators import error_text
from .model.values import (
    MAX_DOCUMENT_SIZE,
    Document,
    InvalidValue,
    Value,
    b64,
    check_value,
    convex_size,
    unb64,
)
from .runtime.file_snapshot import FileSnapshotError, Staging, export_files, zip_entry
from .runtime.outcome import storage_problem
from .store import Store

Mode: TypeAlias = Literal["require_empty", "replace", "append"]
UNIFORM: Final = '"uniform"'
README: Final = """# Welcome to your Convex snapshot export!

This ZIP file contains a snapshot of the tables in your Convex deployment,
written by one_store in the layout of `npx convex export`.

Documents for each table are listed as lines of JSON in
<table_name>/documents.jsonl files.

For details on the format and how to use this snapshot with npx convex import,
check out [the docs](https://docs.convex.dev/database/import-export/import) or
ask us in [Discord](http://convex.dev/community).
"""
_ENTRY: Final = re.compile(r"^(?:.*/)?([^/]+)/(documents|generated_schema)\.jsonl$")


class Progress(Protocol):
    """Receives progress: one ``start`` per table, then ``advance`` calls."""

    def start(self, description: str, total: int) -> None:
        """A new phase of ``total`` units begins."""

    def advance(self, amount: int) -> None:
        """``amount`` more units are done."""


@frozen
class SnapshotInvalid:
    """An import refused: what is wrong, and where (table and 1-based line)."""

    message: str
    table: str | None = None
    line: int | None = None
    code = "SnapshotInvalid"

    def __str__(self) -> str:
        where = ""
        if self.table is not None:
            where = f"{self.table}/documents.jsonl"
            where += f" line {self.line}: " if self.line is not None else ": "
        return where + self.message


@frozen
class SnapshotSummary:
    """What an export wrote or an import read: documents per table."""

    tables: dict[str, int]

    @property
    def documents(self) -> int:
        """The total number of documents."""
        return sum(self.tables.values())


# --------------------------------------------------------------------------- export_json


def to_export_json(value: Value) -> Any:
    """Encode a value in Convex's ``export_json`` form (int64 bare, bytes tagged)."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value  # json writes 5.0 as "5.0", never "5"
        return {"$float": b64(struct.pack("<d", value))}
    if isinstance(value, bytes):
        return {"$bytes": b64(value)}
    if isinstance(value, list):
        return [to_export_json(v) for v in value]
    return {k: to_export_json(v) for k, v in value.items()}


def from_export_json(obj: Any, *, uniform: bool = True) -> Value:
    """Decode ``export_json`` (``uniform``) or plain JSON (every number a float64).

    Raises:
        ValueError: a malformed ``$`` tag, a ``$`` key, or an integer outside int64.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int):
        if not uniform:
            return float(obj)
        if not -(2**63) <= obj < 2**63:
            raise ValueError(f"integer {obj} is outside the int64 range")
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, list):
        return [from_export_json(v, uniform=uniform) for v in obj]
    if not isinstance(obj, dict):
        raise ValueError(f"not a JSON value: {type(obj).__name__}")
    if uniform and len(obj) == 1:
        ((key, inner),) = obj.items()
        if key == "$bytes":
            return unb64(inner, None, "$bytes")
        if key == "$integer":
            return int(struct.unpack("<q", unb64(inner, 8, "$integer"))[0])
        if key == "$float":
            return float(struct.unpack("<d", unb64(inner, 8, "$float"))[0])
    out: dict[str, Value] = {}
    for key, inner in obj.items():
        if key.startswith("$"):
            raise ValueError(f"Field name {key} starts with '$', which is reserved.")
        out[key] = from_export_json(inner, uniform=uniform)
    return out


def export_line(document: Document) -> str:
    """One ``documents.jsonl`` line (keys sorted, no spaces, newline-terminated)."""
    encoded = to_export_json(document)
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), allow_nan=False)


# --------------------------------------------------------------------------- export


def export_snapshot(
    store: Store,
    target: str | os.PathLike[str] | IO[bytes],
    *,
    progress: Progress | None = None,
    include_file_storage: bool = False,
) -> SnapshotSummary:
    """Write every user table of ``store`` to a Convex snapshot ZIP.

    Reads one consistent snapshot of the file. ``include_file_storage``: also
    ``_storage`` and every stored file's bytes (``--include-file-storage``).

    Example:
        >>> from one_store import Store, define_schema, define_table, v
        >>> import io
        >>> s = Store.memory(define_schema({"t": define_table({"n": v.int64()})}))
        >>> _ = s.run(lambda ctx: ctx.db.insert("t", {"n": 5}))
        >>> export_snapshot(s, io.BytesIO()).tables
        {'t': 1}
    """
    storage = store.storage
    counts: dict[str, int] = {}
    with (
        storage.read(),
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive,
    ):
        tables = storage.tables()
        sizes = {t: storage.count(t) for t in tables}
        _write(archive, "README.md", README)
        numbered = sorted((storage.table_number(t), t) for t in tables)
        lines = [json.dumps({"name": t, "id": n}) for n, t in numbered]
        _write(archive, "_tables/documents.jsonl", "".join(f"{x}\n" for x in lines))
        for table in sorted(tables, key=lambda t: (sizes[t], t)):
            if progress is not None:
                progress.start(f"export {table}", sizes[table])
            counts[table] = _export_table(archive, store, table, progress)
        if include_file_storage:
            counts["_storage"] = export_files(archive, storage)
    return SnapshotSummary(counts)


def _write(archive: zipfile.ZipFile, name: str, text: str) -> None:
    archive.writestr(zip_entry(name), text.encode("utf-8"))


def _export_table(
    archive: zipfile.ZipFile, store: Store, table: str, progress: Progress | None
) -> int:
    info = zip_entry(f"{table}/documents.jsonl")
    count = 0
    with archive.open(info, "w") as out:
        for document in store.storage.scan(table):
            out.write(export_line(document).encode("utf-8") + b"\n")
            count += 1
            if progress is not None:
                progress.advance(1)
    _write(archive, f"{table}/generated_schema.jsonl", UNIFORM + "\n")
    return count


# --------------------------------------------------------------------------- import


class _Abort(Exception):  # noqa: N818 - internal: roll the import back with a reason
    def __init__(self, problem: SnapshotInvalid) -> None:
        self.problem = problem


@frozen
class _TableEntry:
    name: str
    documents: zipfile.ZipInfo
    uniform: bool


def _entries(archive: zipfile.ZipFile) -> tuple[dict[str, _TableEntry], dict[str, int]]:
    """The tables of a ZIP (user tables only) and the numbers ``_tables`` gives them."""
    documents: dict[str, zipfile.ZipInfo] = {}
    schemas: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if "_components/" in info.filename:
            continue  # components are not supported: their tables are left out
        match = _ENTRY.match(info.filename)
        if match is None:
            continue
        table, kind = match.groups()
        (documents if kind == "documents" else schemas)[table] = info
    numbers: dict[str, int] = {}
    if "_tables" in documents:
        for number, line in enumerate(_lines(archive, documents["_tables"]), 1):
            numbers.update(_table_line(line, number))
    tables: dict[str, _TableEntry] = {}
    for table, info in documents.items():
        if table.startswith("_"):
            continue  # system tables (_tables, _storage, ...) are not user data
        uniform = False
        if table in schemas:
            first = archive.read(schemas[table]).decode("utf-8", "replace").strip()
            if first.splitlines()[:1] != [UNIFORM]:
                raise _Abort(
                    SnapshotInvalid(
                        'only the "uniform" generated_schema.jsonl of current Convex exports is supported',
                        table,
                    )
                )
            uniform = True
        tables[table] = _TableEntry(table, info, uniform)
    return tables, numbers


def _table_line(line: bytes, number: int) -> dict[str, int]:
    try:
        data = json.loads(line)
        name, table_number = data["name"], data["id"]
        if not isinstance(name, str) or type(table_number) is not int:
            raise TypeError
    except (ValueError, TypeError, KeyError):
        raise _Abort(
            SnapshotInvalid(
                'expected {"name": <table>, "id": <number>}', "_tables", number
            )
        ) from None
    return {name: table_number}


def _lines(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    with archive.open(info) as handle:
        for raw in handle:
            yield raw.rstrip(b"\r\n")


def _first_id(archive: zipfile.ZipFile, entry: _TableEntry) -> object:
    for line in _lines(archive, entry.documents):
        try:
            data = json.loads(line)
        except ValueError:
            return None
        return data.get("_id") if isinstance(data, dict) else None
    return None


class _Importer:
    """One import: resolves table numbers, then checks and writes every line."""

    def __init__(
        self,
        store: Store,
        archive: zipfile.ZipFile,
        mode: Mode,
        progress: Progress | None,
    ) -> None:
        self.store = store
        self.storage = store.storage
        self.archive = archive
        self.mode = mode
        self.progress = progress
        self.tables, self.numbers = _entries(archive)
        self.created_at = max(float(store.clock()), self.storage.last_creation_time)

    def plan_numbers(self) -> dict[str, int]:
        """Each imported table's number: ``_tables``, else its first ID, else existing."""
        plan: dict[str, int] = {}
        for name, entry in self.tables.items():
            number = self.numbers.get(name)
            if number is None:
                decoded = decode_id(str(_first_id(self.archive, entry) or ""))
                number = decoded[0] if decoded else None
            if number is None:
                number = self._existing_number(name)
            plan[name] = number if number is not None else 0
        used = [layout.number for layout in self.storage.layouts.values()]
        free = max([FIRST_USER_TABLE_NUMBER - 1, *used, *plan.values()])
        for name in sorted(plan):
            if plan[name] == 0:
                free += 1
                plan[name] = free
        claimed: dict[int, str] = {}
        for name, number in plan.items():
            if number in claimed:
                raise _Abort(
                    SnapshotInvalid(
                        f"table number {number} is claimed by both {claimed[number]!r} and {name!r}",
                        name,
                    )
                )
            claimed[number] = name
        return plan

    def _existing_number(self, name: str) -> int | None:
        layout = self.storage.layouts.get(name)
        return None if layout is None else layout.number

    def prepare_tables(self, plan: dict[str, int]) -> None:
        """Apply the mode, then give every imported table its planned number."""
        for name in sorted(plan):
            count = self.storage.count(name)
            if count and self.mode == "require_empty":
                raise _Abort(
                    SnapshotInvalid(
                        f"table {name!r} already holds {count} document(s); "
                        'use --replace or --append (mode="replace" or "append")',
                        name,
                    )
                )
            if self.mode == "replace":
                self.storage.clear(name)
        moves = {
            n: number
            for n, number in plan.items()
            if n in self.storage.layouts and self.storage.layouts[n].number != number
        }
        for name, number in plan.items():
            owner = self.storage.table_of(number)
            if owner is not None and owner != name and owner not in moves:
                raise _Abort(
                    SnapshotInvalid(
                        f"the snapshot's table number {number} belongs to table {owner!r} here",
                        name,
                    )
                )
        for name in moves:
            if self.storage.count(name):
                raise _Abort(
                    SnapshotInvalid(
                        f"table {name!r} has number {self.storage.layouts[name].number} here but "
                        f"{plan[name]} in the snapshot; its IDs would not match (use --replace)",
                        name,
                    )
                )
        self.storage.renumber(moves)
        schema = self.store.schema
        for name, number in plan.items():
            definition = schema.tables.get(name) if schema else None
            self.storage.ensure_table(name, definition, number)

    def write(self, plan: dict[str, int]) -> dict[str, int]:
        """Check and insert every document; the first bad line raises ``_Abort``."""
        resolve_names = {number: name for name, number in plan.items()}

        def resolve(number: int) -> str | None:
            return resolve_names.get(number) or self.storage.table_of(number)

        counts: dict[str, int] = {}
        for name in sorted(self.tables):
            entry = self.tables[name]
            if self.progress is not None:
                self.progress.start(f"import {name}", entry.documents.file_size)
            counts[name] = self._write_table(entry, plan[name], resolve)
        return counts

    def _write_table(
        self, entry: _TableEntry, number: int, resolve: Callable[[int], str | None]
    ) -> int:
        seen: set[str] = set()
        count = 0
        for line_number, line in enumerate(_lines(self.archive, entry.documents), 1):
            try:
                document = self._document(entry, number, line, seen, resolve)
            except (ValueError, TypeError, OverflowError, RecursionError) as e:
                raise _Abort(SnapshotInvalid(str(e), entry.name, line_number)) from None
            except InvalidValue as e:
                raise _Abort(
                    SnapshotInvalid(
                        f"document does not match the schema: {error_text(e)}",
                        entry.name,
                        line_number,
                    )
                ) from None
            self.storage.write_raw(entry.name, document)
            count += 1
            if self.progress is not None:
                self.progress.advance(len(line) + 1)
        return count

    def _document(
        self,
        entry: _TableEntry,
        number: int,
        line: bytes,
        seen: set[str],
        resolve: Callable[[int], str | None],
    ) -> Document:
        data = json.loads(line, parse_constant=_reject_constant)
        if not isinstance(data, dict):
            raise ValueError("each line must be a JSON object (a document)")
        value = cast(dict[str, Value], from_export_json(data, uniform=entry.uniform))
        doc_id, created = self._system_fields(value, number, seen)
        fields = {k: v for k, v in value.items() if k not in ("_id", "_creationTime")}
        for key in fields:
            if key.startswith("_"):
                raise ValueError(
                    f"field {key!r} starts with an underscore, which only system fields may"
                )
        schema = self.store.schema
        definition = schema.tables.get(entry.name) if schema else None
        if definition is not None and schema is not None and schema.schema_validation:
            checked = definition.document.check(fields, resolve)
        else:
            checked = check_value(fields)
        document: Document = {
            "_id": doc_id,
            "_creationTime": created,
            **cast(dict[str, Value], checked),
        }
        size = convex_size(document)
        if size > MAX_DOCUMENT_SIZE:
            raise ValueError(f"document is too large ({size} > maximum size 1 MiB)")
        return document

    def _system_fields(
        self, value: dict[str, Value], number: int, seen: set[str]
    ) -> tuple[str, float]:
        raw_id = value.get("_id")
        if raw_id is None:
            doc_id = encode_id(number)
        elif not isinstance(raw_id, str) or (decoded := decode_id(raw_id)) is None:
            raise ValueError(f"_id {raw_id!r} is not a valid Convex ID")
        else:
            if decoded[0] != number:
                raise ValueError(
                    f"_id {raw_id} belongs to table number {decoded[0]}, "
                    f"but this table's number is {number}"
                )
            doc_id = raw_id
        if doc_id in seen or (self.mode == "append" and self._exists(doc_id)):
            raise ValueError(f"duplicate _id {doc_id}")
        seen.add(doc_id)
        created = value.get("_creationTime")
        if created is None:
            self.created_at = math.nextafter(self.created_at, math.inf)
            return doc_id, self.created_at
        if isinstance(created, bool) or not isinstance(created, int | float):
            raise ValueError("_creationTime must be a number (milliseconds)")
        if not math.isfinite(created) or created < 0:
            raise ValueError(f"_creationTime {created} is not a valid time")
        return doc_id, float(created)

    def _exists(self, doc_id: str) -> bool:
        decoded = decode_id(doc_id)
        name = self.storage.table_of(decoded[0]) if decoded else None
        layout = self.storage.layouts.get(name) if name else None
        return layout is not None and self.storage.get_text(layout, doc_id) is not None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def import_snapshot(
    store: Store,
    source: str | os.PathLike[str] | IO[bytes],
    *,
    mode: Mode = "require_empty",
    progress: Progress | None = None,
) -> Result[SnapshotSummary, SnapshotInvalid]:
    """Import a Convex snapshot ZIP into ``store`` in one transaction.

    Args:
        store: the store to write into (opened with its schema or app).
        source: the ZIP file (path or binary file object).
        mode: ``"require_empty"`` refuses tables holding documents, ``"replace"``
            empties the imported tables first, ``"append"`` adds to them.
        progress: receives a ``start`` per table and ``advance`` in bytes.

    Returns:
        ``Success(SnapshotSummary)``, or ``Failure(SnapshotInvalid)`` naming the
        first bad line's table and line number; then nothing was imported.

    Example:
        >>> import io
        >>> from one_store import Store, define_schema, define_table, v
        >>> schema = define_schema({"t": define_table({"n": v.int64()})})
        >>> a, b, zipped = Store.memory(schema), Store.memory(schema), io.BytesIO()
        >>> _ = a.run(lambda ctx: ctx.db.insert("t", {"n": 5}))
        >>> _ = export_snapshot(a, zipped)
        >>> import_snapshot(b, zipped).unwrap().tables
        {'t': 1}
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as e:
        return ProblemFailure(SnapshotInvalid(f"not a readable ZIP file: {e}"))
    with archive, Staging(store.storage, archive, mode == "replace") as files:
        try:
            importer = _Importer(store, archive, mode, progress)
            files.stage(float(store.clock()))  # bodies first, outside the write

            def work(_txn: object) -> dict[str, int]:
                plan = importer.plan_numbers()
                importer.prepare_tables(plan)
                stored = files.write_rows()  # first: documents may refer to files
                return importer.write(plan) | ({"_storage": stored} if stored else {})

            written = store.executor.system_write(work)  # watches see the import
            if not isinstance(written, Success):
                return ProblemFailure(SnapshotInvalid(written.failure().message))
            counts = written.unwrap()
            files.release()
        except FileSnapshotError as e:
            return ProblemFailure(SnapshotInvalid(str(e), "_storage"))
        except _Abort as abort:
            return ProblemFailure(abort.problem)
        except StorageFailure as failure:
            return ProblemFailure(SnapshotInvalid(failure.problem.message))
        except (zipfile.BadZipFile, OSError, EOFError) as e:  # a corrupt entry
            return ProblemFailure(SnapshotInvalid(f"the ZIP file is damaged: {e}"))
        except Exception as e:  # the database failed (SQLite or PostgreSQL)
            if (refused := storage_problem(e)) is None:
                raise
            return ProblemFailure(SnapshotInvalid(f"database error: {refused}"))
    return Success(SnapshotSummary(counts))


__all__ = [
    "Progress",
    "SnapshotInvalid",
    "SnapshotSummary",
    "export_line",
    "export_snapshot",
    "from_export_json",
    "import_snapshot",
    "to_export_json",
]
