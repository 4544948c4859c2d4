"""A schema change reads less than the whole table only where that cannot change the answer.

For a document stored under an old table validator and a new validator made by
editing the old one's fields (kept, changed, dropped, added, optional or not),
``still_to_check`` must agree with checking the document against the whole new
validator: ``None`` only when the document passes, otherwise a validator the
document passes exactly when it passes the new one. Convex's rule is the same in
spirit (``Validator::is_subset`` may say "re-check" too often, never too rarely).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from one_store import Validator, define_table, v
from one_store.engine.migration import document_text, still_to_check
from one_store.model.values import InvalidValue, dumps, loads
from tests.strategies import identifiers, validators_with_values


@st.composite
def schema_changes(draw: st.DrawFn) -> tuple[Validator, Any, Validator]:
    """An old object validator, a value stored under it, and an edited validator."""
    names = draw(st.lists(identifiers, unique=True, max_size=4))
    old: dict[str, Validator] = {}
    value: dict[str, Any] = {}
    for name in names:
        field, x = draw(validators_with_values())
        optional = draw(st.booleans())
        old[name] = v.optional(field) if optional else field
        if not (optional and draw(st.booleans())):
            value[name] = x
    new: dict[str, Validator] = {}
    for name, field in old.items():
        edit = draw(st.sampled_from(["keep", "keep", "widen", "other", "drop"]))
        if edit == "keep":
            new[name] = field
        elif edit == "widen":
            new[name] = v.union(field, v.null())
        elif edit == "other":
            other, _ = draw(validators_with_values())
            new[name] = v.optional(other) if draw(st.booleans()) else other
        if name in new and draw(st.integers(0, 4)) == 0:  # flip optionality
            inner = new[name]
            new[name] = v.optional(inner) if not inner.is_optional else strip(inner)
    for name in draw(st.lists(identifiers, unique=True, max_size=2)):
        if name not in old:
            added, _ = draw(validators_with_values())
            new[name] = v.optional(added) if draw(st.booleans()) else added
    return v.object(old), value, v.object(new)


def strip(optional: Validator) -> Validator:
    """``optional`` without ``v.optional`` (rebuilt from the same parts)."""
    o = optional
    return Validator(
        o.kind,
        False,
        o.table,
        o.literal,
        o.element,
        o.fields,
        o.keys,
        o.values,
        o.members,
    )


def passes(validator: Validator, doc: Any) -> bool:
    try:
        validator.check_stored(doc, None)
    except InvalidValue:
        return False
    return True


@given(schema_changes())
def test_still_to_check_agrees_with_the_whole_new_validator(change):
    old, value, new = change
    stored = loads(dumps(old.check(value, None)))  # what the file holds
    assert passes(old, stored)
    quick = still_to_check(document_text(define_table(old)), define_table(new))
    if quick is None:
        assert passes(new, stored)
    else:
        assert passes(quick, stored) == passes(new, stored)


@given(validators_with_values())
def test_an_unrecorded_table_is_checked_against_the_whole_validator(pair):
    validator, _ = pair
    if validator.kind != "object":
        return
    table = define_table(validator)
    assert still_to_check(None, table) == table.document
