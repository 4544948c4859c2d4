"""Hypothesis strategies for Convex values, matching validators and documents.

Written from Convex's value model (docs.convex.dev/database/types), not from
one_store's checks: a value here is anything Convex accepts (int64 range, every
float64 including NaN/±inf/-0.0, valid-Unicode strings, bytes, arrays, objects whose
keys are non-control ASCII not starting with ``$``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from one_store import Validator, v

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Every IEEE-754 double: hypothesis' floats() already yields NaNs with any sign and
# payload, ±inf, -0.0 and subnormals.
floats = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)
int64s = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX]),
)
# Valid Unicode: no lone surrogates (category Cs). NUL and control chars are fine.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
byte_strings = st.binary(max_size=20)
scalars = st.one_of(st.none(), st.booleans(), int64s, floats, texts, byte_strings)

# Any object key: non-control ASCII (0x20-0x7E), not starting with "$".
field_names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12
).filter(lambda s: not s.startswith("$"))
# Top-level document keys additionally may not start with "_".
user_field_names = field_names.filter(lambda s: not s.startswith("_"))
# Identifiers: schema object keys, table and index names.
identifiers = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True)


def convex_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any Convex value (nesting stays small, well within every limit)."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(field_names, inner, max_size=5),
        ),
        max_leaves=max_leaves,
    )


def documents(max_leaves: int = 20) -> st.SearchStrategy[dict[str, Any]]:
    """A document body (no system fields) for a table without a validator."""
    return st.dictionaries(user_field_names, convex_values(max_leaves), max_size=6)


def _leaf_pairs() -> st.SearchStrategy[tuple[Validator, st.SearchStrategy[Any]]]:
    literals = st.one_of(
        texts, int64s, st.booleans(), st.floats(allow_nan=False, allow_infinity=False)
    )
    return st.one_of(
        st.just((v.string(), texts)),
        st.just((v.number(), floats)),
        st.just((v.int64(), int64s)),
        st.just((v.boolean(), st.booleans())),
        st.just((v.bytes(), byte_strings)),
        st.just((v.null(), st.none())),
        st.just((v.any(), convex_values(8))),
        literals.map(lambda x: (v.literal(x), st.just(x))),
    )


def _extend(
    inner: st.SearchStrategy[tuple[Validator, st.SearchStrategy[Any]]],
) -> st.SearchStrategy[tuple[Validator, st.SearchStrategy[Any]]]:
    def array(pair: tuple[Validator, st.SearchStrategy[Any]]) -> Any:
        val, values = pair
        return v.array(val), st.lists(values, max_size=4)

    def record(pair: tuple[Validator, st.SearchStrategy[Any]]) -> Any:
        val, values = pair
        return (
            v.record(v.string(), val),
            st.dictionaries(field_names, values, max_size=4),
        )

    @st.composite
    def obj(draw: st.DrawFn) -> Any:
        names = draw(st.lists(identifiers, unique=True, max_size=4))
        fields: dict[str, Validator] = {}
        parts: dict[str, tuple[bool, st.SearchStrategy[Any]]] = {}
        for name in names:
            val, values = draw(inner)
            optional = draw(st.booleans())
            fields[name] = v.optional(val) if optional else val
            parts[name] = (optional, values)

        @st.composite
        def value(draw2: st.DrawFn) -> dict[str, Any]:
            out = {}
            for name, (optional, values) in parts.items():
                if optional and draw2(st.booleans()):
                    continue
                out[name] = draw2(values)
            return out

        return v.object(fields), value()

    @st.composite
    def union(draw: st.DrawFn) -> Any:
        members = draw(st.lists(inner, min_size=1, max_size=3))
        chosen = draw(st.sampled_from(members))
        return v.union(*(m for m, _ in members)), chosen[1]

    return st.one_of(inner.map(array), inner.map(record), obj(), union())


def validators_with_values() -> st.SearchStrategy[tuple[Validator, Any]]:
    """A validator together with a value that matches it (as Convex defines matching)."""
    pairs = st.recursive(_leaf_pairs(), _extend, max_leaves=6)
    return pairs.flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1]))
