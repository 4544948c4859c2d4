"""The HTTP/1.1 protocol of ``one-store serve``: uvicorn's httptools, one write per answer.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and its body at ``http.response.body``: two ``send``
system calls, and with ``TCP_NODELAY`` (which :func:`~.http_api.bind` needs, see
there) two TCP segments, so a keep-alive client wakes up twice per answer. Here
the connection's transport holds what is written during one turn of the event
loop and writes it at the end of that turn, at once: a small answer leaves as one
segment. Measured on 2 cores with ``notes:add`` over one keep-alive connection,
paired with uvicorn's own protocol in the same run: the server's CPU per request
fell from ~440 to ~380 µs, and the client's wall time per request by as much
(benchmarks/RESULTS.md, "HTTP API").

Nothing waits longer than the turn of the loop that wrote it, order is kept, and
a write of 64 KiB or more (a file download's chunk) goes out at once, after what
was held. A WebSocket upgrade takes the same transport, so sync protocol frames
written in one turn leave together too.

Imported only by ``serve`` (it imports uvicorn and httptools).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HOLD_LIMIT: Final = 64 << 10  # larger writes are not worth holding (nor copying)


class CoalescingTransport(asyncio.Transport):
    """A transport that writes what it is given during one loop turn in one go."""

    def __init__(
        self, inner: asyncio.Transport, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__()
        self._inner = inner
        self._loop = loop
        self._held: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold ``data`` until the end of this loop turn (a large one goes now)."""
        if not self._held:
            if len(data) >= HOLD_LIMIT:
                self._inner.write(data)
                return
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._size += len(data)
        if self._size >= HOLD_LIMIT:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        """Write each of ``list_of_data`` (held as :meth:`write` holds)."""
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is held now, in one write."""
        if not self._held:
            return
        held = self._held
        self._held, self._size = [], 0
        if not self._inner.is_closing():
            self._inner.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        """Write what is held, then close (as the inner transport closes)."""
        self.flush()
        self._inner.close()

    def abort(self) -> None:
        """Close at once; what is held is dropped, as the inner's buffer is."""
        self._held, self._size = [], 0
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
        return self._inner.get_write_buffer_size() + self._size

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
