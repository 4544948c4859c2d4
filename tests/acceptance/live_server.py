"""Run ``one-store serve`` as a real subprocess for the acceptance tests."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_APP = Path(__file__).resolve().parent / "apps" / "http_app"
CHAT_APP = ROOT / "schema" / "chat"
URL = re.compile(r"http://127\.0\.0\.1:\d+")


@contextmanager
def live_server(
    app: Path,
    db: Path | str,
    *extra: str,
    stderr: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start ``one-store serve APP --db DB --port 0``; yield (url, process).

    Its stderr (the access log, one line per request) is read as it comes, so
    the pipe never fills; pass a list as ``stderr`` to collect the lines.
    ``env`` adds environment variables (``ONE_STORE_ADMIN_KEY``, ``JWKS``, ...).
    """
    command = [
        sys.executable,
        "-m",
        "one_store.cli.main",
        "serve",
        str(app),
        "--db",
        str(db),
    ]
    process = subprocess.Popen(
        [*command, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    found: list[str] = []
    errors: list[str] = [] if stderr is None else stderr
    ready = threading.Event()

    def watch() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = URL.search(line)
            if match and not found:
                found.append(match.group(0))
                ready.set()
        ready.set()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            errors.append(line)

    threading.Thread(target=watch, daemon=True).start()
    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        ready.wait(60)
        if not found:
            process.kill()
            process.wait(timeout=10)
            drainer.join(10)
            raise RuntimeError(f"one-store serve did not start: {''.join(errors)}")
        yield found[0], process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        drainer.join(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def database_digest(db: Path) -> str:
    """A hash of every user document in the file (read through a separate connection)."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256()
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM _one_store_tables ORDER BY name"
            )
        ]
        for table in tables:
            digest.update(table.encode())
            for doc_id, body in connection.execute(
                f'SELECT _id, _body FROM "{table}" ORDER BY _id'
            ):
                digest.update(f"{doc_id}\0{body}\0".encode())
        return digest.hexdigest()
    finally:
        connection.close()
