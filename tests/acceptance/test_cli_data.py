"""``one-store data``, run as a real subprocess on a file an app wrote.

No app folder is given: the file keeps its tables and indexes. The terminal is 80
columns wide, where IDs used to be cut.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from one_store import Store, define_schema, define_table, v
from one_store.model.display import format_time

SCHEMA = define_schema(
    {
        "threads": define_table({"title": v.string()}),
        "messages": define_table(
            {
                "threadId": v.id("threads"),
                "role": v.string(),
                "body": v.string(),
                "tokens": v.int64(),
                "blob": v.optional(v.bytes()),
            }
        ).index("by_thread_role", ["threadId", "role"]),
    }
)


def data(*args: str | Path, columns: int = 80) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "one_store.cli.main", "data", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
    )


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    db = tmp_path_factory.mktemp("data") / "chat.db"
    with Store.open(db, schema=SCHEMA) as store:

        def seed(ctx):
            a = ctx.db.insert("threads", {"title": "a"})
            b = ctx.db.insert("threads", {"title": "b"})
            for i, (thread, role) in enumerate(
                [(a, "user"), (a, "assistant"), (b, "user"), (a, "user")]
            ):
                ctx.db.insert(
                    "messages",
                    {
                        "threadId": thread,
                        "role": role,
                        "body": f"message {i} " + "word " * 20,
                        "tokens": 2**53 + i,
                        **({"blob": b"\x01\x02"} if i == 0 else {}),
                    },
                )
            return [a, b]

        threads = store.run(seed).unwrap()
        messages = [d for d in store.table("messages")]
    return db, threads, messages


def test_ids_are_shown_whole_and_times_readable_in_80_columns(chat):
    db, _, messages = chat
    done = data("--db", db, "messages")
    assert done.returncode == 0, done.stderr
    for message in messages:
        assert message["_id"] in done.stdout
    assert format_time(messages[0]["_creationTime"]).split()[0] in done.stdout
    assert "messages (4 of 4)" in done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_json_lines_carry_every_document_as_convex_exports_it(chat):
    db, _, messages = chat
    done = data("--db", db, "messages", "--json", "--limit", "3")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["_id"] for line in lines] == [m["_id"] for m in messages[:3]]
    assert lines[0]["tokens"] == 2**53  # int64 exact
    assert lines[0]["blob"] == {"$bytes": "AQI="}
    listing = data("--db", db, "--json")
    assert [json.loads(line) for line in listing.stdout.splitlines()] == [
        {"table": "messages", "documents": 4},
        {"table": "threads", "documents": 2},
    ]


def test_where_reads_through_an_index(chat):
    db, (a, b), messages = chat
    done = data("--db", db, "messages", "--where", f"threadId={a}", "--json")
    assert done.returncode == 0, done.stderr
    found = [json.loads(line)["_id"] for line in done.stdout.splitlines()]
    in_a = [m for m in messages if m["threadId"] == a]  # in creation order
    # In the index's order (threadId, role, then _creationTime), as Convex reads it.
    assert found == [m["_id"] for m in sorted(in_a, key=lambda m: m["role"])]
    both = data(
        "--db",
        db,
        "messages",
        "--where",
        f"threadId={a}",
        "--where",
        "role=user",
        "--json",
    )
    roles = [json.loads(line)["role"] for line in both.stdout.splitlines()]
    assert roles == ["user", "user"]
    table = data("--db", db, "messages", "--where", f"threadId={b}")
    assert "messages (1 found)" in table.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["messages", "--where", "role=user"], "no index of table 'messages' starts"),
        (["messages", "--where", "body=x"], "by_thread_role (threadId, role)"),
        (["messages", "--where", "nothing"], "--where takes FIELD=VALUE"),
        (["--where", "role=user"], "--where needs a TABLE"),
    ],
)
def test_where_mistakes_are_one_line_errors(chat, args, fragment):
    db, _, _ = chat
    done = data("--db", db, *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ")
    assert fragment in done.stderr
