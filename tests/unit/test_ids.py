"""Tests for one_store.model.ids: Convex-format document IDs.

The golden vectors are Convex's own (BE crates/value/src/id_v6.rs
``test_document_id_stability``; a real ID quoted in reference §2.2). The checksum
and base32 used to build test inputs are written here from id_v6.rs / base32.rs.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_store.model.ids import (
    ALPHABET,
    IdGenerator,
    decode_id,
    encode_id,
    id_error,
    table_number_of,
)


def convex_fletcher16(data: bytes) -> int:
    """Fletcher-16 with modulus 256, exactly as BE id_v6.rs ``fletcher16``."""
    c0 = c1 = 0
    for byte in data:
        c0 = (c0 + byte) & 0xFF
        c1 = (c1 + c0) & 0xFF
    return (c1 << 8) | c0


def convex_base32(data: bytes) -> str:
    """Lowercase Crockford base32, MSB-first, no padding (BE base32.rs ``encode``)."""
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(ALPHABET[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


def vint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def convex_id(table: int, internal: bytes, footer: int | None = None) -> str:
    body = vint(table) + internal
    check = convex_fletcher16(body) if footer is None else footer
    return convex_base32(body + check.to_bytes(2, "little"))


def stability_internal_id() -> bytes:
    out = [251]
    for _ in range(15):
        out.append((out[-1] * 251) & 0xFF)
    return bytes(out)


def test_convex_stability_vector():
    # BE id_v6.rs test_document_id_stability: table 1017 and this internal id.
    expected = "z43zp6c3e75gkmz1kfwj6mbbx5sw281h"
    assert encode_id(1017, stability_internal_id()) == expected
    assert decode_id(expected) == (1017, stability_internal_id())


def test_real_convex_id_decodes_to_its_table():
    assert table_number_of("m57068j1c1zsxfewzcd3jp3qjttx99vg") == 10017


@pytest.mark.parametrize(
    ("table", "length"),
    [(1, 31), (127, 31), (128, 32), (10001, 32), (16383, 32), (16384, 34),
     (2**21, 36), (2**28, 37), (2**32 - 1, 37)],
)  # fmt: skip
def test_id_length_follows_the_table_number_varint(table, length):
    text = encode_id(table)
    assert len(text) == length
    assert decode_id(text) is not None
    assert table_number_of(text) == table


def test_user_table_ids_are_32_lowercase_crockford_chars():
    text = encode_id(10001)
    assert len(text) == 32
    assert set(text) <= set(ALPHABET)
    assert not set(text) & set("ilou" + string.ascii_uppercase)


@given(
    st.integers(1, 2**32 - 1),
    st.binary(min_size=16, max_size=16),
)
def test_encode_matches_convex_layout_and_round_trips(table, internal):
    text = encode_id(table, internal)
    assert text == convex_id(table, internal)
    assert decode_id(text) == (table, internal)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 0xFFFF))
def test_any_wrong_checksum_is_rejected(internal, footer):
    good = convex_fletcher16(vint(10001) + internal)
    text = convex_id(10001, internal, footer)
    if footer == good:
        assert decode_id(text) == (10001, internal)
    else:
        assert decode_id(text) is None
        assert "Invalid ID version" in str(id_error(text))


def test_a_one_character_change_breaks_the_checksum():
    text = encode_id(10001, bytes(16))
    for i in range(len(text)):
        for c in ALPHABET:
            if c == text[i]:
                continue
            mutated = text[:i] + c + text[i + 1 :]
            assert decode_id(mutated) is None or mutated == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Invalid ID length 0"),
        ("abc", "Invalid ID length 3"),
        ("a" * 33, "Invalid ID length 33"),
        ("a" * 38, "Invalid ID length 38"),
        ("I" * 32, "base32"),  # uppercase is not decoded permissively
        ("u" * 32, "base32"),  # u is not in Crockford's alphabet
        ("o" * 32, "base32"),
        ("-" * 32, "base32"),
        (convex_id(0, bytes(16)), "Invalid table number"),
    ],
)
def test_malformed_ids(text, fragment):
    assert decode_id(text) is None
    assert table_number_of(text) is None
    assert fragment in str(id_error(text))


def test_uppercase_of_a_valid_id_is_rejected():
    text = encode_id(10001)
    assert decode_id(text.upper()) is None


def test_id_error_is_none_for_a_valid_id_and_names_non_strings():
    assert id_error(encode_id(10001)) is None
    assert "strings" in str(id_error(12))
    assert table_number_of(None) is None


def test_encode_rejects_wrong_internal_length():
    with pytest.raises(ValueError, match="16 bytes"):
        encode_id(10001, b"short")


def test_generator_uses_random_bytes_then_days_since_epoch():
    day = 86_400_000
    internal = decode_id(IdGenerator(seed=1).new(10001, 20_000 * day + 5))
    assert internal is not None
    assert internal[0] == 10001
    assert internal[1][14:] == (20_000).to_bytes(2, "big")


def test_seeded_generators_replay_and_unseeded_differ():
    a = [IdGenerator(seed=7).new(10001, 0.0) for _ in range(2)]
    assert a[0] == a[1]
    gen = IdGenerator(seed=7)
    assert gen.new(10001, 0.0) != gen.new(10001, 0.0)
    assert IdGenerator().new(10001, 0.0) != IdGenerator().new(10001, 0.0)


@given(
    st.integers(min_value=1, max_value=2**28),
    st.binary(min_size=16, max_size=16),
    st.integers(min_value=0, max_value=36),
    st.characters(codec="utf-8"),
)
def test_only_the_canonical_text_decodes(table, internal, position, char):
    # The decoder checks the alphabet and parses in one translate + int(): any
    # one-character change (a sign, a space, "_", a non-ASCII digit, a letter
    # outside Crockford's alphabet, an uppercase letter) either breaks the
    # checksum or is refused, exactly like Convex's strict decoder.
    text = encode_id(table, internal)
    position %= len(text)
    mutated = text[:position] + char + text[position + 1 :]
    if mutated == text:
        assert decode_id(mutated) == (table, internal)
        return
    decoded = decode_id(mutated)
    if decoded is not None:
        # Only another canonical encoding can decode: it must re-encode to itself.
        assert encode_id(*decoded) == mutated


@pytest.mark.parametrize("char", ["٣", "_", " ", "+", "I", "L", "O", "U", "\u00e9"])
def test_characters_int_would_take_are_refused(char):
    text = encode_id(10001, bytes(16))
    assert decode_id(char + text[1:]) is None
    assert "base32" in str(id_error(char + text[1:]))
