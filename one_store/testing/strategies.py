"""Hypothesis strategies: Convex values, and values a validator accepts or rejects."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from ..model.ids import encode_id
from ..model.validators import Validator
from ..model.values import INT64_MAX, INT64_MIN, MAX_VALUE_NESTING, Value

try:
    from hypothesis import strategies as st
    from hypothesis.strategies import SearchStrategy
except ImportError as e:  # the kit's other tools work without Hypothesis
    raise ImportError(
        "one_store.testing's strategies (from_validator, any_value) need Hypothesis: "
        "pip install 'one-store[testing]' (or pip install hypothesis)",
        name="hypothesis",
    ) from e


_FIELD_ALPHABET = string.ascii_letters + string.digits + "_"
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Convex's base32
DEFAULT_TABLE_NUMBER = 10_001


def _field_names() -> SearchStrategy[str]:
    return st.text(_FIELD_ALPHABET, min_size=1, max_size=12)


def any_value(max_leaves: int = 20) -> SearchStrategy[Value]:
    """Any Convex value: null, bool, int64, float, str, bytes, lists and objects."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(INT64_MIN, INT64_MAX),
        st.floats(),
        st.text(max_size=20),
        st.binary(max_size=20),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(_field_names(), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def from_validator(
    validator: Validator,
    *,
    invalid: bool = False,
    tables: Mapping[str, int] | None = None,
) -> SearchStrategy[Any]:
    """A Hypothesis strategy of values ``validator`` accepts (or, ``invalid=True``, rejects).

    Every valid value passes ``validator.validate(x)`` and every invalid one fails
    it (``tests/unit/test_testing.py`` proves both for generated validators).
    Invalid values are built from the validator's shape, not filtered: a wrong
    type, a missing required field, an extra field, an invalid element or
    record value, an int outside int64, a malformed ID, a different literal.

    Args:
        validator: any ``v.*`` validator (an ``args=`` dict: wrap it in ``v.object``).
        invalid: generate values the validator rejects instead.
        tables: table name -> table number for ``v.id`` values; use
            ``store.storage.table_number(name)`` to make IDs that pass a store's
            checks (they name no existing document). Defaults to 10001.

    Example:
        >>> from hypothesis import given
        >>> from one_store import v
        >>> agent = v.object({"name": v.string(), "age": v.optional(v.int64())})
        >>> @given(from_validator(agent))
        ... def test_agents_validate(value):
        ...     assert agent.validate(value).unwrap() == value
        >>> test_agents_validate()
    """
    if not isinstance(validator, Validator):
        raise TypeError(f"from_validator() takes a v.* validator, got {validator!r}")
    numbers = dict(tables or {})
    strategy: SearchStrategy[Any] = (
        _invalid(validator, numbers) if invalid else _valid(validator, numbers)
    )
    return strategy


def _id_strategy(table: str | None, numbers: Mapping[str, int]) -> SearchStrategy[str]:
    number = numbers.get(table or "", DEFAULT_TABLE_NUMBER)
    return st.binary(min_size=16, max_size=16).map(lambda raw: encode_id(number, raw))


def _valid(val: Validator, numbers: Mapping[str, int], depth: int = 0) -> Any:
    match val.kind:
        case "string":
            return st.text(max_size=30)
        case "number":
            return st.one_of(st.floats(), st.integers(-(2**53), 2**53))
        case "int64":
            return st.integers(INT64_MIN, INT64_MAX)
        case "boolean":
            return st.booleans()
        case "bytes":
            return st.binary(max_size=30)
        case "null":
            return st.none()
        case "any":
            return any_value()
        case "id":
            return _id_strategy(val.table, numbers)
        case "literal":
            return st.just(val.literal)
        case "array":
            assert val.element is not None
            return st.lists(_valid(val.element, numbers, depth + 1), max_size=4)
        case "object":
            required = {
                name: _valid(f, numbers, depth + 1)
                for name, f in val.fields
                if not f.is_optional
            }
            optional = {
                name: _valid(f, numbers, depth + 1)
                for name, f in val.fields
                if f.is_optional
            }
            return st.fixed_dictionaries(required, optional=optional)
        case "record":
            assert val.keys is not None
            assert val.values is not None
            keys = _keys(val.keys, numbers)
            return st.dictionaries(
                keys, _valid(val.values, numbers, depth + 1), max_size=4
            )
        case "union":
            return st.one_of(*(_valid(m, numbers, depth + 1) for m in val.members))
    raise TypeError(f"unknown validator kind {val.kind!r}")  # pragma: no cover


# The Python types each kind accepts (bool before int: bool is an int subclass).
_TAGS = ("str", "float", "int", "bool", "bytes", "null", "list", "dict")


def _accepted(val: Validator) -> set[str]:
    match val.kind:
        case "string" | "id":
            return {"str"}
        case "number":
            return {"float", "int"}
        case "int64":
            return {"int"}
        case "boolean":
            return {"bool"}
        case "bytes":
            return {"bytes"}
        case "null":
            return {"null"}
        case "any":
            return set(_TAGS)
        case "literal":
            lit = val.literal
            return {
                "bool"
                if isinstance(lit, bool)
                else "int"
                if isinstance(lit, int)
                else "float"
                if isinstance(lit, float)
                else "str"
            }
        case "array":
            return {"list"}
        case "object" | "record":
            return {"dict"}
        case "union":
            return set().union(*(_accepted(m) for m in val.members))
    raise TypeError(f"unknown validator kind {val.kind!r}")  # pragma: no cover


def _of_tag(tag: str) -> Any:
    return {
        "str": st.text(max_size=10),
        "float": st.floats(),
        "int": st.integers(INT64_MIN, INT64_MAX),
        "bool": st.booleans(),
        "bytes": st.binary(max_size=10),
        "null": st.none(),
        "list": st.lists(st.none(), max_size=2),
        "dict": st.dictionaries(_field_names(), st.none(), max_size=2),
    }[tag]


def _not_convex(accepts_number: bool) -> Any:
    """Values no validator accepts: not Convex values at all."""
    options = [
        st.sets(st.integers(), max_size=2),
        st.just(object()),
        st.dictionaries(
            st.text(_FIELD_ALPHABET, max_size=5).map(lambda k: "$" + k),
            st.none(),
            min_size=1,
        ),
        st.just(_nested(MAX_VALUE_NESTING + 5)),
    ]
    if not accepts_number:  # v.number() takes any int and stores float(x)
        options.append(st.integers(min_value=INT64_MAX + 1))
        options.append(st.integers(max_value=INT64_MIN - 1))
    return st.one_of(*options)


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _keys(val: Validator, numbers: Mapping[str, int]) -> Any:
    """Valid record keys: field names (strings) or IDs."""
    if val.kind == "union":
        return st.one_of(*(_keys(m, numbers) for m in val.members))
    if val.kind == "id":
        return _id_strategy(val.table, numbers)
    return _field_names()


def _invalid(val: Validator, numbers: Mapping[str, int]) -> Any:
    """Values ``val`` rejects, built from its shape."""
    accepted = _accepted(val)
    wrong = [t for t in _TAGS if t not in accepted]
    options = [_not_convex("float" in accepted)]
    if wrong:
        options.append(st.one_of(*(_of_tag(t) for t in wrong)))
    match val.kind:
        case "int64":
            options.append(st.integers(min_value=INT64_MAX + 1))
        case "id":
            # Strings with characters outside Convex's base32 are never IDs.
            options.append(st.text(alphabet="!#%&*+-./:;<=>?@IiLlOoUu ", max_size=40))
        case "literal":
            lit = val.literal
            if isinstance(lit, str):
                options.append(st.text(max_size=10).filter(lambda x: x != lit))
            elif isinstance(lit, bool):
                options.append(st.just(not lit))
            elif isinstance(lit, int):
                options.append(
                    st.integers(INT64_MIN, INT64_MAX).filter(lambda x: x != lit)
                )
            else:
                options.append(st.floats().filter(lambda x: x != lit))
        case "array":
            assert val.element is not None
            options.append(
                st.tuples(
                    st.lists(_valid(val.element, numbers), max_size=3),
                    _invalid(val.element, numbers),
                    st.integers(0, 3),
                ).map(lambda t: [*t[0][: t[2]], t[1], *t[0][t[2] :]])
            )
        case "object":
            options.append(_invalid_object(val, numbers))
        case "record":
            assert val.keys is not None
            assert val.values is not None
            keys = _keys(val.keys, numbers)
            options.append(
                st.tuples(
                    st.dictionaries(keys, _valid(val.values, numbers), max_size=3),
                    keys,
                    _invalid(val.values, numbers),
                ).map(lambda t: {**t[0], t[1]: t[2]})
            )
        case "union":
            literals = [m.literal for m in val.members if m.kind == "literal"]
            if all(m.kind == "literal" for m in val.members) and all(
                isinstance(x, str) for x in literals
            ):
                options.append(st.text(max_size=10).filter(lambda x: x not in literals))
    return st.one_of(*options)


def _invalid_object(val: Validator, numbers: Mapping[str, int]) -> Any:
    fields = dict(val.fields)
    valid = _valid(val, numbers)
    broken = []
    required = [name for name, f in val.fields if not f.is_optional]
    if required:  # a required field missing
        broken.append(
            st.tuples(valid, st.sampled_from(required)).map(
                lambda t: {k: x for k, x in t[0].items() if k != t[1]}
            )
        )
    # an extra field
    extra = _field_names().filter(lambda k: k not in fields)
    broken.append(
        st.tuples(valid, extra, any_value(5)).map(lambda t: {**t[0], t[1]: t[2]})
    )
    # one field with a value its validator rejects
    if fields:
        names = sorted(fields)
        broken.append(
            st.tuples(valid, st.sampled_from(names)).flatmap(
                lambda t: _invalid(fields[t[1]], numbers).map(
                    lambda bad: {**t[0], t[1]: bad}
                )
            )
        )
    return st.one_of(*broken)
