"""Which columns a table's SQL view has (``<table>_view``), on every engine.

Each engine's ``views`` module turns these fields into its own SQL: the
SQLite engine's :mod:`one_store.engine.sqlite.views`, PostgreSQL's
:mod:`one_store.engine.postgres.views`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ..model.validators import Validator, v


def view_fields(
    validator: Validator | None, column_type: Callable[[Validator], Hashable]
) -> dict[str, Validator] | None:
    """The top-level fields a view has columns for (None: a ``document`` column).

    An object's fields; for a union of objects, every member's fields, a field
    whose members disagree on ``column_type`` read as stored (``v.any()``).
    """
    if validator is None:
        return None
    if validator.kind == "object":
        return dict(validator.fields)
    if validator.kind == "union" and all(m.kind == "object" for m in validator.members):
        found: dict[str, Validator] = {}
        for member in validator.members:
            for name, field in member.fields:
                seen = found.setdefault(name, field)
                if column_type(seen) != column_type(field):  # two kinds: as stored
                    found[name] = v.any()
        return found
    return None
