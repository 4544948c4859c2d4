"""Moving an app between engines with ``one-store export`` and ``one-store import``.

A SQLite file holding documents and stored files is exported to a snapshot ZIP
(Convex's layout, ``--include-file-storage``), imported into a PostgreSQL
schema, exported from there and imported into a new SQLite file: every
document, every ID and every file's bytes (and SHA-256, content type) survive
both moves. Real subprocesses of the CLI against a real server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from one_store import Store

ROOT = Path(__file__).resolve().parents[2]

SCHEMA = """
from one_store import define_schema, define_table, v

schema = define_schema({
    "docs": define_table({"name": v.string(), "file": v.optional(v.id("_storage"))})
        .index("by_name", ["name"]),
    "tags": define_table({"doc": v.id("docs"), "tag": v.string()}),
})
"""

FILES = [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "image/png"),
    (b"", None),
    (os.urandom((1 << 20) + 17), "application/octet-stream"),  # more than one piece
    ("héllo wörld".encode(), "text/plain; charset=utf-8"),
]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "schema.py").write_text(SCHEMA)
    return folder


def cli(*args: str | Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "one_store.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr


def contents(target: str | Path, app: Path) -> dict[str, Any]:
    """Every document of every table, and every file's metadata and bytes."""
    with Store.open(target, app=app) as store:
        tables = {t: list(store.documents(t)) for t in ("docs", "tags")}
        file_ids = [str(doc["file"]) for doc in tables["docs"] if doc.get("file")]
        files = {
            sid: (store.files.metadata(sid).unwrap(), store.files.get(sid).unwrap())
            for sid in file_ids
        }
    return {"tables": tables, "files": files}


def fill(path: Path, app: Path) -> None:
    with Store.open(path, app=app) as store:
        for i, (data, kind) in enumerate(FILES):
            file_id = store.files.store(data, kind).unwrap()

            def add(ctx: Any, i: int = i, file_id: str = file_id) -> None:
                doc = ctx.db.insert("docs", {"name": f"d{i}", "file": file_id})
                ctx.db.insert("tags", {"doc": doc, "tag": f"t{i}"})

            store.run(add).unwrap()
        store.run(lambda ctx: ctx.db.insert("docs", {"name": "no file"})).unwrap()


def test_sqlite_to_postgresql_and_back_keeps_every_document_id_and_file(
    app: Path, tmp_path: Path, shared_server: Any
):
    source = tmp_path / "source.db"
    fill(source, app)
    there = tmp_path / "there.zip"
    cli("export", "--db", source, "--path", there, "--include-file-storage")
    with shared_server.fresh() as dsn:
        cli("import", app, there, "--db", dsn)
        back = tmp_path / "back.zip"
        cli("export", "--db", dsn, "--path", back, "--include-file-storage")
        on_postgres = contents(dsn, app)
    copy = tmp_path / "copy.db"
    cli("import", app, back, "--db", copy)

    original = contents(source, app)
    assert len(original["tables"]["docs"]) == len(FILES) + 1
    assert len(original["files"]) == len(FILES)
    assert on_postgres == original
    assert contents(copy, app) == original
