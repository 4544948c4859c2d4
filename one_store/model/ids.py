"""Convex-format document IDs.

Layout (BE ``crates/value/src/id_v6.rs``): ``varint(table_number)`` + 16-byte internal
id + 2-byte footer, where the footer is Fletcher-16 (modulus 256) over everything
before it, XOR version 0, little-endian. The text form is lowercase Crockford
base32, MSB-first, no padding; decoding is strict (the string must re-encode to
itself). User tables are numbered from 10001, so their IDs are 32 characters.

The internal id is 14 random bytes + 2 bytes of days since the epoch (big-endian),
as Convex's transaction id generator does.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from typing import Final, TypeAlias

Id: TypeAlias = str
"""A document ID as Python holds it: its text form (Convex's ``Id<"table">``).

An alias of ``str`` rather than a new type, so that what ``ctx.db.insert`` returns and
the ``_id`` of a document read back need no cast; ``v.id("table")`` checks the format
and the table."""

ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_ALPHABET_SET: Final = frozenset(ALPHABET)
FIRST_USER_TABLE_NUMBER: Final = 10001
INTERNAL_ID_LEN: Final = 16


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int] | None:
    # A user table's number (10001...) is two bytes, a system table's one:
    # those without the loop (every ID decoded on a cache miss comes here).
    first = data[0] if data else 0x80
    if first < 0x80:
        return first, 1
    if len(data) > 1 and data[1] < 0x80:
        return (first & 0x7F) | (data[1] << 7), 2
    n = shift = 0
    for i, byte in enumerate(data[:5]):
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, i + 1
    return None


def _fletcher16(data: bytes) -> int:
    # c0 = sum of bytes; c1 = sum of the running sums = sum((n - i) * byte_i),
    # both mod 256: C-level sums (itertools.accumulate makes the running sums)
    # rather than a Python loop.
    c0 = sum(data) & 0xFF
    c1 = sum(itertools.accumulate(data)) & 0xFF
    return (c1 << 8) | c0


_PAIRS: Final = tuple(a + b for a in ALPHABET for b in ALPHABET)  # 10 bits -> 2 chars


def _b32plan(size: int) -> tuple[int, int, tuple[int, ...]]:
    """For ``size`` bytes: the characters, the padding shift, the pairs' shifts."""
    chars = -(-8 * size // 5)
    even = chars + (chars & 1)
    return chars, 5 * even - 8 * size, tuple(range(10 * (even // 2 - 1), -1, -10))


# Every length an ID can have (a varint of 1-5 bytes + 16 + 2), and then some.
_B32_PLANS: Final = tuple(_b32plan(size) for size in range(64))


def _b32encode(data: bytes) -> str:
    # MSB-first 5-bit groups with zero padding bits (Convex's base32), read off
    # the data as one big integer two characters at a time: half the time of
    # RFC 4648's b32encode plus translation, and every insert makes an ID. The
    # shifts of each length are computed once (a user table's ID: 16 pairs).
    size = len(data)
    chars, pad, shifts = _B32_PLANS[size] if size < 64 else _b32plan(size)
    number = int.from_bytes(data, "big") << pad
    text = "".join([_PAIRS[(number >> s) & 1023] for s in shifts])
    return text if len(text) == chars else text[:chars]


# Crockford digits -> the digits ``int(text, 32)`` reads (0-9, a-v), same values;
# every other ASCII character -> "!", which int() refuses. So one translate and
# one int() both check the alphabet and parse (int() alone would also take
# letters outside it, signs, spaces and underscores; non-ASCII digits are turned
# away by isascii() first).
_TO_INT32: Final = str.maketrans(
    {
        **{chr(i): "!" for i in range(128)},
        **dict(zip(ALPHABET, "0123456789abcdefghijklmnopqrstuv", strict=True)),
    }
)


def _b32decode(text: str) -> bytes | None:
    # The text is one big base-32 number, MSB first: int() parses it in C (the
    # RFC 4648 decoder is a Python loop, ~4x slower; IDs are decoded on every
    # v.id argument and every db.get).
    if not text.isascii():
        return None
    try:
        number = int(text.translate(_TO_INT32), 32)
    except ValueError:
        return None
    size, pad = divmod(5 * len(text), 8)
    if number & ((1 << pad) - 1):
        return None  # non-canonical: padding bits set
    return (number >> pad).to_bytes(size, "big")


def encode_id(table_number: int, raw: bytes | None = None) -> str:
    """Encode an ID for ``table_number`` around a 16-byte internal id (random if None).

    Example:
        >>> len(encode_id(10001))
        32
    """
    if raw is None:
        raw = os.urandom(14) + b"\x00\x00"
    if len(raw) != INTERNAL_ID_LEN:
        raise ValueError(f"internal id must be {INTERNAL_ID_LEN} bytes")
    body = _prefix(table_number) + raw
    return _b32encode(body + _fletcher16(body).to_bytes(2, "little"))


# The varint of a table number, made once per table (every insert encodes one).
_prefix: Final = functools.lru_cache(maxsize=4096)(_varint)


class IdGenerator:
    """Makes IDs with Convex's internal-id layout: random bytes + days since epoch."""

    def __init__(self, seed: int | None = None) -> None:
        # A seed makes IDs replay identically in tests; otherwise use the OS source.
        self._urandom = os.urandom if seed is None else random.Random(seed).randbytes

    def new(self, table_number: int, now_ms: float) -> str:
        """A fresh ID for ``table_number`` created at ``now_ms``."""
        days = int(now_ms // 86_400_000) & 0xFFFF
        return encode_id(table_number, self._urandom(14) + days.to_bytes(2, "big"))


def id_error(text: object) -> str | None:
    """Why ``text`` is not a well-formed ID (Convex's decode error text), or None."""
    if not isinstance(text, str):
        return "Unable to decode ID: IDs are strings"
    decoded = _decode(text)
    return decoded if isinstance(decoded, str) else None


@functools.lru_cache(maxsize=1 << 16)
def _decode(text: str) -> tuple[int, bytes] | str:
    if len(text) not in (31, 32, 34, 36, 37):
        return f"Unable to decode ID: Invalid ID length {len(text)}"
    data = _b32decode(text)
    if data is None:
        return "Unable to decode ID: ID wasn't valid base32"
    number = _read_varint(data)
    if number is None or number[0] == 0:
        return "Unable to decode ID: Invalid table number"
    table_number, used = number
    if len(data) != used + INTERNAL_ID_LEN + 2:
        return f"Unable to decode ID: Invalid ID length {len(text)}"
    found = int.from_bytes(data[-2:], "little")
    expected = _fletcher16(data[:-2])
    if found != expected:
        return f"Unable to decode ID: Invalid ID version {found} (expected {expected})"
    return table_number, data[used:-2]


def decode_id(text: str) -> tuple[int, bytes] | None:
    r"""Decode an ID into ``(table_number, internal_id)``; None if malformed.

    Example:
        >>> decode_id(encode_id(10017, bytes(16)))
        (10017, b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00')
    """
    decoded = _decode(text)
    return None if isinstance(decoded, str) else decoded


def table_number_of(text: object) -> int | None:
    """The table number inside an ID string, or None when it is not a valid ID."""
    if not isinstance(text, str) or len(text) not in (31, 32, 34, 36, 37):
        return None
    decoded = _decode(text)
    return None if isinstance(decoded, str) else decoded[0]
