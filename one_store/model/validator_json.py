"""A validator back from Convex's JSON description of it (``Validator.json()``).

The file records, per table, the document validator its documents were checked
against, as Convex's JSON (``_one_store_tables``; see
:mod:`one_store.engine.migration`). A store opened without its schema (read-only,
or by ``one-store data``) reads it back with :func:`validator_from_json`, so that
``store.table(name).to_arrow()`` types the columns as the app declared them.

Convex's JSON keeps no field order (one_store writes it with sorted keys): the
object fields of a validator read back come in alphabetical order.
"""

from __future__ import annotations

from typing import Any

from .validators import Validator, v
from .values import from_convex_json

_LEAVES = {
    "string": v.string,
    "number": v.number,
    "bigint": v.int64,
    "boolean": v.boolean,
    "bytes": v.bytes,
    "null": v.null,
    "any": v.any,
}


def validator_from_json(obj: Any) -> Validator:
    """The validator ``obj`` (Convex's JSON description) describes.

    Raises:
        ValueError: ``obj`` is not such a description.

    Example:
        >>> validator_from_json({"type": "array", "value": {"type": "bigint"}})
        v.array(v.int64())
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise ValueError(f"not a validator description: {obj!r:.80}")
    kind = obj["type"]
    if kind in _LEAVES:
        return _LEAVES[kind]()
    match kind:
        case "id":
            return v.id(obj["tableName"])
        case "literal":
            literal = from_convex_json(obj["value"])
            assert isinstance(literal, str | int | float)
            return v.literal(literal)
        case "array":
            return v.array(validator_from_json(obj["value"]))
        case "object":
            return v.object(
                {
                    name: v.optional(validator_from_json(f["fieldType"]))
                    if f.get("optional")
                    else validator_from_json(f["fieldType"])
                    for name, f in obj["value"].items()
                }
            )
        case "record":
            return v.record(
                validator_from_json(obj["keys"]),
                validator_from_json(obj["values"]["fieldType"]),
            )
        case "union":
            return v.union(*(validator_from_json(m) for m in obj["value"]))
    raise ValueError(f"unknown validator type {kind!r}")
