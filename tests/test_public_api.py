"""The public API: ``__all__`` is sorted, complete, and names what DESIGN.md promises."""

from __future__ import annotations

import attrs

import one_store

DESIGN_NAMES = [
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
    missing = [n for n in DESIGN_NAMES if n not in one_store.__all__]
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
