"""Round trips: value -> storage -> value, and the convex_encoded_json wire codec.

Identity here is strict: same Python types all the way down (an int64 never comes
back as a float or a bool) and the same IEEE-754 bits for every float (NaN sign and
payload, -0.0), as Convex stores values exactly.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic_core
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from one_store import Store, define_schema, define_table, v
from one_store.model.values import (
    check_value,
    dumps,
    dumps_plain,
    from_convex_json,
    loads,
    to_convex_json,
)
from tests.strategies import INT64_MAX, INT64_MIN, convex_values, documents

NEG_NAN = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000000))[0]
PAYLOAD_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000123))[0]
EDGE_VALUES = [
    INT64_MIN,
    INT64_MAX,
    0,
    -0.0,
    math.nan,
    NEG_NAN,
    PAYLOAD_NAN,
    math.inf,
    -math.inf,
    5e-324,
    1.7976931348623157e308,
    b"\x00\xff",
    b"",
    "",
    "\x00",
    "😀é",
    True,
    False,
    None,
    [],
    {},
    {"": {"a b": [1, 1.0, True]}},
]


def identical(a: Any, b: Any) -> bool:
    """Same types everywhere and the same float bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(identical, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(identical(a[k], b[k]) for k in a)
    return bool(a == b)


def with_examples(test: Any) -> Any:
    for value in EDGE_VALUES:
        test = example(value)(test)
    return test


def put(store: Store, table: str, doc: dict[str, Any]) -> str:
    doc_id: str = store.run(lambda ctx: ctx.db.insert(table, doc)).unwrap()
    return doc_id


def fetch(store: Store, doc_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()
    return doc


@pytest.fixture(scope="module")
def memory_store() -> Iterator[Store]:
    schema = define_schema(
        {"free": define_table(), "typed": define_table({"v": v.any()})}
    )
    with Store.memory(schema, seed=0) as store:
        yield store


@given(convex_values())
@with_examples
def test_storage_json_round_trip_is_identity(value):
    checked = check_value(value)
    assert identical(loads(dumps(checked)), checked)


@given(convex_values())
@with_examples
def test_storage_text_decodes_as_the_stdlib_decodes_it(value):
    # loads() reads plain storage text with pydantic-core's parser: it must give
    # exactly what the stdlib gives (types, float bits, key order) on every text
    # dumps() can write, tagged or not.
    text = dumps(check_value(value))
    if '"$' not in text:  # tagged text goes to the stdlib decoder itself
        assert identical(pydantic_core.from_json(text), json.loads(text))
        assert identical(loads(text), json.loads(text))


def _without_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_without_bytes(x) for x in value]
    if isinstance(value, dict):
        return {k: _without_bytes(x) for k, x in value.items()}
    return value


@given(convex_values().map(_without_bytes))
@with_examples
def test_the_plain_encoder_writes_the_values_dumps_writes(value):
    # dumps_plain (pydantic-core) stores documents of tables whose validator has
    # no v.bytes() / v.any(): for every such value it must write what dumps (the
    # stdlib) writes, NaN and infinities tagged. The text may spell a float
    # another exact way (2**-14 as 0.00006103515625, where the stdlib writes
    # 6.103515625e-05); the value read back is bit for bit the same.
    checked = check_value(_without_bytes(value))
    plain = dumps_plain(checked)
    assert identical(loads(plain), loads(dumps(checked)))
    assert identical(loads(plain), checked)


def test_the_plain_encoder_hands_what_it_cannot_write_to_dumps():
    lone = {"s": chr(0xD800)}  # pydantic-core refuses it; the stdlib writes it
    values: list[Any] = [{"a": math.nan}, {"t": "NaN and Infinity"}, {"b": [-math.inf]}]
    for value in [*values, lone]:
        assert dumps_plain(value) == dumps(value)


def test_text_the_fast_parser_refuses_gets_the_stdlib_answer():
    # A lone surrogate cannot be UTF-8 encoded for the Rust parser; storage never
    # holds one (strings are checked), but loads() still answers as the stdlib.
    lone = chr(0xD800)
    for text in ('{"a":"\\ud800"}', '{"a":"' + lone + '","b":"x' + lone + '"}'):
        assert loads(text) == json.loads(text)


@given(convex_values())
@with_examples
def test_store_round_trip_is_identity(memory_store: Store, value):
    for table in ("free", "typed"):
        doc_id = put(memory_store, table, {"v": value})
        assert identical(fetch(memory_store, doc_id)["v"], value)


@given(documents())
def test_whole_documents_round_trip(memory_store: Store, body):
    doc = fetch(memory_store, put(memory_store, "free", body))
    assert identical({k: x for k, x in doc.items() if not k.startswith("_")}, body)


# Opening a file per example is the slow part: fewer examples, more values each.
@settings(max_examples=max(10, settings().max_examples // 4))
@given(st.lists(convex_values(), min_size=1, max_size=10))
def test_file_round_trip_survives_reopening(tmp_path_factory, values):
    path = Path(tmp_path_factory.mktemp("rt")) / "v.db"
    with Store.open(path, seed=0) as store:
        ids = store.run(
            lambda ctx: [ctx.db.insert("t", {"v": x}) for x in values]
        ).unwrap()
    with Store.open(path) as store:
        back = [fetch(store, i)["v"] for i in ids]
    assert all(map(identical, back, values))


@given(convex_values())
@with_examples
def test_convex_encoded_json_round_trip_is_identity(value):
    wire = to_convex_json(value)
    # The wire form is plain JSON (no NaN/Infinity tokens) and survives a text trip.
    text = json.dumps(wire, allow_nan=False)
    assert identical(from_convex_json(json.loads(text)), value)


@given(convex_values())
def test_convex_encoded_json_never_uses_a_plain_number_for_an_int(value):
    def walk(x: Any) -> None:
        assert not (isinstance(x, int) and not isinstance(x, bool))
        if isinstance(x, list):
            for item in x:
                walk(item)
        elif isinstance(x, dict) and "$integer" not in x:
            for item in x.values():
                walk(item)

    walk(to_convex_json(value))


def test_typed_tables_store_non_finite_floats_and_bytes_exactly():
    # "plain" has no v.bytes(): its documents take the pydantic-core encoder;
    # "blob" has one, so its documents take the tagging stdlib encoder.
    schema = define_schema(
        {
            "plain": define_table({"f": v.float64(), "s": v.string()}),
            "blob": define_table({"b": v.bytes()}),
        }
    )
    with Store.memory(schema) as store:
        for f in (math.nan, NEG_NAN, PAYLOAD_NAN, math.inf, -math.inf, -0.0, 1e16):
            doc = {"f": f, "s": "NaN"}
            assert identical(
                {
                    k: x
                    for k, x in fetch(store, put(store, "plain", doc)).items()
                    if not k.startswith("_")
                },
                doc,
            )
        for b in (b"", b"\x00\xff", b'"$bytes"'):
            assert fetch(store, put(store, "blob", {"b": b}))["b"] == b
