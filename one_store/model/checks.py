"""Validators compiled to checks: one closure per validator node.

:meth:`one_store.model.validators.Validator.check` compiles a validator once,
here, into ``check(value, resolve) -> value``: a tree of closures that return
the value (tuples as lists, ``v.number``'s ints as floats) or raise
:class:`~one_store.model.values.InvalidValue` with Convex's message
(``Value does not match validator.``); the path is collected on the way out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, TypeAlias, cast

from . import ids
from .values import (
    MAX_ARRAY_LEN,
    UNSET,
    InvalidValue,
    check_int,
    check_string,
    check_value,
    field_name_error,
    show,
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


class Validator(Protocol):
    """What compiling needs of a validator node (``one_store.model.validators``).

    A protocol rather than an import of the class, which imports this module.
    """

    @property
    def kind(self) -> Kind:
        """Which validator: ``string``, ``object``, ``union``, ..."""

    @property
    def is_optional(self) -> bool:
        """Whether an object field may be missing."""

    @property
    def table(self) -> str | None:
        """The table of ``v.id``."""

    @property
    def literal(self) -> Any:
        """The value of ``v.literal``."""

    @property
    def element(self) -> Validator | None:
        """The element validator of ``v.array``."""

    @property
    def fields(self) -> tuple[tuple[str, Validator], ...]:
        """The fields of ``v.object``."""

    @property
    def keys(self) -> Validator | None:
        """The key validator of ``v.record``."""

    @property
    def values(self) -> Validator | None:
        """The value validator of ``v.record``."""

    @property
    def members(self) -> tuple[Validator, ...]:
        """The members of ``v.union``."""

    @property
    def check(self) -> Check:
        """The node's compiled check."""

    @property
    def check_stored(self) -> Check:
        """The node's compiled check of stored values."""


def no_match(value: object, validator: Validator) -> InvalidValue:
    """Convex's NoMatch error: ``Value does not match validator.``."""
    return InvalidValue(
        f"Value does not match validator.\nValue: {show(value)}\nValidator: {validator}"
    )


def compile_check(val: Validator) -> Check:
    """The ``check(value, resolve) -> value`` closure of ``val`` (see the module doc)."""
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
            return _compile_union(val)


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


_STR: Final = frozenset({str})


def _compile_array(val: Validator) -> Check:
    assert val.element is not None
    element = val.element.check
    strings = val.element.kind == "string"

    def check_array(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, list | tuple):
            raise no_match(x, val)
        if len(x) > MAX_ARRAY_LEN:
            raise InvalidValue(
                f"Array length is too long ({len(x)} > maximum length {MAX_ARRAY_LEN})."
            )
        # v.array(v.string()) of ASCII strs (tags, names): checked in C loops.
        if strings and set(map(type, x)) <= _STR and all(map(str.isascii, x)):
            return list(x)
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
    # A v.string() field holding an ASCII str is accepted here, without a call
    # of its check (an ASCII string has no surrogate to refuse): most fields.
    specs = tuple(
        (name, f.check, f.is_optional, f.kind == "string") for name, f in val.fields
    )
    known = frozenset(name for name, _ in val.fields)
    if len(specs) <= _UNROLLED_FIELDS:
        return _unrolled_object(val, specs, known)
    return _looped_object(val, specs, known)


def _looped_object(
    val: Validator,
    specs: tuple[tuple[str, Check, bool, bool], ...],
    known: frozenset[str],
) -> Check:
    """``check_object`` as a loop over ``val``'s fields (wide objects)."""

    def check_object(x: Any, resolve: Resolve) -> Any:
        if not isinstance(x, dict):
            raise no_match(x, val)
        out = {}
        for name, check, optional, text in specs:
            item = x.get(name, UNSET)
            if item is UNSET:
                if optional:
                    continue
                raise _missing_field(name, x, val)
            if text and type(item) is str and item.isascii():
                out[name] = item
                continue
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


# Objects with at most this many fields get a check written for their fields
# (no loop, no tuple unpacking per field); wider ones the loop above.
_UNROLLED_FIELDS: Final = 32


def _unrolled_object(
    val: Validator,
    specs: tuple[tuple[str, Check, bool, bool], ...],
    known: frozenset[str],
) -> Check:
    """``check_object`` written out for ``val``'s fields: the same steps, in order.

    Each field: read it (``UNSET`` when absent: skipped if optional, else the
    missing-field error), accept an ASCII str at once for a ``v.string()``, else
    call its check and put the field's name on an error. Then the extra-field
    check. Field names are written as ``repr`` literals; the checks are bound
    by name (``c0``, ``c1``...).
    """
    lines = [
        "def check_object(x, resolve):",
        "    if not isinstance(x, dict):",
        "        raise no_match(x, val)",
        "    out = {}",
    ]
    namespace: dict[str, Any] = {
        "UNSET": UNSET,
        "InvalidValue": InvalidValue,
        "no_match": no_match,
        "_missing_field": _missing_field,
        "_extra_field": _extra_field,
        "val": val,
        "known": known,
    }
    for i, (name, check, optional, text) in enumerate(specs):
        namespace[f"c{i}"] = check
        key = repr(name)
        lines += [
            f"    item = x.get({key}, UNSET)",
            "    if item is UNSET:",
            "        pass"
            if optional
            else f"        raise _missing_field({key}, x, val)",
        ]
        if text:
            lines += [
                "    elif type(item) is str and item.isascii():",
                f"        out[{key}] = item",
            ]
        lines += [
            "    else:",
            "        try:",
            f"            out[{key}] = c{i}(item, resolve)",
            "        except InvalidValue as e:",
            f"            raise e.at({key}) from None",
        ]
    lines += [
        "    if len(out) != len(x):",
        "        extra = _extra_field(x, known, val)",
        "        if extra is not None:",
        "            raise extra",
        "    return out",
    ]
    # Our own text: the only data in it are field names, written with repr.
    exec("\n".join(lines), namespace)
    check_object: Check = namespace["check_object"]
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


def _compile_union(val: Validator, checks: tuple[Check, ...] | None = None) -> Check:
    if checks is None:
        checks = tuple(m.check for m in val.members)
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


def compile_stored_check(val: Validator) -> Check:
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
