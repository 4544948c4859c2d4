"""Sort keys: Convex's total order of values as bytes.

:func:`sort_key` encodes a value so that ``memcmp`` order is Convex's order
across types (missing < null < int64 < float64 < false < true < string < bytes <
array < object, convex-backend ``crates/value/src/sorting.rs``). Encodings are
prefix-free, so the concatenation of several keys orders as the tuple of their
values: an index key is the keys of its fields, then ``_creationTime``'s and
``_id``'s (:func:`key_function`), and a SQLite BLOB index orders documents
exactly as Convex does. Pure: no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from .values import UNSET, InvalidValue, get_path, type_name

# Type tags from convex-backend crates/value/src/sorting.rs: missing < null < int64
# < float64 < false < true < string < bytes < array < object.
TAG_UNDEFINED: Final = b"\x01"
_NULL: Final = b"\x03"
_INT_ZERO: Final = 0x08
_FLOAT: Final = 0x0D
_FALSE: Final = b"\x0e"
_TRUE: Final = b"\x0f"
_STRING: Final = b"\x10"
_BYTES: Final = b"\x11"
_ARRAY: Final = b"\x12"
_OBJECT: Final = b"\x15"
_END: Final = b"\x00"
_SIGN: Final = 1 << 63
_MASK: Final = (1 << 64) - 1
_pack_q: Final = struct.Struct(">Q").pack
_unpack_d_bits: Final = struct.Struct(">Q").unpack
_pack_d: Final = struct.Struct(">d").pack


def _escape(data: bytes) -> bytes:
    # 0x00 ends a string, so a NUL inside becomes 0x00 0xFF (still sorts lowest).
    return data.replace(b"\x00", b"\x00\xff") if b"\x00" in data else data


# Per width: the tag of a positive and of a negative value, the width, the span.
_INT_WIDTHS: Final = tuple(
    (bytes([_INT_ZERO + k]), bytes([_INT_ZERO - k]), width, 1 << (8 * width))
    for k, width in ((1, 1), (2, 2), (3, 4), (4, 8))
)
# The keys of 1..255 (counts, small numbers: most indexed ints), made once.
_INT_SMALL: Final = tuple(_INT_WIDTHS[0][0] + bytes([v]) for v in range(256))


def _int_key(value: int) -> bytes:
    if 0 < value < 256:
        return _INT_SMALL[value]
    if value == 0:
        return b"\x08"
    for up, down, width, span in _INT_WIDTHS:
        if 0 < value < span:
            return up + value.to_bytes(width, "big")
        if -span <= value < 0:
            return down + (value + span).to_bytes(width, "big")
    raise InvalidValue(f"Integer {value} does not fit into int64.")


def _float_key(value: float) -> bytes:
    (bits,) = _unpack_d_bits(_pack_d(value))
    bits = bits ^ _MASK if bits & _SIGN else bits | _SIGN
    return b"\x0d" + _pack_q(bits)


def sort_key(value: object) -> bytes:
    """Sort-key bytes of a value: ``memcmp`` order equals Convex's total order.

    ``UNSET`` (a missing field) sorts first. Encodings are prefix-free, so the
    concatenation of several keys orders as the tuple of their values.
    """
    if isinstance(value, str):
        return _STRING + _escape(value.encode("utf-8")) + _END
    if value is None:
        return _NULL
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    if isinstance(value, int):
        return _int_key(value)
    if isinstance(value, float):
        return _float_key(value)
    if isinstance(value, bytes):
        return _BYTES + _escape(value) + _END
    if isinstance(value, list | tuple):
        return _ARRAY + b"".join(sort_key(v) for v in value) + _END
    if isinstance(value, dict):
        parts = [
            sort_key(k) + sort_key(v)
            for k, v in sorted(value.items(), key=lambda kv: kv[0].encode("utf-8"))
            if v is not UNSET
        ]
        return _OBJECT + b"".join(parts) + _END
    if value is UNSET:
        return TAG_UNDEFINED
    raise InvalidValue(f"{type_name(value)} is not a Convex value and has no order.")


def compare(a: object, b: object) -> int:
    """Compare two values in Convex's total order: -1, 0 or 1."""
    ka, kb = sort_key(a), sort_key(b)
    return (ka > kb) - (ka < kb)


def prefix_end(key: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``key``.

    Returns None when no such string exists (``key`` is empty or all 0xFF).
    """
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def key_function(
    paths: tuple[tuple[str, ...], ...],
) -> Callable[[dict[str, Any]], bytes]:
    """Build ``doc -> key bytes`` for an index over ``paths`` (then ``_id``)."""
    if all(len(p) == 1 for p in paths):
        names = tuple(p[0] for p in paths)

        def flat_key(doc: dict[str, Any]) -> bytes:
            get = doc.get
            return b"".join([sort_key(get(n, UNSET)) for n in names])

        return flat_key

    def nested_key(doc: dict[str, Any]) -> bytes:
        return b"".join([sort_key(get_path(doc, p)) for p in paths])

    return nested_key
