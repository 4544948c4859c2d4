"""A served store in this process, and a raw client of the sync protocol.

The server is the real thing (uvicorn with the ``websockets`` implementation,
on a loopback port, in a thread) so that tests can choose the hub's limits; the
client speaks the protocol frame by frame over a real socket
(``websockets.sync.client``), so tests see exactly what a Convex client sees.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from one_store import Store
from one_store.server.http_api import bind, create_app, url_of
from one_store.server.sync import WEBSOCKETS, SyncHub


@contextmanager
def served(store: Store, **hub_options: Any) -> Iterator[tuple[str, SyncHub]]:
    """Serve ``store`` (HTTP API and sync) on a free port; yield (url, hub)."""
    hub = SyncHub(store, **hub_options)
    config = uvicorn.Config(
        create_app(store, sync=hub),
        log_level="error",
        access_log=False,
        lifespan="off",
        **WEBSOCKETS,
    )
    server = uvicorn.Server(config)
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield url_of(sock), hub
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def ts(text: str) -> int:
    """A protocol timestamp (base64 of a little-endian u64) as an int."""
    return int(struct.unpack("<Q", base64.b64decode(text))[0])


def b64ts(value: int) -> str:
    return base64.b64encode(struct.pack("<Q", value)).decode()


class Raw:
    """One socket, frame by frame."""

    def __init__(self, url: str, path: str = "/api/1.48.0/sync") -> None:
        # Entered as a context manager, as websockets >= 17.1 wants (closed in close()).
        self.ws: ClientConnection = connect(
            url.replace("http://", "ws://") + path, max_size=None
        ).__enter__()
        self.query_set = 0

    def send(self, message: dict[str, Any] | str) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message that is not a Ping."""
        while True:
            message: dict[str, Any] = json.loads(self.ws.recv(timeout))
            if message["type"] != "Ping":
                return message

    def connect(self, session: str = "s", **extra: Any) -> Raw:
        self.send(
            {
                "type": "Connect",
                "sessionId": session,
                "connectionCount": 0,
                "lastCloseReason": "InitialConnect",
                "clientTs": 0,
                **extra,
            }
        )
        return self

    def modify(self, *mods: dict[str, Any]) -> None:
        self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": list(mods),
            }
        )
        self.query_set += 1

    def add(self, query_id: int, path: str, args: dict[str, Any]) -> None:
        self.modify(
            {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}
        )

    def call(self, kind: str, request_id: int, path: str, args: dict[str, Any]) -> None:
        self.send(
            {"type": kind, "requestId": request_id, "udfPath": path, "args": [args]}
        )

    def transition(self, timeout: float = 10.0) -> dict[str, Any]:
        message = self.recv(timeout)
        assert message["type"] == "Transition", message
        return message

    def closed(self, timeout: float = 10.0) -> tuple[list[dict[str, Any]], int | None]:
        """Every message until the server closes the socket, and the close code."""
        seen: list[dict[str, Any]] = []
        try:
            while True:
                seen.append(json.loads(self.ws.recv(timeout)))
        except ConnectionClosed as e:
            return seen, e.rcvd.code if e.rcvd else None

    def close(self) -> None:
        self.ws.close()


def values(transition: dict[str, Any]) -> dict[int, Any]:
    """``{queryId: value or ("failed", message)}`` of a Transition's modifications."""
    out: dict[int, Any] = {}
    for mod in transition["modifications"]:
        if mod["type"] == "QueryUpdated":
            out[mod["queryId"]] = mod["value"]
        elif mod["type"] == "QueryFailed":
            out[mod["queryId"]] = ("failed", mod["errorMessage"])
        else:
            out[mod["queryId"]] = ("removed",)
    return out


class Stuck:
    """A client that sends frames and never reads one (a frozen browser tab).

    A plain socket with a small receive buffer, after RFC 6455's handshake: no
    library reads for it in the background.
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /api/sync HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        assert len(payload) < 65536
        header = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def close(self) -> None:
        self.sock.close()
