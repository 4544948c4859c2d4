"""Opening a file with a changed schema: check the stored documents, then migrate.

What Convex does when ``npx convex deploy`` pushes a schema (convex-backend,
``crates/common/src/schemas/mod.rs``): a table whose enforced document validator
changed has every existing document checked against the new one before the schema
becomes active, unless the old validator is a subset of the new one
(``must_revalidate_table``, ``Validator::is_subset``: the same validator, a new
``v.any()``, or an object that only gains optional fields); with
``schemaValidation: false`` nothing is checked, and nothing counts as enforced
afterwards. A failing document stops the push with "Schema validation failed."
and ``Document with ID "..." in table "..." does not match the schema: <the
validator's message>`` (``SchemaValidationError::ExistingDocument``); the old
schema stays.

Here the same happens in :func:`sync`, inside the one write transaction that then
creates tables and indexes: the documents are checked first, streamed in rowid
order, so a refused schema leaves no table, index or record behind (the
transaction is rolled back having written nothing). Up to :data:`MAX_SHOWN`
offenders are collected, not just the first, so one failed open shows how
widespread the problem is. Values are checked as stored (``check_stored``): an
int64 in the file never matches ``v.float64()``, where an argument would be
converted.

The file records, per table, the validator its documents were checked against
(:meth:`Backend.checked_documents`). A reopen with the same schema compares one
fingerprint and reads no document; in a table whose validator changed, only the
top-level fields whose validator changed are checked (:func:`still_to_check`),
the others having passed the same validator when they were written.
"""

from __future__ import annotations

import json

from ..model.checks import Resolve
from ..model.errors import Mismatch, SchemaMismatchError
from ..model.schema import Schema, TableDefinition
from ..model.validators import Validator, error_text, v
from ..model.values import InvalidValue, loads
from .backend import Backend

MAX_SHOWN = 10
"""How many offending documents a refused open collects before it stops reading."""


def sync(storage: Backend, schema: Schema) -> None:
    """Bring the file to ``schema`` in one write transaction, or change nothing.

    Raises:
        SchemaMismatchError: stored documents of a table whose validator changed
            do not match it; the file is left as it was.
    """
    with storage.write():
        # A file synced before one_store kept <table>_view views has no "views"
        # record: it is synced once more (no document is read), which makes them.
        if storage.schema_fingerprint() == schema.fingerprint() and (
            storage.meta("views") is not None
        ):
            return
        documents = enforced(schema)
        recorded = storage.checked_documents()
        checks = {
            name: (quick, schema.tables[name].document)
            for name in documents
            if name in storage.layouts
            and (quick := still_to_check(recorded.get(name), schema.tables[name]))
            is not None
        }
        found = mismatches(storage, checks)
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
    return _canonical(definition.document.json())


def _canonical(obj: object) -> str:
    # Text, not dicts, is compared: in Python 1 == 1.0 == True, so the literals
    # v.literal(1.0) and v.literal(True) would compare equal as parsed JSON.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def still_to_check(
    recorded: str | None, definition: TableDefinition
) -> Validator | None:
    """What stored documents that passed ``recorded`` must still be checked against.

    None when they all pass the new validator without being read: the validator
    did not change, the new one is ``v.any()``, or the only change adds optional
    top-level fields (Convex's ``is_subset`` on objects, for fields whose
    validator is unchanged). Otherwise the new validator, with every top-level
    field whose validator and optionality did not change replaced by ``v.any()``
    (those values already passed it). The result only filters: a document it
    refuses is checked again against the full validator for the error message.
    """
    new = definition.document
    if new.kind == "any" or recorded == document_text(definition):
        return None
    old = json.loads(recorded) if recorded is not None else None
    if (
        new.kind != "object"
        or not isinstance(old, dict)
        or old.get("type") != "object"
        or not isinstance(old.get("value"), dict)
    ):
        return new
    old_fields = {name: _canonical(entry) for name, entry in old["value"].items()}
    fields: dict[str, Validator] = {}
    changed = False
    for name, f in new.fields:
        entry = _canonical({"fieldType": f.json(), "optional": f.is_optional})
        if old_fields.pop(name, None) == entry:
            fields[name] = v.optional(v.any()) if f.is_optional else v.any()
        else:
            fields[name] = f
            changed = changed or not f.is_optional or name in old["value"]
    if not changed and not old_fields:  # only new optional fields: all pass
        return None
    return v.object(fields)


def mismatches(
    storage: Backend,
    checks: dict[str, tuple[Validator, Validator]],
    limit: int = MAX_SHOWN,
) -> list[Mismatch]:
    """The first ``limit`` stored documents that fail their table's check.

    ``checks`` maps a table to ``(quick, full)``: every document is checked
    against ``quick`` (:func:`still_to_check`), and one it refuses against
    ``full``, whose error names what is wrong.
    """
    found: list[Mismatch] = []
    resolve = storage.table_of
    for name, (quick, full) in checks.items():
        check = quick.check_stored
        for doc_id, text in storage.rows(name):
            try:
                doc = loads(text)
                if isinstance(doc, dict):
                    # System fields are the store's to check, not the validator's
                    # (Convex's filter_system_fields).
                    doc.pop("_id", None)
                    doc.pop("_creationTime", None)
                check(doc, resolve)
                continue
            except InvalidValue:
                problem = _problem(full, doc, resolve)
            except (ValueError, StopIteration):  # another tool wrote something else
                problem = ("", "The stored text is not JSON.")
            if problem is not None:
                found.append(Mismatch(name, doc_id, *problem))
                if len(found) >= limit:
                    return found
    return found


def _problem(full: Validator, doc: object, resolve: Resolve) -> tuple[str, str] | None:
    try:
        full.check_stored(doc, resolve)
    except InvalidValue as e:
        return e.path_text(), error_text(e)
    return None


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
