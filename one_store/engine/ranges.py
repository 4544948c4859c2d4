"""Index ranges: ``with_index`` range expressions compiled to key intervals.

Index ranges follow Convex's ``IndexRange::split``/``compile``
(``crates/common/src/query.rs``): at most one ``eq`` per field and one bound of
each kind (``AlreadyDefinedBound``), bounds on one field (``BoundsOnMultipleFields``),
fields in the index (``FieldNotInIndex``), and the ``eq`` fields sorted by index
position then the bound field must be the index's first fields
(``InvalidIndexRange``). Every failure is ``InvalidIndexRange`` naming the index and
the field, with Convex's code and text in the message. The interval of the keys
whose value is ``v`` is ``[K, K + 0xFF)`` for ``K`` the key bytes up to ``v``, not
Convex's ``[K, increment(K))``, which also takes in the greater strings whose key
extends ``K`` (``"x"`` followed by a NUL character, after ``"x"``).
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from ..model.errors import (
    InvalidIndexRange,
    Problem,
    ProblemError,
)
from ..model.keys import sort_key
from ..model.values import UNSET, InvalidValue, check_value, show

Order = Literal["asc", "desc"]
_PAST_VALUE = b"\xff"  # sorts after every key that continues past a value (a tag)


def fail(problem: Problem) -> ProblemError:
    """Wrap a Problem to be raised from handler-facing code."""
    return ProblemError(problem)


def range_value(index_id: str, field: str, value: object) -> object:
    """Check a range/filter value is a Convex value (``UNSET`` = missing field)."""
    if value is UNSET:
        return value
    try:
        return check_value(value)
    except InvalidValue as e:
        raise fail(
            InvalidIndexRange(
                index_id,
                field,
                f"The value for {field!r} in the range of index {index_id} is not a "
                f"Convex value: {e}",
            )
        ) from None


class IndexRangeBuilder:
    """The ``q`` of ``with_index(name, lambda q: q.eq(...).gt(...))``."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, str, object]] = []

    def _add(self, op: str, field: str, value: object) -> IndexRangeBuilder:
        self.ops.append((op, field, value))
        return self

    def eq(self, field: str, value: object) -> IndexRangeBuilder:
        """Field equals ``value`` (``UNSET`` means the field is missing)."""
        return self._add("eq", field, value)

    def gt(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is greater than ``value`` in Convex's total order."""
        return self._add("gt", field, value)

    def gte(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is greater than or equal to ``value``."""
        return self._add("gte", field, value)

    def lt(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is less than ``value``."""
        return self._add("lt", field, value)

    def lte(self, field: str, value: object) -> IndexRangeBuilder:
        """Field is less than or equal to ``value``."""
        return self._add("lte", field, value)


@frozen
class KeyRange:
    """A half-open interval ``[low, high)`` of index key bytes (``high`` None = open)."""

    low: bytes = b""
    high: bytes | None = None

    def after(self, key: bytes, order: Order) -> KeyRange:
        r"""The part of the range strictly after ``key`` in scan order.

        Keys end with the document's ``_id``, so no stored key extends another and
        ``key + b"\\x00"`` is the smallest key greater than ``key``.
        """
        if order == "asc":
            return KeyRange(max(self.low, key + b"\x00"), self.high)
        high = key if self.high is None else min(self.high, key)
        return KeyRange(self.low, high)

    def before_or_at(self, key: bytes, order: Order) -> KeyRange:
        """The part of the range up to and including ``key`` in scan order."""
        if order == "asc":
            end = key + b"\x00"
            return KeyRange(self.low, end if self.high is None else min(self.high, end))
        return KeyRange(max(self.low, key), self.high)

    def contains(self, key: bytes) -> bool:
        """Whether ``key`` lies in the range."""
        return key >= self.low and (self.high is None or key < self.high)


_SYMBOL = {"eq": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def compile_range(
    table: str,
    index_name: str,
    key_fields: tuple[str, ...],
    ops: list[tuple[str, str, object]],
) -> KeyRange:
    """Turn builder operations into a key interval, with Convex's acceptance rules.

    The checks run in the order of Convex's ``IndexRange::split`` and ``compile``,
    so the same mistake gets the same error.

    Raises:
        ProblemError: ``InvalidIndexRange`` naming the index and the field.
    """
    # The usual shape, equalities on the index's first fields in its order, is
    # valid as it stands: its interval is built directly (the checks below cost
    # 2 us of every such query). Anything else, or a value that is not a Convex
    # value, takes the general path and its errors.
    if len(ops) <= len(key_fields):
        parts: list[bytes] = []
        for position, (op, field, raw) in enumerate(ops):
            if op != "eq" or field != key_fields[position]:
                break
            try:
                parts.append(sort_key(raw if raw is UNSET else check_value(raw)))
            except InvalidValue:
                break
        else:
            if parts:
                prefix = b"".join(parts)
                return KeyRange(prefix, prefix + _PAST_VALUE)
            return KeyRange()
    index_id = f"{table}.{index_name}"

    def bad(field: str | None, code: str, message: str) -> ProblemError:
        return fail(InvalidIndexRange(index_id, field, f"{code}: {message}"))

    eqs: dict[str, object] = {}
    lower: tuple[str, str, object] | None = None
    upper: tuple[str, str, object] | None = None
    for op, field, raw in ops:
        if not isinstance(field, str):
            raise bad(
                show(field),
                "FieldNotInIndex",
                f"Field names are strings, got {show(field)}.",
            )
        value = range_value(index_id, field, raw)
        if op == "eq":
            if field in eqs:
                raise bad(
                    field,
                    "AlreadyDefinedBound",
                    f"Already defined equality bound in index range. Can't add "
                    f"{field!r} == {show(value)}.",
                )
            eqs[field] = value
            continue
        is_lower = op in ("gt", "gte")
        if (lower if is_lower else upper) is not None:
            raise bad(
                field,
                "AlreadyDefinedBound",
                f"Already defined {'lower' if is_lower else 'upper'} bound in index "
                f"range. Can't add {field!r} {_SYMBOL[op]} {show(value)}.",
            )
        first = lower or upper
        if first is not None and first[1] != field:
            raise bad(
                field,
                "BoundsOnMultipleFields",
                "Upper and lower bounds in `range` can only be applied to a single index "
                f"field. This query against index {index_id} attempted to set a range "
                f"bound on both {first[1]!r} and {field!r}. Consider using `filter` "
                "instead.",
            )
        if is_lower:
            lower = (op, field, value)
        else:
            upper = (op, field, value)
    bound = lower or upper
    bound_field = bound[1] if bound else None
    if bound_field is not None and bound_field in eqs:
        raise bad(
            bound_field,
            "AlreadyDefinedBound",
            f"Already defined inequality bound in index range. Can't add "
            f"{bound_field!r} == {show(eqs[bound_field])}.",
        )
    user_fields = [f for f in key_fields if f != "_id"]
    for field in [*sorted(eqs), *([bound_field] if bound_field else [])]:
        if field not in key_fields:
            raise bad(
                field,
                "FieldNotInIndex",
                f"The index range included a comparison with {field!r}, but "
                f"{index_id} with fields {user_fields} doesn't index this field.",
            )
    used = sorted(eqs, key=key_fields.index) + ([bound_field] if bound_field else [])
    for position, field in enumerate(used):
        if key_fields[position] != field:
            raise bad(
                field,
                "InvalidIndexRange",
                f"Tried to query index {index_id} but the query didn't use the index "
                f"fields in order.\nIndex fields: {user_fields}\nQuery fields: {used}\n"
                f"First incorrect field: {field}",
            )
    # A stored key is the fields' encodings, then _creationTime's and _id's: after
    # any value's encoding comes the next one's type tag (0x01-0x15), never 0xFF.
    # So the keys whose values equal ``v`` are exactly those in [K, K + FF) for
    # K = prefix + enc(v). Not [K, increment(K)) (Convex's interval, which
    # Convex's own keys share): enc("x") = 10 78 00 is also the start of
    # enc("x\x00") = 10 78 00 FF 00, a different, greater string.
    prefix = b"".join(sort_key(eqs[f]) for f in used if f in eqs)
    low, high = prefix, (prefix + _PAST_VALUE if prefix else None)
    if lower is not None:
        k = prefix + sort_key(lower[2])
        low = k if lower[0] == "gte" else k + _PAST_VALUE
    if upper is not None:
        k = prefix + sort_key(upper[2])
        high = k if upper[0] == "lt" else k + _PAST_VALUE
    return KeyRange(low, high)
