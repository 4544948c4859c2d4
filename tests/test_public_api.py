"""The public API: ``__all__`` is sorted and complete, ``__version__``, and the types.

``__all__`` is sorted and complete as httpx keeps its own; it names what the design
promises; ``Document``, ``Id``, ``DatabaseReader`` and ``DatabaseWriter`` are the
types a handler's values have (Convex's ``Doc``, ``Id``, ``DatabaseReader`` and
``DatabaseWriter`` from ``convex/server``).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import attrs

import one_store
from one_store import (
    DatabaseReader,
    DatabaseWriter,
    Document,
    Id,
    MutationCtx,
    QueryCtx,
    Store,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)

CONTRACT_NAMES = [
    *("v", "define_schema", "define_table", "query", "mutation", "action"),
    *("internal_query", "internal_mutation", "internal_action", "http_action"),
    *("HttpRouter", "HttpResponse", "Store", "UNSET", "ConvexError", "Crons"),
    *("ArgsInvalid", "ValueInvalid", "ReturnsInvalid", "DocumentInvalid"),
    *("DocumentNotFound", "InvalidId", "InvalidIndexRange", "NotUnique"),
    *("InvalidCursor", "LimitExceeded", "Rejected", "HandlerError"),
    *("FunctionNotFound", "Busy", "StorageError"),
]


def isort_key(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: ruff's RUF022 order."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted():
    names = list(one_store.__all__)
    assert names == sorted(names, key=isort_key)


def test_all_names_exist():
    missing = [n for n in one_store.__all__ if not hasattr(one_store, n)]
    assert missing == []


def test_design_names_are_public():
    missing = [n for n in CONTRACT_NAMES if n not in one_store.__all__]
    assert missing == []


def test_no_public_name_left_out():
    public = {
        n
        for n, obj in vars(one_store).items()
        if not n.startswith("_") and not isinstance(obj, type(one_store))
    }
    assert public - set(one_store.__all__) == set()


def test_problem_classes_have_code_and_message():
    from one_store.model.errors import PROBLEM_TYPES

    for cls in PROBLEM_TYPES:
        assert getattr(cls, "code", None) == cls.__name__
        fields = {a.name for a in attrs.fields(cls)}
        assert "message" in fields or isinstance(
            getattr(cls, "message", None), property
        )


def test_every_public_name_is_in_the_api_page():
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    missing = [n for n in one_store.__all__ if f"`{n}`" not in page]
    assert missing == []


def test_version_is_the_installed_packages():
    assert one_store.__version__ == importlib.metadata.version("one-store")
    from one_store import __version__

    assert __version__ == one_store.__version__


def test_an_unknown_attribute_is_still_an_attribute_error():
    assert not hasattr(one_store, "Stor")


def test_the_annotation_types_are_what_handlers_get():
    @query
    def read(ctx: QueryCtx, args: dict[str, Any]) -> list[str]:
        db: DatabaseReader = ctx.db
        return [type(db).__name__, *(d["_id"] for d in db.query("notes").collect())]

    @mutation
    def write(ctx: MutationCtx, args: dict[str, Any]) -> Id:
        db: DatabaseWriter = ctx.db
        note_id: Id = db.insert("notes", {"text": "hi"})
        doc: Document | None = db.get(note_id)
        assert doc is not None
        assert doc["_id"] == note_id
        return note_id

    schema = define_schema({"notes": define_table({"text": v.string()})})
    with Store.memory(schema) as store:
        note_id = store.mutation(write, {}).unwrap()
        assert isinstance(note_id, str)
        kind, *ids = store.query(read, {}).unwrap()
    assert ids == [note_id]
    assert kind == "DatabaseReader"  # a query's db is a reader, not a writer
    assert issubclass(DatabaseWriter, DatabaseReader)
    assert Id is str
    assert Document == dict[str, Any]
