"""``define_schema`` / ``define_table`` with indexes, search indexes and vector indexes.

Definitions are frozen attrs objects; ``.index()`` and friends return a new table.
Every rule Convex's backend applies when a schema is pushed is checked at definition
time and raises :class:`~one_store.model.errors.SchemaError` (a programmer mistake).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import evolve, frozen

from .errors import SchemaError
from .validators import Validator, v
from .values import identifier_error

MAX_INDEX_FIELDS = 16  # including the _creationTime Convex appends
MAX_INDEXES_PER_TABLE = 64
MAX_SEARCH_FILTER_FIELDS = 16
SYSTEM_TABLES = ("_scheduled_functions", "_storage")
RESERVED_INDEX_NAMES = ("by_id", "by_creation_time")


@frozen
class Index:
    """A database index: user ``fields`` (dotted paths); Convex appends ``_creationTime``."""

    name: str
    fields: tuple[str, ...]

    @property
    def key_fields(self) -> tuple[str, ...]:
        """Every field of the stored key: user fields, ``_creationTime``, ``_id``."""
        if self.name == "by_id":
            return ("_id",)
        if self.name == "by_creation_time":
            return ("_creationTime", "_id")
        return (*self.fields, "_creationTime", "_id")


@frozen
class SearchIndex:
    """A full-text index over one string field, with equality filter fields."""

    name: str
    search_field: str
    filter_fields: tuple[str, ...] = ()


@frozen
class VectorIndex:
    """A vector index: ``dimensions`` floats at ``vector_field``, with equality filter fields."""

    name: str
    vector_field: str
    dimensions: int
    filter_fields: tuple[str, ...] = ()


def _check_field_path(path: str, where: str) -> None:
    if not isinstance(path, str) or not path:
        raise SchemaError(
            f"{where}: field paths must be non-empty strings, got {path!r}"
        )
    for part in path.split("."):
        error = identifier_error(part, "Field name")
        if error is not None:
            raise SchemaError(f"{where}: {error}")


def _check_index_name(table: TableDefinition, name: str) -> None:
    error = identifier_error(name, "Index name")
    if error is not None:
        raise SchemaError(error)
    if name.startswith("_"):
        raise SchemaError(f"Index name {name!r} cannot start with '_'.")
    if name in RESERVED_INDEX_NAMES:
        raise SchemaError(f"Index name {name!r} is reserved (IndexNameReserved).")
    if name in table.index_names():
        raise SchemaError(
            f"Duplicate index name {name!r}: index names must be unique per table."
        )
    if len(table.index_names()) >= MAX_INDEXES_PER_TABLE:
        raise SchemaError(
            f"Too many indexes on a table (maximum {MAX_INDEXES_PER_TABLE})."
        )


@frozen
class TableDefinition:
    """A table: the document validator and its indexes. Build with ``define_table``."""

    document: Validator
    indexes: tuple[Index, ...] = ()
    search_indexes: tuple[SearchIndex, ...] = ()
    vector_indexes: tuple[VectorIndex, ...] = ()

    def index_names(self) -> tuple[str, ...]:
        """Names of every index of every kind (user-defined only)."""
        return (
            tuple(i.name for i in self.indexes)
            + tuple(s.name for s in self.search_indexes)
            + tuple(x.name for x in self.vector_indexes)
        )

    def side_indexes(self) -> tuple[SearchIndex | VectorIndex, ...]:
        """The search and vector indexes (what is kept beside the document rows)."""
        return (*self.search_indexes, *self.vector_indexes)

    def index(self, name: str, fields: Iterable[str]) -> TableDefinition:
        """Add a database index over ``fields`` (in order).

        Example:
            >>> from one_store import v, define_table
            >>> t = define_table({"a": v.string()}).index("by_a", ["a"])
            >>> t.indexes[0].fields
            ('a',)
        """
        _check_index_name(self, name)
        if isinstance(fields, str):
            raise SchemaError(
                f"Index {name!r}: fields must be a list of field names, not a string."
            )
        fields = tuple(fields)
        where = f"Index {name!r}"
        if not fields:
            raise SchemaError(f"{where} must have at least one field (EmptyIndex).")
        for f in fields:
            if f in ("_id", "_creationTime"):
                raise SchemaError(
                    f"{where} cannot contain {f}: Convex adds _creationTime and _id to every index."
                )
            _check_field_path(f, where)
            if f.startswith("_") or any(p.startswith("_") for p in f.split(".")):
                raise SchemaError(
                    f"{where}: field {f!r} is reserved (IndexFieldNameReserved)."
                )
        if len(set(fields)) != len(fields):
            raise SchemaError(
                f"{where} has duplicate fields (FieldsNotUniqueWithinIndex)."
            )
        if len(fields) + 1 > MAX_INDEX_FIELDS:
            raise SchemaError(
                f"{where} has {len(fields)} fields; at most {MAX_INDEX_FIELDS - 1} are "
                "allowed because _creationTime is appended."
            )
        for other in self.indexes:
            if other.fields == fields:
                raise SchemaError(
                    f"{where} has the same fields as index {other.name!r} (IndexNotUnique)."
                )
        return evolve(self, indexes=(*self.indexes, Index(name, fields)))

    def search_index(
        self, name: str, *, search_field: str, filter_fields: Iterable[str] = ()
    ) -> TableDefinition:
        """Add a full-text search index over the string field ``search_field``."""
        _check_index_name(self, name)
        filters = tuple(filter_fields)
        for f in (search_field, *filters):
            _check_field_path(f, f"Search index {name!r}")
        if len(filters) > MAX_SEARCH_FILTER_FIELDS:
            raise SchemaError("Search indexes may have up to 16 filter fields.")
        if len(set(filters)) != len(filters):
            raise SchemaError(f"Search index {name!r} has duplicate filter fields.")
        for other in self.search_indexes:
            if (other.search_field, set(other.filter_fields)) == (
                search_field,
                set(filters),
            ):
                raise SchemaError(
                    f"Search index {name!r} duplicates {other.name!r} (SearchIndexFieldNotUnique)."
                )
        new = SearchIndex(name, search_field, filters)
        return evolve(self, search_indexes=(*self.search_indexes, new))

    def vector_index(
        self,
        name: str,
        *,
        vector_field: str,
        dimensions: int,
        filter_fields: Iterable[str] = (),
    ) -> TableDefinition:
        """Declare a vector index, searched with ``ctx.vector_search`` in actions.

        Documents whose ``vector_field`` holds exactly ``dimensions`` floats are
        indexed; others (a missing field, another length) are silently not.

        Example:
            >>> from one_store import v, define_table
            >>> t = define_table({"embedding": v.array(v.float64())}).vector_index(
            ...     "by_embedding", vector_field="embedding", dimensions=3
            ... )
            >>> t.vector_indexes[0].dimensions
            3
        """
        _check_index_name(self, name)
        filters = tuple(filter_fields)
        for f in (vector_field, *filters):
            _check_field_path(f, f"Vector index {name!r}")
        if not isinstance(dimensions, int) or not 2 <= dimensions <= 4096:
            raise SchemaError(
                f"Vector index {name!r}: dimensions must be an integer in 2..4096."
            )
        if len(filters) > MAX_SEARCH_FILTER_FIELDS:
            raise SchemaError("Vector indexes may have up to 16 filter fields.")
        for other in self.vector_indexes:
            if (other.vector_field, other.dimensions) == (vector_field, dimensions):
                raise SchemaError(
                    f"Vector index {name!r} duplicates {other.name!r}: the same field "
                    "and dimensions (VectorIndexFieldNotUnique)."
                )
        new = VectorIndex(name, vector_field, dimensions, filters)
        return evolve(self, vector_indexes=(*self.vector_indexes, new))

    def all_indexes(self) -> tuple[Index, ...]:
        """The built-in ``by_id`` and ``by_creation_time`` followed by user indexes."""
        return (Index("by_id", ()), Index("by_creation_time", ()), *self.indexes)

    def json(self, name: str) -> dict[str, Any]:
        """Convex's JSON for this table in ``schema.json()``."""
        return {
            "tableName": name,
            "documentType": self.document.json(),
            "indexes": [
                {"indexDescriptor": i.name, "fields": list(i.fields)}
                for i in self.indexes
            ],
            "searchIndexes": [
                {
                    "indexDescriptor": s.name,
                    "searchField": s.search_field,
                    "filterFields": list(s.filter_fields),
                }
                for s in self.search_indexes
            ],
            "vectorIndexes": [
                {
                    "indexDescriptor": x.name,
                    "vectorField": x.vector_field,
                    "dimensions": x.dimensions,
                    "filterFields": list(x.filter_fields),
                }
                for x in self.vector_indexes
            ],
        }


def define_table(
    document: Mapping[str, Validator] | Validator | None = None,
) -> TableDefinition:
    """Define a table by its document fields (a dict) or a validator.

    ``define_table()`` with no argument accepts any document. The validator must be
    ``v.object``, a ``v.union`` of objects, or ``v.any()``.

    Example:
        >>> from one_store import v, define_table
        >>> define_table({"name": v.string()}).document
        v.object({name: v.string()})
    """
    if document is None:
        validator = v.any()
    elif isinstance(document, Validator):
        validator = document
    else:
        validator = v.object(document)
    kinds: list[str] = (
        [m.kind for m in validator.members]
        if validator.kind == "union"
        else [validator.kind]
    )
    if validator.kind == "any":
        kinds = ["object"]
    if not kinds or any(k != "object" for k in kinds):
        raise SchemaError(
            "A table's document validator must be v.object(...), a v.union of objects, "
            f"or v.any() (InvalidTopLevelTypeInSchemaError), got {validator}"
        )
    return TableDefinition(_drop_system_field_validators(validator))


def _drop_system_field_validators(validator: Validator) -> Validator:
    """Drop validators of top-level ``_``-prefixed fields, as Convex does.

    Convex strips ``_id``/``_creationTime`` from a document before checking it and
    silently drops a table validator's ``_``-prefixed fields (BE
    ``ObjectValidator::filter_system_fields``); kept, a required ``_id`` validator
    would make every insert fail.
    """
    if validator.kind == "union":
        return v.union(*(_drop_system_field_validators(m) for m in validator.members))
    if validator.kind != "object" or not any(
        name.startswith("_") for name, _ in validator.fields
    ):
        return validator
    return v.object({n: f for n, f in validator.fields if not n.startswith("_")})


@frozen
class Schema:
    """A schema: tables by name. Build with ``define_schema``."""

    tables: Mapping[str, TableDefinition]
    schema_validation: bool = True

    def json(self) -> dict[str, Any]:
        """Convex's schema JSON: ``{tables: [...], schemaValidation}``."""
        return {
            "tables": [t.json(name) for name, t in self.tables.items()],
            "schemaValidation": self.schema_validation,
        }

    def fingerprint(self) -> str:
        """A stable text form of the schema (stored in the file to detect changes)."""
        return json.dumps(self.json(), sort_keys=True, separators=(",", ":"))


def define_schema(
    tables: Mapping[str, TableDefinition],
    *,
    schema_validation: bool = True,
    strict_table_name_types: bool = True,
) -> Schema:
    """Define a schema from ``{table_name: define_table(...)}``.

    Args:
        tables: table definitions by name (identifiers not starting with ``_``).
        schema_validation: check every write against the validators (default True).
        strict_table_name_types: accepted for Convex compatibility (TypeScript-only).

    Raises:
        SchemaError: a table name is invalid, a ``v.id`` names an unknown table, or
            an index refers to a field the document validator cannot hold.
    """
    if not isinstance(tables, Mapping):
        raise SchemaError("define_schema() takes a dict of define_table(...) values")
    for name, table in tables.items():
        error = identifier_error(name, "Table name")
        if error is not None:
            raise SchemaError(error)
        if name.startswith("_"):
            raise SchemaError(
                f"Table name {name!r} cannot start with '_' (TableNameReserved)."
            )
        if not isinstance(table, TableDefinition):
            raise SchemaError(
                f"Table {name!r} must be define_table(...), got {table!r}"
            )
    for name, table in tables.items():
        for sub in table.document.walk():
            if (
                sub.kind == "id"
                and sub.table not in tables
                and sub.table not in SYSTEM_TABLES
            ):
                raise SchemaError(
                    f'Table {name!r} refers to v.id("{sub.table}"), but there is no '
                    f"table {sub.table!r} in the schema."
                )
        if schema_validation:
            _check_index_references(name, table)
    return Schema(dict(tables), schema_validation)


def _check_index_references(name: str, table: TableDefinition) -> None:
    referenced = [(i.name, f) for i in table.indexes for f in i.fields]
    referenced += [(s.name, s.search_field) for s in table.search_indexes]
    referenced += [(s.name, f) for s in table.search_indexes for f in s.filter_fields]
    referenced += [(x.name, x.vector_field) for x in table.vector_indexes]
    for index, path in referenced:
        if table.document.field_validator(tuple(path.split("."))) is None:
            raise SchemaError(
                f'In table "{name}" the index "{index}" is invalid because it '
                f"references the field {path} that does not exist."
            )
    for x in table.vector_indexes:
        found = table.document.field_validator(tuple(x.vector_field.split(".")))
        if found is not None and not _may_hold_vector(found):
            # Convex's check_index_references: the field's validator must
            # overlap v.array(v.float64()).
            raise SchemaError(
                f'In table "{name}" the vector index "{x.name}" is invalid because '
                f'it references the field "{x.vector_field}" that is neither an '
                "array of float64 or optional array of float64."
            )


def _may_hold_vector(validator: Validator) -> bool:
    """Whether a field with ``validator`` can hold a list of float64 numbers."""
    if validator.kind == "any":
        return True
    if validator.kind == "union":
        return any(_may_hold_vector(m) for m in validator.members)
    element = validator.element
    return (
        validator.kind == "array"
        and element is not None
        and (
            element.kind in ("number", "any")
            or (
                element.kind == "union"
                and any(m.kind in ("number", "any") for m in element.members)
            )
        )
    )
