"""Convex values in Python: the type mapping, limits, codecs and sort keys.

This module is pure (no I/O). It holds:

- the Python <-> Convex mapping of docs/schema.md (``int`` is int64, never ``bool``;
  ``float`` is float64 including NaN, ±inf and -0.0; ``bytes``; ``list``; ``dict``);
- the limits of a value (array length, object fields, field names, nesting, size by
  Convex's size formula);
- the storage JSON codec: plain JSON, with tags only where JSON cannot say it
  (``{"$bytes": base64}`` and ``{"$float": "NaN" | "Infinity" | "-Infinity"}``, or
  ``"NaN:<16 hex digits>"`` for a NaN with another sign or payload);
  Python's ``json`` already keeps ``1`` and ``1.0`` apart, so int64 needs no tag;
- Convex's ``convex_encoded_json`` wire codec (``$integer``, ``$float``, ``$bytes``).

Sort keys (Convex's total order as bytes) are in :mod:`one_store.model.keys`.

Errors inside the walkers are raised as :class:`InvalidValue`, which collects the
path on its way out (no cost on the success path); callers turn it into a Problem.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Callable
from typing import Any, Final, TypeAlias, final

Value: TypeAlias = (
    bool | int | float | str | bytes | list["Value"] | dict[str, "Value"] | None
)
"""A Convex value as Python holds it."""

Document: TypeAlias = dict[str, Any]
"""A stored document: an object with ``_id`` and ``_creationTime``.

Typed ``dict[str, Any]`` so that ``doc["_id"]`` can be passed to ``ctx.db.patch``
without a cast; every value in it is a :data:`Value`."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_ARRAY_LEN: Final = 8192
MAX_OBJECT_FIELDS: Final = 1024
MAX_FIELD_NAME_LEN: Final = 1024
MAX_IDENTIFIER_LEN: Final = 64
MAX_DOCUMENT_NESTING: Final = 16
MAX_VALUE_NESTING: Final = 64
MAX_DOCUMENT_SIZE: Final = 1 << 20
MAX_FUNCTION_VALUE_SIZE: Final = (
    1 << 24
)  # args and return value (BE FUNCTION_MAX_*_SIZE)
MAX_VALUE_SIZE: Final = 1 << 25


@final
class _Unset:
    """The type of :data:`UNSET`: Convex's ``undefined`` ("no value")."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()
"""Convex's ``undefined``: removes a field in ``patch``; matches a missing field in
index ranges and filters. Distinct from ``None`` (Convex's ``null``)."""


class InvalidValue(Exception):  # noqa: N818 - internal signal, never escapes the library
    """A value broke a rule; ``path`` is filled in as the error travels outwards."""

    def __init__(self, message: str, path: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = path if path is not None else []

    def at(self, segment: str | int) -> InvalidValue:
        """Prepend one path segment (an object key or an array index) and return self."""
        self.path.insert(0, segment)
        return self

    def path_text(self) -> str:
        """The path in Convex's form: ``.a[0].b`` (empty for the value itself)."""
        return format_path(self.path)


def format_path(path: list[str | int] | tuple[str | int, ...]) -> str:
    """Format path segments the way Convex prints them: ``.a.b[3].c``."""
    return "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)


def type_name(value: object) -> str:
    """Name a Python value's Convex type for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    if value is UNSET:
        return "undefined"
    return f"Python {type(value).__name__}"


def show(value: object, limit: int = 80) -> str:
    """Render a value briefly for an error message (Convex's Display form)."""
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        try:
            text = repr(value)
        except RecursionError:  # a value thousands of levels deep: still a Failure
            text = f"<{type_name(value)} nested too deeply to show>"
        except Exception:  # a user object whose __repr__ fails must not escape
            text = f"<{type_name(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- names


def field_name_error(name: object) -> str | None:
    """Return why ``name`` cannot be an object key, or None if it can.

    Convex's rule for any object key: a string of non-control ASCII (0x20-0x7E),
    not starting with ``$``, at most 1024 characters.
    """
    if not isinstance(name, str):
        return f"Field names must be strings, got {type_name(name)} {show(name)}."
    if name.startswith("$"):
        return f"Field name {name} starts with '$', which is reserved."
    if len(name) > MAX_FIELD_NAME_LEN:
        return f"Field name is too long ({len(name)} > maximum {MAX_FIELD_NAME_LEN})."
    if not (name.isascii() and name.isprintable()):
        bad = next(c for c in name if not (c.isascii() and c.isprintable()))
        return f"Field name {name!r} has invalid character {bad!r}: field names may contain only non-control ASCII characters."
    return None


def identifier_error(name: object, what: str = "Identifier") -> str | None:
    """Return why ``name`` is not a Convex identifier (table, index, field path part)."""
    if not isinstance(name, str) or not name:
        return f"{what} must be a non-empty string, got {show(name)}."
    if len(name) > MAX_IDENTIFIER_LEN:
        return (
            f"{what} {name!r} is too long ({len(name)} > maximum {MAX_IDENTIFIER_LEN})."
        )
    first = name[0]
    if not (first.isascii() and (first.isalpha() or first == "_")):
        return f"{what} {name!r} must start with a letter or underscore."
    if not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        return f"{what} {name!r} may contain only letters, digits and underscores."
    if set(name) == {"_"}:
        return f"{what} {name!r} cannot consist only of underscores."
    return None


# --------------------------------------------------------------------------- checks


def check_string(value: str) -> str:
    """Check that a string is valid Unicode (no lone surrogates), as Convex requires."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidValue(
                f"String contains an unpaired surrogate at position {e.start}; Convex strings must be valid Unicode."
            ) from None
    return value


def check_int(value: int) -> int:
    """Check an int64's range."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidValue(
            f"Integer {value} does not fit into a 64-bit signed integer (int64)."
        )
    return value


def check_value(value: object, depth: int = 0) -> Value:
    """Check that ``value`` is a Convex value within limits; return it normalised.

    Tuples become lists and ``bytearray``/``memoryview`` become ``bytes``.
    ``UNSET`` inside an object drops the key (as JS ``undefined``); anywhere else it
    is an error. Raises :class:`InvalidValue` with the path on failure.
    """
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return check_int(value)
    if isinstance(value, str):
        return check_string(value)
    if depth >= MAX_VALUE_NESTING:
        raise InvalidValue(
            f"Value is too nested (more than maximum nesting {MAX_VALUE_NESTING})."
        )
    if isinstance(value, dict):
        return check_object(value, depth)
    if isinstance(value, list | tuple):
        return check_array(value, depth)
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if value is UNSET:
        raise InvalidValue(
            "UNSET (undefined) is not a valid Convex value here; it may only leave out an object field."
        )
    raise InvalidValue(
        f"{type_name(value)} {show(value)} is not a supported Convex type "
        "(null, bool, int, float, str, bytes, list, dict)."
    )


def check_array(value: list[Any] | tuple[Any, ...], depth: int) -> list[Value]:
    """Check an array's length and elements."""
    if len(value) > MAX_ARRAY_LEN:
        raise InvalidValue(
            f"Array length is too long ({len(value)} > maximum length {MAX_ARRAY_LEN})."
        )
    out: list[Value] = []
    for i, item in enumerate(value):
        try:
            out.append(check_value(item, depth + 1))
        except InvalidValue as e:
            raise e.at(i) from None
    return out


def check_object(value: dict[Any, Any], depth: int) -> dict[str, Value]:
    """Check an object's field count, field names and values."""
    if len(value) > MAX_OBJECT_FIELDS:
        raise InvalidValue(
            f"Object has too many fields ({len(value)} > maximum number of fields {MAX_OBJECT_FIELDS})."
        )
    out: dict[str, Value] = {}
    for key, item in value.items():
        error = field_name_error(key)
        if error is not None:
            raise InvalidValue(error)
        if item is UNSET:
            continue
        try:
            out[key] = check_value(item, depth + 1)
        except InvalidValue as e:
            raise e.at(key) from None
    return out


def nesting(value: Value) -> int:
    """Convex's nesting: scalars 0, arrays and objects 1 + the deepest child."""
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    return 0


def mebibytes(size: int) -> str:
    """``size`` as Convex prints it (humansize BINARY): ``16 MiB``, ``16.5 MiB``."""
    return f"{size / (1 << 20):.2f}".rstrip("0").rstrip(".") + " MiB"


def convex_size(value: Value) -> int:
    """Size of a value in bytes by Convex's formula (BE crates/value/src/size.rs)."""
    # Exact-type dispatch and plain loops: this runs on every argument, document
    # and return value, and is 2.4x faster than isinstance chains with sum().
    # mypy does not narrow through ``t``; ``v`` is ``value`` typed for that dispatch.
    t = type(value)
    v: Any = value
    if t is str:
        return 2 + (len(v) if v.isascii() else len(v.encode("utf-8")))
    if t is int or t is float:
        return 9
    if t is dict:
        n = 2
        for k, x in v.items():
            n += len(k) + 1 + convex_size(x)
        return n
    if t is list:
        n = 2
        for x in v:
            n += convex_size(x)
        return n
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 9
    if isinstance(value, str):
        return 2 + len(value.encode("utf-8"))
    if isinstance(value, bytes):
        return 2 + len(value)
    if isinstance(value, list):
        return 2 + sum(convex_size(v) for v in value)
    return 2 + sum(len(k) + 1 + convex_size(v) for k, v in value.items())


def size_bound(value: Value) -> int:
    """An upper bound of :func:`convex_size`: 9 bytes per byte of ``value``'s JSON.

    Every JSON token is at least 1/9 of its Convex size (an int64 or float64
    is 9 bytes and at least 1 character; a string's or key's UTF-8 is at most
    its JSON text; bytes are shorter than their base64), so a value whose bound
    is within a limit is too. pydantic-core writes the JSON in C, about twice
    as fast as the exact walk: callers measure exactly only above a limit. A
    value it cannot encode is measured exactly.
    """
    try:
        text = _to_json(value, inf_nan_mode="constants", bytes_mode="base64")
    except (ValueError, TypeError):  # e.g. a lone surrogate
        return convex_size(value)
    return 9 * len(text)


def size_within(value: Value, limit: int) -> int:
    """``value``'s :func:`size_bound` when within ``limit``, else its exact size."""
    bound = size_bound(value)
    return bound if bound <= limit else convex_size(value)


# --------------------------------------------------------------------------- storage JSON

_FLOAT_NAMES: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _default(obj: object) -> object:
    if isinstance(obj, bytes):
        return {"$bytes": base64.b64encode(obj).decode("ascii")}
    raise TypeError(f"{type_name(obj)} is not a Convex value")


_dumps_fast: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
).encode


_CANONICAL_NAN_BITS: Final = 0x7FF8000000000000


def _float_name(value: float) -> str:
    if not math.isnan(value):
        return "Infinity" if value > 0 else "-Infinity"
    (bits,) = struct.unpack("<Q", struct.pack("<d", value))
    # Convex keeps a float's exact bits, and its total order tells NaNs apart by
    # sign and payload (-NaN sorts first): keep any other NaN's bits as hex.
    return "NaN" if bits == _CANONICAL_NAN_BITS else f"NaN:{bits:016x}"


def _tag_special_floats(value: Value) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": _float_name(value)}
    if isinstance(value, list):
        return [_tag_special_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _tag_special_floats(v) for k, v in value.items()}
    return value


def dumps(value: Value) -> str:
    """Encode a checked value as the storage JSON text."""
    try:
        return _dumps_fast(value)
    except ValueError:  # NaN or ±inf somewhere: tag them (rare path)
        return _dumps_fast(_tag_special_floats(value))


def dumps_plain(value: Value) -> str:
    """:func:`dumps` for a checked value its validator says holds no bytes.

    pydantic-core's encoder (1.3 us for a 350-byte message where the standard
    library's takes 3.9) writes the same values as :func:`dumps` for every Convex
    value but bytes, which it would write as a plain string (a float's text may
    differ, e.g. ``0.00006103515625`` for ``6.103515625e-05``; it reads back to
    the same bits): hence only for
    validators without ``v.bytes()`` or ``v.any()``. A non-finite float (written
    as a ``NaN``/``Infinity`` constant) or a lone surrogate sends the value to
    :func:`dumps`, which tags or refuses them as always.
    """
    try:
        text: str = _to_json(value, inf_nan_mode="constants").decode()
    except ValueError:  # pydantic-core refuses lone surrogates
        return dumps(value)
    if "NaN" in text or "Infinity" in text:  # maybe a non-finite float: tag it
        return dumps(value)
    return text


def _untag(obj: dict[str, Any]) -> object:
    if len(obj) == 1:
        if "$bytes" in obj:
            return base64.b64decode(obj["$bytes"])
        if "$float" in obj:
            name = obj["$float"]
            if name.startswith("NaN:"):
                return struct.unpack("<d", struct.pack("<Q", int(name[4:], 16)))[0]
            return _FLOAT_NAMES[name]
    return obj


_Scanner = Callable[[str, int], tuple[Any, int]]
# The stdlib's C scanners themselves (storage text is what ``dumps`` wrote: one
# value, no surrounding whitespace), for tagged text and as the fallback.
_scan_plain: Final[_Scanner] = vars(json.JSONDecoder())["scan_once"]
_scan_tagged: Final[_Scanner] = vars(json.JSONDecoder(object_hook=_untag))["scan_once"]


def load_parser() -> None:
    """Import the JSON parser of :func:`loads` now (a store that opens will read).

    Not at module level: importing pydantic-core builds its schema TypedDicts, ~20 ms
    that `import one_store` does not need to pay. ``Storage`` calls this when it opens,
    so that the first read of a store costs what every later one does.
    """
    global _from_json, _to_json
    from pydantic_core import from_json, to_json

    _from_json = from_json
    _to_json = to_json


def _first_from_json(text: str, **options: Any) -> Any:
    """Parse ``text`` when no store has loaded the parser yet (``loads`` alone)."""
    load_parser()
    return _from_json(text, **options)


def _first_to_json(value: object, **options: Any) -> bytes:
    """Encode ``value`` when no store has loaded the codec yet (``dumps_plain`` alone)."""
    load_parser()
    out: bytes = _to_json(value, **options)
    return out


# pydantic-core's parser (a dependency already, through pydantic) decodes a
# document in 0.7 us where the stdlib takes 1.7: every document read goes
# through here. Floats round-trip bit for bit and ints are exact at any size, as
# with the stdlib (tests/property/test_roundtrip.py holds both to it).
_from_json: Callable[..., Any] = _first_from_json
_to_json: Callable[..., bytes] = _first_to_json


def loads(text: str) -> Any:
    """Decode storage JSON text; tags are only looked for when the text has one."""
    # User keys never start with "$", so a text without '"$' has no tag to restore.
    if '"$' in text:
        return _scan_tagged(text, 0)[0]
    try:
        return _from_json(text, allow_inf_nan=False, cache_strings="keys")
    except (ValueError, TypeError):  # e.g. a lone surrogate (never stored): stdlib
        return _scan_plain(text, 0)[0]


# --------------------------------------------------------------------------- wire JSON


def b64(data: bytes) -> str:
    """Standard base64 text of ``data`` (the ``$bytes``/``$integer``/``$float`` payloads)."""
    return base64.b64encode(data).decode("ascii")


def to_convex_json(value: Value) -> Any:
    """Encode a value as Convex's ``convex_encoded_json`` (JS ``convexToJson``)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"$integer": b64(struct.pack("<q", value))}
    if isinstance(value, float):
        if math.isfinite(value) and not (value == 0 and math.copysign(1, value) < 0):
            return value
        return {"$float": b64(struct.pack("<d", value))}
    if isinstance(value, bytes):
        return {"$bytes": b64(value)}
    if isinstance(value, list):
        return [to_convex_json(v) for v in value]
    return {k: to_convex_json(v) for k, v in value.items()}


def unb64(text: object, size: int | None, what: str) -> bytes:
    """Decode a ``$``-tag's base64 payload strictly; ``ValueError`` names ``what``."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must hold a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"{what} holds malformed base64: {text!r}") from None
    if size is not None and len(data) != size:
        raise ValueError(f"{what} must decode to {size} bytes, got {len(data)}")
    return data


def from_convex_json(obj: Any) -> Value:
    """Decode ``convex_encoded_json`` (JS ``jsonToConvex``): every JSON number is a float64.

    Raises:
        ValueError: on a malformed ``$`` tag or a key starting with ``$``.
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int | float):
        return float(obj)
    if isinstance(obj, list):
        return [from_convex_json(v) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            ((key, inner),) = obj.items()
            if key == "$integer":
                return int(struct.unpack("<q", unb64(inner, 8, "$integer"))[0])
            if key == "$float":
                value = float(struct.unpack("<d", unb64(inner, 8, "$float"))[0])
                if math.isfinite(value) and not (
                    value == 0 and math.copysign(1, value) < 0
                ):
                    raise ValueError(
                        f"$float is only for NaN, ±Infinity and -0; got {value}"
                    )
                return value
            if key == "$bytes":
                return unb64(inner, None, "$bytes")
        out: dict[str, Value] = {}
        for key, inner in obj.items():
            if isinstance(key, str) and key.startswith("$"):
                raise ValueError(
                    f"Field name {key} starts with '$', which is reserved."
                )
            out[key] = from_convex_json(inner)
        return out
    raise ValueError(f"not a JSON value: {type(obj).__name__}")


def get_path(document: dict[str, Any], path: tuple[str, ...]) -> object:
    """Read a dotted field path from a document; a missing field gives ``UNSET``."""
    value: object = document
    for part in path:
        if not isinstance(value, dict):
            return UNSET
        value = value.get(part, UNSET)
    return value
