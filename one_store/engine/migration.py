"""Opening a file with a changed schema: check the stored documents, then migrate.

What Convex does when ``npx convex deploy`` pushes a schema (convex-backend,
``crates/common/src/schemas/mod.rs``): a table whose enforced document validator
changed has every existing document checked against the new one before the schema
becomes active; a table whose validator did not change, or whose new validator is
``v.any()``, is not read (``must_revalidate_table``); with ``schemaValidation:
false`` nothing is checked, and nothing counts as enforced afterwards. The first
document that fails stops the push with "Schema validation failed." and
``Document with ID "..." in table "..." does not match the schema: <the validator's
message>`` (``SchemaValidationError::ExistingDocument``), and the old schema stays.

Here the same happens in :func:`sync`, inside the one write transaction that then
creates tables and indexes: the documents are checked first, streamed in rowid
order, so a refused schema leaves no table, index or record behind (the
transaction is rolled back having written nothing). Up to :data:`MAX_SHOWN`
offenders are collected, not just the first, so one failed open shows how
widespread the problem is. Values are checked as stored (``check_stored``): an
int64 in the file never matches ``v.float64()``, where an argument would be
converted.

The file records, per table, the validator its documents were checked against
(:meth:`Storage.checked_documents`); a reopen with the same schema compares one
fingerprint and reads no document.
"""

from __future__ import annotations

import json

from ..model.errors import Mismatch, SchemaMismatchError
from ..model.schema import Schema, TableDefinition
from ..model.validators import error_text
from ..model.values import InvalidValue, loads
from .sqlite.storage import Storage

MAX_SHOWN = 10
"""How many offending documents a refused open collects before it stops reading."""


def sync(storage: Storage, schema: Schema) -> None:
    """Bring the file to ``schema`` in one write transaction, or change nothing.

    Raises:
        SchemaMismatchError: stored documents of a table whose validator changed
            do not match it; the file is left as it was.
    """
    with storage.write():
        if storage.schema_fingerprint() == schema.fingerprint():
            return
        documents = enforced(schema)
        recorded = storage.checked_documents()
        tables = [
            name
            for name, text in documents.items()
            if name in storage.layouts
            and recorded.get(name) != text
            and schema.tables[name].document.kind != "any"
        ]
        found = mismatches(storage, schema, tables)
        if found:
            raise mismatch_error(found)
        storage.sync_schema(schema, documents)


def enforced(schema: Schema) -> dict[str, str]:
    """Per table, the validator text every write under ``schema`` is checked against."""
    if not schema.schema_validation:
        return {}
    return {name: document_text(t) for name, t in schema.tables.items()}


def document_text(definition: TableDefinition) -> str:
    """A table's document validator as canonical text (Convex's JSON shape)."""
    return json.dumps(definition.document.json(), sort_keys=True, separators=(",", ":"))


def mismatches(
    storage: Storage, schema: Schema, tables: list[str], limit: int = MAX_SHOWN
) -> list[Mismatch]:
    """The first ``limit`` stored documents of ``tables`` that ``schema`` refuses."""
    found: list[Mismatch] = []
    resolve = storage.table_of
    for name in tables:
        check = schema.tables[name].document.check_stored
        for doc_id, text in storage.rows(name):
            try:
                doc = loads(text)
                if isinstance(doc, dict):
                    # System fields are the store's to check, not the validator's
                    # (Convex's filter_system_fields).
                    doc.pop("_id", None)
                    doc.pop("_creationTime", None)
                check(doc, resolve)
            except InvalidValue as e:
                found.append(Mismatch(name, doc_id, e.path_text(), error_text(e)))
            except (ValueError, StopIteration):  # another tool wrote something else
                found.append(Mismatch(name, doc_id, "", "The stored text is not JSON."))
            else:
                continue
            if len(found) >= limit:
                return found
    return found


def mismatch_error(found: list[Mismatch]) -> SchemaMismatchError:
    """Convex's message for the first offender, then a line for each one found."""
    first = found[0]
    count = (
        f"The first {len(found)} documents that do not match (reading stops there):"
        if len(found) >= MAX_SHOWN
        else f"{len(found)} document{'s' if len(found) > 1 else ''} "
        f"{'do' if len(found) > 1 else 'does'} not match:"
    )
    lines = [
        "Schema validation failed.",
        f'Document with ID "{first.id}" in table "{first.table}" does not match the '
        f"schema: {first.message}",
        "",
        count,
        *(
            f'  table "{m.table}", ID "{m.id}"'
            + (f", path {m.path}" if m.path else "")
            + f": {m.message.partition(chr(10))[0]}"
            for m in found
        ),
        "Nothing in the file was changed. To migrate, open it with a schema that "
        "both the old and the new documents match (a v.union or v.optional), fix "
        "the documents, then open it with the new schema.",
    ]
    return SchemaMismatchError(
        "\n".join(lines), tuple(m.id for m in found), tuple(found)
    )
