"""The lean path of Convex's function calls (``one_store.server.call_endpoint``).

``POST /api/query|mutation|action|run`` is answered before Starlette's router,
queries and mutations on the event loop's thread, actions on worker threads.
These tests pin what that path must keep: actions never hold up other calls,
an internal function stays hidden whoever called it first, request bodies in
any framing, the order of a request's checks, and answers on one keep-alive
connection with exact lengths, as ``test_http_api.py`` does for the rest.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from .live_server import HTTP_APP, live_server

ADMIN_KEY = "one-store|" + "ab" * 32


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("calls") / "calls.db"
    with live_server(HTTP_APP, db, env={"ONE_STORE_ADMIN_KEY": ADMIN_KEY}) as (
        found,
        _process,
    ):
        yield found


def post(url: str, route: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{route}", json=body, headers=headers, timeout=60)


def test_a_waiting_action_does_not_hold_up_queries_and_mutations(url):
    # The action waits until counter "release" exists; only a mutation sent over
    # HTTP while it waits creates it. Were actions run on the event loop's thread,
    # that mutation would be answered only after the action gave up (False).
    waited: list[object] = []

    def wait() -> None:
        body = {"path": "notes:wait_for_counter", "args": {"name": "release"}}
        waited.append(post(url, "/api/action", body).json())

    waiter = threading.Thread(target=wait)
    waiter.start()
    listed = post(url, "/api/query", {"path": "notes:list", "args": {}})
    assert listed.json()["status"] == "success"
    bumped = post(
        url, "/api/mutation", {"path": "notes:bump", "args": {"name": "release"}}
    )
    assert bumped.json() == {"status": "success", "value": "1"}
    waiter.join(120)
    assert waited == [{"status": "success", "value": True}]


@pytest.mark.parametrize("admin_first", [True, False])
def test_an_internal_function_stays_hidden_whoever_called_it_first(url, admin_first):
    admin = {"authorization": f"Convex {ADMIN_KEY}"}
    body = {"path": "notes:secret_count", "args": {}}
    calls = [admin, {}] if admin_first else [{}, admin]
    answers = [post(url, "/api/query", body, **headers) for headers in calls]
    by_admin, by_anyone = answers if admin_first else answers[::-1]
    assert by_admin.status_code == 200
    assert by_admin.json()["status"] == "success"
    assert by_anyone.status_code == 404
    assert by_anyone.json()["code"] == "FunctionNotFound"
    # ?adminKey= makes an admin too, when there is no Authorization header.
    by_param = post(url, f"/api/query?adminKey={ADMIN_KEY}", body)
    assert by_param.json()["status"] == "success"


def test_a_chunked_request_body_is_read_whole(url):
    text = "chunked " * 5000  # ~40 KB over several chunks
    body = json.dumps({"path": "notes:add", "args": {"text": text}}).encode()
    parts = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    added = httpx.post(f"{url}/api/mutation", content=iter(parts), timeout=60)
    assert "content-length" not in added.request.headers  # sent chunked
    note_id = added.json()["value"]
    got = post(url, "/api/query", {"path": "notes:get", "args": {"id": note_id}})
    assert got.json()["value"]["text"] == text


def test_run_by_url_checks_credentials_and_body_before_the_url(url):
    # Convex's public_function_post_with_path (local_backend's public_api.rs):
    # the Authorization header and the JSON body are extracted and the caller
    # authenticated before the URL is split into a module and a function.
    bad_header = post(url, "/api/run/only", {"args": {}}, authorization="Basic abcdef")
    assert (bad_header.status_code, bad_header.json()["code"]) == (
        400,
        "InvalidAdminKey",
    )
    bad_body = httpx.post(f"{url}/api/run/only", content=b"{not json", timeout=60)
    assert (bad_body.status_code, bad_body.json()["code"]) == (400, "BadJsonBody")
    bad_url = post(url, "/api/run/only", {"args": {}})
    assert (bad_url.status_code, bad_url.json()["code"]) == (400, "MissingIdentifier")


def test_one_keep_alive_connection_answers_every_kind_of_call(url):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    calls = [
        ("/api/mutation", {"path": "notes:add", "args": {"text": "kept alive"}}, 200),
        ("/api/query", {"path": "notes:list", "args": {}}, 200),
        ("/api/action", {"path": "notes:add_twice", "args": {"text": "a"}}, 200),
        ("/api/run/notes/list", {"args": {}}, 200),
        ("/api/query", {"path": "notes:nothing", "args": {}}, 404),
        ("/api/query", {"path": "notes:list"}, 400),
        ("/api/mutation", {"path": "notes:list", "args": {}}, 200),  # wrong kind
    ]
    try:
        for route, body, status in calls * 20:
            connection.request(
                "POST", route, json.dumps(body), {"origin": "https://app.example"}
            )
            reply = connection.getresponse()
            content = reply.read()
            assert reply.status == status
            assert int(reply.headers["content-length"]) == len(content)
            assert reply.headers["content-type"] == "application/json"
            assert reply.headers["access-control-allow-origin"] == "https://app.example"
            answer = json.loads(content)
            assert ("status" in answer) == (status == 200)
            assert not reply.will_close
    finally:
        connection.close()


def test_a_client_that_leaves_mid_body_writes_nothing(url):
    parts = urlsplit(url)
    before = post(url, "/api/query", {"path": "notes:list", "args": {}}).json()
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
    body = json.dumps({"path": "notes:add", "args": {"text": "never"}}).encode()
    connection.putrequest("POST", "/api/mutation")
    connection.putheader("content-length", str(len(body)))
    connection.endheaders(body[:10])  # then goes away
    connection.close()
    after = post(url, "/api/query", {"path": "notes:list", "args": {}}).json()
    assert after == before
