"""The real Convex clients, unchanged, on the sync protocol of a live ``one-store serve``.

- npm ``ConvexClient`` (``convex/browser``, with ``ws``) under Node, driven by
  ``js/sync.mjs``: ``onUpdate``, ``mutation``, ``action``, ``close``, and a
  reconnect after the server restarts on the same file and port;
- npm ``ConvexReactClient`` with ``useQuery`` in headless Chromium: a page
  bundled from npm packages (``js/page``), read through the DevTools protocol;
- PyPI ``convex.ConvexClient``: ``query``, ``subscribe``, ``mutation``, ``action``.

Each server is ``one-store serve`` in a subprocess, started here and stopped at
the end. Waits are for a value to arrive (with a generous deadline), never a
measured time.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from convex import ConvexClient, ConvexError

from .live_server import CHAT_APP, HTTP_APP, live_server
from .npm import ensure_packages

DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def backend_fetch(url: str, path: str, args: dict[str, Any]) -> Any:
    """The chat spec's backend: a plain fetch to /api/mutation, text/plain, no format."""
    answer = httpx.post(
        f"{url}/api/mutation",
        content=json.dumps({"path": path, "args": args}),
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    body = answer.json()
    assert body["status"] == "success", body
    return body["value"]


def until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def chat_thread(url: str, *messages: str) -> str:
    user = backend_fetch(url, "auth:createUser", {"name": "Ada"})
    thread = backend_fetch(url, "threads:create", {"userId": user, "title": "Live"})
    for text in messages:
        backend_fetch(
            url, "messages:send", {"threadId": thread, "role": "user", "content": text}
        )
    return str(thread)


def contents(value: Any) -> list[str]:
    return [m["content"] for m in value]


# --------------------------------------------------------------------------- npm


class NodeClient:
    """``node js/sync.mjs URL``: commands on stdin, answers and events on stdout."""

    def __init__(self, js: Path, url: str) -> None:
        self.process = subprocess.Popen(
            ["node", str(js / "sync.mjs"), url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.ids = iter(range(1, 10**6))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def _next(self, deadline: float) -> dict[str, Any]:
        try:
            return self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            assert self.process.stderr is not None
            raise AssertionError("the npm client said nothing in time") from None

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        command_id = next(self.ids)
        assert self.process.stdin is not None
        self.process.stdin.write(
            json.dumps({"id": command_id, "op": op, **fields}) + "\n"
        )
        self.process.stdin.flush()
        deadline = time.monotonic() + DEADLINE
        while True:
            line = self._next(deadline)
            if line.get("id") == command_id:
                return line
            self.events.append(line)

    def update(self, sub: str, check: Callable[[Any], bool]) -> Any:
        """The first update of ``sub`` (seen or to come) whose value passes ``check``."""
        return self.event(sub, "update", lambda e: check(e["value"]))["value"]

    def event(
        self, sub: str, kind: str, check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        """The first ``kind`` event of ``sub`` (seen or to come) that passes ``check``."""
        deadline = time.monotonic() + DEADLINE
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("sub") == sub and event["event"] == kind and check(event):
                    return event
            seen = len(self.events)
            self.events.append(self._next(deadline))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def js() -> Path:
    return ensure_packages()


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("chat") / "chat.db"
    with live_server(CHAT_APP, db) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("notes") / "notes.db"
    with live_server(HTTP_APP, db) as (url, _process):
        yield url


def test_npm_client_on_update_mutation_and_close(js, chat):
    thread = chat_thread(chat, "hello")
    node = NodeClient(js, chat)
    try:
        node.call(
            "subscribe", sub="list", path="messages:list", args={"threadId": thread}
        )
        assert contents(node.update("list", bool)) == ["hello"]
        sent = node.call(
            "mutation",
            path="messages:send",
            args={"threadId": thread, "role": "user", "content": "over the socket"},
        )
        assert isinstance(sent["ok"], str)
        # Convex's promise resolves at the Transition that carries the write.
        assert contents(sent["seen"]["list"]) == ["hello", "over the socket"]
        backend_fetch(
            chat,
            "messages:send",
            {"threadId": thread, "role": "agent", "content": "from the backend"},
        )
        latest = node.update("list", lambda v: len(v) == 3)
        assert contents(latest)[-1] == "from the backend"
        refused = node.call("mutation", path="messages:send", args={"threadId": thread})
        assert refused["error"].startswith("[CONVEX M(messages:send)]")
        assert "ArgumentValidationError" in refused["error"]
        assert node.call("close")["ok"] is True
        assert node.process.wait(10) == 0
    finally:
        node.stop()


def test_npm_client_action_and_query_errors(js, notes):
    node = NodeClient(js, notes)
    try:
        done = node.call("action", path="notes:add_twice", args={"text": "act"})
        assert len(done["ok"]) == 2
        texts = node.call("query", path="notes:list", args={})["ok"]
        assert [n["text"] for n in texts][-2:] == ["act", "act!"]
        rejected = node.call("mutation", path="notes:reject", args={"text": "no"})
        assert rejected["convexError"] is True
        assert rejected["data"]["why"] == "rejected"
        node.call("subscribe", sub="missing", path="notes:secret_count", args={})
        # onError, as Convex calls it for a QueryFailed; the client lives on.
        missing = node.event("missing", "error", lambda _: True)
        assert missing["message"].startswith("[CONVEX Q(notes:secret_count)]")
        assert (
            "Could not find public function for 'notes:secret_count'"
            in missing["message"]
        )
        assert node.call("query", path="notes:list", args={})["ok"] == texts
    finally:
        node.stop()


def test_npm_client_reconnects_after_the_server_restarts(js, tmp_path):
    db, port = tmp_path / "restart.db", free_port()
    with live_server(CHAT_APP, db, "--port", str(port)) as (url, _process):
        thread = chat_thread(url, "before")
        node = NodeClient(js, url)
        node.call(
            "subscribe", sub="list", path="messages:list", args={"threadId": thread}
        )
        assert contents(node.update("list", bool)) == ["before"]
    try:
        # The same file on the same port: the client finds it again by itself.
        with live_server(CHAT_APP, db, "--port", str(port)) as (url, _process):
            backend_fetch(
                url,
                "messages:send",
                {"threadId": thread, "role": "user", "content": "after"},
            )
            assert contents(node.update("list", lambda v: len(v) == 2)) == [
                "before",
                "after",
            ]
            sent = node.call(
                "mutation",
                path="messages:send",
                args={"threadId": thread, "role": "user", "content": "again"},
            )
            assert contents(sent["seen"]["list"])[-1] == "again"
    finally:
        node.stop()


# --------------------------------------------------------------------------- browser


class Chromium:
    """Headless Chromium with one page, read through the DevTools protocol."""

    def __init__(self, page: str) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        assert binary is not None, "chromium is needed (.ci/run installs Debian's)"
        self.profile = tempfile.mkdtemp()
        port = free_port()
        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",  # CI runs as root
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={port}",
                page,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        targets = until(lambda: self._targets(port), "Chromium's DevTools")
        from websockets.sync.client import connect

        self.devtools = connect(
            targets[0]["webSocketDebuggerUrl"], max_size=None
        ).__enter__()
        self.ids = iter(range(1, 10**6))

    def _targets(self, port: int) -> list[dict[str, Any]]:
        try:
            found = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        except httpx.HTTPError:
            return []
        return [t for t in found if t.get("type") == "page"]

    def evaluate(self, expression: str) -> Any:
        command_id = next(self.ids)
        self.devtools.send(
            json.dumps(
                {
                    "id": command_id,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "returnByValue": True},
                }
            )
        )
        while True:
            answer = json.loads(self.devtools.recv(DEADLINE))
            if answer.get("id") == command_id:
                return answer["result"]["result"].get("value")

    def close(self) -> None:
        self.devtools.close()
        self.process.kill()
        self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def test_react_use_query_in_chromium_shows_a_backend_write(js, chat, tmp_path):
    subprocess.run(
        ["node", str(js / "page" / "build.mjs"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    thread = chat_thread(chat, "hello from the seed")
    page = f"{(tmp_path / 'index.html').as_uri()}?convex={chat}&thread={thread}"
    browser = Chromium(page)
    try:
        items = (
            "[...document.querySelectorAll('#messages li')].map(li => li.textContent)"
        )
        assert until(lambda: browser.evaluate(items), "the first render") == [
            "user: hello from the seed"
        ]
        loaded = browser.evaluate("window.pageLoad")
        backend_fetch(
            chat,
            "messages:send",
            {"threadId": thread, "role": "agent", "content": "live!"},
        )
        assert until(
            lambda: (found := browser.evaluate(items)) and len(found) == 2 and found,
            "the new message on the page",
        ) == ["user: hello from the seed", "agent: live!"]
        assert browser.evaluate("window.pageLoad") == loaded  # the same page, updated
    finally:
        browser.close()


# --------------------------------------------------------------------------- PyPI


def test_python_client_query_subscribe_mutation(chat):
    thread = chat_thread(chat, "first")
    client = ConvexClient(chat)
    assert contents(client.query("messages:list", {"threadId": thread})) == ["first"]
    subscription = client.subscribe("messages:list", {"threadId": thread})
    updates: Iterator[Any] = iter(subscription)
    assert contents(next(updates)) == ["first"]
    client.mutation(
        "messages:send", {"threadId": thread, "role": "user", "content": "py"}
    )
    for value in updates:  # yields on every Transition; wait for the write
        if len(value) == 2:
            break
    assert contents(value) == ["first", "py"]
    backend_fetch(
        chat, "messages:send", {"threadId": thread, "role": "agent", "content": "http"}
    )
    for value in updates:
        if len(value) == 3:
            break
    assert contents(value)[-1] == "http"
    subscription.unsubscribe()


def test_python_client_action_and_errors(notes):
    client = ConvexClient(notes)
    first, second = client.action("notes:add_twice", {"text": "pyact"})
    assert client.query("notes:get", {"id": second})["text"] == "pyact!"
    with pytest.raises(ConvexError) as caught:
        client.mutation("notes:reject", {"text": "never"})
    assert caught.value.data["why"] == "rejected"
    with pytest.raises(
        Exception, match="Could not find public function for 'notes:secret'"
    ):
        client.mutation("notes:secret", {"text": "leak"})
    assert client.query("notes:get", {"id": first})["text"] == "pyact"
