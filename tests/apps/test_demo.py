"""Tests for one_store.cli.demo: the `one-store demo` scenario on real files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from one_store import Store, bundled_app
from one_store.cli.demo import chat_path, run_demo

ONE_APP, CHAT_APP = bundled_app("one"), bundled_app("chat")


def record(db: Path) -> tuple[int, str]:
    console = Console(record=True, width=140, color_system=None)
    code = run_demo(db, console)
    return code, console.export_text()


def test_demo_runs_and_runs_again_on_the_same_files(tmp_path: Path):
    db = tmp_path / "demo.db"
    code, first = record(db)
    assert code == 0, first
    assert "ONE agent/human system — run #1" in first
    assert "Agent chat app — run #1" in first
    assert "walked by flows:advance → completed" in first
    assert "Approval request is already approved" in first
    assert "Path: .kind" in first
    assert "Path: .role" in first
    # The retrieval step: the lesson sharing the question's words comes first.
    retrieval = first.split("lessons:relatedLessons", 1)[1]
    assert retrieval.index("Link every source") < retrieval.index("Trust primary")
    # Two users signed in; the second sees nothing of the first one's thread.
    assert re.search(r"threads:get\(Ada's thread\)\s*│ None", first)
    assert "messages:send to another user's thread" in first
    assert "Thread not found" in first
    code, second = record(db)
    assert code == 0, second
    assert "run #2" in second
    with Store.open(db, app=ONE_APP) as one:
        flows = one.query("flows:listFlows", {}).unwrap()
        assert [f["status"] for f in flows] == ["completed", "completed"]
        assert len(one.query("agents:listAgents", {}).unwrap()) == 3  # reused
        assert len(one.query("users:listUsers", {}).unwrap()) == 1
        lessons = one.query("lessons:listLessons", {}).unwrap()
        assert [x["title"] for x in lessons].count("Link every source") == 1
    with Store.open(chat_path(db), app=CHAT_APP) as chat:
        [user] = [u for u in chat.documents("users") if u.get("name") == "Grace"]
        threads = chat.query("threads:list", {"userId": user["_id"]}).unwrap()
        assert [t["title"] for t in threads] == ["Trip to Japan #2", "Trip to Japan #1"]
        for thread in threads:
            [approval] = chat.query(
                "approvals:listByThread", {"threadId": thread["_id"]}
            ).unwrap()
            assert approval["status"] == "approved"


def test_chat_file_sits_beside_the_given_file():
    assert chat_path(Path("/data/one_store_demo.db")) == Path(
        "/data/one_store_demo.chat.db"
    )
    assert chat_path(Path("demo")) == Path("demo.chat.db")


def test_demo_without_a_copy_of_the_apps_says_so(tmp_path: Path):
    # An installation that carries neither schema/ nor one_store/_apps.
    package = Path(__file__).resolve().parents[2] / "one_store"
    shutil.copytree(
        package,
        tmp_path / "site" / "one_store",
        ignore=shutil.ignore_patterns("__pycache__", "_apps"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "one_store.cli.main", "demo", "--db", "demo.db"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site"), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "has no copy of the 'one' app" in done.stdout
    assert not (tmp_path / "demo.db").exists()


def test_demo_says_what_the_two_apps_are_and_where_they_live(tmp_path: Path):
    code, text = record(tmp_path / "demo.db")
    assert code == 0, text
    flat = " ".join(text.split())
    assert flat.startswith(
        "The two apps one_store was built from, the ONE agent/human system and "
        f"the agent chat app, each on its own file: {tmp_path / 'demo.db'} and "
        f"{tmp_path / 'demo.chat.db'}."
    )
    assert f"(app folder {ONE_APP})" in flat
    assert f"(app folder {CHAT_APP})" in flat
    assert "schema/one)" not in flat.replace(str(ONE_APP), "")


def test_demo_on_a_file_of_another_app_reports_it_and_changes_nothing(tmp_path: Path):
    db = tmp_path / "theirs.db"
    with Store.open(db, app=CHAT_APP) as chat:
        chat.mutation("auth:createUser", {"email": "x@example.com"}).unwrap()
    code, text = record(db)
    assert code == 1
    assert "Could not open the demo files" in text
    assert "users" in text
    with Store.open(db, app=CHAT_APP) as chat:
        assert [u["email"] for u in chat.documents("users")] == ["x@example.com"]
        assert list(chat.documents("threads")) == []
