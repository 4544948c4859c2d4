"""schema/chat over HTTP on a live server: the spec's fire-and-forget backend call to
``/api/mutation`` and the app's own ``http.py`` routes, with a real HTTP client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from one_store import Store
from one_store.server.http_api import bind, create_app, url_of

from .conftest import CHAT_APP


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """``schema/chat`` on a file, served by uvicorn on a free loopback port."""
    with Store.open(tmp_path / "chat.db", app=CHAT_APP) as store:
        sock = bind("127.0.0.1", 0)
        server = uvicorn.Server(
            uvicorn.Config(create_app(store), log_level="error", lifespan="off")
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
        thread.start()
        try:
            while not server.started and thread.is_alive():
                threading.Event().wait(0.01)
            yield url_of(sock), store
        finally:
            server.should_exit = True
            thread.join()
            sock.close()


def new_thread(store: Store) -> str:
    user = store.mutation("auth:createUser", {"name": "Grace"}).unwrap()
    thread: str = store.mutation(
        "threads:create", {"userId": user, "title": "Trip"}
    ).unwrap()
    return thread


def test_the_spec_backend_call_persists_an_artifact(served: tuple[str, Store]):
    url, store = served
    thread = new_thread(store)
    # Exactly what the spec's backend sends: fetch() with a JSON string body, no
    # Content-Type of its own (so text/plain) and no "format".
    args = {"threadId": thread, "type": "plan", "content": "Day 1 Tokyo"}
    body = json.dumps({"path": "artifacts:create", "args": args})
    response = httpx.post(
        f"{url}/api/mutation",
        content=body,
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "success"
    [artifact] = store.query("artifacts:listByThread", {"threadId": thread}).unwrap()
    assert artifact["_id"] == answer["value"]
    assert (artifact["type"], artifact["content"]) == ("plan", "Day 1 Tokyo")


def test_the_frontend_loads_messages_list_over_the_api(served: tuple[str, Store]):
    url, store = served
    thread = new_thread(store)
    for content in ("hi", "hello"):
        store.mutation(
            "messages:send", {"threadId": thread, "role": "user", "content": content}
        ).unwrap()
    answer = httpx.post(
        f"{url}/api/query", json={"path": "messages:list", "args": {"threadId": thread}}
    ).json()
    assert answer["status"] == "success"
    assert [m["content"] for m in answer["value"]] == ["hi", "hello"]


def test_a_refused_call_is_an_error_envelope_with_the_message(
    served: tuple[str, Store],
):
    url, store = served
    thread = new_thread(store)
    store.mutation("threads:archive", {"threadId": thread}).unwrap()
    answer = httpx.post(
        f"{url}/api/mutation",
        json={
            "path": "artifacts:create",
            "args": {"threadId": thread, "type": "plan", "content": "x"},
        },
    ).json()
    assert answer["status"] == "error"
    assert "Thread 'Trip' is archived" in answer["errorMessage"]
    assert store.query("artifacts:listByThread", {"threadId": thread}).unwrap() == []


def test_http_routes_of_the_app(served: tuple[str, Store]):
    url, store = served
    thread = new_thread(store)
    posted = httpx.post(
        f"{url}/messages",
        json={"threadId": thread, "role": "assistant", "content": "A plan"},
    )
    assert posted.status_code == 200
    message_id = posted.json()["id"]
    artifact = httpx.post(
        f"{url}/artifacts", json={"threadId": thread, "type": "report", "content": "r"}
    )
    assert artifact.status_code == 200
    listed = httpx.get(f"{url}/threads/{thread}/messages")
    assert listed.status_code == 200
    assert [m["_id"] for m in listed.json()["messages"]] == [message_id]
    assert (
        store.query("artifacts:get", {"artifactId": artifact.json()["id"]}).unwrap()[
            "content"
        ]
        == "r"
    )


def test_http_routes_answer_bad_input_with_400(served: tuple[str, Store]):
    url, store = served
    thread = new_thread(store)
    not_json = httpx.post(f"{url}/messages", content=b"{nope")
    assert not_json.status_code == 400
    assert not_json.json() == {"error": "Body must be a JSON object"}
    bad_role = httpx.post(
        f"{url}/messages", json={"threadId": thread, "role": 7, "content": "x"}
    )
    assert bad_role.status_code == 400
    assert ".role" in bad_role.json()["error"]
    wrong_shape = httpx.get(f"{url}/threads/{thread}")
    assert wrong_shape.status_code == 404
    assert store.query("messages:list", {"threadId": thread}).unwrap() == []
