"""Tests for one_store.engine.migration: opening a file with a changed schema.

Convex checks every existing document of a table whose validator changed before
it makes the new schema active (``npx convex deploy`` fails with "Schema validation
failed. Document with ID ... in table ... does not match the schema: ..."), skips
tables whose enforced validator did not change (``must_revalidate_table`` in
convex-backend's ``crates/common/src/schemas/mod.rs``), and compares stored values
by their Convex type: an int64 never matches ``v.float64()``. These tests hold
``Store.open`` to the same, on real SQLite files.
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import pytest

from one_store import (
    UNSET,
    SchemaMismatchError,
    Store,
    define_schema,
    define_table,
    v,
)
from one_store.model.schema import Schema


def table(fields: dict[str, Any] | None = None, **indexes: list[str]) -> Any:
    t = define_table(fields)
    for name, on in indexes.items():
        t = t.index(name, on)
    return t


def seed(
    path: Path, schema: Schema, table_name: str, docs: list[dict[str, Any]]
) -> list[str]:
    """Insert ``docs`` into ``table_name`` under ``schema``; return their IDs."""

    def insert(ctx: Any) -> list[str]:
        return [ctx.db.insert(table_name, d) for d in docs]

    with Store.open(path, schema=schema) as store:
        ids: list[str] = store.run(insert).unwrap()
    return ids


def tamper(path: Path, table_name: str, doc_id: str, body: str) -> None:
    """Overwrite a stored document's JSON behind the store's back (another tool)."""
    with sqlite3.connect(path) as conn:
        conn.execute(f'UPDATE "{table_name}" SET _body=? WHERE _id=?', (body, doc_id))
    conn.close()


INTS = define_schema({"t": table({"n": v.int64()}, by_n=["n"])})
FLOATS = define_schema({"t": table({"n": v.float64()}, by_n=["n"])})


# ---------------------------------------------------------------- the case


def test_int64_to_float64_is_a_mismatch_naming_table_id_and_path(tmp_path: Path):
    path = tmp_path / "s.db"
    ids = seed(path, INTS, "t", [{"n": 0}, {"n": 1}, {"n": 2}])
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=FLOATS)
    error = info.value
    text = str(error)
    assert text.startswith("Schema validation failed.\n")
    assert (
        f'Document with ID "{ids[0]}" in table "t" does not match the schema: '
        "Value does not match validator.\nPath: .n\nValue: 0\n"
    ) in text
    assert error.offending == tuple(ids)
    first = error.mismatches[0]
    assert (first.table, first.id, first.path) == ("t", ids[0], ".n")
    assert first.message.startswith("Value does not match validator.")


def test_after_a_refused_float64_schema_the_int64_file_still_works(tmp_path: Path):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 0}, {"n": 1}, {"n": 2}])
    with pytest.raises(SchemaMismatchError):
        Store.open(path, schema=FLOATS)
    with Store.open(path, schema=INTS) as store:
        found = store.run(
            lambda ctx: [
                d["n"]
                for d in ctx.db.query("t").with_index("by_n", lambda q: q.gte("n", 1))
            ]
        ).unwrap()
    assert found == [1, 2]


def test_a_file_whose_floats_are_floats_opens_with_float64(tmp_path: Path):
    path = tmp_path / "s.db"
    either = define_schema(
        {"t": table({"n": v.union(v.int64(), v.float64())}, by_n=["n"])}
    )
    seed(path, either, "t", [{"n": 0.5}, {"n": 1.0}, {"n": 2.0}])
    with Store.open(path, schema=FLOATS) as store:
        found = store.run(
            lambda ctx: [
                d["n"]
                for d in ctx.db.query("t").with_index("by_n", lambda q: q.gte("n", 1.0))
            ]
        ).unwrap()
    assert found == [1.0, 2.0]


# ---------------------------------------------------------------- kinds of change


def test_a_removed_field_that_documents_still_have_is_a_mismatch(tmp_path: Path):
    path = tmp_path / "s.db"
    before = define_schema({"t": table({"a": v.string(), "b": v.optional(v.int64())})})
    after = define_schema({"t": table({"a": v.string()})})
    ids = seed(path, before, "t", [{"a": "x"}, {"a": "y", "b": 1}])
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=after)
    assert info.value.offending == (ids[1],)
    assert "Object contains extra field `b` that is not in the validator." in str(
        info.value
    )


def test_a_newly_required_field_is_a_mismatch(tmp_path: Path):
    path = tmp_path / "s.db"
    before = define_schema({"t": table({"a": v.string()})})
    after = define_schema({"t": table({"a": v.string(), "role": v.string()})})
    ids = seed(path, before, "t", [{"a": "x"}, {"a": "y"}])
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=after)
    assert info.value.offending == tuple(ids)
    message = info.value.mismatches[0].message
    assert message.startswith("Object is missing the required field `role`.")
    # The message names the table's whole validator, as Convex's does.
    assert message.endswith("Validator: v.object({a: v.string(), role: v.string()})")


def test_an_added_optional_field_passes_and_is_then_enforced(tmp_path: Path):
    path = tmp_path / "s.db"
    before = define_schema({"t": table({"a": v.string()})})
    after = define_schema({"t": table({"a": v.string(), "b": v.optional(v.int64())})})
    seed(path, before, "t", [{"a": "x"}, {"a": "y"}])
    with Store.open(path, schema=after) as store:
        store.run(lambda ctx: ctx.db.insert("t", {"a": "z", "b": 3})).unwrap()
        docs = store.run(lambda ctx: ctx.db.query("t").collect()).unwrap()
    assert [(d["a"], d.get("b", UNSET)) for d in docs] == [
        ("x", UNSET),
        ("y", UNSET),
        ("z", 3),
    ]


def test_v_any_accepts_every_stored_value_and_narrowing_it_is_checked(
    tmp_path: Path,
):
    path = tmp_path / "s.db"
    anything = define_schema({"t": table({"x": v.any()})})
    ids = seed(path, anything, "t", [{"x": 1}, {"x": "one"}, {"x": [1.5, None]}])
    strings = define_schema({"t": table({"x": v.string()})})
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=strings)
    assert info.value.offending == (ids[0], ids[2])
    widened = define_schema({"t": table({"x": v.any(), "y": v.optional(v.any())})})
    with Store.open(path, schema=widened) as store:
        assert store.storage.count("t") == 3


def test_a_table_that_becomes_define_table_accepts_everything(tmp_path: Path):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 1}])
    free = define_schema({"t": define_table()})
    with Store.open(path, schema=free) as store:
        store.run(lambda ctx: ctx.db.insert("t", {"n": "not an int"})).unwrap()
    # define_table() enforced nothing, so going back to v.int64() checks again.
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=INTS)
    assert len(info.value.offending) == 1
    assert '"not an int"' in str(info.value)


def test_an_id_of_another_table_is_a_mismatch(tmp_path: Path):
    path = tmp_path / "s.db"
    before = define_schema(
        {"a": table({}), "b": table({}), "refs": table({"to": v.id("a")})}
    )
    with Store.open(path, schema=before) as store:
        a_id = store.run(lambda ctx: ctx.db.insert("a", {})).unwrap()
        store.run(lambda ctx: ctx.db.insert("refs", {"to": a_id})).unwrap()
    after = define_schema(
        {"a": table({}), "b": table({}), "refs": table({"to": v.id("b")})}
    )
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=after)
    assert "which does not match the table name in validator" in str(info.value)
    assert info.value.mismatches[0].path == ".to"


def test_nested_paths_are_named(tmp_path: Path):
    path = tmp_path / "s.db"
    before = define_schema({"t": table({"meta": v.object({"tags": v.array(v.any())})})})
    seed(path, before, "t", [{"meta": {"tags": ["a", 2, "c"]}}])
    after = define_schema(
        {"t": table({"meta": v.object({"tags": v.array(v.string())})})}
    )
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=after)
    assert info.value.mismatches[0].path == ".meta.tags[1]"
    assert "Path: .meta.tags[1]\nValue: 2\nValidator: v.string()" in str(info.value)


def test_the_first_ten_offenders_are_listed_in_stored_order(tmp_path: Path):
    path = tmp_path / "s.db"
    ids = seed(path, INTS, "t", [{"n": i} for i in range(25)])
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=FLOATS)
    error = info.value
    assert error.offending == tuple(ids[:10])
    for doc_id in ids[:10]:
        assert doc_id in str(error)
    assert ids[10] not in str(error)


def test_offenders_in_several_tables_are_all_named(tmp_path: Path):
    path = tmp_path / "s.db"
    both = define_schema({"a": table({"n": v.int64()}), "b": table({"n": v.int64()})})
    with Store.open(path, schema=both) as store:
        a_id = store.run(lambda ctx: ctx.db.insert("a", {"n": 1})).unwrap()
        b_id = store.run(lambda ctx: ctx.db.insert("b", {"n": 1})).unwrap()
    floats = define_schema(
        {"a": table({"n": v.float64()}), "b": table({"n": v.float64()})}
    )
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=floats)
    assert [(m.table, m.id) for m in info.value.mismatches] == [
        ("a", a_id),
        ("b", b_id),
    ]


# ---------------------------------------------------------------- nothing changes


def test_a_refused_open_leaves_the_file_byte_for_byte_unchanged(tmp_path: Path):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 1}, {"n": 2}])
    before = path.read_bytes()
    # A new table, a new index and a dropped one: none of it may be made.
    changed = define_schema(
        {
            "t": table({"n": v.float64(), "m": v.optional(v.string())}, by_m=["m"]),
            "new": table({"x": v.string()}),
        }
    )
    with pytest.raises(SchemaMismatchError):
        Store.open(path, schema=changed)
    assert path.read_bytes() == before
    with Store.open(path, schema=INTS) as store:
        assert store.storage.tables() == ["t"]
        assert set(store.storage.layouts["t"].indexes) == {
            "by_id",
            "by_creation_time",
            "by_n",
        }
        assert store.storage.count("t") == 2


def test_a_refused_open_of_an_app_folder_changes_nothing(tmp_path: Path):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 1}])
    before = path.read_bytes()
    app = tmp_path / "app"
    app.mkdir()
    (app / "schema.py").write_text(
        textwrap.dedent(
            """
            from one_store import define_schema, define_table, v

            schema = define_schema({"t": define_table({"n": v.float64()})})
            """
        )
    )
    with pytest.raises(SchemaMismatchError, match='in table "t"'):
        Store.open(path, app=app)
    assert path.read_bytes() == before


# ---------------------------------------------------------------- what is scanned


def test_only_what_a_schema_change_can_break_is_read(tmp_path: Path):
    path = tmp_path / "s.db"
    schema = define_schema(
        {"t": table({"n": v.int64(), "s": v.string()}), "other": table({})}
    )
    (doc_id,) = seed(path, schema, "t", [{"n": 1, "s": "a"}])
    # Another tool writes a document the validator refuses ("n" is a string).
    # What the store recorded as checked is not read again:
    tamper(
        path,
        "t",
        doc_id,
        f'{{"_id":"{doc_id}","_creationTime":1.0,"n":"x","s":"a"}}',
    )

    def opens(**tables: Any) -> None:
        Store.open(path, schema=define_schema(tables)).close()

    opens(t=table({"n": v.int64(), "s": v.string()}), other=table({}))  # same
    opens(t=table({"n": v.int64(), "s": v.string()}), other=table({"z": v.null()}))
    opens(t=table({"n": v.int64(), "s": v.string()}, by_n=["n"]))  # an index
    # An added optional field: every document that passed before passes (Convex's
    # is_subset), so none is read; nor is "n" when only "s" changes.
    opens(t=table({"n": v.int64(), "s": v.string(), "z": v.optional(v.null())}))
    opens(t=table({"n": v.int64(), "s": v.union(v.string(), v.null())}))
    # A change to "n" reads every document's "n".
    with pytest.raises(SchemaMismatchError) as info:
        opens(t=table({"n": v.union(v.int64(), v.null()), "s": v.any()}))
    assert info.value.offending == (doc_id,)
    # So does a removed field (a document may still hold it) ...
    with pytest.raises(SchemaMismatchError):
        opens(t=table({"n": v.int64()}))
    # ... and a new required one.
    with pytest.raises(SchemaMismatchError):
        opens(t=table({"n": v.int64(), "s": v.any(), "r": v.null()}))


def test_a_stored_text_that_is_not_json_is_named_not_raised(tmp_path: Path):
    path = tmp_path / "s.db"
    _, bad = seed(path, INTS, "t", [{"n": 1}, {"n": 2}])
    tamper(path, "t", bad, "not json")
    changed = define_schema({"t": table({"n": v.union(v.int64(), v.string())})})
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=changed)
    assert info.value.offending == (bad,)
    assert "The stored text is not JSON." in str(info.value)


def test_writes_without_schema_validation_are_checked_at_the_next_validated_open(
    tmp_path: Path,
):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 1}])
    unchecked = define_schema(
        {"t": table({"n": v.int64()}, by_n=["n"])}, schema_validation=False
    )
    with Store.open(path, schema=unchecked) as store:
        bad = store.run(lambda ctx: ctx.db.insert("t", {"n": "x"})).unwrap()
    with pytest.raises(SchemaMismatchError) as info:
        Store.open(path, schema=INTS)
    assert info.value.offending == (bad,)


def test_a_table_dropped_from_the_schema_is_checked_when_it_comes_back(
    tmp_path: Path,
):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 1}])
    without = define_schema({"u": table({})})
    with Store.open(path, schema=without) as store:
        # Not in the schema: Convex accepts any document in such a table.
        store.run(lambda ctx: ctx.db.insert("t", {"n": 1.5})).unwrap()
    with pytest.raises(SchemaMismatchError, match='in table "t"'):
        Store.open(path, schema=INTS)


# ---------------------------------------------------------------- migrating


def test_migrate_by_widening_patching_then_tightening(tmp_path: Path):
    path = tmp_path / "s.db"
    seed(path, INTS, "t", [{"n": 1}, {"n": 2}])
    widened = define_schema(
        {"t": table({"n": v.union(v.int64(), v.float64())}, by_n=["n"])}
    )
    with Store.open(path, schema=widened) as store:

        def to_float(ctx: Any) -> None:
            for doc in ctx.db.query("t"):
                if isinstance(doc["n"], int):
                    ctx.db.patch(doc["_id"], {"n": float(doc["n"])})

        store.run(to_float).unwrap()
    with Store.open(path, schema=FLOATS) as store:
        found = store.run(
            lambda ctx: [
                d["n"]
                for d in ctx.db.query("t").with_index("by_n", lambda q: q.gte("n", 1.0))
            ]
        ).unwrap()
        matched = store.run(
            lambda ctx: (
                ctx.db.query("t").filter(lambda q: q.eq(q.field("n"), 1.0)).collect()
            )
        ).unwrap()
    assert found == [1.0, 2.0]
    assert [d["n"] for d in matched] == [1.0]
