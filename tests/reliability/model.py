"""Independent oracles for the reliability tests: Convex order, equality, validity.

Everything here is written from the Convex docs and sources (values, IDs and ordering:
docs.convex.dev/database/types), not from one_store's own encoder, so that a bug in the core's sort keys or
value checks shows up as a disagreement instead of being copied into the oracle.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

from one_store import UNSET

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Type ranks of Convex's total order (reference §4.6):
# undefined < null < int64 < float64 < boolean < string < bytes < array < object.
_UNDEFINED, _NULL, _INT, _FLOAT, _BOOL, _STRING, _BYTES, _ARRAY, _OBJECT = range(9)

OrderKey = tuple[Any, ...]


def _float_order(value: float) -> int:
    """Map a float to an unsigned integer whose order is IEEE-754 totalOrder."""
    bits: int = struct.unpack(">Q", struct.pack(">d", value))[0]
    if bits >> 63:  # negative: larger magnitude sorts first
        return ~bits & 0xFFFF_FFFF_FFFF_FFFF
    return bits | (1 << 63)


def order_key(value: object) -> OrderKey:
    """A tuple whose Python ordering is Convex's total order of ``value``.

    Equality of keys is Convex equality: type-strict (``1 != 1.0 != True``),
    ``NaN == NaN``, ``-0.0 != 0.0``. ``UNSET`` is a missing field.
    """
    if value is UNSET:
        return (_UNDEFINED,)
    if value is None:
        return (_NULL,)
    if isinstance(value, bool):
        return (_BOOL, int(value))
    if isinstance(value, int):
        return (_INT, value)
    if isinstance(value, float):
        return (_FLOAT, _float_order(value))
    if isinstance(value, str):
        return (_STRING, value.encode("utf-8"))
    if isinstance(value, bytes):
        return (_BYTES, value)
    if isinstance(value, list | tuple):
        return (_ARRAY, tuple(order_key(v) for v in value))
    if isinstance(value, dict):
        items = sorted(
            (k.encode("utf-8"), order_key(v))
            for k, v in value.items()
            if v is not UNSET
        )
        return (_OBJECT, tuple(items))
    raise TypeError(f"{type(value).__name__} is not a Convex value")


def same(a: object, b: object) -> bool:
    """Convex equality of two values (documents included)."""
    return order_key(a) == order_key(b)


def sorted_docs(
    docs: Iterable[Mapping[str, Any]], fields: tuple[str, ...], *, desc: bool = False
) -> list[Mapping[str, Any]]:
    """Sort documents as an index over ``fields`` orders them (then time, then id)."""

    def key(doc: Mapping[str, Any]) -> tuple[OrderKey, ...]:
        return index_key(doc, fields)

    return sorted(docs, key=key, reverse=desc)


def index_key(doc: Mapping[str, Any], fields: tuple[str, ...]) -> tuple[OrderKey, ...]:
    """The full index key of a document: its fields, ``_creationTime``, ``_id``."""
    parts = [order_key(doc.get(f, UNSET)) for f in fields]
    parts.append(order_key(doc["_creationTime"]))
    parts.append(order_key(doc["_id"]))
    return tuple(parts)


# --------------------------------------------------------------------------- validity

MAX_ARRAY_LEN = 8192
MAX_OBJECT_FIELDS = 1024
MAX_FIELD_NAME_LEN = 1024
MAX_DOCUMENT_NESTING = 16
MAX_VALUE_NESTING = 64
MAX_DOCUMENT_SIZE = 1 << 20
ID_LEN = 32  # user tables are numbered from 10001: 32-character IDs (reference §2.2)


class Unspecified(Exception):  # noqa: N818 - a verdict, not an error
    """The contract does not say whether this input is accepted (e.g. ``bytearray``)."""


def value_problem(value: object, depth: int = 0, *, max_nesting: int) -> str | None:
    """Why ``value`` is not a Convex value (None when it is one).

    Raises:
        Unspecified: for inputs the contract leaves open (subclasses of the plain
            types, bytearray/memoryview), so callers accept either outcome.
    """
    if value is None or type(value) in (bool, float):
        return None
    if type(value) is int:
        return None if INT64_MIN <= value <= INT64_MAX else "int out of int64 range"
    if type(value) is str:
        return _string_problem(value)
    if type(value) is bytes:
        return None
    if type(value) in (list, tuple):
        assert isinstance(value, list | tuple)
        return _array_problem(value, depth, max_nesting)
    if type(value) is dict:
        return _object_problem(value, depth, max_nesting)
    if isinstance(value, int | float | str | bytes | list | tuple | dict):
        raise Unspecified(type(value).__name__)
    if isinstance(value, bytearray | memoryview):
        raise Unspecified(type(value).__name__)
    return f"{type(value).__name__} is not a Convex value"


def _string_problem(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "string with an unpaired surrogate"
    return None


def _array_problem(
    value: list[Any] | tuple[Any, ...], depth: int, max_nesting: int
) -> str | None:
    if depth + 1 > max_nesting:
        return "too deep"
    if len(value) > MAX_ARRAY_LEN:
        return "array too long"
    for item in value:
        problem = value_problem(item, depth + 1, max_nesting=max_nesting)
        if problem:
            return problem
    return None


def _object_problem(value: dict[Any, Any], depth: int, max_nesting: int) -> str | None:
    if depth + 1 > max_nesting:
        return "too deep"
    if len(value) > MAX_OBJECT_FIELDS:
        return "too many fields"
    for key, item in value.items():
        problem = field_name_problem(key)
        if problem:
            return problem
        if item is UNSET:  # an undefined field is dropped (reference §1.3)
            continue
        problem = value_problem(item, depth + 1, max_nesting=max_nesting)
        if problem:
            return problem
    return None


def field_name_problem(key: object) -> str | None:
    """Why ``key`` cannot be an object field name (reference §1.4)."""
    if type(key) is not str:
        if isinstance(key, str):
            raise Unspecified("str subclass as a key")
        return "non-string key"
    if key.startswith("$"):
        return "key starts with $"
    if len(key) > MAX_FIELD_NAME_LEN:
        return "key too long"
    if any(not (0x20 <= ord(c) <= 0x7E) for c in key):
        return "key with a non-printable or non-ASCII character"
    return None


def nesting(value: object) -> int:
    """Convex's nesting of a valid value: scalars 0, array/object 1 + deepest child."""
    if isinstance(value, list | tuple):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


def convex_size(value: object) -> int:
    """Convex's size formula (reference §1.1) for a valid value."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 9
    if isinstance(value, str):
        return 2 + len(value.encode("utf-8"))
    if isinstance(value, bytes):
        return 2 + len(value)
    if isinstance(value, list | tuple):
        return 2 + sum(convex_size(v) for v in value)
    assert isinstance(value, dict)
    return 2 + sum(
        len(k) + 1 + convex_size(v) for k, v in value.items() if v is not UNSET
    )


def document_problem(doc: object) -> str | None:
    """Why ``doc`` cannot be inserted into a schemaless table (None when it can).

    Raises:
        Unspecified: when the contract leaves the outcome open, or the size is within
            a few bytes of the 1 MiB limit (where exact accounting decides).
    """
    if type(doc) is not dict:
        if isinstance(doc, dict):
            raise Unspecified("dict subclass")
        return "document is not a dict"
    problem = value_problem(doc, 0, max_nesting=MAX_DOCUMENT_NESTING)
    if problem:
        return problem
    for key in doc:
        if key.startswith("_"):
            return "top-level field starting with _"
    # The stored document also holds _id (a 32-char string) and _creationTime.
    size = convex_size(doc) + (3 + 1 + 2 + ID_LEN) + (13 + 1 + 9)
    if abs(size - MAX_DOCUMENT_SIZE) < 64:
        raise Unspecified("size at the 1 MiB boundary")
    if size > MAX_DOCUMENT_SIZE:
        return "document larger than 1 MiB"
    return None


def normalized(value: object) -> object:
    """What a stored valid value reads back as: tuples become lists, UNSET fields go."""
    if isinstance(value, list | tuple):
        return [normalized(v) for v in value]
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if v is not UNSET}
    if isinstance(value, bytearray | memoryview):  # if accepted, it reads back as bytes
        return bytes(value)
    return value


class Clock:
    """A settable millisecond clock: time only moves when a test moves it."""

    def __init__(self, start_ms: float = 1_700_000_000_000.0) -> None:
        self.now = start_ms

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` milliseconds (0 keeps it still)."""
        self.now += ms
