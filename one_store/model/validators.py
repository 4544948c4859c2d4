"""The ``v`` namespace: Convex validators as frozen, compiled Python objects.

Each :class:`Validator` compiles once, on first use, into a closure
``check(value, resolve) -> value`` that raises :class:`~one_store.model.values.InvalidValue`
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
from typing import Any, Literal, TypeAlias, cast

from attrs import field, frozen
from returns.result import Result, Success

from . import ids
from .errors import ProblemFailure, ValueInvalid
from .values import (
    MAX_ARRAY_LEN,
    UNSET,
    InvalidValue,
    Value,
    check_int,
    check_string,
    check_value,
    field_name_error,
    identifier_error,
    show,
    to_convex_json,
)

Resolve: TypeAlias = Callable[[int], str | None] | None
"""Table number -> table name (None when unknown); None means "check format only"."""

Check: TypeAlias = Callable[[Any, Resolve], Any]

Kind = Literal[
    "string",
    "number",
    "int64",
    "boolean",
    "bytes",
    "null",
    "any",
    "id",
    "literal",
    "array",
    "object",
    "record",
    "union",
]


def no_match(value: object, validator: Validator) -> InvalidValue:
    """Convex's NoMatch error: ``Value does not match validator.``."""
    return InvalidValue(
        f"Value does not match validator.\nValue: {show(value)}\nValidator: {validator}"
    )


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
            self._compiled.append(_compile(self))
        return self._compiled[0]

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
            stored = self._memo["check_stored"] = _compile_stored(self)
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


# ---------------------------------------------------------------------- compile


def _compile(val: Validator) -> Check:
    match val.kind:
        case "string":

            def check_str(x: Any, _r: Resolve) -> Any:
                if type(x) is str or isinstance(x, str):
                    return check_string(x)
                raise no_match(x, val)

            return check_str
        case "number":

            def check_num(x: Any, _r: Resolve) -> Any:
                if type(x) is float:
                    return x
                if isinstance(x, int) and not isinstance(x, bool):
                    try:
                        return float(x)
                    except OverflowError:
                        raise no_match(x, val) from None
                if isinstance(x, float):
                    return float(x)
                raise no_match(x, val)

            return check_num
        case "int64":

            def check_i64(x: Any, _r: Resolve) -> Any:
                if isinstance(x, int) and not isinstance(x, bool):
                    return check_int(int(x))
                raise no_match(x, val)

            return check_i64
        case "boolean":

            def check_bool(x: Any, _r: Resolve) -> Any:
                if isinstance(x, bool):
                    return x
                raise no_match(x, val)

            return check_bool
        case "bytes":

            def check_bytes(x: Any, _r: Resolve) -> Any:
                if isinstance(x, bytes | bytearray | memoryview):
                    return bytes(x)
                raise no_match(x, val)

            return check_bytes
        case "null":

            def check_null(x: Any, _r: Resolve) -> Any:
                if x is None:
                    return None
                raise no_match(x, val)

            return check_null
        case "any":
            return lambda x, _r: check_value(x)
        case "id":
            return _compile_id(val)
        case "literal":
            return _compile_literal(val)
        case "array":
            return _compile_array(val)
        case "object":
            return _compile_object(val)
        case "record":
            return _compile_record(val)
        case "union":
            return _compile_union(val, tuple(m.check for m in val.members))


def _compile_id(val: Validator) -> Check:
    table = val.table

    def check_id(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, str):
            raise no_match(x, val)
        decoded = ids.decode_id(x)
        if decoded is None:
            raise no_match(x, val)
        if resolve is not None:
            found = resolve(decoded[0])
            if found is None:
                raise no_match(x, val)
            if found != table:
                raise InvalidValue(
                    f'Found ID "{x}" from table `{found}`, which does not match '
                    f'the table name in validator `v.id("{table}")`.'
                )
        return x

    return check_id


def _compile_literal(val: Validator) -> Check:
    lit = val.literal
    lit_type = type(lit)
    lit_sign = math.copysign(1.0, lit) if isinstance(lit, float) else 0.0

    def check_literal(x: Any, _r: Resolve) -> Any:
        if (
            type(x) is lit_type
            and x == lit
            and (
                lit_type is not float or math.copysign(1.0, cast(float, x)) == lit_sign
            )
        ):
            return x
        raise InvalidValue(
            f"`{show(x)}` does not match literal validator `v.literal({show(lit)})`."
        )

    return check_literal


def _compile_array(val: Validator) -> Check:
    assert val.element is not None
    element = val.element.check

    def check_array(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, list | tuple):
            raise no_match(x, val)
        if len(x) > MAX_ARRAY_LEN:
            raise InvalidValue(
                f"Array length is too long ({len(x)} > maximum length {MAX_ARRAY_LEN})."
            )
        out = []
        for i, item in enumerate(x):
            try:
                out.append(element(item, resolve))
            except InvalidValue as e:
                raise e.at(i) from None
        return out

    return check_array


def _missing_field(name: str, x: dict[str, Any], val: Validator) -> InvalidValue:
    return InvalidValue(
        f"Object is missing the required field `{name}`. Consider wrapping "
        "the field validator in `v.optional(...)` if this is expected.\n"
        f"Object: {show(x)}\nValidator: {val}"
    )


def _extra_field(
    x: dict[str, Any], known: frozenset[str], val: Validator
) -> InvalidValue | None:
    for key, item in x.items():
        if key not in known and item is not UNSET:
            error = field_name_error(key)
            return InvalidValue(
                error
                if error is not None
                else f"Object contains extra field `{key}` that is not in the "
                f"validator.\nObject: {show(x)}\nValidator: {val}"
            )
    return None


def _compile_object(val: Validator) -> Check:
    specs = tuple((name, f.check, f.is_optional) for name, f in val.fields)
    known = frozenset(name for name, _ in val.fields)

    def check_object(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, dict):
            raise no_match(x, val)
        out = {}
        for name, check, optional in specs:
            item = x.get(name, UNSET)
            if item is UNSET:
                if optional:
                    continue
                raise _missing_field(name, x, val)
            try:
                out[name] = check(item, resolve)
            except InvalidValue as e:
                raise e.at(name) from None
        if len(out) != len(x):
            extra = _extra_field(x, known, val)
            if extra is not None:
                raise extra
        return out

    return check_object


def _compile_record(val: Validator) -> Check:
    assert val.keys is not None
    assert val.values is not None
    key_check, value_check = val.keys.check, val.values.check

    def check_record(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, dict):
            raise no_match(x, val)
        if len(x) > 1024:
            check_value(x)  # raises the object-size error
        out = {}
        for key, item in x.items():
            error = field_name_error(key)
            if error is not None:
                raise InvalidValue(error).at("keys()")
            try:
                key_check(key, resolve)
            except InvalidValue as e:
                raise e.at("keys()") from None
            if item is UNSET:
                continue
            try:
                out[key] = value_check(item, resolve)
            except InvalidValue as e:
                raise e.at(key) from None
        return out

    return check_record


def _compile_union(val: Validator, checks: tuple[Check, ...]) -> Check:
    if len(checks) == 1:
        return checks[0]
    # The common enum shape (string literals): accept by a set lookup instead of
    # trying each branch in turn, whose failures build error text (~10% of a
    # validated insert). Anything else takes the general path, errors included.
    strings = frozenset(
        m.literal for m in val.members if m.kind == "literal" and type(m.literal) is str
    )

    def check_union(x: Any, resolve: Resolve) -> Any:
        if type(x) is str and x in strings:
            return x
        for check in checks:
            try:
                return check(x, resolve)
            except InvalidValue:
                continue
        raise no_match(x, val)

    return check_union


# ---------------------------------------------------------------------- stored values


def _compile_stored(val: Validator) -> Check:
    """Compile ``check_stored``: the value's Convex type only, nothing converted.

    A stored value was fully checked when it was written (valid Unicode, int64
    range, field names, sizes, nesting), so only what a new validator can refuse
    is looked at, and the value is returned as it is rather than rebuilt: the
    check of every document of a large table at open costs about what decoding
    them does (benchmarks/schema_check.py).
    """
    match val.kind:
        case "string":

            def stored_str(x: Any, _r: Resolve) -> Any:
                if isinstance(x, str):
                    return x
                raise no_match(x, val)

            return stored_str
        case "number":

            def stored_num(x: Any, _r: Resolve) -> Any:
                if isinstance(x, float):  # an int64 is not a float64 (no conversion)
                    return x
                raise no_match(x, val)

            return stored_num
        case "int64":

            def stored_i64(x: Any, _r: Resolve) -> Any:
                if isinstance(x, int) and not isinstance(x, bool):
                    return x
                raise no_match(x, val)

            return stored_i64
        case "any":
            return lambda x, _r: x
        case "array":
            return _stored_array(val)
        case "object":
            return _stored_object(val)
        case "record":
            return _stored_record(val)
        case "union":
            return _compile_union(val, tuple(m.check_stored for m in val.members))
        case _:  # boolean, bytes, null, id, literal: their checks convert nothing
            return val.check


def _stored_array(val: Validator) -> Check:
    assert val.element is not None
    element = val.element.check_stored

    def stored_array(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, list):
            raise no_match(x, val)
        for i, item in enumerate(x):
            try:
                element(item, resolve)
            except InvalidValue as e:
                raise e.at(i) from None
        return x

    return stored_array


def _stored_object(val: Validator) -> Check:
    # A v.any() field needs only to be there (or may be absent, if optional).
    specs = tuple(
        (name, None if f.kind == "any" else f.check_stored, f.is_optional)
        for name, f in val.fields
    )
    known = frozenset(name for name, _ in val.fields)

    def stored_object(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, dict):
            raise no_match(x, val)
        present = 0
        for name, check, optional in specs:
            item = x.get(name, UNSET)
            if item is UNSET:
                if optional:
                    continue
                raise _missing_field(name, x, val)
            present += 1
            if check is None:
                continue
            try:
                check(item, resolve)
            except InvalidValue as e:
                raise e.at(name) from None
        if present != len(x):
            extra = _extra_field(x, known, val)
            if extra is not None:
                raise extra
        return x

    return stored_object


def _stored_record(val: Validator) -> Check:
    assert val.keys is not None
    assert val.values is not None
    key_check, value_check = val.keys.check_stored, val.values.check_stored

    def stored_record(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, dict):
            raise no_match(x, val)
        for key, item in x.items():
            try:
                key_check(key, resolve)
            except InvalidValue as e:
                raise e.at("keys()") from None
            try:
                value_check(item, resolve)
            except InvalidValue as e:
                raise e.at(key) from None
        return x

    return stored_record


# ---------------------------------------------------------------------- builders


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
