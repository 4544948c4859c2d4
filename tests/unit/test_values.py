"""Tests for one_store.model.values: the Convex value model, limits and codecs.

Expected results come from Convex (convex-backend crates/value, size.rs for sizes),
not from the implementation.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given

from one_store import UNSET
from one_store.model.keys import sort_key
from one_store.model.values import (
    InvalidValue,
    check_value,
    convex_size,
    dumps,
    field_name_error,
    format_path,
    from_convex_json,
    identifier_error,
    loads,
    nesting,
    size_bound,
    size_within,
    to_convex_json,
    type_name,
)
from one_store.testing import any_value


def float_of_bits(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


def bits_of(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


NEG_NAN = float_of_bits(0xFFF8000000000000)


def invalid(value: object) -> InvalidValue:
    with pytest.raises(InvalidValue) as info:
        check_value(value)
    return info.value


# ---------------------------------------------------------------- type mapping


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (False, "boolean"),
        (0, "int64"),
        (0.0, "float64"),
        ("", "string"),
        (b"", "bytes"),
        ([], "array"),
        ({}, "object"),
        (UNSET, "undefined"),
    ],
)
def test_type_name_maps_python_to_convex_types_and_bool_is_not_int(value, name):
    assert type_name(value) == name


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, 0, -1])
def test_int64_extremes_are_values(value):
    assert check_value(value) == value


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_ints_outside_int64_are_rejected(value):
    assert "64-bit" in invalid(value).message


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.0, 5e-324])
def test_every_float64_is_a_value(value):
    out = check_value(value)
    assert bits_of(out) == bits_of(value)  # type: ignore[arg-type]


def test_lone_surrogate_string_is_rejected_but_nul_is_fine():
    assert "surrogate" in invalid("a\ud800").message
    assert check_value("a\x00b") == "a\x00b"


def test_tuples_become_lists_and_bytearrays_bytes():
    assert check_value((1, (2,))) == [1, [2]]
    assert check_value(bytearray(b"ab")) == b"ab"
    assert type(check_value(memoryview(b"x"))) is bytes


def test_unset_drops_an_object_field_but_is_not_a_value_elsewhere():
    assert check_value({"a": UNSET, "b": 1}) == {"b": 1}
    assert invalid(UNSET).path == []
    assert invalid([1, UNSET]).path == [1]


@pytest.mark.parametrize("value", [{1, 2}, object(), 1j, frozenset(), int, print])
def test_non_convex_python_objects_are_rejected(value):
    assert "not a supported Convex type" in invalid(value).message


def test_error_path_names_where_in_the_value():
    error = invalid({"a": [0, {"b": {3}}]})
    assert error.path == ["a", 1, "b"]
    assert error.path_text() == ".a[1].b"
    assert format_path(("x", 0, "y")) == ".x[0].y"


# ---------------------------------------------------------------- limits


def test_array_length_limit_is_8192():
    assert len(check_value([0] * 8192)) == 8192  # type: ignore[arg-type]
    assert "8193 > maximum length 8192" in invalid([0] * 8193).message


def test_object_field_limit_is_1024():
    ok = {f"f{i}": 0 for i in range(1024)}
    assert check_value(ok) == ok
    ok["extra"] = 0
    assert "1025" in invalid(ok).message


def test_value_nesting_limit_is_64():
    value: object = 0
    for _ in range(64):
        value = [value]
    check_value(value)
    assert "nested" in invalid([value]).message


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("$a", "starts with '$'"),
        ("é", "invalid character"),
        ("a\n", "invalid character"),
        ("\x7f", "invalid character"),
        ("x" * 1025, "too long"),
        (1, "must be strings"),
    ],
)
def test_bad_field_names_are_rejected_anywhere(name, fragment):
    message = field_name_error(name)
    assert message is not None
    assert fragment in message
    error = invalid({"ok": {name: 1}})
    assert fragment in error.message
    assert error.path == ["ok"]


@pytest.mark.parametrize("name", ["", "a b", "_x", "a$", "~!@", "x" * 1024, "a.b"])
def test_good_field_names_are_accepted(name):
    assert field_name_error(name) is None


@pytest.mark.parametrize("name", ["", "1a", "a-b", "___", "é", "a" * 65, "a.b", None])
def test_identifier_rules(name):
    assert identifier_error(name) is not None


@pytest.mark.parametrize("name", ["a", "_a", "A_1", "a" * 64, "__a"])
def test_identifiers_accepted(name):
    assert identifier_error(name) is None


# ---------------------------------------------------------------- size and nesting


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (None, 1),
        (True, 1),
        (7, 9),
        (2**62, 9),
        (1.5, 9),
        (math.nan, 9),
        ("abc", 5),
        ("é", 4),  # 2 + UTF-8 length (2 bytes)
        ("😀", 6),
        (b"ab", 4),
        ([], 2),
        ([1, "a"], 2 + 9 + 3),
        ({}, 2),
        ({"ab": 1}, 2 + (2 + 1 + 9)),
        ({"a": {"b": None}}, 2 + (1 + 1 + (2 + 1 + 1 + 1))),
    ],
)
def test_convex_size_formula(value, size):
    assert convex_size(value) == size


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("s", 0), ([], 1), ({}, 1), ([[1]], 2), ({"a": [1, {"b": {}}]}, 4)],
)
def test_nesting_scalars_zero_containers_one_plus_deepest(value, depth):
    assert nesting(value) == depth


# ---------------------------------------------------------------- convex_encoded_json


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (1, {"$integer": "AQAAAAAAAAA="}),
        (-1, {"$integer": "//////////8="}),
        (-(2**63), {"$integer": "AAAAAAAAAIA="}),
        (1.5, 1.5),
        (0.0, 0.0),
        (-0.0, {"$float": "AAAAAAAAAIA="}),
        (math.inf, {"$float": "AAAAAAAA8H8="}),
        (-math.inf, {"$float": "AAAAAAAA8P8="}),
        (math.nan, {"$float": "AAAAAAAA+H8="}),
        (b"\x00\xff", {"$bytes": "AP8="}),
        (None, None),
        (True, True),
        ("s", "s"),
        ([1.0, {"a": b""}], [1.0, {"a": {"$bytes": ""}}]),
    ],
)
def test_to_convex_json_goldens(value, wire):
    assert to_convex_json(value) == wire
    back = from_convex_json(wire)
    assert sort_key(back) == sort_key(value)


def test_from_convex_json_reads_every_json_number_as_float64():
    assert from_convex_json(3) == 3.0
    assert type(from_convex_json(3)) is float
    assert from_convex_json({"a": [1]}) == {"a": [1.0]}


@pytest.mark.parametrize(
    "wire",
    [
        {"$integer": "AQAA"},  # 3 bytes, not 8
        {"$integer": "not base64!"},
        {"$integer": 1},
        {"$float": "AAAAAAAA+D8="},  # 1.5: finite floats are plain JSON numbers
        {"$bytes": 3},
        {"$weird": 1},
        {"a": {"$x": 1, "b": 2}},
        {1, 2},
    ],
)
def test_from_convex_json_rejects_malformed_input(wire):
    with pytest.raises(ValueError, match=r"."):
        from_convex_json(wire)


# ---------------------------------------------------------------- storage JSON


@pytest.mark.parametrize(
    "value",
    [
        {"i": 1, "f": 1.0, "big": 2**63 - 1, "small": -(2**63)},
        {"nan": math.nan, "inf": [math.inf, -math.inf], "neg0": -0.0},
        {"b": b"\x00\x01", "nested": {"b": [b""]}},
        {"s": "\"$bytes\" and '\x00' and é"},
        {"x": 1e300, "y": 5e-324},
    ],
)
def test_storage_json_round_trip_keeps_types_and_bits(value):
    back = loads(dumps(value))
    assert sort_key(back) == sort_key(value)
    assert type(back.get("i", 0)) is int


def test_storage_json_keeps_int_and_float_apart():
    back = loads(dumps({"a": 1, "b": 1.0}))
    assert type(back["a"]) is int
    assert type(back["b"]) is float


def test_storage_json_keeps_nan_sign():
    back = loads(dumps({"n": NEG_NAN}))
    assert bits_of(back["n"]) == 0xFFF8000000000000


@given(any_value(max_leaves=30))
def test_size_bound_is_never_below_the_convex_size(value) -> None:
    # Argument sizes are checked against this bound and measured exactly only
    # above the limit: a bound below the size would let an oversized value in.
    assert size_bound(value) >= convex_size(value)


@pytest.mark.parametrize(
    "value",
    [
        0,
        -(2**63),
        1.5,
        math.nan,
        -math.inf,
        "",
        "é" * 10,
        "😀",
        b"",
        b"\xff" * 7,
        {},
        [],
        {"a": [None, True, b"\x00"]},
    ],
)
def test_size_bound_of_edge_values(value) -> None:
    assert size_bound(value) >= convex_size(value)
    assert size_within(value, 0) == convex_size(value)  # over the limit: exact
