"""Function output for the HTTP API's ``logLines``: ``print`` and ``logging`` per call.

Convex returns a function's ``console.log`` output with its result, as
``"[LEVEL] message"`` lines (the ``logLines`` of Convex's HTTP API replies), and its clients
print them. Here a handler's ``print`` output becomes ``[LOG] ...`` lines and the
``logging`` records it emits become ``[DEBUG|INFO|WARN|ERROR] ...`` lines, in the
order they happened. Capture is per thread, so concurrent requests never mix, and
everything still reaches the server's own stdout/stderr as before.

Only ``one-store serve`` installs it (:func:`install` replaces ``sys.stdout`` with
a tee and adds one handler to the root logger); in-process calls are untouched.

:class:`AccessLog` is the server's own log: one line per request on the
``one_store.access`` logger (``one-store serve`` prints it on stderr).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Final

MAX_LINES: Final = 256  # per call; Convex also truncates a function's log output
ACCESS: Final = logging.getLogger("one_store.access")


class _Calls(threading.local):
    events: list[tuple[bool, str]] | None = None  # (is_print, text) of the current call


_calls = _Calls()


def _level(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


class _RecordHandler(logging.Handler):
    """Adds the records of the capturing thread to its call's lines."""

    def emit(self, record: logging.LogRecord) -> None:
        events = _calls.events
        if events is not None:
            events.append((False, f"[{_level(record.levelno)}] {record.getMessage()}"))
        # Our handler on the root logger switches off Python's last-resort output
        # (warnings to stderr when no handler is configured): keep it.
        last = logging.lastResort
        if last is not None and record.levelno >= last.level and self._alone(record):
            last.handle(record)

    def _alone(self, record: logging.LogRecord) -> bool:
        """No handler but this one sees ``record`` (Python would use lastResort)."""
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return False
            logger = logger.parent if logger.propagate else None
        return True


class _Tee(io.TextIOBase):
    """``sys.stdout`` that also hands the capturing thread's text to its call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        events = _calls.events
        if events is not None:
            events.append((True, text))
        return int(self.inner.write(text))

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...
        return getattr(self.inner, name)


_handler: Final = _RecordHandler(logging.NOTSET)


def install() -> None:
    """Route ``print`` and ``logging`` through the capture (idempotent)."""
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    if sys.stdout is not None and not isinstance(sys.stdout, _Tee):
        sys.stdout = _Tee(sys.stdout)


@contextlib.contextmanager
def capture() -> Iterator[list[str]]:
    """Collect this thread's output while the block runs; the list is filled at exit."""
    lines: list[str] = []
    outer = _calls.events
    events: list[tuple[bool, str]] = []
    _calls.events = events
    try:
        yield lines
    finally:
        _calls.events = outer
        if events:  # most calls print nothing
            lines.extend(_render(events))


def _render(events: list[tuple[bool, str]]) -> list[str]:
    lines: list[str] = []
    printed: list[str] = []

    def flush_printed() -> None:
        text = "".join(printed)
        printed.clear()
        lines.extend(f"[LOG] {line}" for line in text.splitlines())

    for is_print, text in events:
        if is_print:
            printed.append(text)
        else:
            flush_printed()
            lines.append(text)
    flush_printed()
    if len(lines) > MAX_LINES:
        dropped = len(lines) - MAX_LINES
        lines = [*lines[:MAX_LINES], f"[WARN] {dropped} more log line(s) dropped"]
    return lines


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


_ADMIN_KEY_PARAM = re.compile(r"(^|&)adminKey=[^&]*")


class AccessLog:
    """ASGI middleware: one ``one_store.access`` line per HTTP request.

    ``127.0.0.1:50123 "POST /api/mutation" 200 3.1 ms``: the client, the method
    and path (with its query string), the status sent (500 when the app failed
    before answering) and the time to the end of the response.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app on one request, then log it."""
        if scope["type"] != "http" or not ACCESS.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            ms = (time.perf_counter() - start) * 1000
            client = scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else "-"
            target = scope.get("path", "")
            if scope.get("query_string"):
                query = scope["query_string"].decode("latin-1")
                # An admin key in the URL (Convex's ?adminKey=) stays out of logs.
                target += "?" + _ADMIN_KEY_PARAM.sub(r"\1adminKey=[redacted]", query)
            ACCESS.info(
                '%s "%s %s" %d %.1f ms', who, scope["method"], target, status, ms
            )
