"""File storage over HTTP against a live ``one-store serve`` (a real subprocess).

Upload URLs and file URLs answer as Convex's backend does
(``crates/local_backend/src/storage.rs``: status codes, ``{"code", "message"}``
bodies, the headers of a served file, ``Range``), driven by a real HTTP client
(httpx) and, for a client that hangs up mid-upload, a raw socket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from .live_server import live_server

APP = Path(__file__).resolve().parent / "apps" / "files_app"
CAP = 1 << 20  # the server's upload cap in these tests ($ONE_STORE_MAX_FILE_SIZE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    db = tmp_path_factory.mktemp("files_http") / "files.db"
    os.environ["ONE_STORE_MAX_FILE_SIZE"] = str(CAP)
    try:
        with live_server(APP, db) as (url, _process):
            yield url, db
    finally:
        del os.environ["ONE_STORE_MAX_FILE_SIZE"]


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=30) as c:
        yield c


def call(
    client: httpx.Client, kind: str, path: str, args: dict[str, Any] | None = None
) -> Any:
    reply = client.post(f"/api/{kind}", json={"path": path, "args": args or {}})
    body = reply.json()
    assert body["status"] == "success", body
    return body["value"]


def upload_url(client: httpx.Client) -> str:
    return str(call(client, "mutation", "images:generateUploadUrl"))


def upload(client: httpx.Client, data: bytes, content_type: str | None = None) -> str:
    headers = {"content-type": content_type} if content_type else {}
    reply = client.post(upload_url(client), content=data, headers=headers)
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"storageId"}
    return str(reply.json()["storageId"])


def test_the_upload_flow_of_convex_s_tutorial(server, client):
    url = upload_url(client)
    assert url.startswith(f"{server[0]}/api/storage/upload?token=")
    data = os.urandom(5000)
    reply = client.post(url, content=data, headers={"content-type": "image/png"})
    assert reply.status_code == 200
    sid = reply.json()["storageId"]
    call(client, "mutation", "images:sendImage", {"storageId": sid, "author": "Ada"})
    [message] = [m for m in call(client, "query", "images:list") if m["body"] == sid]
    served = client.get(message["url"])
    assert served.status_code == 200
    assert served.content == data
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == "5000"
    assert served.headers["digest"] == f"sha-256={digest}"
    assert served.headers["accept-ranges"] == "bytes"
    assert served.headers["cache-control"] == "private, max-age=2592000"
    meta = call(client, "query", "images:metadata", {"storageId": sid})
    assert meta["sha256"] == digest
    assert meta["size"] == 5000
    assert meta["contentType"] == "image/png"
    # The token is reusable within its hour, as Convex's: each POST is a new file.
    again = client.post(url, content=b"second")
    assert again.status_code == 200
    assert again.json()["storageId"] != sid


def test_a_file_without_content_type_is_served_without_one(client):
    sid = upload(client, b"plain")
    meta = call(client, "query", "images:metadata", {"storageId": sid})
    assert "contentType" not in meta
    mid = call(
        client, "mutation", "images:sendImage", {"storageId": sid, "author": "B"}
    )
    [message] = [m for m in call(client, "query", "images:list") if m["_id"] == mid]
    served = client.get(message["url"])
    assert served.content == b"plain"
    assert "content-type" not in served.headers


def file_url(client: httpx.Client, data: bytes) -> tuple[str, str]:
    sid = upload(client, data, "text/plain")
    mid = call(
        client, "mutation", "images:sendImage", {"storageId": sid, "author": "R"}
    )
    [message] = [m for m in call(client, "query", "images:list") if m["_id"] == mid]
    return message["url"], mid


def test_range_requests(client):
    data = bytes(range(256)) * 4
    url, _ = file_url(client, data)
    part = client.get(url, headers={"range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert part.headers["content-length"] == "10"
    assert "digest" not in part.headers
    tail = client.get(url, headers={"range": "bytes=1000-"})
    assert (tail.status_code, tail.content) == (206, data[1000:])
    suffix = client.get(url, headers={"range": "bytes=-4"})
    assert (suffix.status_code, suffix.content) == (206, data[-4:])
    clamped = client.get(url, headers={"range": "bytes=1020-5000"})
    assert clamped.headers["content-range"] == f"bytes 1020-1023/{len(data)}"
    assert client.get(url, headers={"range": "bytes=0-1,5-6"}).status_code == 416
    beyond = client.get(url, headers={"range": "bytes=5000-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    ignored = client.get(url, headers={"range": "pages=1-2"})
    assert (ignored.status_code, ignored.content) == (200, data)
    head = client.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == "1024"


def test_a_deleted_file_s_url_answers_404(client):
    url, mid = file_url(client, b"short-lived")
    assert client.get(url).status_code == 200
    call(client, "mutation", "images:remove", {"messageId": mid})
    gone = client.get(url)
    assert gone.status_code == 404
    key = url.rsplit("/", 1)[1]
    assert gone.json() == {"code": "FileNotFound", "message": f"File {key} not found"}


def test_a_path_that_is_not_a_uuid_is_refused(client):
    sid = upload(client, b"x")
    reply = client.get(f"/api/storage/{sid}")
    assert reply.status_code == 400
    assert reply.json()["code"] == "InvalidStoragePath"
    assert reply.json()["message"].startswith(f'Invalid storage path: "{sid}".')


def storage_count(db: Path) -> int:
    with sqlite3.connect(db) as c:
        return int(c.execute('SELECT count(*) FROM "_storage"').fetchone()[0])


def test_bad_tokens_are_refused_and_store_nothing(server, client):
    _url, db = server
    before = storage_count(db)
    missing = client.post("/api/storage/upload", content=b"x")
    assert missing.status_code == 400
    assert missing.json() == {
        "code": "BadQueryArgs",
        "message": "Failed to deserialize query string: missing field `token`",
    }
    good = upload_url(client)
    token = good.split("token=")[1]
    forged = token[:10] + ("0" if token[10] != "0" else "1") + token[11:]
    for bad in (forged, "not-hex", token[:-2]):
        reply = client.post(f"/api/storage/upload?token={bad}", content=b"x")
        assert reply.status_code == 401
        assert reply.json() == {
            "code": "StorageTokenInvalid",
            "message": "Couldn't decode the StoreFileAuthorization token",
        }
    # A token signed with this database's secret, issued just over an hour ago.
    with sqlite3.connect(db) as c:
        (secret,) = c.execute(
            "SELECT value FROM _one_store_meta WHERE key='file_upload_secret'"
        ).fetchone()
    issued = int(time.time()) - 3601
    payload = b"\x01" + issued.to_bytes(8, "big") + os.urandom(12)
    mac = hmac.new(bytes.fromhex(secret), payload, hashlib.sha256).digest()[:16]
    expired = client.post(
        f"/api/storage/upload?token={(payload + mac).hex()}", content=b"x"
    )
    assert expired.status_code == 401
    assert expired.json() == {
        "code": "StorageTokenExpired",
        "message": "Store File Authorization expired",
    }
    assert storage_count(db) == before


def test_bad_headers_and_digests(server, client):
    db = server[1]
    before = storage_count(db)
    url = upload_url(client)
    bad_type = client.post(url, content=b"x", headers={"content-type": "not a type"})
    assert (bad_type.status_code, bad_type.json()["code"]) == (400, "BadHeader")
    wrong = base64.b64encode(hashlib.sha256(b"y").digest()).decode()
    mismatch = client.post(url, content=b"x", headers={"digest": f"sha-256={wrong}"})
    assert (mismatch.status_code, mismatch.json()["code"]) == (400, "Sha256Mismatch")
    bad_digest = client.post(url, content=b"x", headers={"digest": "md5=abc"})
    assert (bad_digest.status_code, bad_digest.json()["code"]) == (400, "BadHeader")
    assert storage_count(db) == before
    right = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    ok = client.post(url, content=b"x", headers={"digest": f"sha-256={right}"})
    assert ok.status_code == 200


def test_uploads_over_the_cap_are_refused_and_keep_nothing(server, client):
    db = server[1]
    before = storage_count(db)
    url = upload_url(client)
    declared = client.post(url, content=b"x" * (CAP + 1))
    assert declared.status_code == 413
    assert declared.json()["code"] == "FileTooLarge"

    def pieces() -> Iterator[bytes]:  # chunked: no Content-Length to refuse early
        for _ in range(CAP // 65536 + 1):
            yield b"y" * 65536

    streamed = client.post(url, content=pieces())
    assert streamed.status_code == 413
    assert storage_count(db) == before
    assert upload(client, b"z" * CAP)  # exactly the cap is fine


def test_a_client_that_hangs_up_mid_upload_leaves_nothing(server, client):
    db = server[1]
    before = storage_count(db)
    target = urlsplit(upload_url(client))
    folder = Path(str(db) + "-files")
    with socket.create_connection((target.hostname, target.port)) as sock:
        sock.sendall(
            (
                f"POST {target.path}?{target.query} HTTP/1.1\r\n"
                f"Host: {target.netloc}\r\nContent-Length: 500000\r\n\r\n"
            ).encode()
            + b"q" * 100_000
        )
        # The server has begun the body once a .part file shows up.
        deadline = time.monotonic() + 30
        while not list(folder.glob("*.part")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(folder.glob("*.part"))
    # After the hang-up the partial body is removed; nothing was committed.
    deadline = time.monotonic() + 30
    while list(folder.glob("*.part")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(folder.glob("*.part")) == []
    assert storage_count(db) == before
    assert len(list(folder.iterdir())) == storage_count(db)


def test_http_actions_store_and_serve_files(client):
    """Convex's HTTP-action examples: store the request's body, answer a file's bytes."""
    data = b"\x89PNG" + os.urandom(300)
    sent = client.post(
        "/sendImage?author=Hal", content=data, headers={"content-type": "image/png"}
    )
    assert sent.status_code == 200
    sid = sent.json()["storageId"]
    meta = call(client, "query", "images:metadata", {"storageId": sid})
    assert meta["contentType"] == "image/png"
    assert [m["author"] for m in call(client, "query", "images:list")].count("Hal") == 1
    got = client.get("/getImage", params={"storageId": sid})
    assert (got.status_code, got.content) == (200, data)
    call(client, "mutation", "images:generateUploadUrl")  # still serving
    bad = client.get("/getImage", params={"storageId": "junk"})
    assert bad.status_code == 500  # the action failed (InvalidId), as Convex's would


def test_uploads_are_not_bound_by_the_api_s_20_mib_body_cap(tmp_path, monkeypatch):
    """An upload streams to disk: 25 MiB passes where a function call's body cannot."""
    monkeypatch.delenv("ONE_STORE_MAX_FILE_SIZE", raising=False)  # no cap here
    size = 25 << 20
    piece = os.urandom(1 << 20)
    with (
        live_server(APP, tmp_path / "big.db") as (url, _process),
        httpx.Client(base_url=url, timeout=120) as c,
    ):

        def pieces() -> Iterator[bytes]:
            for _ in range(size // len(piece)):
                yield piece

        reply = c.post(upload_url(c), content=pieces())
        assert reply.status_code == 200, reply.text
        sid = reply.json()["storageId"]
        meta = call(c, "query", "images:metadata", {"storageId": sid})
        assert meta["size"] == size
        expected = hashlib.sha256()
        for chunk in pieces():
            expected.update(chunk)
        assert meta["sha256"] == base64.b64encode(expected.digest()).decode()
        mid = call(c, "mutation", "images:sendImage", {"storageId": sid, "author": "Z"})
        [message] = [m for m in call(c, "query", "images:list") if m["_id"] == mid]
        got = hashlib.sha256()
        with c.stream("GET", message["url"]) as served:
            assert served.headers["content-length"] == str(size)
            for chunk in served.iter_bytes():
                got.update(chunk)
        assert got.digest() == expected.digest()


def test_one_store_site_url_sets_the_origin_of_file_urls(tmp_path, monkeypatch):
    monkeypatch.setenv("ONE_STORE_SITE_URL", "https://files.example")
    with (
        live_server(APP, tmp_path / "site.db") as (url, _process),
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        made = upload_url(c)
        assert made.startswith("https://files.example/api/storage/upload?token=")
        reply = c.post("/api/storage/upload?" + made.split("?", 1)[1], content=b"x")
        sid = reply.json()["storageId"]
        mid = call(c, "mutation", "images:sendImage", {"storageId": sid, "author": "S"})
        [message] = [m for m in call(c, "query", "images:list") if m["_id"] == mid]
        assert message["url"].startswith("https://files.example/api/storage/")
