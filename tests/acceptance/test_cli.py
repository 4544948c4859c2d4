"""The ``one-store`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from one_store import Store

from .live_server import HTTP_APP, live_server

COMMANDS = ["demo", "serve", "run", "data", "export", "import", "describe"]


def one_store(
    *args: str | Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "one_store.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def assert_one_line_error(
    done: subprocess.CompletedProcess[str], *fragments: str
) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "one-store"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    done = one_store(command, "--help")
    assert done.returncode == 0
    assert "Usage:" in done.stdout
    assert command in done.stdout


def test_describe_prints_tables_indexes_functions_and_routes():
    done = one_store("describe", HTTP_APP)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "table notes" in out
    assert "v.optional(v.int64())" in out
    assert "index by_text: text" in out
    assert "mutation" in out
    assert 'notes:get(id: v.id("notes")) -> any' in out
    assert "internal mutation" in out
    assert "notes:secret(text: v.string())" in out
    assert "/files/deep/*" in out


@pytest.mark.parametrize(
    "command", [["data"], ["export", "--path", "out.zip"]], ids=["data", "export"]
)
def test_reading_commands_refuse_a_missing_database_and_create_nothing(
    tmp_path, command
):
    typo = tmp_path / "typo.db"
    done = one_store(command[0], HTTP_APP, "--db", typo, *command[1:])
    assert_one_line_error(done, f"database {str(typo)!r} does not exist")
    assert not typo.exists()


def test_run_then_data(tmp_path):
    db = tmp_path / "cli.db"
    created = one_store(
        "run",
        HTTP_APP,
        "notes:add",
        '{"text": "hello", "count": {"$integer": "BQAAAAAAAAA="}}',
        "--db",
        db,
    )
    assert created.returncode == 0, created.stderr
    note_id = json.loads(created.stdout)
    fetched = one_store(
        "run", HTTP_APP, "notes:get", json.dumps({"id": note_id}), "--db", db
    )
    assert json.loads(fetched.stdout)["count"] == 5  # export_json: int64 bare
    assert (
        json.loads(one_store("run", HTTP_APP, "notes:secret_count", "--db", db).stdout)
        == 1
    )
    listing = one_store("data", HTTP_APP, "--db", db)
    assert listing.returncode == 0
    assert "notes" in listing.stdout
    assert "counters" in listing.stdout
    rows = one_store("data", HTTP_APP, "notes", "--db", db)
    assert note_id in rows.stdout
    assert "hello" in rows.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ["run", HTTP_APP, "notes:nothing"],
            ["Could not find public function for 'notes:nothing'"],
        ),
        (["run", HTTP_APP, "notes:add", "{bad"], ["ARGS is not valid JSON"]),
        (
            ["run", HTTP_APP, "notes:add", '{"text": 1}'],
            ["ArgumentValidationError", "Path: .text"],
        ),
        (["run", HTTP_APP, "notes:reject", '{"text": "x"}'], ["rejected"]),
        (
            ["run", HTTP_APP, "notes:crash", '{"text": "x"}'],
            ["Uncaught RuntimeError: boom"],
        ),
        (["data", HTTP_APP, "nothing"], ["no table 'nothing'"]),
        (["data", "no/such/app"], ["app folder 'no/such/app' does not exist"]),
        (["import", HTTP_APP, "missing.zip"], ["does not exist"]),
    ],
)
def test_errors_are_one_line_and_exit_1(tmp_path, args, fragments):
    db = tmp_path / "e.db"
    db.touch()  # an empty file is an empty SQLite database
    assert_one_line_error(one_store(*args, "--db", db), *fragments)


def test_describe_of_a_missing_folder():
    assert_one_line_error(one_store("describe", "no/such/app"), "does not exist")


def test_usage_mistakes_exit_2():
    done = one_store("run")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_a_broken_app_is_one_line(tmp_path):
    app = tmp_path / "broken"
    app.mkdir()
    (app / "schema.py").write_text("raise ImportError('no such thing')\n")
    assert_one_line_error(
        one_store("describe", app), "cannot load app", "no such thing"
    )
    (tmp_path / "b.db").touch()
    assert_one_line_error(
        one_store("data", app, "--db", tmp_path / "b.db"), "no such thing"
    )


def test_export_then_import_with_modes(tmp_path):
    source, target, snapshot = (
        tmp_path / "a.db",
        tmp_path / "b.db",
        tmp_path / "snap.zip",
    )
    one_store("run", HTTP_APP, "notes:add", '{"text": "one"}', "--db", source)
    one_store("run", HTTP_APP, "notes:add", '{"text": "two"}', "--db", source)
    exported = one_store("export", HTTP_APP, "--db", source, "--path", snapshot)
    assert exported.returncode == 0, exported.stderr
    assert "Exported 2 documents" in exported.stdout
    assert "notes/documents.jsonl" in zipfile.ZipFile(snapshot).namelist()
    imported = one_store("import", HTTP_APP, "--db", target, snapshot)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 2 documents" in imported.stdout
    assert_one_line_error(
        one_store("import", HTTP_APP, "--db", target, snapshot),
        "nothing imported",
        "--replace",
    )
    assert (
        one_store("import", HTTP_APP, "--db", target, snapshot, "--replace").returncode
        == 0
    )
    assert_one_line_error(
        one_store("import", HTTP_APP, "--db", target, snapshot, "--append"),
        "duplicate _id",
    )
    assert_one_line_error(
        one_store(
            "import", HTTP_APP, "--db", target, snapshot, "--append", "--replace"
        ),
        "exclude each other",
    )
    with Store.open(target, app=HTTP_APP) as store:
        assert sorted(str(d["text"]) for d in store.documents("notes")) == [
            "one",
            "two",
        ]


def test_serve_stops_cleanly_on_sigterm(tmp_path):
    db = tmp_path / "s.db"
    with live_server(HTTP_APP, db) as (url, process):
        note = httpx.post(
            f"{url}/api/mutation", json={"path": "notes:add", "args": {"text": "kept"}}
        )
        assert note.json()["status"] == "success"
    assert process.returncode == 0
    assert not Path(f"{db}-wal").exists()  # the store was closed: WAL checkpointed
    with Store.open(db, app=HTTP_APP) as store:
        assert [d["text"] for d in store.documents("notes")] == ["kept"]


def texts(url: str) -> list[str]:
    answer = httpx.post(
        f"{url}/api/query", json={"path": "notes:list", "args": {}}, timeout=30
    )
    return [note["text"] for note in answer.json()["value"]]


def test_serve_runs_scheduled_functions_as_a_deployment_does(tmp_path):
    with live_server(HTTP_APP, tmp_path / "s.db") as (url, _process):
        scheduled = httpx.post(
            f"{url}/api/mutation",
            json={"path": "notes:addLater", "args": {"text": "later"}},
            timeout=30,
        )
        assert scheduled.json()["status"] == "success"
        for _ in range(300):  # the worker polls; wait up to ~30 s on a busy machine
            if texts(url):
                break
            time.sleep(0.1)
        assert texts(url) == ["later"]


def test_serve_no_scheduler_leaves_jobs_to_another_process(tmp_path):
    db = tmp_path / "s.db"
    with live_server(HTTP_APP, db, "--no-scheduler") as (url, _process):
        httpx.post(
            f"{url}/api/mutation",
            json={"path": "notes:addLater", "args": {"text": "later"}},
            timeout=30,
        )
        time.sleep(1.5)  # three poll intervals of a worker, had one been started
        assert texts(url) == []
    with Store.open(db, app=HTTP_APP) as store:
        assert store.scheduler.run_due() == 1
        assert [d["text"] for d in store.documents("notes")] == ["later"]


def test_serve_binds_loopback_and_reports_a_busy_port(tmp_path):
    with live_server(HTTP_APP, tmp_path / "s.db") as (url, _process):
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        busy = one_store(
            "serve", HTTP_APP, "--db", tmp_path / "t.db", "--port", str(port)
        )
    assert_one_line_error(busy, f"cannot listen on 127.0.0.1:{port}")


def test_demo_runs(tmp_path):
    done = one_store("demo", "--db", tmp_path / "demo.db", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "demo.db").is_file()
