"""The ``one-store`` command, run as a real subprocess."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from one_store import Store, bundled_app

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
@pytest.mark.parametrize("with_app", [True, False], ids=["app", "no-app"])
def test_reading_commands_refuse_a_missing_database_and_create_nothing(
    tmp_path, command, with_app
):
    typo = tmp_path / "typo.db"
    app = [HTTP_APP] if with_app else []
    done = one_store(command[0], *app, "--db", typo, *command[1:])
    assert_one_line_error(done, f"database {str(typo)!r} does not exist")
    assert not typo.exists()


def test_version_is_the_installed_distributions():
    done = one_store("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"one-store {importlib.metadata.version('one-store')}"


@pytest.mark.parametrize(
    ("command", "created"),
    [
        ("serve", True),
        ("run", True),
        ("import", True),
        ("data", False),
        ("export", False),
    ],
)
def test_db_help_says_whether_the_file_is_created(command, created):
    done = one_store(command, "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert ("(created if missing)" in text) == created
    if not created:
        assert "it must exist and is never changed" in text


# ---------------------------------------------------------------- read-only data/export

SCHEMA_A = """
from one_store import define_schema, define_table, v

schema = define_schema({
    "notes": define_table({"text": v.string()}).index("by_text", ["text"]),
})
"""
# B adds a table and an index; C removes the index and keeps only notes.
SCHEMA_B = """
from one_store import define_schema, define_table, v

schema = define_schema({
    "notes": define_table({"text": v.string(), "tag": v.optional(v.string())})
        .index("by_text", ["text"])
        .index("by_tag", ["tag"]),
    "drafts": define_table({"title": v.string()}).index("by_title", ["title"]),
})
"""
SCHEMA_C = """
from one_store import define_schema, define_table, v

schema = define_schema({"notes": define_table({"text": v.string()})})
"""


def app_folder(root: Path, name: str, schema: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "schema.py").write_text(textwrap.dedent(schema))
    return folder


def file_state(db: Path) -> tuple[str, int, int]:
    """The file's SHA-256 and mtime, and the size of its -wal (0 when absent)."""
    wal = Path(f"{db}-wal")
    return (
        hashlib.sha256(db.read_bytes()).hexdigest(),
        db.stat().st_mtime_ns,
        wal.stat().st_size if wal.exists() else 0,
    )


FORMS = {
    "data APP": ["data", "{app}", "--db", "{db}"],
    "data APP TABLE": ["data", "{app}", "--db", "{db}", "notes"],
    "data --app": ["data", "--db", "{db}", "--app", "{app}"],
    "data TABLE --app": ["data", "--db", "{db}", "notes", "--app", "{app}"],
    "data": ["data", "--db", "{db}"],
    "data TABLE": ["data", "--db", "{db}", "notes"],
    "export APP": ["export", "{app}", "--db", "{db}", "--path", "{zip}"],
    "export --app": ["export", "--db", "{db}", "--path", "{zip}", "--app", "{app}"],
    "export": ["export", "--db", "{db}", "--path", "{zip}"],
}


@pytest.mark.parametrize("other", ["adds", "removes"])
@pytest.mark.parametrize("form", list(FORMS))
def test_data_and_export_never_change_the_file(tmp_path, form, other):
    a = app_folder(tmp_path, "a", SCHEMA_A)
    b = app_folder(tmp_path, "b", SCHEMA_B if other == "adds" else SCHEMA_C)
    db, snapshot = tmp_path / "a.db", tmp_path / "out.zip"
    with Store.open(db, app=a) as store:
        note = store.run(lambda ctx: ctx.db.insert("notes", {"text": "kept"})).unwrap()
    before = file_state(db)
    words = [w.format(app=b, db=db, zip=snapshot) for w in FORMS[form]]
    done = one_store(*words)
    assert done.returncode == 0, done.stdout + done.stderr
    assert file_state(db) == before
    if form.startswith("export"):
        lines = zipfile.ZipFile(snapshot).read("notes/documents.jsonl").splitlines()
        assert [json.loads(line)["_id"] for line in lines] == [note]
    elif "TABLE" in form:
        assert note in done.stdout
    else:
        assert "notes" in done.stdout
        assert "drafts" not in done.stdout or "not in the file yet" in done.stdout
    with Store.open(db, readonly=True) as store:  # still A's tables and indexes
        assert set(store.storage.layouts["notes"].indexes) == {
            "by_id",
            "by_creation_time",
            "by_text",
        }
        assert store.storage.tables() == ["notes"]


def test_data_reads_a_file_a_live_store_is_writing(tmp_path):
    db = tmp_path / "live.db"
    with Store.open(db, app=HTTP_APP) as writer:  # its -wal holds the commit
        writer.mutation("notes:add", {"text": "fresh"}).unwrap()
        before = file_state(db)
        assert before[2] > 0
        listing = one_store("data", "--db", db, "notes")
        assert listing.returncode == 0, listing.stderr
        assert "fresh" in listing.stdout
        assert file_state(db) == before


def test_data_with_an_app_marks_the_tables_it_declares(tmp_path):
    a = app_folder(tmp_path, "a", SCHEMA_A)
    b = app_folder(tmp_path, "b", SCHEMA_B)
    db = tmp_path / "a.db"
    with Store.open(db, app=a):
        pass
    done = one_store("data", "--db", db, "--app", b)
    assert done.returncode == 0, done.stderr
    rows = {
        line.split("│")[1].strip(): line
        for line in done.stdout.splitlines()
        if line.startswith("│")
    }
    assert "yes" in rows["notes"]
    assert "not in the file yet" in rows["drafts"]


def test_data_usage_mistakes_exit_2(tmp_path):
    db = tmp_path / "a.db"
    with Store.open(db):
        pass
    assert one_store("data", "--db", db, "a", "b", "--app", HTTP_APP).returncode == 2
    assert one_store("data", "x", "y", "z", "--db", db).returncode == 2
    both = one_store(
        "export", HTTP_APP, "--db", db, "--path", "o.zip", "--app", HTTP_APP
    )
    assert both.returncode == 2


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


def test_serve_prints_an_access_line_per_request(tmp_path):
    lines: list[str] = []
    with live_server(HTTP_APP, tmp_path / "s.db", stderr=lines) as (url, _process):
        ok = httpx.post(
            f"{url}/api/mutation", json={"path": "notes:add", "args": {"text": "x"}}
        )
        assert ok.status_code == 200
        assert httpx.get(f"{url}/no/such/route?q=1").status_code == 404
    log = "".join(lines)
    assert '"POST /api/mutation" 200 ' in log
    assert '"GET /no/such/route?q=1" 404 ' in log
    request_lines = [line for line in lines if '" 200 ' in line or '" 404 ' in line]
    assert len(request_lines) == 2
    for line in request_lines:
        assert line.rstrip().endswith(" ms")
        assert "127.0.0.1:" in line


def test_serve_no_access_log_prints_none(tmp_path):
    lines: list[str] = []
    with live_server(HTTP_APP, tmp_path / "s.db", "--no-access-log", stderr=lines) as (
        url,
        _process,
    ):
        assert httpx.get(f"{url}/files/a").status_code == 200
    assert '"GET /files/a"' not in "".join(lines)


SLOW_APP = {
    "schema.py": """
        from one_store import define_schema, define_table, v

        schema = define_schema({"naps": define_table({"who": v.string()})})
    """,
    "work.py": """
        import time

        from one_store import action, internal_mutation, mutation, query, v


        @internal_mutation(args={"who": v.string()})
        def started(ctx, args):
            ctx.db.insert("naps", {"who": args["who"]})


        @query
        def naps(ctx, args):
            return sorted(n["who"] for n in ctx.db.query("naps").collect())


        @action(args={"who": v.string()})
        def nap(ctx, args):
            ctx.run_mutation("work:started", {"who": args["who"]}).unwrap()
            time.sleep(600)  # far longer than any test waits


        @mutation
        def later(ctx, args):
            ctx.scheduler.run_after(0, "work:nap", {"who": "job"})
    """,
}


def slow_app(root: Path) -> Path:
    folder = root / "slow"
    folder.mkdir()
    for name, text in SLOW_APP.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def test_ctrl_c_stops_serve_at_once_while_a_request_and_a_job_run(tmp_path):
    db = tmp_path / "s.db"
    with live_server(slow_app(tmp_path), db) as (url, process):

        def call_nap() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server goes away
                httpx.post(
                    f"{url}/api/action",
                    json={"path": "work:nap", "args": {"who": "request"}},
                    timeout=600,
                )

        threading.Thread(target=call_nap, daemon=True).start()
        later = httpx.post(
            f"{url}/api/mutation", json={"path": "work:later", "args": {}}
        )
        assert later.json()["status"] == "success"
        for _ in range(600):  # both naps have begun (up to ~60 s on a busy machine)
            answer = httpx.post(
                f"{url}/api/query", json={"path": "work:naps", "args": {}}
            )
            if answer.json()["value"] == ["job", "request"]:
                break
            time.sleep(0.1)
        assert answer.json()["value"] == ["job", "request"]
        process.send_signal(signal.SIGINT)
        # The naps last 600 s; serve must not wait for them (generous bound).
        assert process.wait(timeout=120) == 130
    with Store.open(db, readonly=True) as store:  # committed work is in the file
        assert sorted(str(d["who"]) for d in store.documents("naps")) == [
            "job",
            "request",
        ]


def test_ctrl_c_on_an_idle_serve_closes_the_store(tmp_path):
    db = tmp_path / "s.db"
    with (
        live_server(HTTP_APP, db) as (url, process),
        httpx.Client() as client,  # a keep-alive connection stays open
    ):
        added = client.post(
            f"{url}/api/mutation", json={"path": "notes:add", "args": {"text": "a"}}
        )
        assert added.json()["status"] == "success"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
    assert not Path(f"{db}-wal").exists()  # closed: the WAL was checkpointed
    with Store.open(db, app=HTTP_APP) as store:
        assert [d["text"] for d in store.documents("notes")] == ["a"]


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


def test_demo_runs_and_names_both_files_and_apps(tmp_path):
    done = one_store("demo", "--db", tmp_path / "demo.db", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "demo.db").is_file()
    assert (tmp_path / "demo.chat.db").is_file()
    text = " ".join(done.stdout.split())
    assert "the ONE agent/human system and the agent chat app" in text
    assert f"{tmp_path / 'demo.db'}: the ONE agent/human system" in text
    assert f"{tmp_path / 'demo.chat.db'}: the agent chat app" in text
    assert f"(app folder {bundled_app('one')})" in text
    assert f"(app folder {bundled_app('chat')})" in text
