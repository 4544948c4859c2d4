"""Convex's HTTP API served by a live ``one-store serve`` subprocess, driven with httpx."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .live_server import HTTP_APP, database_digest, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("http") / "api.db"
    with live_server(HTTP_APP, db) as (url, _process):
        yield url, db


@pytest.fixture(scope="module")
def client(server: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def db(server: tuple[str, Path]) -> Path:
    return server[1]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def integer(n: int) -> dict[str, str]:
    return {"$integer": b64(struct.pack("<q", n))}


def call(
    client: httpx.Client, kind: str, path: str, args: object, **extra: object
) -> httpx.Response:
    return client.post(f"/api/{kind}", json={"path": path, "args": args, **extra})


# --------------------------------------------------------------------------- success


def test_print_and_logging_in_a_handler_come_back_as_log_lines(client):
    reply = call(
        client, "query", "notes:chatty", {"tag": "q", "times": integer(2)}
    ).json()
    assert reply == {
        "status": "success",
        "value": "2",  # clean json writes int64 as a string
        "logLines": ["[LOG] q 0", "[LOG] q 1", "[WARN] careful, q"],
    }


def test_log_lines_come_with_errors_too_and_are_left_out_when_empty(client):
    reply = call(client, "action", "notes:chatty_action", {"tag": "a"}).json()
    assert reply["status"] == "error"
    assert reply["logLines"] == [
        "[LOG] action starts",
        "[LOG] a 0",
        "[WARN] careful, a",
    ]
    quiet = call(client, "query", "notes:list", {}).json()
    assert "logLines" not in quiet


def test_concurrent_requests_get_only_their_own_log_lines(client):
    def ask(tag: str) -> list[str]:
        args = {"tag": tag, "times": integer(200)}
        return list(call(client, "query", "notes:chatty", args).json()["logLines"])

    with ThreadPoolExecutor(8) as pool:
        replies = dict(zip("abcdefgh", pool.map(ask, "abcdefgh"), strict=True))
    for tag, lines in replies.items():
        assert lines == [f"[LOG] {tag} {i}" for i in range(200)] + [
            f"[WARN] careful, {tag}"
        ]


def test_mutation_then_query_with_clean_json_by_default(client):
    created = call(
        client,
        "mutation",
        "notes:add",
        {"text": "clean", "count": integer(5), "blob": {"$bytes": "AQID"}, "score": 2},
    )
    assert created.status_code == 200
    note_id = created.json()["value"]
    answer = call(client, "query", "notes:get", {"id": note_id})
    value = answer.json()["value"]
    # clean json: int64 as a decimal string, bytes as plain base64, float keeps ".0"
    assert (value["count"], value["blob"], value["score"]) == ("5", "AQID", 2.0)
    assert '"score":2.0' in answer.text
    assert value["_id"] == note_id
    assert isinstance(value["_creationTime"], float)
    assert "logLines" not in answer.json()


def test_convex_encoded_json_round_trips_every_special_value(client):
    args = {
        "big": integer(-(2**63)),
        "buf": {"$bytes": b64(b"\x00\xff")},
        "nan": {"$float": b64(struct.pack("<d", float("nan")))},
        "negz": {"$float": b64(struct.pack("<d", -0.0))},
        "inf": {"$float": b64(struct.pack("<d", float("-inf")))},
        "one": 1,
        "nested": [{"x": integer(7)}, None, True, "s"],
    }
    answer = call(client, "query", "notes:echo", [args], format="convex_encoded_json")
    assert answer.json() == {"status": "success", "value": {**args, "one": 1.0}}
    assert '"one":1.0' in answer.text  # integral float64 written as Convex does


def test_export_json_format_writes_int64_bare(client):
    answer = call(
        client, "query", "notes:echo", {"n": integer(5), "f": 5}, format="export_json"
    )
    assert answer.text.endswith('"value":{"n":5,"f":5.0}}') or answer.json()[
        "value"
    ] == {"n": 5, "f": 5.0}
    assert '"n":5,' in answer.text or '"n":5}' in answer.text


def test_any_content_type_is_accepted(client):
    body = json.dumps({"path": "notes:add", "args": {"text": "plain"}})
    for headers in (
        {"content-type": "text/plain;charset=UTF-8"},
        {},
        {"content-type": "application/x-www-form-urlencoded"},
    ):
        answer = client.post("/api/mutation", content=body, headers=headers)
        assert answer.json()["status"] == "success"


def test_action_composes_mutations_and_async_actions_run(client):
    ids = call(client, "action", "notes:add_twice", {"text": "act"}).json()["value"]
    assert len(ids) == 2
    texts = [
        call(client, "query", "notes:get", {"id": i}).json()["value"]["text"]
        for i in ids
    ]
    assert texts == ["act", "act!"]
    one = call(client, "action", "notes:add_async", {"text": "async"}).json()
    assert one["status"] == "success"


def test_run_by_url(client):
    listed = client.post("/api/run/notes/list", json={"args": {}})
    assert listed.json()["status"] == "success"
    assert isinstance(listed.json()["value"], list)
    counted = client.post(
        "/api/run/notes/add", json={"args": {"text": "run", "count": integer(3)}}
    )
    note = call(
        client,
        "query",
        "notes:get",
        {"id": counted.json()["value"]},
        format="convex_encoded_json",
    )
    assert note.json()["value"]["count"] == integer(3)


# --------------------------------------------------------------------------- function errors


def test_convex_error_gives_error_data_and_rolls_back(client, db):
    before = database_digest(db)
    answer = call(
        client,
        "mutation",
        "notes:reject",
        {"text": "never"},
        format="convex_encoded_json",
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["status"] == "error"
    assert body["errorData"] == {
        "code": integer(5),
        "why": "rejected",
        "raw": {"$bytes": "AQI="},
    }
    clean = call(client, "mutation", "notes:reject", {"text": "never"}).json()
    assert clean["errorData"] == {"code": "5", "why": "rejected", "raw": "AQI="}
    assert database_digest(db) == before


def test_failure_rejected_with_string_data(client):
    body = call(client, "mutation", "notes:reject_with_failure", {"text": "x"}).json()
    assert (body["status"], body["errorData"], body["errorMessage"]) == (
        "error",
        "plain string data",
        "plain string data",
    )


def test_handler_exception_is_an_error_envelope_without_traceback(client, db):
    before = database_digest(db)
    answer = call(client, "mutation", "notes:crash", {"text": "never"})
    body = answer.json()
    assert answer.status_code == 200
    assert body == {"status": "error", "errorMessage": "Uncaught RuntimeError: boom"}
    assert database_digest(db) == before


def test_library_misuse_in_a_handler_is_an_error_envelope(client):
    body = call(client, "action", "notes:misuse", {}).json()
    assert body["status"] == "error"
    assert body["errorMessage"].startswith(
        "Uncaught ContextError: ctx.db is not available"
    )


def test_http_action_bodies_over_20_mib_are_refused(client):
    answer = client.post("/echo", content=b"x" * (20 * 1024 * 1024 + 1))
    assert answer.status_code == 413
    assert answer.json()["code"] == "PayloadTooLarge"


def test_invalid_args_are_an_error_envelope_and_write_nothing(client, db):
    before = database_digest(db)
    body = call(client, "mutation", "notes:add", {"text": 3}).json()
    assert body["status"] == "error"
    assert body["errorMessage"].startswith("ArgumentValidationError:")
    assert "errorData" not in body
    assert database_digest(db) == before


def test_wrong_kind_is_an_error_envelope(client):
    body = call(client, "mutation", "notes:list", {}).json()
    assert body == {
        "status": "error",
        "errorMessage": "Trying to execute notes:list as Mutation, but it is defined as Query.",
    }


# --------------------------------------------------------------------------- request errors


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "BadJsonBody"),
        (b"\xff\xfe", "BadJsonBody"),
        (b"[1, 2]", "BadJsonBody"),
        (b'{"args": {}}', "BadJsonBody"),
        (b'{"path": 5, "args": {}}', "BadJsonBody"),
        (b'{"path": "notes:list"}', "BadJsonBody"),
        (b'{"path": "notes:list", "args": {"n": NaN}}', "BadJsonBody"),
        (b'{"path": "notes:list", "args": [{}, {}]}', "BadJsonBody"),
        (b'{"path": "notes:echo", "args": {"n": {"$integer": "AQ=="}}}', "BadJsonBody"),
        (b'{"path": "notes:echo", "args": {"$bad": 1}}', "BadJsonBody"),
        (
            b'{"path": "notes:echo", "args": {"a": ' + b"[" * 600 + b"]" * 600 + b"}}",
            "BadJsonBody",
        ),
        (
            b'{"path": "x", "args": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "BadJsonBody",
        ),
        (b'{"path": "notes:list", "args": {}, "format": "xml"}', "BadFormat"),
        (b'{"path": "../notes:list", "args": {}}', "BadConvexFunctionIdentifier"),
        (b'{"path": "notes/../x:list", "args": {}}', "BadConvexFunctionIdentifier"),
        (b'{"path": "", "args": {}}', "BadConvexFunctionIdentifier"),
    ],
)
def test_malformed_requests_get_400_with_code_and_message(client, db, body, code):
    before = database_digest(db)
    answer = client.post("/api/mutation", content=body)
    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert isinstance(answer.json()["message"], str)
    assert answer.json()["message"]
    assert database_digest(db) == before


def test_internal_functions_are_answered_like_unknown_ones(client, db):
    before = database_digest(db)
    internal = call(client, "mutation", "notes:secret", {"text": "leak"})
    missing = call(client, "mutation", "notes:nothing", {"text": "leak"})
    assert internal.status_code == missing.status_code == 404
    assert internal.json() == {
        "code": "FunctionNotFound",
        "message": "Could not find public function for 'notes:secret'.",
    }
    assert missing.json() == {
        "code": "FunctionNotFound",
        "message": "Could not find public function for 'notes:nothing'.",
    }
    assert (
        client.post("/api/run/notes/secret_count", json={"args": {}}).status_code == 404
    )
    assert database_digest(db) == before


def test_run_by_url_needs_module_and_function(client):
    answer = client.post("/api/run/notes", json={"args": {}})
    assert (answer.status_code, answer.json()["code"]) == (400, "MissingIdentifier")


def test_bodies_over_20_mib_are_refused(client, db):
    before = database_digest(db)
    text = "x" * (20 * 1024 * 1024)
    answer = client.post(
        "/api/mutation",
        content=json.dumps({"path": "notes:add", "args": {"text": text}}),
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "PayloadTooLarge"
    assert database_digest(db) == before
    assert call(client, "query", "notes:list", {}).status_code == 200  # still serving


def test_other_methods_and_unknown_api_routes(client):
    assert client.get("/api/query").status_code == 405
    unknown = client.post("/api/nothing", json={})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NotFound")


# --------------------------------------------------------------------------- CORS


def test_cors_preflight_mirrors_origin_and_headers(client):
    answer = client.options(
        "/api/mutation",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,convex-client,authorization",
        },
    )
    assert answer.status_code == 200
    h = answer.headers
    assert h["access-control-allow-origin"] == "http://localhost:5173"
    assert h["access-control-allow-credentials"] == "true"
    assert (
        h["access-control-allow-headers"] == "content-type,convex-client,authorization"
    )
    assert "POST" in h["access-control-allow-methods"]
    assert h["access-control-max-age"] == "86400"


def test_cors_headers_on_api_answers_not_on_http_actions(client):
    origin = {"origin": "http://app.example"}
    api = client.post(
        "/api/query", json={"path": "notes:list", "args": {}}, headers=origin
    )
    assert api.headers["access-control-allow-origin"] == "http://app.example"
    bad = client.post("/api/query", content=b"{", headers=origin)
    assert bad.headers["access-control-allow-origin"] == "http://app.example"
    action = client.get("/files/x", headers=origin)
    assert "access-control-allow-origin" not in action.headers


# --------------------------------------------------------------------------- http.py router


def test_http_routes_exact_then_longest_prefix(client):
    assert client.get("/files/a/b.txt").text == "files:a/b.txt"
    assert client.get("/files/deep/c").text == "deep:c"
    assert client.get("/files/exact").text == "exact"
    assert client.get("/files/deep/").text == "deep:"


def test_http_route_misses_are_404_no_matching_routes(client):
    for method, path in [
        ("GET", "/nowhere"),
        ("PUT", "/notes"),
        ("GET", "/files"),
        ("DELETE", "/echo"),
    ]:
        answer = client.request(method, path)
        assert (answer.status_code, answer.text) == (404, "No matching routes found")
        assert answer.headers["content-type"].startswith("text/plain")


def test_http_action_sees_the_request_and_shapes_the_response(client):
    answer = client.post(
        "/echo?q=1", content=b"\x00raw", headers={"content-type": "application/x-thing"}
    )
    assert answer.status_code == 201
    assert answer.content == b"\x00raw"
    assert answer.headers["x-method"] == "POST"
    assert answer.headers["x-query"] == "1"
    assert answer.headers["x-url"].startswith("http://127.0.0.1:")
    assert answer.headers["x-url"].endswith("/echo?q=1")
    assert answer.headers["content-type"] == "application/x-thing"
    head = client.head("/echo")
    assert (head.status_code, head.content, head.headers["x-method"]) == (
        201,
        b"",
        "GET",
    )


def test_http_action_writes_through_mutations(client):
    created = client.post("/notes", json={"text": "via http"})
    assert created.status_code == 200
    assert "via http" in client.get("/notes").json()
    refused = client.post("/notes", json={"text": 5})
    assert refused.status_code == 400
    assert "error" in refused.json()


def test_http_action_errors_are_500_json_without_traceback(client):
    boom = client.get("/boom")
    assert boom.status_code == 500
    assert boom.json()["data"] == {"why": "nope"}
    crash = client.get("/crash")
    assert crash.status_code == 500
    assert crash.json()["code"].startswith("Server Error")
    assert "Traceback" not in crash.text
    assert ".py" not in crash.text
    wrong = client.get("/not-a-response")
    assert wrong.status_code == 500
    assert "HttpResponse" in wrong.json()["code"]
    assert client.get("/hello?name=Ada").json() == {"hello": "Ada"}


# --------------------------------------------------------------------------- concurrency


def test_concurrent_mutations_never_lose_an_update(server):
    url, _ = server
    n = 40
    with httpx.Client(base_url=url, timeout=60) as c, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: call(c, "mutation", "notes:bump", {"name": "c"}).json(),
                range(n),
            )
        )
        final = call(
            c, "query", "notes:counter", {"name": "c"}, format="convex_encoded_json"
        ).json()
    assert all(a["status"] == "success" for a in answers)
    assert sorted(int(a["value"]) for a in answers) == list(range(1, n + 1))
    assert final["value"] == integer(n)


# --------------------------------------------------------------------------- fuzz

PATHS = st.sampled_from(
    [
        "notes:add",
        "notes:reject",
        "notes:crash",
        "notes:secret",
        "notes:list",
        "x:y",
        "../a:b",
        "notes",
        "",
    ]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=64),
    JSON.map(lambda x: json.dumps(x).encode()),
    st.fixed_dictionaries(
        {"path": PATHS, "args": JSON},
        optional={
            "format": st.sampled_from(["json", "convex_encoded_json", "bogus", 3])
        },
    ).map(lambda x: json.dumps(x).encode()),
)
ENDPOINTS = st.sampled_from(
    ["/api/query", "/api/mutation", "/api/action", "/api/run/notes/add", "/api/run/x"]
)


@settings(max_examples=80)
@given(endpoint=ENDPOINTS, body=BODIES)
def test_fuzz_random_bodies_never_500_and_never_write(client, db, endpoint, body):
    before = database_digest(db)
    answer = client.post(endpoint, content=body)
    assert answer.status_code in (200, 400, 404, 413)
    data = answer.json()
    if answer.status_code == 200:
        assert data["status"] in ("success", "error")
        if data["status"] == "error":
            assert "Traceback" not in data["errorMessage"]
    else:
        assert set(data) == {"code", "message"}
    if not (answer.status_code == 200 and data["status"] == "success"):
        assert database_digest(db) == before
