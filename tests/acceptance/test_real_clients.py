"""The real Convex clients, unchanged, against a live ``one-store serve``.

- npm ``convex`` ``ConvexHttpClient`` (installed here with ``npm ci`` when
  ``tests/acceptance/js/node_modules`` is missing), driven by ``js/client.mjs``;
- PyPI ``convex`` ``convex.http_client.ConvexHttpClient`` (the dev extra).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from convex import ConvexError, ConvexInt64
from convex.http_client import ConvexExecutionError, ConvexHttpClient

from .live_server import CHAT_APP, HTTP_APP, live_server
from .npm import ensure_packages


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The Node script, with the npm ``convex`` package installed beside it."""
    return ensure_packages() / "client.mjs"


def run_node(script: Path, scenario: str, url: str) -> dict[str, object]:
    done = subprocess.run(
        ["node", str(script), scenario, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def notes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("clients") / "notes.db"
    with live_server(HTTP_APP, db) as (url, _process):
        yield url


# --------------------------------------------------------------------------- npm


@pytest.fixture(scope="module")
def npm_notes(
    node_client: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    db = tmp_path_factory.mktemp("npm") / "notes.db"
    with live_server(HTTP_APP, db) as (url, _process):
        return run_node(node_client, "notes", url)


def test_npm_client_mutation_and_query_round_trip_int64_and_bytes(npm_notes):
    doc = npm_notes["doc"]
    assert isinstance(doc, dict)
    assert doc["_id"] == npm_notes["id"]
    assert doc["count"] == {"bigint": "5"}
    assert doc["blob"] == {"bytes": [1, 2, 3]}
    assert (doc["score"], doc["tags"]) == (1.5, ["a", "b"])


def test_npm_client_special_floats_and_undefined(npm_notes):
    assert npm_notes["echo"] == {
        "min": {"bigint": str(-(2**63))},
        "nan": {"number": "NaN"},
        "negz": {"number": "-0"},
        "inf": {"number": "Infinity"},
        "one": 1,
        "empty": {"bytes": []},
    }


def test_npm_client_action_and_reads(npm_notes):
    action = npm_notes["action"]
    assert isinstance(action, list)
    assert len(action) == 2
    assert npm_notes["texts"] == ["js", "act", "act!"]  # nothing from the failures


def test_npm_client_convex_error_carries_data(npm_notes):
    rejected = npm_notes["rejected"]
    assert isinstance(rejected, dict)
    assert rejected["convexError"] is True
    assert rejected["data"] == {
        "code": {"bigint": "5"},
        "why": "rejected",
        "raw": {"bytes": [1, 2]},
    }


def test_npm_client_cannot_reach_internal_functions(npm_notes):
    for key, path in (
        ("internal", "notes:secret"),
        ("internalQuery", "notes:secret_count"),
    ):
        refused = npm_notes[key]
        assert isinstance(refused, dict)
        assert refused["convexError"] is False
        assert json.loads(str(refused["message"])) == {
            "code": "FunctionNotFound",
            "message": f"Could not find public function for '{path}'.",
        }


def test_npm_client_sees_handler_and_argument_errors(npm_notes):
    assert npm_notes["crash"] == {
        "convexError": False,
        "message": "Uncaught RuntimeError: boom",
        "data": None,
    }
    bad = npm_notes["badArgs"]
    assert isinstance(bad, dict)
    assert str(bad["message"]).startswith("ArgumentValidationError:")


def test_spec_fetch_body_and_npm_client_against_the_chat_app(node_client, tmp_path):
    with live_server(CHAT_APP, tmp_path / "chat.db") as (url, _process):
        result = run_node(node_client, "chat", url)
    fetched = result["fetched"]
    assert isinstance(fetched, dict)
    assert result["status"] == 200
    assert fetched["status"] == "success"
    assert result["artifacts"] == [[fetched["value"], "plan", "# Plan"]]
    assert result["messages"] == [["user", "hi"]]


# --------------------------------------------------------------------------- PyPI


@pytest.fixture(scope="module")
def py_client(notes_server: str) -> ConvexHttpClient:
    return ConvexHttpClient(notes_server)


def test_python_client_round_trips_int64_bytes_and_floats(py_client):
    note_id = py_client.mutation(
        "notes:add",
        {"text": "py", "count": ConvexInt64(5), "blob": b"\x01\x02", "score": 2.0},
    )
    doc = py_client.query("notes:get", {"id": note_id})
    assert doc["count"] == ConvexInt64(5)
    assert (doc["blob"], doc["score"], doc["text"]) == (b"\x01\x02", 2.0, "py")
    echoed = py_client.query(
        "notes:echo", {"n": ConvexInt64(-(2**63)), "b": b"", "i": 3}
    )
    assert echoed == {"n": ConvexInt64(-(2**63)), "b": b"", "i": 3.0}


def test_python_client_action(py_client):
    first, second = py_client.action("notes:add_twice", {"text": "pyact"})
    assert py_client.query("notes:get", {"id": second})["text"] == "pyact!"
    assert py_client.query("notes:get", {"id": first})["text"] == "pyact"


def test_python_client_convex_error_with_data(py_client):
    with pytest.raises(ConvexError) as caught:
        py_client.mutation("notes:reject", {"text": "never"})
    # convex 0.8's http_client hands errorData over undecoded (reference §2.3).
    assert caught.value.data == {
        "code": {"$integer": "BQAAAAAAAAA="},
        "why": "rejected",
        "raw": {"$bytes": "AQI="},
    }


def test_python_client_internal_function_refused(py_client):
    with pytest.raises(
        Exception,
        match=r"404 FunctionNotFound: Could not find public function for 'notes:secret'\.",
    ):
        py_client.mutation("notes:secret", {"text": "leak"})


def test_python_client_handler_error(py_client):
    with pytest.raises(ConvexExecutionError, match="Uncaught RuntimeError: boom"):
        py_client.mutation("notes:crash", {"text": "never"})


# --------------------------------------------------------------------------- files

FILES_APP = Path(__file__).resolve().parent / "apps" / "files_app"


def test_npm_upload_flow_works_unmodified(node_client, tmp_path):
    """Convex's documented upload flow: generateUploadUrl, fetch POST, save the ID."""
    with live_server(FILES_APP, tmp_path / "files.db") as (url, _process):
        out = run_node(node_client, "upload", url)
    assert out["status"] == 200
    assert out["saved"] == [[out["storageId"], "Ada", "image"]]
    assert (out["servedStatus"], out["servedType"]) == (200, "image/png")
    assert out["bytes"] == [137, 80, 78, 71, 13, 10, 26, 10, 1, 2]
    meta = out["plainMeta"]
    assert isinstance(meta, dict)
    assert (meta["size"], meta["contentType"]) == (5, "text/plain;charset=UTF-8")
    assert out["goneStatus"] == 404
