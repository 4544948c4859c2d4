"""The app pages in docs/ name every function path and every table of their app."""

from __future__ import annotations

from pathlib import Path

import pytest

from one_store.app import load_app

from .conftest import CHAT_APP, ONE_APP, ROOT

PAGES = [
    (ONE_APP, ROOT / "docs" / "apps-one.md"),
    (CHAT_APP, ROOT / "docs" / "apps-chat.md"),
]


@pytest.mark.parametrize(("app", "page"), PAGES, ids=["one", "chat"])
def test_page_documents_every_function_and_table(app: Path, page: Path):
    loaded = load_app(app)
    text = page.read_text(encoding="utf-8")
    assert loaded.schema is not None
    missing = [p for p in loaded.paths() if f"`{p}" not in text]
    missing += [t for t in loaded.schema.tables if f"`{t}`" not in text]
    assert missing == []
