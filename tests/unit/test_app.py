"""Tests for one_store.app: loading an app folder (Convex's ``convex/``) by path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from returns.result import Failure

from one_store import (
    ArgsInvalid,
    DefinitionError,
    FunctionNotFound,
    Store,
    bundled_app,
)
from one_store.app import App, load_app

SCHEMA_PY = """
from one_store import define_schema, define_table, v
schema = define_schema({"notes": define_table({"text": v.string()})})
"""
NOTES_PY = """
from one_store import internal_mutation, mutation, query, v

@mutation(args={"text": v.string()})
def add(ctx, args):
    return ctx.db.insert("notes", {"text": args["text"]})

@query(name="listAll")
def list_all(ctx, args):
    return [d["text"] for d in ctx.db.query("notes").collect()]

@internal_mutation
def wipe(ctx, args):
    for d in ctx.db.query("notes").collect():
        ctx.db.delete(d["_id"])

HELPER = 3  # not a function: ignored
"""
NESTED_PY = """
from one_store import query
from ..notes import add  # imported: registered in notes.py only

@query
def count(ctx, args):
    return len(ctx.db.query("notes").collect())
"""


def write_app(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_app(
        tmp_path / "app",
        {
            "schema.py": SCHEMA_PY,
            "notes.py": NOTES_PY,
            "sub/nested.py": NESTED_PY,
            "_private.py": "raise RuntimeError('never imported')",
        },
    )


def test_load_app_finds_schema_and_functions_by_path(app_dir: Path):
    app = load_app(app_dir)
    assert isinstance(app, App)
    assert app.root == app_dir.resolve()
    assert app.schema is not None
    assert set(app.schema.tables) == {"notes"}
    assert app.paths() == [
        "notes:add",
        "notes:listAll",
        "notes:wipe",
        "sub/nested:count",
    ]
    assert app.paths("query") == ["notes:listAll", "sub/nested:count"]
    assert app.functions["notes:wipe"].visibility == "internal"
    assert app.http is None
    assert app.crons is None


def test_store_runs_app_functions_by_path(app_dir: Path, tmp_path: Path):
    with Store.open(tmp_path / "db.sqlite", app=app_dir) as store:
        assert store.schema is not None
        store.mutation("notes:add", {"text": "hi"}).unwrap()
        store.mutation("notes.js:add", {"text": "yo"}).unwrap()  # Convex's ext form
        assert store.query("notes:listAll").unwrap() == ["hi", "yo"]
        assert store.query("sub/nested:count").unwrap() == 2
        store.mutation("notes:wipe").unwrap()
        assert store.query("sub/nested:count").unwrap() == 0
        bad = store.mutation("notes:add", {"text": 1})
        assert isinstance(bad, Failure)
        assert isinstance(bad.failure(), ArgsInvalid)


@pytest.mark.parametrize(
    "path", ["notes:nope", "nope:add", "", "notes:", "../notes:add", "notes"]
)
def test_unknown_paths_are_function_not_found(app_dir: Path, path: str):
    with Store.memory(app=app_dir) as store:
        result = store.mutation(path, {})
        assert isinstance(result, Failure)
        problem = result.failure()
        assert isinstance(problem, FunctionNotFound)
        assert problem.path == path


def test_a_path_of_another_kind_is_function_not_found(app_dir: Path):
    with Store.memory(app=app_dir) as store:
        result = store.query("notes:add", {"text": "x"})
        assert isinstance(result.failure(), FunctionNotFound)
        assert isinstance(store.function("notes:add").unwrap().handler, object)


def test_suggestions_name_close_paths(app_dir: Path):
    with Store.memory(app=app_dir) as store:
        problem = store.mutation("notes:ad").failure()
        assert isinstance(problem, FunctionNotFound)
        assert "notes:add" in problem.suggestions


def test_loading_twice_does_not_collide(app_dir: Path):
    first, second = load_app(app_dir), load_app(app_dir)
    assert first.functions["notes:add"] is not second.functions["notes:add"]


def test_http_and_crons_are_picked_up(tmp_path: Path):
    root = write_app(
        tmp_path / "a",
        {
            "http.py": "http = 'router'\n",
            "crons.py": "crons = 'jobs'\n",
        },
    )
    app = load_app(root)
    assert app.http == "router"
    assert app.crons == "jobs"
    assert app.schema is None


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"schema.py": "schema = 1\n"}, "define_schema"),
        (
            {
                "dup.py": (
                    "from one_store import query\n"
                    "@query(name='x')\ndef a(ctx, args): pass\n"
                    "@query(name='x')\ndef b(ctx, args): pass\n"
                )
            },
            "defined twice",
        ),
    ],
)
def test_bad_apps_raise_definition_error(tmp_path: Path, files, fragment):
    root = write_app(tmp_path / "bad", files)
    with pytest.raises(DefinitionError, match=fragment):
        load_app(root)


def test_missing_folder_raises(tmp_path: Path):
    with pytest.raises(DefinitionError, match="does not exist"):
        load_app(tmp_path / "nowhere")


def test_an_error_inside_an_app_file_propagates(tmp_path: Path):
    root = write_app(tmp_path / "b", {"boom.py": "raise RuntimeError('boom')\n"})
    with pytest.raises(RuntimeError, match="boom"):
        load_app(root)


def test_bundled_apps_are_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # nothing of the checkout here
    for folder, path in (
        (bundled_app("one"), "flows:createFlow"),
        (bundled_app("chat"), "messages:list"),
    ):
        assert folder.is_absolute()
        assert (folder / "schema.py").is_file()
        assert path in load_app(folder).functions


def test_an_unknown_bundled_app_names_the_known_ones():
    with pytest.raises(ValueError, match="the bundled apps are one, chat"):
        bundled_app("notes")  # type: ignore[arg-type]  # the Literal refuses it too
