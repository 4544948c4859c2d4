"""Tests for one_store.model.keys: sort keys whose byte order is Convex's total order.

Expected orders come from Convex (convex-backend crates/value/src/sorting.rs:
undefined < null < int64 < float64 < false < true < string < bytes < array <
object), not from the implementation.
"""

from __future__ import annotations

import math
import struct

import pytest

from one_store import UNSET
from one_store.model.keys import prefix_end, sort_key
from one_store.model.values import InvalidValue

NEG_NAN = float(struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0])


def test_sort_key_follows_convex_total_order_across_and_within_types():
    # undefined < null < int64 < float64 < false < true < string < bytes < array < object
    ordered = [
        UNSET,
        None,
        -(2**63),
        -256,
        -1,
        0,
        1,
        255,
        256,
        2**63 - 1,
        NEG_NAN,
        -math.inf,
        -1.0,
        -0.0,
        0.0,
        5e-324,
        1.0,
        math.inf,
        math.nan,
        False,
        True,
        "",
        "\x00",
        "A",
        "a",
        "a\x00",
        "ab",
        "é",
        b"",
        b"\x00",
        b"\x01",
        [],
        [None],
        [0],
        [0, 0],
        [1],
        {},
        {"a": None},
        {"a": 1},
        {"a": 1, "b": 0},
        {"b": 0},
    ]
    keys = [sort_key(x) for x in ordered]
    for lower, higher, a, b in zip(keys, keys[1:], ordered, ordered[1:], strict=False):
        assert lower < higher, (a, b)


def test_every_int64_sorts_before_every_float64():
    assert sort_key(2**63 - 1) < sort_key(-math.inf)


def test_bool_never_equals_int_in_sort_order():
    assert sort_key(True) != sort_key(1)
    assert sort_key(False) != sort_key(0)


def test_object_key_order_does_not_matter():
    assert sort_key({"a": 1, "b": 2}) == sort_key({"b": 2, "a": 1})


def test_sort_keys_concatenate_like_tuples():
    assert sort_key("a") + sort_key(2) < sort_key("a\x00") + sort_key(1)
    assert sort_key(UNSET) + sort_key(9) < sort_key(None) + sort_key(0)


def test_sort_key_rejects_non_values():
    with pytest.raises(InvalidValue):
        sort_key(object())


@pytest.mark.parametrize(
    ("key", "end"),
    [(b"\x10a", b"\x10b"), (b"a\xff\xff", b"b"), (b"\xff", None), (b"", None)],
)
def test_prefix_end(key, end):
    assert prefix_end(key) == end
