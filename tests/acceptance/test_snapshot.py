"""Convex snapshot ZIPs: export layout, exact round trips, import modes and refusals."""

from __future__ import annotations

import io
import json
import math
import zipfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from one_store import Store, define_schema, define_table, v
from one_store.model.ids import encode_id
from one_store.snapshot import (
    SnapshotInvalid,
    export_line,
    export_snapshot,
    import_snapshot,
)

from .live_server import HTTP_APP

SCHEMA = define_schema(
    {
        "notes": define_table(
            {
                "text": v.string(),
                "count": v.optional(v.int64()),
                "blob": v.optional(v.bytes()),
                "score": v.optional(v.float64()),
            }
        ).index("by_text", ["text"]),
        "links": define_table({"note": v.id("notes"), "weight": v.number()}),
        "anything": define_table(),
    }
)


def canon(value: Any) -> Any:
    """A form in which 5 != 5.0, NaN == NaN and -0.0 != 0.0: exact equality."""
    if isinstance(value, dict):
        return ("object", sorted((k, canon(x)) for k, x in value.items()))
    if isinstance(value, list):
        return ("array", [canon(x) for x in value])
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    return (type(value).__name__, value)


def everything(store: Store) -> dict[str, Any]:
    return {t: canon(list(store.documents(t))) for t in store.storage.tables()}


def seeded(store: Store) -> dict[str, str]:
    def work(ctx: Any) -> dict[str, str]:
        note = ctx.db.insert(
            "notes", {"text": "a", "count": 5, "blob": b"\x00\x01", "score": 5.0}
        )
        other = ctx.db.insert("notes", {"text": "b", "score": float("nan")})
        ctx.db.insert("links", {"note": note, "weight": -0.0})
        ctx.db.insert(
            "anything",
            {
                "n": 5,
                "f": 5.0,
                "big": -(2**63),
                "inf": float("inf"),
                "nested": [{"x": b""}],
            },
        )
        return {"note": note, "other": other}

    ids: dict[str, str] = store.run(work).unwrap()
    return ids


def zipped(store: Store) -> io.BytesIO:
    buffer = io.BytesIO()
    export_snapshot(store, buffer)
    buffer.seek(0)
    return buffer


def make_zip(files: dict[str, str]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    buffer.seek(0)
    return buffer


# --------------------------------------------------------------------------- export


def test_export_has_convex_layout(tmp_path):
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as store:
        seeded(store)
        summary = export_snapshot(store, tmp_path / "snap.zip")
        numbers = {
            t: store.storage.table_number(t) for t in ("notes", "links", "anything")
        }
    assert summary.tables == {"notes": 2, "links": 1, "anything": 1}
    with zipfile.ZipFile(tmp_path / "snap.zip") as archive:
        names = archive.namelist()
        assert names[:2] == ["README.md", "_tables/documents.jsonl"]
        for table in ("notes", "links", "anything"):
            assert f"{table}/documents.jsonl" in names
            assert archive.read(f"{table}/generated_schema.jsonl") == b'"uniform"\n'
            i = names.index(f"{table}/documents.jsonl")
            assert names[i + 1] == f"{table}/generated_schema.jsonl"
        tables = [
            json.loads(x) for x in archive.read("_tables/documents.jsonl").splitlines()
        ]
        assert tables == [
            {"name": t, "id": n} for t, n in sorted(numbers.items(), key=lambda i: i[1])
        ]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
        note_line = archive.read("notes/documents.jsonl").splitlines()[0].decode()
    fields = json.loads(note_line)
    assert list(fields) == sorted(fields)  # keys sorted, as Convex's BTreeMap
    assert '"count":5,' in note_line  # int64 is a bare integer
    assert '"score":5.0' in note_line  # float64 always has a dot
    assert '"blob":{"$bytes":"AAE="}' in note_line


def test_export_line_matches_convex_export_json():
    doc_id = encode_id(10001, bytes(range(16)))
    line = export_line(
        {
            "_id": doc_id,
            "_creationTime": 1700000000000.5,
            "x": 5.0,
            "n": 5,
            "blob": b"\x01\x02\x03",
        }
    )
    assert (
        line
        == f'{{"_creationTime":1700000000000.5,"_id":"{doc_id}","blob":{{"$bytes":"AQID"}},"n":5,"x":5.0}}'
    )
    special = export_line({"a": float("nan"), "b": -0.0, "c": [float("-inf")]})
    assert (
        special
        == '{"a":{"$float":"AAAAAAAA+H8="},"b":-0.0,"c":[{"$float":"AAAAAAAA8P8="}]}'
    )


# --------------------------------------------------------------------------- round trip


def test_round_trip_reproduces_every_document_and_index(tmp_path):
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as source:
        ids = seeded(source)
        expected = everything(source)
        export_snapshot(source, tmp_path / "snap.zip")
    with Store.open(tmp_path / "b.db", schema=SCHEMA) as target:
        summary = import_snapshot(target, tmp_path / "snap.zip").unwrap()
        assert summary.documents == 4
        assert everything(target) == expected
        found = target.run(
            lambda ctx: (
                ctx.db.query("notes")
                .with_index("by_text", lambda q: q.eq("text", "a"))
                .unique()
            )
        ).unwrap()
        assert found["_id"] == ids["note"]
        assert target.run(lambda ctx: ctx.db.get(ids["other"])).unwrap()["text"] == "b"
        newest = max(
            float(str(d["_creationTime"]))
            for t in target.storage.tables()
            for d in target.documents(t)
        )
        fresh = target.run(
            lambda ctx: ctx.db.get(ctx.db.insert("notes", {"text": "new"}))
        ).unwrap()
        assert fresh["_creationTime"] > newest


def test_import_gives_tables_the_numbers_their_ids_carry(tmp_path):
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as source:
        ids = seeded(source)
        export_snapshot(source, tmp_path / "snap.zip")
        numbers = {t: source.storage.table_number(t) for t in source.storage.tables()}
    reordered = define_schema(
        {name: SCHEMA.tables[name] for name in ("anything", "links", "notes")}
    )
    with Store.open(tmp_path / "b.db", schema=reordered) as target:
        before = {t: target.storage.table_number(t) for t in target.storage.tables()}
        assert before != numbers  # created in another order: other numbers
        import_snapshot(target, tmp_path / "snap.zip").unwrap()
        assert {
            t: target.storage.table_number(t) for t in target.storage.tables()
        } == numbers
        assert target.run(lambda ctx: ctx.db.get(ids["note"])).unwrap()["text"] == "a"
        link = target.run(lambda ctx: ctx.db.query("links").first()).unwrap()
        assert link["note"] == ids["note"]
        # the v.id("notes") reference still validates against the renumbered table
        assert (
            target.run(
                lambda ctx: ctx.db.insert("links", {"note": ids["note"], "weight": 1.0})
            )
            .map(bool)
            .unwrap()
        )


FIELD = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789", min_size=1, max_size=6
).filter(lambda s: not s[0].isdigit())
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.binary(max_size=10)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(FIELD, inner, max_size=4)
    ),
    max_leaves=10,
)
DOCUMENTS = st.lists(st.dictionaries(FIELD, VALUES, max_size=5), max_size=6)


@settings(max_examples=60)
@given(
    docs=DOCUMENTS,
    notes=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=3),
)
def test_round_trip_property(docs, notes):
    with Store.memory(SCHEMA) as source, Store.memory(SCHEMA) as target:

        def insert_all(ctx: Any) -> None:
            for doc in docs:
                ctx.db.insert("anything", doc)
            for n in notes:
                ctx.db.insert("notes", {"text": str(n), "count": n})

        source.run(insert_all).unwrap()
        import_snapshot(target, zipped(source)).unwrap()
        assert everything(target) == everything(source)


# --------------------------------------------------------------------------- modes


def test_default_mode_refuses_non_empty_tables_and_changes_nothing(tmp_path):
    with Store.memory(SCHEMA) as source, Store.memory(SCHEMA) as target:
        seeded(source)
        target.run(lambda ctx: ctx.db.insert("notes", {"text": "mine"})).unwrap()
        before = everything(target)
        result = import_snapshot(target, zipped(source))
        assert isinstance(result, Failure)
        assert "already holds 1 document" in str(result.failure())
        assert "--replace" in str(result.failure())
        assert everything(target) == before


def test_replace_and_append(tmp_path):
    with Store.memory(SCHEMA) as source, Store.memory(SCHEMA) as target:
        seeded(source)
        target.run(lambda ctx: ctx.db.insert("notes", {"text": "mine"})).unwrap()
        import_snapshot(target, zipped(source), mode="replace").unwrap()
        assert everything(target) == everything(source)
        again = import_snapshot(target, zipped(source), mode="append")
        assert isinstance(again, Failure)  # the same IDs again
        assert "duplicate _id" in str(again.failure())
        assert everything(target) == everything(source)
    with (
        Store.memory(SCHEMA) as first,
        Store.memory(SCHEMA) as second,
        Store.memory(SCHEMA) as target,
    ):
        first.run(lambda ctx: ctx.db.insert("anything", {"from": "first"})).unwrap()
        second.run(lambda ctx: ctx.db.insert("anything", {"from": "second"})).unwrap()
        import_snapshot(target, zipped(first)).unwrap()
        import_snapshot(target, zipped(second), mode="append").unwrap()
        assert sorted(str(d["from"]) for d in target.documents("anything")) == [
            "first",
            "second",
        ]


# --------------------------------------------------------------------------- refusals


def test_first_bad_line_is_reported_and_nothing_is_imported():
    good = encode_id(10001, bytes(16))
    files = {
        "_tables/documents.jsonl": '{"name":"notes","id":10001}\n{"name":"anything","id":10003}\n',
        "anything/documents.jsonl": json.dumps(
            {"_id": encode_id(10003), "_creationTime": 1.0, "k": 1}
        )
        + "\n",
        "anything/generated_schema.jsonl": '"uniform"\n',
        "notes/documents.jsonl": "\n".join(
            [
                json.dumps({"_id": good, "_creationTime": 2.0, "text": "fine"}),
                json.dumps(
                    {
                        "_id": encode_id(10001),
                        "_creationTime": 3.0,
                        "text": "bad",
                        "count": 1.5,
                    }
                ),
                json.dumps(
                    {"_id": encode_id(10001), "_creationTime": 4.0, "text": "later"}
                ),
            ]
        )
        + "\n",
        "notes/generated_schema.jsonl": '"uniform"\n',
    }
    with Store.memory(SCHEMA) as target:
        before = everything(target)
        result = import_snapshot(target, make_zip(files))
        assert isinstance(result, Failure)
        problem = result.failure()
        assert (problem.table, problem.line) == ("notes", 2)
        assert str(problem).startswith("notes/documents.jsonl line 2: ")
        assert "v.int64()" in str(problem)
        assert everything(target) == before
        assert target.storage.tables() == ["anything", "links", "notes"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "Expecting"),
        ("[1, 2]", "must be a JSON object"),
        ('{"_id": "nope", "text": "x"}', "not a valid Convex ID"),
        (
            json.dumps({"_id": encode_id(10002, bytes(16)), "text": "x"}),
            "belongs to table number 10002",
        ),
        ('{"text": "x", "_secret": 1}', "starts with an underscore"),
        ('{"text": "x", "count": {"$integer": "AQ=="}}', "8 bytes"),
        ('{"text": "x", "count": 99999999999999999999}', "int64"),
        ('{"text": "x", "_creationTime": "yesterday"}', "_creationTime"),
    ],
)
def test_bad_documents_are_refused_with_their_line(line, message):
    files = {
        "_tables/documents.jsonl": '{"name":"notes","id":10001}\n',
        "notes/documents.jsonl": '{"text": "first"}\n' + line + "\n",
        "notes/generated_schema.jsonl": '"uniform"\n',
    }
    with Store.memory(SCHEMA) as target:
        result = import_snapshot(target, make_zip(files))
        assert isinstance(result, Failure)
        assert (result.failure().table, result.failure().line) == ("notes", 2)
        assert message in result.failure().message
        assert list(target.documents("notes")) == []


def test_duplicate_ids_in_one_file_are_refused():
    same = encode_id(10001, bytes(16))
    files = {
        "notes/documents.jsonl": f'{{"_id": "{same}", "text": "a"}}\n{{"_id": "{same}", "text": "b"}}\n'
    }
    with Store.memory(SCHEMA) as target:
        result = import_snapshot(target, make_zip(files))
        assert isinstance(result, Failure)
        assert result.failure().line == 2
        assert "duplicate _id" in result.failure().message


def test_not_a_zip_and_legacy_schema_are_refused(tmp_path):
    with Store.memory(SCHEMA) as target:
        assert isinstance(import_snapshot(target, io.BytesIO(b"plain text")), Failure)
        legacy = make_zip(
            {
                "notes/documents.jsonl": '{"text": "a"}\n',
                "notes/generated_schema.jsonl": '{"type": "Object"}\n',
            }
        )
        result = import_snapshot(target, legacy)
        assert isinstance(result, Failure)
        assert "uniform" in result.failure().message
        assert list(target.documents("notes")) == []


def test_a_convex_backend_line_imports_with_its_types():
    """The reference's export line of a real backend (table 10001): int64, float64, bytes."""
    doc_id = encode_id(10001, bytes(range(16)))
    files = {
        "README.md": "# Welcome to your Convex snapshot export!\n",
        "_tables/documents.jsonl": '{"name":"messages","id":10001}\n',
        "messages/documents.jsonl": f'{{"_creationTime":1700000000000.5,"_id":"{doc_id}","blob":{{"$bytes":"AQID"}},"n":5,"x":5.0}}\n',
        "messages/generated_schema.jsonl": '"uniform"\n',
        "_storage/documents.jsonl": "",
    }
    with Store.memory() as target:
        import_snapshot(target, make_zip(files)).unwrap()
        (doc,) = target.documents("messages")
        assert canon(doc) == canon(
            {
                "_creationTime": 1700000000000.5,
                "_id": doc_id,
                "blob": b"\x01\x02\x03",
                "n": 5,
                "x": 5.0,
            }
        )
        assert target.storage.table_number("messages") == 10001


def test_without_generated_schema_numbers_are_float64():
    files = {"anything/documents.jsonl": '{"n": 5, "list": [1, 2.5]}\n'}
    with Store.memory(SCHEMA) as target:
        import_snapshot(target, make_zip(files)).unwrap()
        (doc,) = target.documents("anything")
        assert canon({"n": doc["n"], "list": doc["list"]}) == canon(
            {"n": 5.0, "list": [1.0, 2.5]}
        )


def test_progress_reports_every_table():
    class Recorder:
        def __init__(self) -> None:
            self.events: list[tuple[str, int]] = []

        def start(self, description: str, total: int) -> None:
            self.events.append((description, total))

        def advance(self, amount: int) -> None:
            self.events.append(("+", amount))

    with Store.memory(SCHEMA) as source, Store.memory(SCHEMA) as target:
        seeded(source)
        exported, imported = Recorder(), Recorder()
        buffer = io.BytesIO()
        export_snapshot(source, buffer, progress=exported)
        buffer.seek(0)
        import_snapshot(target, buffer, progress=imported).unwrap()
    starts = [e for e in exported.events if e[0] != "+"]
    assert sorted(starts) == [
        ("export anything", 1),
        ("export links", 1),
        ("export notes", 2),
    ]
    assert sum(n for kind, n in exported.events if kind == "+") == 4
    import_totals = {d: t for d, t in imported.events if d != "+"}
    assert set(import_totals) == {"import anything", "import links", "import notes"}
    assert sum(n for kind, n in imported.events if kind == "+") == sum(
        import_totals.values()
    )


def test_app_store_round_trip_through_files(tmp_path):
    with Store.open(tmp_path / "a.db", app=HTTP_APP) as source:
        source.mutation("notes:add", {"text": "app", "count": 7, "blob": b"z"}).unwrap()
        export_snapshot(source, tmp_path / "app.zip")
        expected = everything(source)
    with Store.open(tmp_path / "b.db", app=HTTP_APP) as target:
        assert isinstance(import_snapshot(target, tmp_path / "app.zip"), Success)
        assert everything(target) == expected
        assert isinstance(import_snapshot(target, tmp_path / "missing.zip"), Failure)
        assert SnapshotInvalid("x").code == "SnapshotInvalid"
