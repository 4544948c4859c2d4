"""Snapshots that carry stored files: ``_storage`` in the layout of ``npx convex export``.

The layout and rules come from convex-backend ``crates/exports/src/export_storage.rs``
(export) and ``crates/application/src/snapshot_import/import_file_storage.rs``
(import): metadata lines in ``_id`` order with every field, bodies named
``_storage/<_id>[.<ext>]``, IDs kept, SHA-256 checked, a line without a body
dropped, a body without a line imported with defaults.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

from returns.result import Failure

from one_store import MutationCtx, Store, define_schema, define_table, mutation, v
from one_store.model.ids import encode_id
from one_store.snapshot import SnapshotInvalid, export_snapshot, import_snapshot

schema = define_schema(
    {"docs": define_table({"name": v.string(), "file": v.id("_storage")})}
)


@mutation(args={"name": v.string(), "file": v.id("_storage")})
def add(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.db.insert("docs", args)


FILES = [
    (b"\x89PNG\r\n\x1a\n" + os.urandom(2000), "image/png"),
    (b"", None),
    (os.urandom(2 * (1 << 20) + 3), "application/octet-stream"),
    (b"hello", "text/plain; charset=utf-8"),
]


def filled(path: Path) -> tuple[Store, list[str]]:
    store = Store.open(path, schema=schema)
    ids = [store.files.store(data, kind).unwrap() for data, kind in FILES]
    for i, sid in enumerate(ids):
        store.mutation(add, {"name": f"d{i}", "file": sid}).unwrap()
    return store, ids


def zipped(store: Store, include: bool = True) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    export_snapshot(store, buffer, include_file_storage=include)
    buffer.seek(0)
    return zipfile.ZipFile(buffer)


def test_export_writes_convex_s_storage_layout(tmp_path):
    store, ids = filled(tmp_path / "a.db")
    with store, zipped(store) as archive:
        names = archive.namelist()
        lines = archive.read("_storage/documents.jsonl").decode().splitlines()
        meta = [json.loads(line) for line in lines]
        assert [m["_id"] for m in meta] == sorted(ids)
        for m in meta:
            assert list(m) == sorted(m)  # keys sorted, as serde's BTreeMap
            assert set(m) == {
                "_creationTime",
                "_id",
                "contentType",
                "internalId",
                "sha256",
                "size",
            }
            data, kind = FILES[ids.index(m["_id"])]
            assert m["size"] == len(data)
            assert isinstance(m["size"], int)
            assert m["contentType"] == kind  # null when none was given
            assert isinstance(m["_creationTime"], float)
            uuid.UUID(m["internalId"])
            assert str(store.files.get_url(m["_id"]).unwrap()).endswith(m["internalId"])
        assert f"_storage/{ids[0]}.png" in names
        assert f"_storage/{ids[1]}" in names
        assert f"_storage/{ids[3]}.txt" in names
        body = next(n for n in names if n.startswith(f"_storage/{ids[2]}"))
        assert archive.read(body) == FILES[2][0]
        assert names.index("_storage/documents.jsonl") > names.index(
            "docs/documents.jsonl"
        )
        with zipped(store, include=False) as plain:
            assert not [n for n in plain.namelist() if n.startswith("_storage")]


def test_a_round_trip_keeps_ids_and_every_byte(tmp_path):
    source, ids = filled(tmp_path / "a.db")
    with source:
        before = {sid: source.files.metadata(sid).unwrap() for sid in ids}
        buffer = io.BytesIO()
        export_snapshot(source, buffer, include_file_storage=True)
    with Store.open(tmp_path / "b.db", schema=schema) as target:
        summary = import_snapshot(target, io.BytesIO(buffer.getvalue())).unwrap()
        assert summary.tables == {"docs": 4, "_storage": 4}
        for sid, (data, _kind) in zip(ids, FILES, strict=True):
            assert target.files.metadata(sid).unwrap() == before[sid]
            with target.files.open(sid).unwrap() as body:
                got = hashlib.sha256(body.read()).digest()
            assert got == hashlib.sha256(data).digest()
        docs = list(target.documents("docs"))
        assert sorted(str(d["file"]) for d in docs) == sorted(ids)
        # Replacing with the same snapshot keeps every file whole.
        again = import_snapshot(target, io.BytesIO(buffer.getvalue()), mode="replace")
        assert again.unwrap().tables["_storage"] == 4
        assert target.files.get(ids[2]).unwrap() == FILES[2][0]
        assert sorted(target.storage.blobs.names()) == sorted(ids)


def test_a_tampered_body_fails_the_import_and_keeps_nothing(tmp_path):
    source, ids = filled(tmp_path / "a.db")
    with source, zipped(source) as archive:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as bad:
            for info in archive.infolist():
                data = archive.read(info)
                if info.filename.startswith(f"_storage/{ids[0]}"):
                    data = data[:-1] + b"!"
                bad.writestr(info, data)
    with Store.open(tmp_path / "b.db", schema=schema) as target:
        match import_snapshot(target, io.BytesIO(out.getvalue())):
            case Failure(SnapshotInvalid(message=message, table="_storage")):
                assert "sha256 mismatch" in message
            case other:
                raise AssertionError(other)
        assert list(target.documents("docs")) == []
        assert list(target.documents("_storage")) == []
        assert os.listdir(target.storage.blobs.path) == []


def test_a_convex_export_with_its_own_storage_table_number(tmp_path):
    """IDs from a Convex deployment carry its _storage number; they stay valid here."""
    sid = encode_id(28, os.urandom(16))
    orphan_line = encode_id(28, os.urandom(16))  # a line with no body: dropped
    no_line = encode_id(28, os.urandom(16))  # a body with no line: defaults
    digest = hashlib.sha256(b"convex bytes").digest()
    import base64

    meta = [
        {
            "_creationTime": 1.7e12,
            "_id": sid,
            "contentType": "text/csv",
            "internalId": str(uuid.uuid4()),
            "sha256": base64.b64encode(digest).decode(),
            "size": 12,
        },
        {
            "_creationTime": 1.7e12 + 1,
            "_id": orphan_line,
            "contentType": None,
            "internalId": str(uuid.uuid4()),
            "sha256": base64.b64encode(digest).decode(),
            "size": 12,
        },
    ]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(
            "_storage/documents.jsonl", "".join(json.dumps(m) + "\n" for m in meta)
        )
        z.writestr(f"_storage/{sid}.csv", b"convex bytes")
        z.writestr(f"_storage/{no_line}", b"xyz")
    with Store.open(tmp_path / "c.db") as target:
        assert import_snapshot(target, io.BytesIO(out.getvalue())).unwrap().tables == {
            "_storage": 2
        }
        doc = target.files.metadata(sid).unwrap()
        assert doc == {
            "_id": sid,
            "_creationTime": 1.7e12,
            "contentType": "text/csv",
            "sha256": base64.b64encode(digest).decode(),
            "size": 12.0,
        }
        assert target.files.get(no_line).unwrap() == b"xyz"
        assert "contentType" not in (target.files.metadata(no_line).unwrap() or {})
        assert target.files.get(orphan_line).unwrap() is None
        # New files get IDs of the renumbered table, which v.id("_storage") takes.
        fresh = target.files.store(b"new").unwrap()
        assert target.files.get(fresh).unwrap() == b"new"


def test_the_cli_exports_files_with_include_file_storage(tmp_path):
    store, ids = filled(tmp_path / "a.db")
    store.close()
    target = tmp_path / "snap.zip"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "one_store.cli.main",
            "export",
            "--db",
            str(tmp_path / "a.db"),
            "--path",
            str(target),
            "--include-file-storage",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    with zipfile.ZipFile(target) as archive:
        assert len(archive.read("_storage/documents.jsonl").splitlines()) == len(ids)
