"""Tests for one_store.data: store.table(), store.read() and the DataFrame conversions.

The column rules are those of docs/notebooks-and-data.md: the Arrow schema comes from
the table's validator (so an empty table is typed), int64 stays int64 (pandas'
nullable ``Int64`` where null is possible), ``_creationTime`` is a UTC millisecond
timestamp, objects and arrays are structs and lists where the validator gives their
shape and JSON text where it does not, and a missing field is null.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given
from returns.result import Failure, Success

from one_store import (
    ContextError,
    Store,
    TableView,
    define_schema,
    define_table,
    query,
    to_arrow,
    to_pandas,
    to_polars,
    v,
)
from one_store.data import arrow_to_pandas, arrow_to_polars, page_html, success_html
from one_store.model.display import result_html
from one_store.model.errors import Busy, InvalidId, ProblemFailure
from one_store.model.validator_json import validator_from_json
from one_store.model.values import dumps, loads
from tests.strategies import validators_with_values

ROOT = Path(__file__).resolve().parent.parent.parent
JSON = pa.string()  # a column of JSON text is a string column

KINDS = [
    (v.string(), pa.string()),
    (v.id("t"), pa.string()),
    (v.number(), pa.float64()),
    (v.int64(), pa.int64()),
    (v.boolean(), pa.bool_()),
    (v.bytes(), pa.binary()),
    (v.null(), pa.null()),
    (v.any(), JSON),
    (v.literal("a"), pa.string()),
    (v.literal(3), pa.int64()),
    (v.literal(2.5), pa.float64()),
    (v.literal(True), pa.bool_()),
    (v.array(v.int64()), pa.list_(pa.int64())),
    (v.array(v.any()), pa.list_(JSON)),
    (
        v.object({"a": v.int64(), "b": v.optional(v.string())}),
        pa.struct([("a", pa.int64()), ("b", pa.string())]),
    ),
    (v.object({}), JSON),
    (v.record(v.string(), v.int64()), JSON),
    (v.union(v.literal("a"), v.literal("b")), pa.string()),
    (v.nullable(v.int64()), pa.int64()),
    (v.union(v.string(), v.number()), JSON),
    (v.union(v.int64(), v.number()), JSON),  # int64 is never silently a float
    (
        v.union(
            v.object({"kind": v.literal("text"), "text": v.string()}),
            v.object({"kind": v.literal("tool"), "calls": v.int64()}),
        ),
        pa.struct(
            [("kind", pa.string()), ("text", pa.string()), ("calls", pa.int64())]
        ),
    ),
    (
        v.union(v.array(v.string()), v.array(v.literal("x"))),
        pa.list_(pa.string()),
    ),
]


def schema_of(field):
    return define_schema({"t": define_table({"f": field})})


@pytest.mark.parametrize(("field", "arrow"), KINDS, ids=[str(f) for f, _ in KINDS])
def test_every_validator_kind_has_its_column_type_even_in_an_empty_table(field, arrow):
    with Store.memory(schema_of(field)) as store:
        table = store.table("t").to_arrow()
    assert table.num_rows == 0
    assert table.schema.field("f").type == arrow
    assert table.column_names == ["_id", "_creationTime", "f"]
    assert table.schema.field("_id").type == pa.string()
    assert table.schema.field("_creationTime").type == pa.timestamp("ms", tz="UTC")


@given(validators_with_values())
def test_a_valid_value_never_changes_its_columns_type(pair):
    # The types come from the validator: a document that matches it fills the
    # column without falling back to JSON text, whatever its value.
    validator, value = pair
    document = v.object({"f": validator})
    empty = to_arrow([], validator=document)
    full = to_arrow(
        [{"_id": "x", "_creationTime": 1.0, "f": value}], validator=document
    )
    assert full.schema.field("f").type == empty.schema.field("f").type
    assert full.num_rows == 1
    # pandas and polars take every such table (one conversion path, from Arrow).
    assert len(arrow_to_pandas(full)) == len(arrow_to_polars(full)) == 1
    assert len(arrow_to_pandas(empty)) == len(arrow_to_polars(empty)) == 0
    kind = validator.kind
    got = full.column("f").to_pylist()[0]
    if kind in ("string", "int64", "boolean", "bytes", "null", "id", "literal"):
        assert got == value
    elif kind == "number":
        assert got == value or (math.isnan(got) and math.isnan(value))
    elif kind in ("any", "record"):
        assert loads(got) == value or dumps(loads(got)) == dumps(value)


def test_values_of_every_kind_come_through_typed(store_with_kinds):
    table = store_with_kinds.table("kinds").to_arrow()
    row = table.to_pylist()[0]
    assert row["text"] == "hi"
    assert row["count"] == 2**62  # int64, exact
    assert row["ratio"] == 0.5
    assert row["flag"] is True
    assert row["blob"] == b"\x00\xff"
    assert row["nothing"] is None
    assert row["meta"] == {"depth": 3, "tags": ["a", "b"], "extra": '{"x":[1]}'}
    assert row["counts"] == '{"a":1}'
    assert row["either"] == '"word"'  # a string|number union is JSON text
    assert row["part"] == {"kind": "tool", "text": None, "calls": 2}
    assert row["_creationTime"].tzname() == "UTC"
    second = table.to_pylist()[1]
    assert second["either"] == "1.5"
    assert second["part"] == {"kind": "text", "text": "yo", "calls": None}


@pytest.fixture
def store_with_kinds():
    schema = define_schema(
        {
            "kinds": define_table(
                {
                    "text": v.string(),
                    "count": v.int64(),
                    "ratio": v.number(),
                    "flag": v.boolean(),
                    "blob": v.bytes(),
                    "nothing": v.null(),
                    "maybe": v.optional(v.int64()),
                    "meta": v.object(
                        {
                            "depth": v.int64(),
                            "tags": v.array(v.string()),
                            "extra": v.any(),
                        }
                    ),
                    "counts": v.record(v.string(), v.int64()),
                    "either": v.union(v.string(), v.number()),
                    "part": v.union(
                        v.object({"kind": v.literal("text"), "text": v.string()}),
                        v.object({"kind": v.literal("tool"), "calls": v.int64()}),
                    ),
                }
            )
        }
    )
    common = {
        "ratio": 0.5,
        "flag": True,
        "blob": b"\x00\xff",
        "nothing": None,
        "meta": {"depth": 3, "tags": ["a", "b"], "extra": {"x": [1]}},
        "counts": {"a": 1},
    }
    with Store.memory(schema) as store:
        store.run(
            lambda ctx: [
                ctx.db.insert(
                    "kinds",
                    {
                        **common,
                        "text": "hi",
                        "count": 2**62,
                        "either": "word",
                        "part": {"kind": "tool", "calls": 2},
                    },
                ),
                ctx.db.insert(
                    "kinds",
                    {
                        **common,
                        "text": "yo",
                        "count": 1,
                        "maybe": 7,
                        "either": 1.5,
                        "part": {"kind": "text", "text": "yo"},
                    },
                ),
            ]
        ).unwrap()
        yield store


def test_pandas_keeps_int64_and_uses_nullable_int64_where_null_can_be(store_with_kinds):
    frame = store_with_kinds.table("kinds").to_pandas()
    assert frame["count"].dtype == "int64"
    assert frame["count"].tolist() == [2**62, 1]  # no float rounding
    assert isinstance(frame["maybe"].dtype, pd.Int64Dtype)
    assert frame["maybe"].isna().tolist() == [True, False]
    assert frame["maybe"][1] == 7
    assert str(frame["_creationTime"].dtype) == "datetime64[ms, UTC]"
    assert frame["blob"][0] == b"\x00\xff"
    assert list(frame.columns[:3]) == ["_id", "_creationTime", "text"]


def test_polars_has_the_same_columns_and_types(store_with_kinds):
    frame = store_with_kinds.table("kinds").to_polars()
    assert frame.columns == store_with_kinds.table("kinds").to_arrow().column_names
    assert frame.schema["count"] == pl.Int64
    assert frame.schema["maybe"] == pl.Int64
    assert frame["maybe"].to_list() == [None, 7]
    assert frame.schema["_creationTime"] == pl.Datetime("ms", "UTC")
    assert frame.schema["blob"] == pl.Binary
    assert frame["meta"].struct.field("depth").to_list() == [3, 3]


def test_an_empty_table_is_a_typed_dataframe():
    schema = define_schema(
        {"t": define_table({"n": v.int64(), "m": v.optional(v.int64())})}
    )
    with Store.memory(schema) as store:
        frame = store.table("t").to_pandas()
        polars_frame = store.table("t").to_polars()
    assert list(frame.columns) == ["_id", "_creationTime", "n", "m"]
    assert frame["n"].dtype == "int64"
    assert isinstance(frame["m"].dtype, pd.Int64Dtype)
    assert polars_frame.schema["n"] == pl.Int64
    assert len(frame) == 0


def test_missing_fields_are_null():
    docs: list[dict[str, Any]] = [
        {"_id": "a", "x": 1},
        {"_id": "b", "y": "yes"},
        {"_id": "c"},
    ]
    table = to_arrow(docs)
    assert table.column_names == ["_id", "x", "y"]
    assert table.column("x").to_pylist() == [1, None, None]
    assert table.column("y").to_pylist() == [None, "yes", None]
    assert to_pandas(docs)["x"].dtype == pd.Int64Dtype()
    assert to_polars(docs)["y"].to_list() == [None, "yes", None]


def test_without_a_validator_the_values_decide_and_mixtures_are_json_text():
    docs: list[dict[str, Any]] = [
        {"a": 1, "b": 1.5, "c": {"k": [1]}, "d": "s"},
        {"a": 2, "b": 2.0, "d": 3},
    ]
    table = to_arrow(docs)
    assert table.schema.field("a").type == pa.int64()
    assert table.schema.field("b").type == pa.float64()
    assert table.column("c").to_pylist() == ['{"k":[1]}', None]
    assert table.column("d").to_pylist() == ['"s"', "3"]


def test_query_results_and_an_empty_list_convert():
    assert to_arrow([]).num_columns == 0
    assert to_pandas([]).empty
    assert to_polars([]).is_empty()


def test_a_value_that_breaks_the_column_type_turns_the_column_into_json_text():
    # Written with schema_validation=False: the file holds what the validator
    # does not allow; the column keeps every value rather than failing.
    schema = define_schema(
        {"t": define_table({"n": v.int64()})}, schema_validation=False
    )
    with Store.memory(schema) as store:
        store.run(lambda ctx: ctx.db.insert("t", {"n": "not a number"})).unwrap()
        store.run(lambda ctx: ctx.db.insert("t", {"n": 5})).unwrap()
        table = store.table("t").to_arrow()
    assert table.column("n").to_pylist() == ['"not a number"', "5"]


def test_anything_but_a_dict_is_refused_with_its_position():
    with pytest.raises(TypeError, match=r"item 1 is list"):
        to_arrow(cast("list[dict[str, Any]]", [{"a": 1}, [1, 2]]))


def test_a_missing_extra_is_named():
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "from one_store import to_pandas\n"
        "try:\n"
        "    to_pandas([{'a': 1}])\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e.name, '|', e)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert ran.stdout.startswith("pandas |")
    assert "pip install 'one-store[data]'" in ran.stdout


# --------------------------------------------------------------------------- views

NOTES = define_schema({"notes": define_table({"text": v.string(), "n": v.int64()})})


def add_notes(store, count, start=0):
    store.run(
        lambda ctx: [
            ctx.db.insert("notes", {"text": f"note {i}", "n": i})
            for i in range(start, start + count)
        ]
    ).unwrap()


def test_a_table_view_is_live_and_iterates_in_creation_order():
    with Store.memory(NOTES) as store:
        notes = store.table("notes")
        assert isinstance(notes, TableView)
        assert len(notes) == 0
        assert list(notes) == []
        add_notes(store, 2_500)  # more than one batch of the iterator
        assert len(notes) == 2_500
        seen = [d["n"] for d in notes]
        assert seen == list(range(2_500))
        add_notes(store, 1, start=2_500)
        assert [d["n"] for d in notes.head(2)] == [0, 1]
        assert len(notes.to_arrow()) == 2_501
        times = [d["_creationTime"] for d in notes]
        assert times == sorted(times)


def test_head_returns_documents_and_checks_n():
    with Store.memory(NOTES) as store:
        add_notes(store, 3)
        head = store.table("notes").head()
        assert [d["text"] for d in head] == ["note 0", "note 1", "note 2"]
        assert set(head[0]) == {"_id", "_creationTime", "text", "n"}
        assert store.table("notes").head(0) == []
        with pytest.raises(ValueError, match="head"):
            store.table("notes").head(-1)


def test_an_unknown_table_and_a_closed_store_are_refused():
    store = Store.memory(NOTES)
    with pytest.raises(ContextError, match=r"No table 'note' .*notes"):
        store.table("note")
    view = store.table("notes")
    store.close()
    with pytest.raises(ContextError, match="closed"):
        len(view)
    assert "closed" in repr(view)
    assert "closed" in repr(store)


def test_a_table_without_a_schema_is_viewed_with_inferred_columns():
    with Store.memory() as store:
        store.run(lambda ctx: ctx.db.insert("loose", {"a": 1, "b": [1, "x"]})).unwrap()
        table = store.table("loose").to_arrow()
    assert table.column_names == ["_id", "_creationTime", "a", "b"]
    assert table.column("a").to_pylist() == [1]
    assert table.column("b").to_pylist() == ['[1,"x"]']


# --------------------------------------------------------------------------- display


def test_a_view_shows_its_first_rows_and_its_count_not_the_whole_table():
    with Store.memory(NOTES) as store:
        add_notes(store, 25)
        notes = store.table("notes")
        text = repr(notes)
        html = notes._repr_html_()
        first_id = notes.head(1)[0]["_id"]
    lines = text.splitlines()
    assert lines[0] == "notes: first 10 of 25 documents"
    assert lines[1].split() == ["_id", "_creationTime", "text", "n"]
    assert len(lines) == 12  # caption, header, 10 rows
    assert first_id in text  # IDs whole
    assert " UTC" in lines[2]  # times readable
    assert html.count("<tr>") == 11
    assert "first 10 of 25 documents" in html
    assert first_id in html


def test_a_store_shows_its_tables_and_counts():
    with Store.memory(NOTES) as store:
        add_notes(store, 2)
        assert repr(store).splitlines() == [
            f"Store {store.storage.location!r}",  # ':memory:', or the DSN
            "table  documents",
            "notes  2",
        ]
        assert "<td>notes</td><td>2</td>" in store._repr_html_()


def test_text_in_html_is_escaped():
    with Store.memory(NOTES) as store:
        store.run(lambda ctx: ctx.db.insert("notes", {"text": "<b>x</b>", "n": 1}))
        html = store.table("notes")._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x" not in html


def test_a_problem_and_its_failure_render_in_a_notebook():
    with Store.memory(NOTES) as store:
        failed = store.run(lambda ctx: ctx.db.insert("notes", {"text": 1, "n": 1}))
    assert isinstance(failed, Failure)
    problem = failed.failure()
    html = problem._repr_html_()
    assert html.startswith('<div class="one-store-problem"><strong>DocumentInvalid')
    assert "<th>table</th><td>notes</td>" in html
    assert isinstance(failed, ProblemFailure)
    assert "DocumentInvalid" in failed._repr_html_()


def test_a_page_renders_as_its_first_rows_and_where_it_ends():
    docs = [{"_id": f"id{i}", "_creationTime": 1e12 + i, "n": i} for i in range(12)]
    page = {"page": docs, "isDone": False, "continueCursor": "abc"}
    html = page_html(page)
    assert html is not None
    assert "page: first 10 of 12 documents, more after it; continueCursor abc" in html
    assert html.count("<tr>") == 11
    assert page_html({**page, "isDone": True, "page": docs[:1]}) is not None
    assert "the last page" in (page_html({**page, "isDone": True}) or "")
    assert page_html({"a": 1}) is None  # any other dict displays as before
    assert page_html({**page, "page": [1]}) is None


def test_a_success_shows_its_documents_and_a_failure_its_problem():
    docs = [{"_id": f"id{i}", "n": i} for i in range(3)]
    html = success_html(Success(docs))
    assert html is not None
    assert html.startswith('<table class="one-store"><caption')
    assert "Success: 3 items" in html
    assert "<td>id2</td>" in html
    assert "<pre>{&quot;a&quot;:1}</pre>" in (success_html(Success({"a": 1})) or "")
    failed = result_html(Failure(InvalidId("x", "bad id")), "watch")
    assert "watch: Failure" in failed
    assert "<strong>InvalidId</strong>" in failed


def test_a_watch_renders_its_latest_result():
    @query(args={})
    def listed(ctx, args):
        return ctx.db.query("notes").collect()

    with Store.memory(NOTES) as store, store.watch(listed, {}) as watch:
        add_notes(store, 12)
        html = watch._repr_html_()
    assert html.startswith('<table class="one-store"><caption')
    assert "Watch listed (version" in html
    assert "first 10 of 12 items" in html


def test_pages_are_shown_only_inside_ipython_which_is_never_imported():
    code = (
        "import sys\n"
        "from one_store import Store\n"
        "Store.memory().close()\n"
        "assert 'IPython' not in sys.modules\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# --------------------------------------------------------------------------- read


def test_read_runs_a_query_at_one_snapshot_and_returns_a_result():
    with Store.memory(NOTES) as store:
        add_notes(store, 3)
        got = store.read(lambda ctx: [d["n"] for d in ctx.db.query("notes").collect()])
        assert got == Success([0, 1, 2])
        with pytest.raises(ContextError):
            store.read(lambda ctx: ctx.db.insert("notes", {"text": "x", "n": 1}))
        assert len(store.table("notes")) == 3
        failed = store.read(lambda ctx: {1, 2})  # not a Convex value
        assert isinstance(failed, Failure)
        assert failed.failure().code in ("ReturnsInvalid", "HandlerError")


def test_read_never_waits_for_the_write_lock(tmp_path):
    path = tmp_path / "locked.db"
    with Store.open(path, schema=NOTES, busy_timeout=0.0) as store:
        add_notes(store, 1)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        try:
            written = store.run(
                lambda ctx: ctx.db.insert("notes", {"text": "x", "n": 2})
            )
            assert isinstance(written, Failure)
            assert isinstance(written.failure(), Busy)
            read = store.read(lambda ctx: len(ctx.db.query("notes").collect()))
            assert read == Success(1)
            assert len(store.table("notes")) == 1
        finally:
            other.execute("ROLLBACK")
            other.close()


@given(validators_with_values())
def test_a_validator_reads_back_from_its_json(pair):
    validator, _ = pair
    assert validator_from_json(json.loads(json.dumps(validator.json()))) == validator


def test_a_store_opened_without_its_schema_types_columns_from_the_file(tmp_path):
    path = tmp_path / "typed.db"
    schema = define_schema(
        {
            "t": define_table(
                {"n": v.int64(), "meta": v.object({"a": v.array(v.string())})}
            )
        }
    )
    with Store.open(path, schema=schema) as store:
        store.run(lambda ctx: ctx.db.insert("t", {"n": 1, "meta": {"a": ["x"]}}))
    with Store.open(path, readonly=True) as store:
        table = store.table("t").to_arrow()
    assert table.schema.field("meta").type == pa.struct([("a", pa.list_(pa.string()))])
    assert table.schema.field("n").type == pa.int64()
    # Convex's JSON keeps no field order: the recorded fields read back sorted.
    assert table.column_names == ["_id", "_creationTime", "meta", "n"]
