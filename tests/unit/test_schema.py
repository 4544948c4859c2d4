"""Tests for one_store.model.schema: define_schema / define_table / indexes and their rules.

The rules are Convex's push-time checks (reference §3; BE
crates/common/src/bootstrap_model/index/*, crates/common/src/schemas/mod.rs),
raised here at definition time as SchemaError.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from one_store import SchemaError, define_schema, define_table, v
from one_store.model.schema import TableDefinition

BASE = define_table({"a": v.string(), "b": v.optional(v.int64()), "o": v.any()})


def test_schema_error_is_a_value_error():
    assert issubclass(SchemaError, ValueError)


def test_define_table_forms():
    assert define_table({"a": v.string()}).document == v.object({"a": v.string()})
    assert define_table().document == v.any()
    union = v.union(v.object({"k": v.literal("x")}), v.object({"k": v.literal("y")}))
    assert define_table(union).document == union


def test_top_level_system_field_validators_are_dropped_as_convex_does():
    # BE ObjectValidator::filter_system_fields: `_`-prefixed top-level validators go.
    table = define_table(
        {
            "_id": v.id("t"),
            "_creationTime": v.number(),
            "_x": v.string(),
            "n": v.int64(),
        }
    )
    assert table.document == v.object({"n": v.int64()})
    union = define_table(
        v.union(v.object({"_id": v.string(), "a": v.null()}), v.object({"b": v.null()}))
    )
    assert union.document == v.union(
        v.object({"a": v.null()}), v.object({"b": v.null()})
    )
    nested = define_table({"o": v.object({"_keep": v.string()})})
    assert nested.document == v.object({"o": v.object({"_keep": v.string()})})


@pytest.mark.parametrize(
    "document", [v.string(), v.array(v.any()), v.union(v.object({}), v.null())]
)
def test_document_validator_must_be_object_like(document):
    with pytest.raises(SchemaError, match="InvalidTopLevelType"):
        define_table(document)


def test_index_fields_are_kept_in_order_and_keys_get_creation_time_and_id():
    table = BASE.index("by_a_b", ["a", "b"])
    (index,) = table.indexes
    assert index.fields == ("a", "b")
    assert index.key_fields == ("a", "b", "_creationTime", "_id")
    assert [i.name for i in table.all_indexes()] == [
        "by_id",
        "by_creation_time",
        "by_a_b",
    ]
    assert table.all_indexes()[1].key_fields == ("_creationTime", "_id")


def test_index_returns_a_new_table():
    table = BASE.index("by_a", ["a"])
    assert BASE.indexes == ()
    assert isinstance(table, TableDefinition)


FIFTEEN = {f"f{i}": v.string() for i in range(16)}


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: BASE.index("by_a", ["a"]).index("by_a", ["b"]), "Duplicate index"),
        (lambda: BASE.index("by_id", ["a"]), "reserved"),
        (lambda: BASE.index("by_creation_time", ["a"]), "reserved"),
        (lambda: BASE.index("_mine", ["a"]), "_"),
        (lambda: BASE.index("bad name", ["a"]), "Index name"),
        (lambda: BASE.index("x" * 65, ["a"]), "too long"),
        (lambda: BASE.index("i", []), "EmptyIndex"),
        (lambda: BASE.index("i", ["_id"]), "_id"),
        (lambda: BASE.index("i", ["_creationTime"]), "_creationTime"),
        (lambda: BASE.index("i", ["_secret"]), "reserved"),
        (lambda: BASE.index("i", ["o._x"]), "reserved"),
        (lambda: BASE.index("i", ["a", "a"]), "duplicate"),
        (lambda: BASE.index("i", "a"), "list"),
        (lambda: BASE.index("i", ["a-b"]), "Field name"),
        (lambda: BASE.index("i", ["a"]).index("j", ["a"]), "IndexNotUnique"),
        (
            lambda: define_table(FIFTEEN).index("i", list(FIFTEEN)),
            "at most 15",
        ),
    ],
)
def test_index_misuse_raises_schema_error(build: Callable[[], object], fragment):
    with pytest.raises(SchemaError, match=fragment):
        build()


def test_fifteen_user_fields_fit_in_an_index():
    table = define_table(FIFTEEN).index("i", list(FIFTEEN)[:15])
    assert len(table.indexes[0].key_fields) == 17  # + _creationTime, _id


def test_index_names_are_unique_across_index_kinds():
    table = define_table({"t": v.string()}).search_index("s", search_field="t")
    with pytest.raises(SchemaError, match="Duplicate"):
        table.index("s", ["t"])


def test_search_and_vector_index_rules():
    table = define_table({"t": v.string(), "e": v.array(v.float64())})
    with pytest.raises(SchemaError, match="16 filter"):
        table.search_index(
            "s", search_field="t", filter_fields=[f"f{i}" for i in range(17)]
        )
    table.search_index("s", search_field="t", filter_fields=["e"])
    with pytest.raises(SchemaError, match="SearchIndexFieldNotUnique"):
        table.search_index("s1", search_field="t").search_index("s2", search_field="t")
    for dims in (1, 4097, 2.5):
        with pytest.raises(SchemaError, match="dimensions"):
            table.vector_index("vec", vector_field="e", dimensions=dims)  # type: ignore[arg-type]
    assert table.vector_index("vec", vector_field="e", dimensions=4).vector_indexes


@pytest.mark.parametrize(
    ("tables", "fragment"),
    [
        ({"_t": define_table()}, "TableNameReserved"),
        ({"bad-name": define_table()}, "Table name"),
        ({"": define_table()}, "Table name"),
        ({"t" * 65: define_table()}, "too long"),
        ({"t": {"a": v.string()}}, "define_table"),
        ({"t": define_table({"u": v.id("users")})}, "no table 'users'"),
        (
            {"t": define_table({"u": v.array(v.object({"x": v.id("nope")}))})},
            "nope",
        ),
        ({"t": BASE.index("i", ["missing"])}, "references the field missing"),
        ({"t": BASE.index("i", ["a.b"])}, "references the field a.b"),
        (
            {"t": BASE.search_index("s", search_field="nope")},
            "references the field nope",
        ),
    ],
)
def test_schema_misuse_raises_schema_error(tables, fragment):
    with pytest.raises(SchemaError, match=fragment):
        define_schema(tables)


def test_index_on_any_or_record_field_paths_is_allowed():
    table = define_table(
        {"o": v.any(), "r": v.record(v.string(), v.object({"x": v.int64()}))}
    )
    define_schema({"t": table.index("i", ["o.deep.er", "r.key.x"])})


def test_v_id_may_name_system_tables_and_tables_of_the_schema():
    define_schema(
        {
            "a": define_table({"b": v.id("b"), "job": v.id("_scheduled_functions")}),
            "b": define_table({"a": v.optional(v.id("a"))}),
        }
    )


def test_without_schema_validation_indexes_may_name_any_field():
    schema = define_schema({"t": BASE.index("i", ["missing"])}, schema_validation=False)
    assert schema.schema_validation is False


def test_schema_json_has_convexs_shape():
    schema = define_schema(
        {
            "msgs": define_table({"thread": v.string(), "body": v.string()})
            .index("by_thread", ["thread"])
            .search_index("search_body", search_field="body", filter_fields=["thread"])
        }
    )
    assert schema.json() == {
        "tables": [
            {
                "tableName": "msgs",
                "documentType": {
                    "type": "object",
                    "value": {
                        "thread": {"fieldType": {"type": "string"}, "optional": False},
                        "body": {"fieldType": {"type": "string"}, "optional": False},
                    },
                },
                "indexes": [{"indexDescriptor": "by_thread", "fields": ["thread"]}],
                "searchIndexes": [
                    {
                        "indexDescriptor": "search_body",
                        "searchField": "body",
                        "filterFields": ["thread"],
                    }
                ],
                "vectorIndexes": [],
            }
        ],
        "schemaValidation": True,
    }


def test_fingerprint_changes_with_the_schema_and_only_then():
    one = define_schema({"t": BASE})
    assert one.fingerprint() == define_schema({"t": BASE}).fingerprint()
    assert (
        one.fingerprint() != define_schema({"t": BASE.index("i", ["a"])}).fingerprint()
    )


@pytest.mark.parametrize(
    ("validator", "allowed"),
    [
        (v.array(v.float64()), True),
        (v.optional(v.array(v.float64())), True),
        (v.array(v.any()), True),
        (v.any(), True),
        (v.union(v.string(), v.array(v.float64())), True),
        (v.array(v.union(v.float64(), v.null())), True),
        (v.array(v.string()), False),
        (v.array(v.int64()), False),
        (v.string(), False),
    ],
)
def test_a_vector_field_must_be_able_to_hold_float64_arrays(validator, allowed):
    # Convex's check_index_references: the field's validator overlaps
    # v.array(v.float64()), else SchemaDefinitionError with this text.
    table = define_table({"e": validator}).vector_index(
        "by_e", vector_field="e", dimensions=3
    )
    if allowed:
        define_schema({"t": table})
        return
    with pytest.raises(SchemaError) as raised:
        define_schema({"t": table})
    assert str(raised.value) == (
        'In table "t" the vector index "by_e" is invalid because it references the '
        'field "e" that is neither an array of float64 or optional array of float64.'
    )
    define_schema({"t": table}, schema_validation=False)  # not checked then
