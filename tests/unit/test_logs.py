"""one_store.server.logs: per-thread capture of print and logging output for logLines."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from one_store.server import logs


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """logs.install() for one test body (pytest resets sys.stdout between phases)."""
    stdout = sys.stdout
    logs.install()
    try:
        yield
    finally:
        logging.getLogger().removeHandler(logs._handler)
        sys.stdout = stdout


def test_print_and_logging_become_lines_in_order() -> None:
    log = logging.getLogger("test_logs")
    with installed(), logs.capture() as lines:
        print("first", end="")
        print(" line")
        log.warning("then %s", "a warning")
        print("two\nlines")
        log.error("boom")
    assert lines == [
        "[LOG] first line",
        "[WARN] then a warning",
        "[LOG] two",
        "[LOG] lines",
        "[ERROR] boom",
    ]


def test_other_threads_and_code_outside_a_capture_are_not_collected() -> None:
    def elsewhere() -> None:
        print("from another thread")

    with installed():
        with logs.capture() as lines:
            thread = threading.Thread(target=elsewhere)
            thread.start()
            thread.join()
            print("mine")
        print("after")
    assert lines == ["[LOG] mine"]


def test_output_is_cut_at_256_lines() -> None:
    with installed(), logs.capture() as lines:
        for i in range(300):
            print(i)
    assert len(lines) == 257
    assert lines[-1] == "[WARN] 44 more log line(s) dropped"


def test_install_twice_adds_one_handler_and_one_tee() -> None:
    stdout = sys.stdout
    try:
        logs.install()
        logs.install()
        assert logging.getLogger().handlers.count(logs._handler) == 1
        assert isinstance(sys.stdout, logs._Tee)
        assert not isinstance(sys.stdout.inner, logs._Tee)
    finally:
        logging.getLogger().removeHandler(logs._handler)
        sys.stdout = stdout


def test_warnings_outside_a_capture_still_reach_stderr_when_nothing_else_handles_them():
    # A fresh interpreter: no pytest handlers on the root logger, so without the
    # lastResort hand-off our handler would swallow the warning.
    code = (
        "import logging; from one_store.server import logs; logs.install(); "
        "logging.getLogger('x').warning('still shown'); "
        "logging.getLogger('x').info('not shown: below WARNING')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "still shown\n"


def test_the_access_log_has_one_line_per_request_with_status_and_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    import httpx
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok", status_code=201)

    async def fail(request: object) -> None:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/ok", ok), Route("/fail", fail, methods=["POST"])])
    transport = httpx.ASGITransport(
        app=logs.AccessLog(app),
        raise_app_exceptions=False,
        client=("127.0.0.1", 50000),
    )

    async def requests() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await c.get("/ok?x=1")
            await c.post("/fail")
            await c.get("/ok?adminKey=secret&x=2")

    with caplog.at_level(logging.INFO, logger="one_store.access"):
        asyncio.run(requests())
    lines = [r.getMessage() for r in caplog.records if r.name == "one_store.access"]
    assert len(lines) == 3
    assert lines[0].startswith('127.0.0.1:50000 "GET /ok?x=1" 201 ')
    assert lines[1].startswith('127.0.0.1:50000 "POST /fail" 500 ')
    # An admin key in the URL never reaches the log.
    assert lines[2].startswith('127.0.0.1:50000 "GET /ok?adminKey=[redacted]&x=2" 201')
    assert all(line.endswith(" ms") for line in lines)
