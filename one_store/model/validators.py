"""The ``v`` namespace: Convex validators as frozen, compiled Python objects.

Each :class:`Validator` compiles once, on first use, into a closure
``check(value, resolve) -> value`` (:mod:`one_store.model.checks`) that raises :class:`~one_store.model.values.InvalidValue`
(the path is collected while the error travels outwards, so the success path pays
nothing for it). ``resolve`` maps an ID's table number to a table name (the store
passes its table registry); without it ``v.id`` checks only the ID's format.

A hand-written closure tree is used rather than pydantic: Convex's semantics
(``int`` is never ``bool``, int64 range, extra-field rejection, literal equality by
type, union first-match with conversion, ``v.number`` taking an ``int``) would need
custom pydantic validators on nearly every node, and the closures measured faster
for the benchmark's documents (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from attrs import field, frozen
from returns.result import Result, Success

from .checks import Check, Kind, Resolve, compile_check, compile_stored_check
from .errors import ProblemFailure, ValueInvalid
from .values import (
    InvalidValue,
    Value,
    check_int,
    identifier_error,
    show,
    to_convex_json,
)

_T = TypeVar("_T")


@frozen(repr=False)
class Validator:
    """A Convex validator. Build them with ``v.*``; they are immutable and hashable.

    Example:
        >>> from one_store import v
        >>> v.object({"name": v.string()}).validate({"name": "Ada"})
        <Success: {'name': 'Ada'}>
    """

    kind: Kind
    is_optional: bool = False
    table: str | None = None
    literal: Value = None
    element: Validator | None = None
    fields: tuple[tuple[str, Validator], ...] = ()
    keys: Validator | None = None
    values: Validator | None = None
    members: tuple[Validator, ...] = ()
    _compiled: list[Check] = field(
        factory=list, eq=False, hash=False, alias="_compiled"
    )
    _memo: dict[str, Any] = field(factory=dict, eq=False, hash=False, alias="_memo")

    # ------------------------------------------------------------------ use

    @property
    def check(self) -> Check:
        """The compiled ``check(value, resolve) -> value`` closure (built once)."""
        if not self._compiled:
            self._compiled.append(compile_check(self))
        return self._compiled[0]

    def derived(self, key: str, make: Callable[[Validator], _T]) -> _T:
        """``make(self)``, made once and kept with this validator (it is immutable).

        For what other layers compile from a validator (the return check's
        per-table bookkeeping), so each is built once per schema, not per call.
        """
        found: _T | None = self._memo.get(key)
        if found is None:
            found = self._memo[key] = make(self)
        return found

    @property
    def check_stored(self) -> Check:
        """``check`` for a value already stored: nothing is converted on the way.

        A stored value keeps its Convex type, so ``v.number()`` refuses an
        ``int`` here (an int64 in the file is not a float64, as in Convex) where
        ``check`` would convert an argument. Used when a schema changes under
        existing documents.
        """
        stored: Check | None = self._memo.get("check_stored")
        if stored is None:
            stored = self._memo["check_stored"] = compile_stored_check(self)
        return stored

    def validate(
        self, value: object, resolve: Resolve = None
    ) -> Result[Value, ValueInvalid]:
        """Check ``value``; return it (normalised) or ``ValueInvalid`` naming the path.

        Args:
            value: any Python object.
            resolve: table number -> table name, to check ``v.id`` tables; without
                it only the ID format and checksum are checked.

        Returns:
            ``Success(value)`` (tuples become lists, ``v.number`` ints become floats)
            or ``Failure(ValueInvalid(path, message))``.
        """
        try:
            return Success(self.check(value, resolve))
        except InvalidValue as e:
            return ProblemFailure(ValueInvalid(e.path_text(), error_text(e)))

    def json(self) -> dict[str, Any]:
        """Convex's JSON description of this validator (``validator.json``)."""
        match self.kind:
            case "int64":
                return {"type": "bigint"}
            case "id":
                return {"type": "id", "tableName": self.table}
            case "literal":
                return {"type": "literal", "value": to_convex_json(self.literal)}
            case "array":
                assert self.element is not None
                return {"type": "array", "value": self.element.json()}
            case "object":
                return {"type": "object", "value": _fields_json(self.fields)}
            case "record":
                assert self.keys is not None
                assert self.values is not None
                return {
                    "type": "record",
                    "keys": self.keys.json(),
                    "values": {"fieldType": self.values.json(), "optional": False},
                }
            case "union":
                return {"type": "union", "value": [m.json() for m in self.members]}
            case _:
                return {"type": self.kind}

    def walk(self) -> Iterator[Validator]:
        """Yield this validator and every validator nested inside it."""
        yield self
        children: list[Validator] = [f for _, f in self.fields] + list(self.members)
        children += [c for c in (self.element, self.keys, self.values) if c is not None]
        for child in children:
            yield from child.walk()

    @property
    def holds_no_bytes(self) -> bool:
        """Whether no valid value can contain bytes (no ``v.bytes()``, no ``v.any()``).

        Such values are stored with the faster encoder
        (:func:`one_store.model.values.dumps_plain`).
        """
        return self.derived(
            "holds_no_bytes",
            lambda top: all(k.kind not in ("bytes", "any") for k in top.walk()),
        )

    @property
    def max_nesting(self) -> int | None:
        """The deepest nesting a valid value can have (None: unbounded, e.g. v.any())."""
        if "max_nesting" not in self._memo:
            self._memo["max_nesting"] = self._max_nesting()
        depth: int | None = self._memo["max_nesting"]
        return depth

    def _max_nesting(self) -> int | None:
        match self.kind:
            case "any":
                return None
            case "array" | "object" | "record" | "union":
                children = [f for _, f in self.fields] + list(self.members)
                children += [c for c in (self.element, self.values) if c is not None]
                depths = [c.max_nesting for c in children]
                if any(d is None for d in depths):
                    return None
                inner = max((d for d in depths if d is not None), default=0)
                return inner if self.kind == "union" else 1 + inner
            case _:
                return 0

    def field_validator(self, path: tuple[str, ...]) -> Validator | None:
        """The validator a (dotted) field path can hold, or None if it cannot exist."""
        if not path:
            return self
        if self.kind == "any":
            return self
        if self.kind == "object":
            for name, sub in self.fields:
                if name == path[0]:
                    return sub.field_validator(path[1:])
            return None
        if self.kind == "record":
            assert self.values is not None
            return self.values.field_validator(path[1:])
        if self.kind == "union":
            found = [m.field_validator(path) for m in self.members]
            return next((f for f in found if f is not None), None)
        return None

    def __str__(self) -> str:
        opt = "v.optional({})" if self.is_optional else "{}"
        match self.kind:
            case "id":
                inner = f'v.id("{self.table}")'
            case "literal":
                inner = f"v.literal({show(self.literal)})"
            case "array":
                inner = f"v.array({self.element})"
            case "object":
                body = ", ".join(f"{k}: {f}" for k, f in self.fields)
                inner = f"v.object({{{body}}})"
            case "record":
                inner = f"v.record({self.keys}, {self.values})"
            case "union":
                inner = f"v.union({', '.join(str(m) for m in self.members)})"
            case _:
                inner = f"v.{self.kind}()"
        return opt.format(inner)

    __repr__ = __str__


def _fields_json(fields: tuple[tuple[str, Validator], ...]) -> dict[str, Any]:
    return {
        name: {"fieldType": f.json(), "optional": f.is_optional} for name, f in fields
    }


def error_text(error: InvalidValue) -> str:
    """Compose Convex's message: first line, ``Path: .a[0]`` line, then details."""
    path = error.path_text()
    if not path:
        return error.message
    first, _, rest = error.message.partition("\n")
    return f"{first}\nPath: {path}" + (f"\n{rest}" if rest else "")


def _as_validator(x: object, where: str) -> Validator:
    if not isinstance(x, Validator):
        from .errors import SchemaError

        raise SchemaError(f"{where} must be a validator (v.*), got {x!r}")
    return x


def _object_fields(
    fields: Mapping[str, Validator],
) -> tuple[tuple[str, Validator], ...]:
    from .errors import SchemaError

    if not isinstance(fields, Mapping):
        raise SchemaError(f"v.object() takes a dict of validators, got {fields!r}")
    out = []
    for name, f in fields.items():
        error = identifier_error(name, "Object field name")
        if error is not None:
            raise SchemaError(error)
        out.append((name, _as_validator(f, f"Field {name!r}")))
    return tuple(out)


class _V:
    """The ``v`` namespace of validator builders (``from one_store import v``)."""

    def string(self) -> Validator:
        """Any ``str``."""
        return Validator("string")

    def number(self) -> Validator:
        """A float64 (``float``); an ``int`` is accepted and stored as ``float(x)``."""
        return Validator("number")

    float64 = number

    def int64(self) -> Validator:
        """An ``int`` in -2**63..2**63-1 (never a ``bool``, never a ``float``)."""
        return Validator("int64")

    bigint = int64

    def boolean(self) -> Validator:
        """``True`` or ``False``."""
        return Validator("boolean")

    def bytes(self) -> Validator:
        """``bytes`` (``bytearray``/``memoryview`` are converted)."""
        return Validator("bytes")

    def null(self) -> Validator:
        """``None``."""
        return Validator("null")

    def any(self) -> Validator:
        """Any Convex value."""
        return Validator("any")

    def id(self, table: str) -> Validator:
        """An ID of a document in ``table`` (format, checksum and table are checked)."""
        from .errors import SchemaError

        if not isinstance(table, str):
            raise SchemaError("v.id(tableName) requires a string")
        return Validator("id", table=table)

    def literal(self, value: str | int | float | bool) -> Validator:
        """Exactly ``value`` (equality is type-strict: ``1`` is not ``1.0`` or ``True``)."""
        from .errors import SchemaError

        if not isinstance(value, str | int | float):
            raise SchemaError(
                f"v.literal() takes a str, int, float or bool, got {value!r}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(f"v.literal() float must be finite, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool):
            check_int(value)
        return Validator("literal", literal=value)

    def optional(self, inner: Validator) -> Validator:
        """Mark an object field as optional (it may be absent; ``None`` is not absent)."""
        inner = _as_validator(inner, "v.optional()")
        return Validator(
            inner.kind,
            True,
            inner.table,
            inner.literal,
            inner.element,
            inner.fields,
            inner.keys,
            inner.values,
            inner.members,
        )

    def nullable(self, inner: Validator) -> Validator:
        """``inner`` or ``None``."""
        return self.union(inner, self.null())

    def array(self, element: Validator) -> Validator:
        """A list (or tuple) of up to 8192 elements, each matching ``element``."""
        return Validator("array", element=_as_validator(element, "v.array()"))

    def object(self, fields: Mapping[str, Validator]) -> Validator:
        """A dict with exactly these fields (optional ones may be absent; extras rejected)."""
        return Validator("object", fields=_object_fields(fields))

    def record(self, keys: Validator, values: Validator) -> Validator:
        """A dict with any keys matching ``keys`` and values matching ``values``."""
        from .errors import SchemaError

        keys = _as_validator(keys, "v.record() keys")
        values = _as_validator(values, "v.record() values")
        if keys.is_optional or values.is_optional:
            raise SchemaError("Record validator cannot have optional keys/values")
        if not all(
            k.kind in ("string", "id") for k in keys.walk() if k.kind != "union"
        ):
            raise SchemaError(
                "v.record() keys must be v.string(), v.id(...) or a union of those"
            )
        return Validator("record", keys=keys, values=values)

    def union(self, *members: Validator) -> Validator:
        """A value matching at least one member (the first match is used)."""
        return Validator(
            "union", members=tuple(_as_validator(m, "v.union()") for m in members)
        )


v = _V()
"""Validator builders: ``v.string()``, ``v.object({...})``, ``v.id("users")``, ..."""
