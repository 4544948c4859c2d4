"""The HTTP/1.1 protocol of ``one-store serve``: uvicorn's httptools, one write per answer.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and its body at ``http.response.body``: two ``send``
system calls, and with ``TCP_NODELAY`` (which :func:`~.http_api.bind` needs, see
there) two TCP segments, so a keep-alive client wakes up twice per answer. Here the
connection's transport holds a small write until the next one, and writes the
two at once: an answer's head goes with its body, in one segment. A write that
no other follows goes at the end of the loop turn that made it, so nothing waits
longer than that; order is kept, and a write of 64 KiB or more (a file
download's chunk) is not held. A WebSocket upgrade keeps the same transport.

Measured with ``benchmarks/http_ab.py`` (``notes:add`` over one keep-alive
connection, paired with uvicorn's own protocol in the same run): see
benchmarks/RESULTS.md, "HTTP API". Holding every write to the end of the loop
turn instead cost an extra turn of the loop per answer and saved nothing
measurable; pairing saves a ``send`` per answer.

Imported only by ``serve`` (it imports uvicorn and httptools).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HOLD_LIMIT: Final = 64 << 10  # larger writes are not worth holding (nor copying)


class CoalescingTransport(asyncio.Transport):
    """A transport that writes a small write together with the next one."""

    def __init__(
        self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` with the write held before it, or hold it (a large one goes).

        A held write goes with the next one, or at the end of this loop turn.
        """
        held = self._held
        if held is not None:  # the head of an answer, and now its body: both
            self._held = None
            if self._flush is not None:
                self._flush.cancel()
                self._flush = None
            self._inner.write(held + data)
        elif len(data) >= HOLD_LIMIT or self._inner.is_closing():
            self._inner.write(data)
        else:
            self._held = bytes(data)
            self._flush = self._loop.call_soon(self.flush)

    def writelines(self, list_of_data: Any) -> None:
        """Write each of ``list_of_data`` (held as :meth:`write` holds)."""
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is held now."""
        held, self._held, self._flush = self._held, None, None
        if held is not None and not self._inner.is_closing():
            self._inner.write(held)

    def close(self) -> None:
        """Write what is held, then close (as the inner transport closes)."""
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        """Close at once; what is held is dropped, as the inner's buffer is."""
        self._held = None
        self._inner.abort()

    def write_eof(self) -> None:
        """Write what is held, then half-close."""
        self.flush()
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        """Whether the inner transport can half-close."""
        return self._inner.can_write_eof()

    def get_write_buffer_size(self) -> int:
        """Bytes not yet sent: the inner transport's, and those held here."""
        held = 0 if self._held is None else len(self._held)
        return self._inner.get_write_buffer_size() + held

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The inner transport's flow-control limits."""
        return self._inner.get_write_buffer_limits()

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        """Set the inner transport's flow-control limits."""
        self._inner.set_write_buffer_limits(high, low)

    def is_closing(self) -> bool:
        """Whether the connection is closing."""
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The inner transport's ``socket``, ``peername``, ``sslcontext``, ..."""
        return self._inner.get_extra_info(name, default)

    def pause_reading(self) -> None:
        """Stop reading (flow control)."""
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        """Read again (flow control)."""
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        """Whether the transport is reading."""
        return self._inner.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Hand the connection to ``protocol`` (a WebSocket upgrade)."""
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The protocol the connection is handed to."""
        return self._inner.get_protocol()


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the connection with its writes coalesced per loop turn."""
        inner = cast(asyncio.Transport, transport)  # a TCP connection's, from the loop
        super().connection_made(CoalescingTransport(inner, self.loop))
