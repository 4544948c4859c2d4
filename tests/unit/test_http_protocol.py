"""Tests for one_store.server.http_protocol: a small write goes with the next.

Each test runs a real event loop over a real connected socket pair: the
transport under test wraps the loop's own transport, and the peer socket reads
what actually left. ``Counting`` only counts the writes that reach the loop's
transport (each is one ``send`` system call when the socket is writable).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from one_store.server.http_protocol import HOLD_LIMIT, CoalescingTransport


class Counting(asyncio.Protocol):
    """The protocol of the loop's side; remembers its transport."""

    transport: asyncio.Transport


def with_transport(
    scenario: Callable[[CoalescingTransport, list[int]], Awaitable[None]],
) -> bytes:
    """Run ``scenario`` on a coalescing transport; the bytes the peer received.

    The scenario gets the transport and a list that grows by the size of each
    write reaching the loop's transport.
    """
    ours, peer = socket.socketpair()
    received: list[bytes] = []

    def read() -> None:  # the peer reads all along, so that no buffer fills
        while chunk := peer.recv(1 << 20):
            received.append(chunk)

    reader = threading.Thread(target=read)
    reader.start()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        inner, _ = await loop.create_connection(Counting, sock=ours)
        sizes: list[int] = []
        write = inner.write

        def counted(data: Any) -> None:
            sizes.append(len(data))
            write(data)

        setattr(inner, "write", counted)  # noqa: B010  (count the real writes)
        transport = CoalescingTransport(inner, loop)
        await scenario(transport, sizes)
        transport.close()
        while not inner.is_closing() or inner.get_write_buffer_size():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)  # the loop closes the socket after its last send

    try:
        asyncio.run(main())
        reader.join(30)
        return b"".join(received)
    finally:
        peer.close()


def test_an_answers_head_goes_with_its_body_in_one_write():
    async def scenario(transport: CoalescingTransport, sizes: list[int]) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        assert sizes == []  # held
        assert transport.get_write_buffer_size() == 38
        transport.write(b"{}")
        assert sizes == [40]  # both at once, at the second write
        transport.write(memoryview(b"next"))
        assert sizes == [40]  # held: no write follows in this turn...
        await asyncio.sleep(0)
        assert sizes == [40, 4]  # ...so it goes at the end of the turn

    assert with_transport(scenario) == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}next"
    )


def test_a_large_write_is_not_held():
    big = bytes(range(256)) * (HOLD_LIMIT // 256)

    async def scenario(transport: CoalescingTransport, sizes: list[int]) -> None:
        transport.write(big)  # nothing held: straight through
        assert sizes == [len(big)]
        transport.write(b"head")
        transport.write(big)  # the held head goes first, with it
        assert sizes == [len(big), len(big) + 4]

    assert with_transport(scenario) == big + b"head" + big


def test_close_writes_what_is_held_and_abort_drops_it():
    async def closing(transport: CoalescingTransport, sizes: list[int]) -> None:
        transport.write(b"last words")
        transport.close()
        assert sizes == [10]
        assert transport.is_closing()

    assert with_transport(closing) == b"last words"

    async def aborting(transport: CoalescingTransport, sizes: list[int]) -> None:
        transport.write(b"never sent")
        transport.abort()
        await asyncio.sleep(0)
        assert sizes == []

    assert with_transport(aborting) == b""


SIZES = st.one_of(st.integers(0, 300), st.integers(HOLD_LIMIT - 10, HOLD_LIMIT + 10))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(SIZES, max_size=4), max_size=5))
def test_every_byte_arrives_in_order_however_the_writes_fall(turns):
    # Each inner list is the sizes written during one loop turn; the n-th write
    # is n repeated (mod 256), so that a reordering shows.
    writes: list[list[bytes]] = [[] for _ in turns]
    count = 0
    for i, turn in enumerate(turns):
        for size in turn:
            count += 1
            writes[i].append(bytes([count % 256]) * size)

    async def scenario(transport: CoalescingTransport, sizes: list[int]) -> None:
        for turn in writes:
            for data in turn:
                transport.write(data)
            await asyncio.sleep(0)
        assert len(sizes) <= sum(len(turn) for turn in writes)
        assert transport.get_write_buffer_size() >= 0

    expected = b"".join(b"".join(turn) for turn in writes)
    assert with_transport(scenario) == expected
