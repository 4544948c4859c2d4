"""Sort-key bytes order exactly as Convex's total order (reference §4.6).

``convex_compare`` below is written from the reference text, not from the encoder:
undefined < null < int64 < float64 < boolean < string < bytes < array < object;
int64 numerically; float64 by IEEE-754 totalOrder (-NaN < -inf < ... < -0 < +0 <
... < +inf < +NaN); strings by UTF-8 bytes; bytes lexicographically; arrays element
by element, a prefix first; objects as their key-sorted (key, value) sequences.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from one_store import UNSET, Store, define_schema, define_table
from one_store.model.keys import sort_key
from tests.strategies import INT64_MAX, INT64_MIN, convex_values, field_names

RANK = {
    "undefined": 0,
    "null": 1,
    "int64": 2,
    "float64": 3,
    "boolean": 4,
    "string": 5,
    "bytes": 6,
    "array": 7,
    "object": 8,
}


def kind(x: Any) -> str:
    if x is UNSET:
        return "undefined"
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int):
        return "int64"
    if isinstance(x, float):
        return "float64"
    if isinstance(x, str):
        return "string"
    if isinstance(x, bytes):
        return "bytes"
    if isinstance(x, list):
        return "array"
    assert isinstance(x, dict)
    return "object"


def cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def float_total_order(a: float, b: float) -> int:
    """IEEE-754 totalOrder, from its definition (not from bit tricks)."""
    sign_a = math.copysign(1.0, a) < 0
    sign_b = math.copysign(1.0, b) < 0
    if sign_a != sign_b:
        return -1 if sign_a else 1  # every negative-signed value first
    # Same sign: NaNs are beyond the infinities; among NaNs the payload decides.
    nan_a, nan_b = math.isnan(a), math.isnan(b)
    if nan_a or nan_b:
        if nan_a and nan_b:
            pa = struct.unpack("<Q", struct.pack("<d", a))[0] & ((1 << 52) - 1)
            pb = struct.unpack("<Q", struct.pack("<d", b))[0] & ((1 << 52) - 1)
            result = cmp(pa, pb)
        else:
            result = 1 if nan_a else -1
        return -result if sign_a else result
    return cmp(a, b)  # same sign, both numbers: -0.0 vs -0.0 or +0 vs +0 are equal


def convex_compare(a: Any, b: Any) -> int:
    ka, kb = kind(a), kind(b)
    if ka != kb:
        return cmp(RANK[ka], RANK[kb])
    if ka in ("undefined", "null"):
        return 0
    if ka == "float64":
        return float_total_order(a, b)
    if ka == "string":
        return cmp(a.encode("utf-8"), b.encode("utf-8"))
    if ka in ("int64", "boolean", "bytes"):
        return cmp(a, b)
    if ka == "array":
        for x, y in zip(a, b, strict=False):
            c = convex_compare(x, y)
            if c:
                return c
        return cmp(len(a), len(b))
    items_a = sorted(a.items(), key=lambda kv: kv[0].encode("utf-8"))
    items_b = sorted(b.items(), key=lambda kv: kv[0].encode("utf-8"))
    for (xk, xv), (yk, yv) in zip(items_a, items_b, strict=False):
        c = cmp(xk.encode("utf-8"), yk.encode("utf-8")) or convex_compare(xv, yv)
        if c:
            return c
    return cmp(len(items_a), len(items_b))


def key_order(a: Any, b: Any) -> int:
    return cmp(sort_key(a), sort_key(b))


# Values drawn from small pools collide and share prefixes often, which is where
# an order-preserving encoding goes wrong (NUL bytes, prefixes, ±0, NaN signs).
NEG_NAN = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]
close_scalars = st.one_of(
    st.sampled_from(
        [
            *(None, True, False, 0, 1, -1, 127, 128, -128, -129, 255, 256, -256),
            *(-257, 65535, 65536, -65536, -65537, 2**31, -(2**31) - 1),
            *(INT64_MIN, INT64_MAX, 0.0, -0.0, 1.0, -1.0, math.inf, -math.inf),
            *(math.nan, NEG_NAN, 5e-324),
        ]
    ),
    st.text("\x00\x01ab\xff", max_size=3),
    st.binary(max_size=3).map(lambda b: b.replace(b"\x02", b"\x00")),
)
close_values = st.recursive(
    close_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["", "a", "b", "a\x7e"]), inner, max_size=3),
    ),
    max_leaves=8,
)
any_value = st.one_of(close_values, convex_values(), st.just(UNSET))


@given(any_value, any_value)
def test_sort_key_order_is_convex_order(a, b):
    assert key_order(a, b) == convex_compare(a, b)


@given(close_values, close_values)
def test_sort_key_order_is_convex_order_for_close_values(a, b):
    assert key_order(a, b) == convex_compare(a, b)


@given(
    st.lists(st.tuples(close_values, close_values), min_size=2, max_size=2),
)
def test_concatenated_keys_order_like_tuples(pairs):
    (a1, a2), (b1, b2) = pairs
    expected = convex_compare(a1, b1) or convex_compare(a2, b2)
    assert cmp(sort_key(a1) + sort_key(a2), sort_key(b1) + sort_key(b2)) == expected


@given(st.lists(close_values, min_size=1, max_size=12))
def test_sorting_by_key_is_a_total_order_consistent_with_convex(values):
    by_key = sorted(values, key=sort_key)
    for x, y in itertools.pairwise(by_key):
        assert convex_compare(x, y) <= 0


@given(st.lists(st.one_of(close_values, st.just(UNSET)), min_size=1, max_size=10))
def test_sqlite_index_returns_documents_in_convex_order(values):
    schema = define_schema({"t": define_table().index("by_v", ["v"])})
    with Store.memory(schema, seed=0) as store:
        store.run(
            lambda ctx: [
                ctx.db.insert("t", {} if x is UNSET else {"v": x}) for x in values
            ]
        ).unwrap()
        docs = store.run(
            lambda ctx: ctx.db.query("t").with_index("by_v").collect()
        ).unwrap()
    got = [d.get("v", UNSET) for d in docs]
    # Ties keep insertion order, since _creationTime follows the field in the key.
    expected = sorted(values, key=functools.cmp_to_key(convex_compare))
    assert [sort_key(x) for x in got] == [sort_key(x) for x in expected]


@given(field_names, field_names)
def test_object_keys_order_by_utf8_bytes(k1, k2):
    assert key_order({k1: 0}, {k2: 0}) == cmp(k1.encode(), k2.encode())
