"""The CLI on PostgreSQL: every command that takes ``--db`` takes a DSN too.

Real subprocesses against a real server (``tests/postgres_server.py``). Moving
between engines: an export of a PostgreSQL database imported into a SQLite
file, and back into another PostgreSQL schema, keeps every document and ID.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from one_store import Store
from tests.acceptance.live_server import live_server

APP = """
from one_store import define_schema, define_table, mutation, query, v

schema = define_schema({
    "notes": define_table({"text": v.string()}).index("by_text", ["text"]),
})
"""
NOTES = """
from one_store import mutation, query, v

@mutation(args={"text": v.string()})
def add(ctx, args):
    return ctx.db.insert("notes", {"text": args["text"]})

@query(args={})
def texts(ctx, args):
    return [n["text"] for n in ctx.db.query("notes").with_index("by_text").collect()]
"""


def in_schema(dsn: str, schema: str) -> str:
    """``dsn`` with its tables in ``schema`` (libpq's ``options``)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{schema}"


def one_store(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "one_store.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "schema.py").write_text(APP)
    (folder / "notes.py").write_text(NOTES)
    return folder


@pytest.fixture
def other_schema(postgres_dsn: str) -> Iterator[str]:
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield name
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def documents(target: str | Path) -> list[dict[str, Any]]:
    with Store.open(target, readonly=True) as store:
        return list(store.documents("notes"))


def test_run_data_export_and_import_take_a_dsn(
    app: Path, postgres_dsn: str, pg_schema: str, other_schema: str, tmp_path: Path
) -> None:
    dsn = in_schema(postgres_dsn, pg_schema)
    for text in ("b", "a"):
        done = one_store(
            "run", app, "notes:add", "--db", dsn, json.dumps({"text": text})
        )
        assert done.returncode == 0, done.stderr
    done = one_store("run", app, "notes:texts", "--db", dsn)
    assert json.loads(done.stdout) == ["a", "b"]
    listing = one_store("data", "--db", dsn, "--json")
    assert listing.returncode == 0, listing.stderr
    assert "notes" in listing.stdout
    zip_path = tmp_path / "snap.zip"
    done = one_store("export", "--db", dsn, "--path", zip_path)
    assert done.returncode == 0, done.stderr
    # PostgreSQL -> SQLite -> another PostgreSQL schema: the same documents.
    lite = tmp_path / "copy.db"
    assert one_store("import", app, "--db", lite, zip_path).returncode == 0
    back = tmp_path / "back.zip"
    assert one_store("export", "--db", lite, "--path", back).returncode == 0
    other = in_schema(postgres_dsn, other_schema)
    done = one_store("import", app, "--db", other, back)
    assert done.returncode == 0, done.stderr
    original = documents(dsn)
    assert len(original) == 2
    assert documents(lite) == original
    assert documents(other) == original


def test_a_wrong_dsn_is_one_line(app: Path) -> None:
    done = one_store(
        "run", app, "notes:texts", "--db", "postgresql://u:pw@127.0.0.1:1/x"
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ")
    assert "pw" not in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_runs_on_a_dsn(app: Path, postgres_dsn: str, pg_schema: str) -> None:
    dsn = in_schema(postgres_dsn, pg_schema)
    with live_server(app, dsn) as (url, _):
        added = httpx.post(
            f"{url}/api/mutation", json={"path": "notes:add", "args": {"text": "hi"}}
        )
        assert added.json()["status"] == "success"
        listed = httpx.post(
            f"{url}/api/query", json={"path": "notes:texts", "args": {}}
        )
        assert listed.json()["value"] == ["hi"]
    assert [d["text"] for d in documents(dsn)] == ["hi"]
