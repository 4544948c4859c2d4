"""Tests for one_store.model.validators: every ``v.*`` with Convex's semantics.

Expected behaviour is Convex's (reference §1.2, §1.5; BE
crates/common/src/schemas/validator.rs ``check_value_internal``; JS
src/values/validators.ts for ``.json()``), with the project's one Python choice (docs/schema.md):
``v.number()`` also takes an ``int`` and returns ``float(x)``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from returns.result import Failure, Success

from one_store import UNSET, SchemaError, Validator, ValueInvalid, v
from one_store.model.ids import encode_id
from one_store.model.keys import sort_key
from one_store.model.values import InvalidValue, dumps, loads
from tests.strategies import validators_with_values

AGENTS, USERS = 10001, 10002


def resolve(number: int) -> str | None:
    return {AGENTS: "agents", USERS: "users"}.get(number)


def problem(validator: Validator, value: object, **kw: Any) -> ValueInvalid:
    result = validator.validate(value, **kw)
    assert isinstance(result, Failure), result
    error = result.failure()
    assert isinstance(error, ValueInvalid)
    return error


def ok(validator: Validator, value: object, **kw: Any) -> Any:
    result = validator.validate(value, **kw)
    assert isinstance(result, Success), result
    return result.unwrap()


# ---------------------------------------------------------------- scalars

ACCEPTS: list[tuple[Validator, list[Any]]] = [
    (v.string(), ["", "a", "é\x00"]),
    (v.number(), [0.0, -0.0, math.inf, math.nan, 1e308]),
    (v.float64(), [1.5]),
    (v.int64(), [0, -(2**63), 2**63 - 1]),
    (v.bigint(), [5]),
    (v.boolean(), [True, False]),
    (v.bytes(), [b"", b"\x00"]),
    (v.null(), [None]),
    (v.any(), [None, 1, 1.0, "s", b"", [1], {"a": [{}]}]),
]
REJECTS: list[tuple[Validator, list[Any]]] = [
    (v.string(), [1, None, b"a", ["a"], "\ud800"]),
    (v.number(), [True, "1", None, 2**1100]),
    (v.int64(), [1.0, True, False, math.nan, "1", 2**63, -(2**63) - 1]),
    (v.boolean(), [0, 1, None, "true"]),
    (v.bytes(), ["ab", [1], None]),
    (v.null(), [0, False, "", UNSET]),
    (v.any(), [{1, 2}, object(), {"$a": 1}, UNSET]),
]


@pytest.mark.parametrize(
    ("validator", "value"), [(val, x) for val, xs in ACCEPTS for x in xs]
)
def test_scalar_validators_accept(validator, value):
    assert sort_key(ok(validator, value)) == sort_key(value)


@pytest.mark.parametrize(
    ("validator", "value"), [(val, x) for val, xs in REJECTS for x in xs]
)
def test_scalar_validators_reject(validator, value):
    assert problem(validator, value).path == ""


def test_number_takes_an_int_and_returns_a_float():
    out = ok(v.number(), 3)
    assert type(out) is float
    assert out == 3.0


def test_a_stored_int_is_not_a_float64():
    # Stored values are not converted: an int64 in the file stays an int64, and
    # Convex's v.float64() does not match it (check_value_internal).
    with pytest.raises(InvalidValue) as info:
        v.object({"n": v.number()}).check_stored({"n": 1}, None)
    assert info.value.path_text() == ".n"
    assert v.number().check_stored(1.0, None) == 1.0
    assert v.union(v.number(), v.int64()).check_stored(1, None) == 1
    with pytest.raises(InvalidValue):
        v.array(v.union(v.number(), v.string())).check_stored(["a", 2], None)
    with pytest.raises(InvalidValue):
        v.record(v.string(), v.number()).check_stored({"a": 2}, None)


def test_no_match_message_names_value_and_validator():
    message = problem(v.int64(), True).message
    assert message.startswith("Value does not match validator.")
    assert "v.int64()" in message
    assert "true" in message


# ---------------------------------------------------------------- literal


@pytest.mark.parametrize(
    ("lit", "good", "bad"),
    [
        ("a", "a", ["b", None]),
        (1, 1, [1.0, True, "1"]),
        (1.0, 1.0, [1, True]),
        (0.0, 0.0, [-0.0, 0]),
        (True, True, [1, 1.0, False]),
        (False, False, [0, None]),
    ],
)
def test_literal_equality_is_type_strict(lit, good, bad):
    assert ok(v.literal(lit), good) == good
    for x in bad:
        message = problem(v.literal(lit), x).message
        assert "does not match literal validator" in message


@pytest.mark.parametrize("lit", [math.nan, math.inf, None, [1], b"x"])
def test_literal_rejects_non_finite_and_non_scalar_literals(lit):
    with pytest.raises(SchemaError):
        v.literal(lit)


# ---------------------------------------------------------------- id


def test_id_checks_format_checksum_and_table():
    good = encode_id(AGENTS)
    other = encode_id(USERS)
    unknown = encode_id(10099)
    val = v.id("agents")
    assert ok(val, good, resolve=resolve) == good
    assert "from table `users`" in problem(val, other, resolve=resolve).message
    assert problem(val, unknown, resolve=resolve).message.startswith(
        "Value does not match"
    )
    for bad in ["", "nope", good[:-1] + ("0" if good[-1] != "0" else "1"), 5, None]:
        problem(val, bad, resolve=resolve)


def test_id_without_a_resolver_checks_only_the_format():
    other = encode_id(USERS)
    assert ok(v.id("agents"), other) == other
    problem(v.id("agents"), "x" * 32)


def test_id_table_must_be_a_string():
    with pytest.raises(SchemaError):
        v.id(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- containers


def test_array_elements_and_paths():
    val = v.array(v.object({"b": v.int64()}))
    assert ok(val, ({"b": 1},)) == [{"b": 1}]
    error = problem(val, [{"b": 1}, {"b": "x"}])
    assert error.path == "[1].b"
    assert "Path: [1].b" in error.message
    assert problem(v.array(v.null()), [None] * 8193).message.startswith(
        "Array length is too long"
    )
    assert ok(v.array(v.null()), [None] * 8192) == [None] * 8192
    problem(v.array(v.any()), "abc")


def test_object_rejects_extra_and_missing_fields():
    val = v.object({"a": v.string(), "b": v.optional(v.int64())})
    assert ok(val, {"a": "x"}) == {"a": "x"}
    assert ok(val, {"a": "x", "b": UNSET}) == {"a": "x"}
    missing = problem(val, {"b": 1}).message
    assert missing.startswith("Object is missing the required field `a`")
    extra = problem(val, {"a": "x", "c": 1}).message
    assert extra.startswith("Object contains extra field `c`")
    assert problem(val, {"a": "x", "$c": 1}).message.startswith("Field name $c")
    problem(val, ["a"])


def test_optional_means_absent_not_null():
    val = v.object({"a": v.optional(v.string())})
    assert ok(val, {}) == {}
    assert problem(val, {"a": None}).path == ".a"
    nullable = v.object({"a": v.nullable(v.string())})
    assert ok(nullable, {"a": None}) == {"a": None}


def test_nested_paths_are_printed_like_convex():
    val = v.object({"a": v.array(v.object({"b": v.object({"c": v.boolean()})}))})
    error = problem(val, {"a": [{"b": {"c": True}}, {"b": {"c": 1}}]})
    assert error.path == ".a[1].b.c"
    assert "\nPath: .a[1].b.c\n" in error.message


def test_record_checks_keys_and_values():
    val = v.record(v.string(), v.int64())
    assert ok(val, {"x": 1, "y y": 2}) == {"x": 1, "y y": 2}
    assert problem(val, {"x": "1"}).path == ".x"
    assert problem(val, {"$x": 1}).path == ".keys()"
    assert problem(val, {1: 1}).path == ".keys()"
    ids = v.record(v.id("agents"), v.null())
    assert ok(ids, {encode_id(AGENTS): None}, resolve=resolve)
    assert problem(ids, {"plain": None}, resolve=resolve).path == ".keys()"
    assert problem(val, {f"k{i}": 0 for i in range(1025)}).message.startswith(
        "Object has too many fields"
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda: v.record(v.optional(v.string()), v.any()),
        lambda: v.record(v.string(), v.optional(v.any())),
        lambda: v.record(v.int64(), v.any()),
        lambda: v.record(v.literal("a"), v.any()),
    ],
)
def test_record_misuse_raises(build):
    with pytest.raises(SchemaError):
        build()


def test_union_takes_the_first_matching_member():
    val = v.union(v.int64(), v.number())
    assert type(ok(val, 3)) is int
    assert type(ok(v.union(v.number(), v.int64()), 3)) is float
    assert problem(val, "3").message.startswith("Value does not match validator.")
    assert problem(v.union(), None)  # zero members match nothing


def test_single_member_union_reports_the_members_own_error():
    val = v.union(v.object({"a": v.string()}))
    assert problem(val, {"a": 1}).path == ".a"


def test_validator_builders_reject_non_validators():
    with pytest.raises(SchemaError):
        v.array("string")  # type: ignore[arg-type]
    with pytest.raises(SchemaError):
        v.object({"a": int})  # type: ignore[dict-item]
    with pytest.raises(SchemaError):
        v.object({"not an identifier": v.string()})
    with pytest.raises(SchemaError):
        v.union(v.string(), None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- json and misc


def test_json_has_convexs_validator_shape():
    val = v.object(
        {
            "s": v.string(),
            "n": v.optional(v.number()),
            "i": v.int64(),
            "id": v.id("agents"),
            "lit": v.literal(2),
            "arr": v.array(v.bytes()),
            "rec": v.record(v.string(), v.any()),
            "u": v.union(v.null(), v.boolean()),
        }
    )
    assert val.json() == {
        "type": "object",
        "value": {
            "s": {"fieldType": {"type": "string"}, "optional": False},
            "n": {"fieldType": {"type": "number"}, "optional": True},
            "i": {"fieldType": {"type": "bigint"}, "optional": False},
            "id": {
                "fieldType": {"type": "id", "tableName": "agents"},
                "optional": False,
            },
            "lit": {
                "fieldType": {"type": "literal", "value": {"$integer": "AgAAAAAAAAA="}},
                "optional": False,
            },
            "arr": {
                "fieldType": {"type": "array", "value": {"type": "bytes"}},
                "optional": False,
            },
            "rec": {
                "fieldType": {
                    "type": "record",
                    "keys": {"type": "string"},
                    "values": {"fieldType": {"type": "any"}, "optional": False},
                },
                "optional": False,
            },
            "u": {
                "fieldType": {
                    "type": "union",
                    "value": [{"type": "null"}, {"type": "boolean"}],
                },
                "optional": False,
            },
        },
    }
    assert v.literal("x").json() == {"type": "literal", "value": "x"}


def test_validators_are_frozen_and_compare_by_value():
    assert v.array(v.string()) == v.array(v.string())
    assert hash(v.object({"a": v.int64()})) == hash(v.object({"a": v.int64()}))
    assert v.optional(v.string()) != v.string()
    assert str(v.optional(v.id("t"))) == 'v.optional(v.id("t"))'


@given(validators_with_values())
def test_every_matching_value_is_accepted_unchanged(pair):
    validator, value = pair
    out = ok(validator, value)
    assert same_up_to_number(out, value)


@given(validators_with_values())
def test_what_a_validator_stores_passes_its_stored_check(pair):
    validator, value = pair
    stored = loads(dumps(ok(validator, value)))
    assert sort_key(validator.check_stored(stored, None)) == sort_key(stored)


def same_up_to_number(out: Any, value: Any) -> bool:
    """Equal in Convex's order, except that an int may come back as ``float(int)``."""
    if isinstance(value, tuple):
        value = list(value)
    if type(value) is int and type(out) is float:
        return out == float(value)
    if isinstance(value, list):
        return (
            isinstance(out, list)
            and len(out) == len(value)
            and all(map(same_up_to_number, out, value))
        )
    if isinstance(value, dict):
        present = {k: x for k, x in value.items() if x is not UNSET}
        return (
            isinstance(out, dict)
            and out.keys() == present.keys()
            and all(same_up_to_number(out[k], present[k]) for k in present)
        )
    return sort_key(out) == sort_key(value)


class _Text(str):
    """A str subclass: not the exact type the string fast paths accept."""


_STRINGS = st.one_of(
    st.text(st.characters(max_codepoint=127), max_size=5),
    st.text(max_size=5),
    st.just("a\ud800b"),
    st.builds(_Text, st.text(max_size=3)),
    st.integers(-3, 3),
    st.none(),
    st.binary(max_size=2),
)


def _outcome(validator: Validator, value: object) -> tuple[str, object]:
    result = validator.validate(value)
    if isinstance(result, Success):
        checked = result.unwrap()
        return "ok", (checked, [type(x) for x in checked["a"]], type(checked["s"]))
    problem = result.failure()
    return "invalid", (problem.path, problem.message)


@given(st.one_of(st.lists(_STRINGS, max_size=4), st.tuples(_STRINGS)), _STRINGS)
def test_the_string_fast_paths_agree_with_the_string_check(items, item) -> None:
    # v.string() fields and v.array(v.string()) accept ASCII strs without the
    # per-item check; a one-member union is the same check without the fast
    # path, so both must accept, convert and refuse exactly alike.
    fast = v.object({"s": v.string(), "a": v.array(v.string())})
    slow = v.object({"s": v.union(v.string()), "a": v.array(v.union(v.string()))})
    value = {"s": item, "a": items}
    assert _outcome(fast, value) == _outcome(slow, value)


def _both_object_checks(validator: Validator) -> tuple[Any, Any]:
    from one_store.model import checks

    specs = tuple(
        (name, f.check, f.is_optional, f.kind == "string")
        for name, f in validator.fields
    )
    known = frozenset(name for name, _ in validator.fields)
    return (
        checks._unrolled_object(validator, specs, known),
        checks._looped_object(validator, specs, known),
    )


def _result(check: Any, value: object) -> tuple[str, object]:
    try:
        out = check(value, None)
    except InvalidValue as e:
        return "invalid", (e.path_text(), str(e))
    return "ok", (out, [type(x) for x in out.values()])


_FIELD_VALUES = st.one_of(
    _STRINGS, st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(0, 3))
)
_OBJECTS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "s": _STRINGS | st.just(UNSET),
            "n": _FIELD_VALUES,
            "o": st.dictionaries(st.sampled_from(["x", "y"]), _FIELD_VALUES, max_size=2)
            | _FIELD_VALUES,
            "l": _FIELD_VALUES,
            "u": _FIELD_VALUES,
            "extra": _FIELD_VALUES | st.just(UNSET),
            "_x": _FIELD_VALUES,
        },
    ),
    _FIELD_VALUES,
)


@given(_OBJECTS)
@example({"s": "a\ud800b"})
@example({"s": "é", "o": {"x": 2**63}})
def test_the_written_object_check_is_the_loop(value) -> None:
    # Objects are checked by code written for their fields; the loop it
    # replaced (still used for wide objects) must give the same outcome.
    validator = v.object(
        {
            "s": v.string(),
            "n": v.optional(v.number()),
            "o": v.optional(v.object({"x": v.optional(v.int64())})),
            "l": v.optional(v.array(v.int64())),
            "u": v.optional(v.union(v.string(), v.null())),
        }
    )
    unrolled, looped = _both_object_checks(validator)
    assert _result(unrolled, value) == _result(looped, value)
