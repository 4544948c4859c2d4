"""Tests for one_store.engine.sqlite.ddl: tables, indexes and migrations made with
sqlite-utils, filled from the stored documents, and sqlite-utils imported only when
DDL runs.

Files are read back with plain ``sqlite3`` (and the whole-file checks of the
reliability suite), as another tool would read them.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from one_store import Store, define_schema, define_table, v
from one_store.engine.ranges import Order
from tests.reliability.invariants import file_problems

FIELDS = {"name": v.string(), "rank": v.int64(), "team": v.optional(v.string())}
PLAIN = define_schema({"agents": define_table(FIELDS)})
AGENTS = [
    {"name": "c", "rank": 1, "team": "x"},
    {"name": "a", "rank": 3},
    {"name": "b", "rank": 2, "team": "y"},
]


def seed(path: Path) -> None:
    with Store.open(path, schema=PLAIN, seed=1) as store:
        store.run(lambda ctx: [ctx.db.insert("agents", d) for d in AGENTS]).unwrap()


def names(store: Store, index: str, order: Order = "asc") -> list[str]:
    return [
        d["name"]
        for d in store.run(
            lambda ctx: ctx.db.query("agents").with_index(index).order(order).collect()
        ).unwrap()
    ]


def test_the_bookkeeping_tables_keep_table_numbers_unique(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    seed(path)
    with sqlite3.connect(path) as conn:
        number = conn.execute(
            "SELECT number FROM _one_store_tables WHERE name='agents'"
        ).fetchone()[0]
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(
                "INSERT INTO _one_store_tables(name, number, indexes) VALUES (?, ?, ?)",
                ("other", number, "{}"),
            )
        columns = {r[1]: r[2] for r in conn.execute("PRAGMA table_info(agents)")}
    assert columns == {
        "_id": "TEXT",
        "_creationTime": "REAL",
        "_body": "TEXT",
        "_k_by_creation_time": "BLOB",
    }


def test_two_indexes_added_at_once_are_each_filled_with_their_own_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    seed(path)
    both = define_schema(
        {
            "agents": define_table(FIELDS)
            .index("by_name", ["name"])
            .index("by_rank", ["rank"])
        }
    )
    with Store.open(path, schema=both) as store:
        assert names(store, "by_name") == ["a", "b", "c"]
        assert names(store, "by_rank") == ["c", "b", "a"]
    assert file_problems(path) == []


def test_an_index_whose_fields_change_is_refilled(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    seed(path)
    by_name = define_schema({"agents": define_table(FIELDS).index("by", ["name"])})
    by_rank = define_schema({"agents": define_table(FIELDS).index("by", ["rank"])})
    with Store.open(path, schema=by_name) as store:
        assert names(store, "by") == ["a", "b", "c"]
    with Store.open(path, schema=by_rank) as store:
        assert names(store, "by", "desc") == ["a", "b", "c"]
    assert file_problems(path) == []


def test_a_search_index_that_goes_away_takes_its_table_with_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    seed(path)
    searched = define_schema(
        {"agents": define_table(FIELDS).search_index("by_team", search_field="team")}
    )

    def fts_tables() -> list[str]:
        with sqlite3.connect(path) as conn:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE sql LIKE '%fts5%'"
                )
            ]

    with Store.open(path, schema=searched) as store:
        found = store.run(
            lambda ctx: (
                ctx.db.query("agents")
                .with_search_index("by_team", lambda q: q.search("team", "y"))
                .collect()
            )
        ).unwrap()
        assert [d["name"] for d in found] == ["b"]
    assert fts_tables() == ["agents$search$by_team"]
    assert file_problems(path) == []
    Store.open(path, schema=PLAIN).close()
    assert fts_tables() == []


def run_python(code: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_sqlite_utils_is_imported_only_when_ddl_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    seed(path)
    opened = (
        "import sys, one_store as o\n"
        "print('sqlite_utils' in sys.modules)\n"
        "s = o.define_schema({{'agents': o.define_table({{'name': o.v.string(), "
        "'rank': o.v.int64(), 'team': o.v.optional(o.v.string())}}){index}}})\n"
        f"o.Store.open({str(path)!r}, schema=s).close()\n"
        "print('sqlite_utils' in sys.modules)\n"
    )
    # import one_store, and opening a file whose tables already match: no DDL.
    assert run_python(opened.format(index="")) == ["False", "False"]
    # A new index is DDL: sqlite-utils makes it.
    with_index = opened.format(index=".index('by_name', ['name'])")
    assert run_python(with_index) == ["False", "True"]
