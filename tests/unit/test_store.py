"""Tests for one_store.store and one_store.runtime.context: running functions, ctx.db, limits.

Behaviour follows Convex (reference §2.3-§2.5, §4.1, §5.2): documents API checks,
system fields, DocumentNotFound, per-transaction limits, ConvexError, rollback,
frozen time and seeded randomness.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import (
    UNSET,
    ArgsInvalid,
    ContextError,
    ConvexError,
    DocumentInvalid,
    DocumentNotFound,
    FunctionNotFound,
    HandlerError,
    InvalidId,
    LimitExceeded,
    MutationCtx,
    Rejected,
    ReturnsInvalid,
    Store,
    StoreOpenError,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.model.ids import encode_id
from one_store.testing import FakeClock
from tests.conftest import SCHEMA

REFS = define_schema(
    {
        "users": define_table({"name": v.string()}),
        "posts": define_table(
            {"author": v.id("users"), "tags": v.optional(v.array(v.string()))}
        ),
    }
)


@mutation(args={"name": v.string(), "tags": v.optional(v.array(v.string()))})
def create(ctx, args):
    return ctx.db.insert("agents", dict(args))


@query(args={"id": v.id("agents")})
def get_agent(ctx, args):
    return ctx.db.get(args["id"])


def failure(result: Any) -> Any:
    assert isinstance(result, Failure), result
    return result.failure()


def insert(store: Store, table: str, doc: dict[str, Any]) -> Any:
    return store.run(lambda ctx: ctx.db.insert(table, doc))


def get(store: Store, doc_id: str) -> Any:
    return store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()


def count(store: Store, table: str) -> int:
    return int(store.storage.count(table))


# ---------------------------------------------------------------- opening


def test_memory_and_file_stores_run_the_same_mutation(store, file_store):
    for s in (store, file_store):
        agent_id = s.mutation(create, {"name": "Ada"}).unwrap()
        assert s.query(get_agent, {"id": agent_id}).unwrap()["name"] == "Ada"


def test_closed_store_refuses_calls(tmp_path: Path):
    with Store.open(tmp_path / "a.db", schema=SCHEMA) as s:
        pass
    with pytest.raises(ContextError):
        s.mutation(create, {"name": "x"})
    s.close()  # closing twice is harmless


def test_open_sets_the_page_cache_and_durability(tmp_path: Path):
    pragma = "PRAGMA cache_size", "PRAGMA synchronous"
    with Store.open(tmp_path / "a.db") as store:
        c = store.storage.connection
        assert [c.execute(p).fetchone()[0] for p in pragma] == [-64 * 1024, 1]
    with Store.open(tmp_path / "b.db", cache_mib=8, synchronous="FULL") as store:
        c = store.storage.connection
        assert [c.execute(p).fetchone()[0] for p in pragma] == [-8 * 1024, 2]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"synchronous": "normal"}, "synchronous must be one of OFF, NORMAL"),
        ({"synchronous": "SAFE"}, "got 'SAFE'"),
        ({"cache_mib": 0}, "cache_mib must be a whole number of MiB >= 1, got 0"),
        ({"cache_mib": 1.5}, "got 1.5"),
        ({"cache_mib": True}, "got True"),
    ],
)
def test_open_refuses_bad_settings_before_touching_the_file(
    tmp_path: Path, options: dict[str, Any], fragment: str
):
    path = tmp_path / "never.db"
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Store.open(path, **options)
    assert not path.exists()


# ---------------------------------------------------------------- opening failures


def test_open_in_a_missing_folder_names_the_file_and_the_folder(tmp_path: Path):
    path = tmp_path / "no" / "such" / "a.db"
    with pytest.raises(StoreOpenError) as info:
        Store.open(path)
    text = str(info.value)
    assert str(path) in text
    assert "unable to open database file" in text
    assert f"the folder {str(path.parent)!r} does not exist" in text
    assert info.value.problem.message == text
    assert not path.parent.exists()


def test_open_of_a_folder_says_it_is_one(tmp_path: Path):
    with pytest.raises(StoreOpenError, match="it is a folder, not a file") as info:
        Store.open(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_open_of_a_file_that_is_not_a_database_names_it(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the pages of a database" * 100)
    with pytest.raises(StoreOpenError) as info:
        Store.open(path)
    assert repr(str(path)) in str(info.value)
    assert "file is not a database" in str(info.value)


def test_open_in_a_folder_without_write_permission_says_so(tmp_path: Path):
    """A folder the process may not write in: the error says so.

    Root may create files in any folder, so under root (CI containers) the open
    runs in a child without the capabilities that override file permissions
    (util-linux's ``setpriv``); the folder's mode then applies as to any user.
    """
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    code = (
        "import sys\n"
        "from one_store import Store, StoreOpenError\n"
        "try:\n"
        "    Store.open(sys.argv[1])\n"
        "except StoreOpenError as e:\n"
        "    print(e)\n"
    )
    command = [sys.executable, "-c", code, str(folder / "a.db")]
    if os.geteuid() == 0:
        caps = "-dac_override,-dac_read_search"
        command = [
            "setpriv",
            f"--bounding-set={caps}",
            f"--inh-caps={caps}",
            "--",
            *command,
        ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o700)
    assert done.returncode == 0, done.stderr
    assert "permission denied" in done.stdout


# ---------------------------------------------------------------- read-only opening


def file_state(db: Path) -> tuple[str, int, int]:
    """The file's SHA-256 and mtime, and the size of its -wal (0 when absent)."""
    wal = Path(f"{db}-wal")
    return (
        hashlib.sha256(db.read_bytes()).hexdigest(),
        db.stat().st_mtime_ns,
        wal.stat().st_size if wal.exists() else 0,
    )


@query(args={"name": v.string()})
def by_name(ctx, args):
    return (
        ctx.db.query("agents")
        .with_index("by_name", lambda q: q.eq("name", args["name"]))
        .collect()
    )


def seed(db: Path) -> str:
    with Store.open(db, schema=SCHEMA) as s:
        agent_id: str = s.mutation(create, {"name": "Ada"}).unwrap()
    return agent_id


def test_readonly_store_reads_the_file_with_its_own_tables_and_indexes(tmp_path):
    db = tmp_path / "a.db"
    agent = seed(db)
    before = file_state(db)
    with Store.open(db, readonly=True) as ro:  # no schema, no app
        assert ro.readonly
        assert ro.storage.tables() == ["agents", "notes"]
        assert [d["_id"] for d in ro.documents("agents")] == [agent]
        assert [d["_id"] for d in ro.query(by_name, {"name": "Ada"}).unwrap()] == [
            agent
        ]
    assert file_state(db) == before


def test_readonly_store_with_another_schema_changes_nothing(tmp_path: Path):
    db = tmp_path / "a.db"
    agent = seed(db)
    # Another app's schema: the agents index is gone, a table with an index is new.
    other = define_schema(
        {
            "agents": define_table({"name": v.string()}),
            "drafts": define_table({"text": v.string()}).index("by_text", ["text"]),
        }
    )
    before = file_state(db)
    with Store.open(db, schema=other, readonly=True) as ro:
        assert ro.storage.tables() == ["agents", "notes"]
        assert "by_name" in ro.storage.layouts["agents"].indexes
        assert ro.query(by_name, {"name": "Ada"}).unwrap()[0]["_id"] == agent
    assert file_state(db) == before
    with Store.open(db, schema=other):  # opened to write, the file follows the schema
        pass
    assert file_state(db) != before


@mutation
def create_later(ctx, args):
    ctx.scheduler.run_after(0, create, {"name": "later"})


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.mutation(create, {"name": "x"}),
        lambda s: s.run(lambda ctx: ctx.db.insert("notes", {})),
        lambda s: s.scheduler.run_due(),  # a job is due
    ],
    ids=["mutation", "run", "scheduler"],
)
def test_a_write_through_a_readonly_store_is_a_context_error(tmp_path, write):
    db = tmp_path / "a.db"
    seed(db)
    with Store.open(db, schema=SCHEMA) as s:
        s.mutation(create_later).unwrap()
    before = file_state(db)
    with Store.open(db, schema=SCHEMA, readonly=True) as ro:
        with pytest.raises(ContextError, match=r"read-only \(readonly=True\)"):
            write(ro)
        assert [d["name"] for d in ro.documents("agents")] == ["Ada"]
    assert file_state(db) == before


def test_readonly_open_of_an_app_with_crons_records_nothing(tmp_path: Path):
    db = tmp_path / "a.db"
    seed(db)
    before = file_state(db)
    app = Path(__file__).resolve().parents[1] / "acceptance" / "apps" / "agent_app"
    with Store.open(db, app=app, readonly=True) as ro:
        assert ro.storage.tables() == ["agents", "notes"]
    assert file_state(db) == before


def test_readonly_open_of_a_missing_file_creates_nothing_and_names_it(tmp_path):
    path = tmp_path / "typo.db"
    with pytest.raises(StoreOpenError, match="the file does not exist") as info:
        Store.open(path, readonly=True)
    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_readonly_open_of_a_plain_sqlite_file_sees_no_tables(tmp_path: Path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE things (x)")
    c.close()
    before = file_state(db)
    with Store.open(db, readonly=True) as ro:
        assert ro.storage.tables() == []
        assert list(ro.documents("things")) == []
    assert file_state(db) == before


def test_store_without_schema_accepts_any_document():
    with Store.memory() as s:
        doc_id = insert(s, "anything", {"x": [1, {"y": b"z"}]}).unwrap()
        assert get(s, doc_id)["x"] == [1, {"y": b"z"}]


# ---------------------------------------------------------------- args


@pytest.mark.parametrize(
    ("args", "path", "fragment"),
    [
        ({"name": 3}, ".name", "v.string()"),
        ({}, "", "missing the required field `name`"),
        ({"name": "a", "extra": 1}, "", "extra field `extra`"),
        ({"name": "a", "tags": ["x", 2]}, ".tags[1]", "Value does not match"),
        ({"name": "a", "tags": None}, ".tags", "Value does not match"),
        ({"name": "a", "tags": ["x"] * 8193}, ".tags", "8193"),
        ({"name": "a\ud800"}, ".name", "surrogate"),
    ],
)
def test_bad_arguments_are_args_invalid_with_the_path(store, args, path, fragment):
    problem = failure(store.mutation(create, args))
    assert isinstance(problem, ArgsInvalid)
    assert problem.path == path
    assert fragment in problem.message
    assert count(store, "agents") == 0


@pytest.mark.parametrize("args", [[1], "x", 3, ({"name": "a"},)])
def test_args_must_be_an_object(store, args):
    problem = failure(store.mutation(create, args))
    assert isinstance(problem, ArgsInvalid)
    assert "Expected to receive an object" in problem.message


def test_int64_argument_rejects_true_and_nan(store):
    @mutation(args={"n": v.int64()})
    def take(ctx, args):
        return args["n"]

    for bad in (True, math.nan, 1.0, 2**63):
        assert isinstance(failure(store.mutation(take, {"n": bad})), ArgsInvalid)
    assert store.mutation(take, {"n": -(2**63)}).unwrap() == -(2**63)


def test_unvalidated_args_still_must_be_convex_values(store):
    @mutation
    def echo(ctx, args):
        return args

    assert store.mutation(echo, {"a": (1, 2)}).unwrap() == {"a": [1, 2]}
    problem = failure(store.mutation(echo, {"a": {1, 2}}))
    assert isinstance(problem, ArgsInvalid)
    assert problem.path == ".a"
    assert isinstance(failure(store.mutation(echo, {"$a": 1})), ArgsInvalid)
    deep: Any = 0
    for _ in range(65):
        deep = [deep]
    assert isinstance(failure(store.mutation(echo, {"a": deep})), ArgsInvalid)


def test_id_arguments_check_format_checksum_and_table():
    with Store.memory(REFS) as s:
        user = insert(s, "users", {"name": "u"}).unwrap()
        post = insert(s, "posts", {"author": user}).unwrap()

        @query(args={"user": v.id("users")})
        def read(ctx, args):
            return ctx.db.get(args["user"])

        assert s.query(read, {"user": user}).unwrap()["name"] == "u"
        bad_checksum = user[:-1] + ("a" if user[-1] != "a" else "b")
        for bad in (post, "garbage", bad_checksum, encode_id(10999), 12):
            problem = failure(s.query(read, {"user": bad}))
            assert isinstance(problem, ArgsInvalid)
            assert problem.path == ".user"
        assert "from table `posts`" in failure(s.query(read, {"user": post})).message


# ---------------------------------------------------------------- documents


def test_insert_sets_system_fields(store, clock):
    agent_id = insert(store, "agents", {"name": "Ada"}).unwrap()
    doc = get(store, agent_id)
    assert doc == {"_id": agent_id, "_creationTime": clock(), "name": "Ada"}
    assert type(doc["_creationTime"]) is float


@pytest.mark.parametrize(
    ("doc", "path", "fragment"),
    [
        ({"name": 1}, ".name", "Value does not match"),
        ({}, "", "missing the required field `name`"),
        ({"name": "a", "other": 1}, "", "extra field `other`"),
        ({"name": "a", "_id": "x"}, "._id", "system field"),
        ({"name": "a", "_creationTime": 1.0}, "._creationTime", "system field"),
        ({"name": "a", "_x": 1}, "._x", "underscore"),
        ({"name": "a", "tags": ["x", None]}, ".tags[1]", "Value does not match"),
    ],
)
def test_insert_of_a_bad_document_is_document_invalid(store, doc, path, fragment):
    problem = failure(insert(store, "agents", doc))
    assert isinstance(problem, DocumentInvalid)
    assert problem.table == "agents"
    assert problem.path == path
    assert fragment in problem.message
    assert count(store, "agents") == 0


def nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"a": nest(16)}, "too nested"),  # document nesting 17
        ({"a": list(range(8193))}, "8193"),
        ({f"f{i}": 0 for i in range(1025)}, "too many fields"),
        ({"$a": 1}, "starts with '$'"),
        ({"a": {"$b": 1}}, "starts with '$'"),
        ({"é": 1}, "invalid character"),
        ({"a\x01": 1}, "invalid character"),
        ({"k" * 1025: 1}, "too long"),
        ({"a": {1, 2}}, "not a supported Convex type"),
        ({"a": "\udc00"}, "surrogate"),
        ({"a": 2**64}, "64-bit"),
    ],
)
def test_documents_breaking_value_limits_are_document_invalid(store, doc, fragment):
    problem = failure(insert(store, "notes", doc))
    assert isinstance(problem, DocumentInvalid)
    assert fragment in problem.message
    assert count(store, "notes") == 0


def test_document_nesting_16_is_allowed(store):
    assert isinstance(insert(store, "notes", nest(15)), Success)  # nesting 16


def test_document_size_limit_counts_system_fields(store):
    # Convex's size: object 2 + per field len(name) + 1 + value; string 2 + bytes.
    # _id (32 chars): 3 + 1 + 34; _creationTime: 13 + 1 + 9.
    system = (3 + 1 + 34) + (13 + 1 + 9)
    fits = (1 << 20) - 2 - system - (1 + 1 + 2)
    assert isinstance(insert(store, "notes", {"s": "x" * fits}), Success)
    problem = failure(insert(store, "notes", {"s": "x" * (fits + 1)}))
    assert isinstance(problem, DocumentInvalid)
    assert "Value is too large (1048577 > maximum size 1 MiB)" in problem.message


def test_insert_needs_an_object(store):
    assert isinstance(failure(insert(store, "notes", [1])), DocumentInvalid)  # type: ignore[arg-type]


def test_insert_into_a_system_table_is_misuse(store):
    with pytest.raises(ContextError):
        insert(store, "_scheduled_functions", {})


def test_id_fields_are_checked_against_their_table():
    with Store.memory(REFS) as s:
        user = insert(s, "users", {"name": "u"}).unwrap()
        post = insert(s, "posts", {"author": user}).unwrap()
        for bad in (post, "x" * 32, encode_id(10999)):
            problem = failure(insert(s, "posts", {"author": bad}))
            assert isinstance(problem, DocumentInvalid)
            assert problem.path == ".author"


def test_patch_merges_shallowly_unset_removes_none_stores_null(store):
    agent_id = insert(
        store, "agents", {"name": "a", "tags": ["x"], "score": 1.0}
    ).unwrap()
    store.run(lambda ctx: ctx.db.patch(agent_id, {"tags": UNSET, "name": "b"})).unwrap()
    doc = get(store, agent_id)
    assert doc["name"] == "b"
    assert "tags" not in doc
    assert doc["score"] == 1.0
    free = insert(store, "notes", {"a": 1, "o": {"x": 1, "y": 2}}).unwrap()
    store.run(lambda ctx: ctx.db.patch(free, {"a": None, "o": {"x": 3}})).unwrap()
    doc = get(store, free)
    assert doc["a"] is None
    assert doc["o"] == {"x": 3}  # nested objects are replaced whole


def test_patch_result_is_validated(store):
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()
    problem = failure(store.run(lambda ctx: ctx.db.patch(agent_id, {"name": UNSET})))
    assert isinstance(problem, DocumentInvalid)
    assert "missing the required field `name`" in problem.message
    problem = failure(store.run(lambda ctx: ctx.db.patch(agent_id, {"score": "x"})))
    assert isinstance(problem, DocumentInvalid)
    assert problem.path == ".score"
    assert get(store, agent_id)["name"] == "a"


def test_patch_and_replace_may_repeat_system_fields_unchanged(store):
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()
    doc = get(store, agent_id)
    store.run(lambda ctx: ctx.db.patch(agent_id, {**doc, "name": "b"})).unwrap()
    store.run(lambda ctx: ctx.db.replace(agent_id, {**doc, "name": "c"})).unwrap()
    assert get(store, agent_id) == {**doc, "name": "c"}
    for change in ({"_id": encode_id(10001)}, {"_creationTime": 1.0}):
        for op in ("patch", "replace"):
            problem = failure(
                store.run(
                    lambda ctx, op=op, change=change: getattr(ctx.db, op)(
                        agent_id, {"name": "d", **change}
                    )
                )
            )
            assert isinstance(problem, DocumentInvalid)
            assert problem.path == "." + next(iter(change))
    assert get(store, agent_id)["name"] == "c"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"_secret": 1}, "Field '_secret' starts with an underscore"),
        ({"name": "a", "_b": 2}, "Field '_b' starts with an underscore"),
        ({"name": "a", "a\x00_b": 1}, "has invalid character '\\x00'"),
        ({1: 2}, "Field names must be strings"),
    ],
)
def test_a_written_key_is_refused_wherever_it_sits(body, fragment) -> None:
    # The key scan looks for "_" at the start of any key at once; a key with
    # "_" inside, or not a str, takes the loop; each is refused as before.
    with Store.memory() as store:
        agent_id = insert(store, "agents", {"name": "a"}).unwrap()
        writes = [
            lambda ctx: ctx.db.insert("agents", body),
            lambda ctx: ctx.db.replace(agent_id, body),
        ]
        for write in writes:
            problem = failure(store.run(write))
            assert isinstance(problem, DocumentInvalid)
            assert fragment in problem.message
        assert get(store, agent_id) == {**get(store, agent_id), "name": "a"}


def test_repeated_creation_time_must_be_the_same_float64(store):
    # Convex compares values type-strictly: the int64 1000 is not the float64 1000.0.
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()
    created = get(store, agent_id)["_creationTime"]
    assert created == int(created)  # the fixture clock is a whole millisecond
    problem = failure(
        store.run(lambda ctx: ctx.db.patch(agent_id, {"_creationTime": int(created)}))
    )
    assert isinstance(problem, DocumentInvalid)
    assert problem.path == "._creationTime"


def test_replace_replaces_every_field(store):
    agent_id = insert(store, "agents", {"name": "a", "tags": ["t"]}).unwrap()
    store.run(lambda ctx: ctx.db.replace(agent_id, {"name": "z"})).unwrap()
    doc = get(store, agent_id)
    assert doc["name"] == "z"
    assert "tags" not in doc
    assert isinstance(
        failure(store.run(lambda ctx: ctx.db.replace(agent_id, {}))), DocumentInvalid
    )


@pytest.mark.parametrize("op", ["patch", "replace", "delete"])
def test_writes_to_a_missing_document_are_document_not_found(store, op):
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()
    store.run(lambda ctx: ctx.db.delete(agent_id)).unwrap()
    args = () if op == "delete" else ({"name": "b"},)
    problem = failure(store.run(lambda ctx: getattr(ctx.db, op)(agent_id, *args)))
    assert isinstance(problem, DocumentNotFound)
    assert problem.id == agent_id
    verb = {"patch": "Update", "replace": "Replace", "delete": "Delete"}[op]
    assert problem.message == f"{verb} on nonexistent document ID {agent_id}"
    unknown_table = encode_id(10999)
    assert isinstance(
        failure(store.run(lambda ctx: getattr(ctx.db, op)(unknown_table, *args))),
        DocumentNotFound,
    )


def test_get_of_an_undecodable_id_is_invalid_id(store):
    for bad in ("garbage", "", 5, None, encode_id(10001)[:-1] + "!"):
        problem = failure(store.run(lambda ctx, bad=bad: ctx.db.get(bad)))
        assert isinstance(problem, InvalidId)
        assert "Invalid argument `id` for `db.get`" in problem.message
    for op in ("patch", "delete"):
        args: tuple[dict[str, Any], ...] = () if op == "delete" else ({},)
        problem = failure(
            store.run(lambda ctx, op=op, args=args: getattr(ctx.db, op)("zz", *args))
        )
        assert isinstance(problem, InvalidId)


def test_ids_reach_only_their_own_kind_of_table(store):
    # Convex's SystemTableError: an ID (data) of the wrong kind of table is an error
    # the function sees, here a Failure, not library misuse.
    @mutation
    def later(ctx, args):
        return None

    job = store.run(lambda ctx: ctx.scheduler.run_after(5_000, later, {})).unwrap()
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()
    assert store.run(lambda ctx: ctx.db.system.get(job)).unwrap()["_id"] == job
    problem = failure(store.run(lambda ctx: ctx.db.get(job)))
    assert isinstance(problem, InvalidId)
    assert problem.message == "System tables can only be accessed with db.system."
    problem = failure(store.run(lambda ctx: ctx.db.system.get(agent_id)))
    assert isinstance(problem, InvalidId)
    assert isinstance(failure(store.run(lambda ctx: ctx.db.delete(job))), InvalidId)


def test_get_of_an_unknown_table_or_deleted_document_is_none(store):
    assert get(store, encode_id(10999)) is None
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()
    store.run(lambda ctx: ctx.db.delete(agent_id)).unwrap()
    assert get(store, agent_id) is None


def test_reads_see_the_mutations_own_writes(store):
    def work(ctx: MutationCtx) -> Any:
        agent_id = ctx.db.insert("agents", {"name": "a"})
        ctx.db.patch(agent_id, {"name": "b"})
        return ctx.db.get(agent_id)

    assert store.run(work).unwrap()["name"] == "b"


def test_insert_creates_a_table_not_in_the_schema(store):
    doc_id = insert(store, "extra", {"anything": [1]}).unwrap()
    assert get(store, doc_id)["anything"] == [1]
    with pytest.raises(ContextError):
        insert(store, "bad name", {})


# ---------------------------------------------------------------- creation time


def test_creation_time_strictly_increases_within_and_across_calls(store):
    def three(ctx: MutationCtx) -> list[str]:
        return [ctx.db.insert("notes", {}) for _ in range(3)]

    ids = store.run(three).unwrap() + store.run(three).unwrap()
    times = [get(store, i)["_creationTime"] for i in ids]
    assert all(a < b for a, b in itertools.pairwise(times))


def test_creation_time_follows_the_clock_when_it_is_ahead(store, clock):
    first = get(store, insert(store, "notes", {}).unwrap())["_creationTime"]
    clock.advance(5_000)
    second = get(store, insert(store, "notes", {}).unwrap())["_creationTime"]
    assert first == clock() - 5_000
    assert second == clock()


def test_creation_time_increases_across_reopen_and_two_stores(tmp_path: Path):
    path = tmp_path / "t.db"
    clock = FakeClock(1000.0)  # a frozen clock: only the store can keep order
    times: list[float] = []

    def add(s: Store) -> None:
        doc_id = insert(s, "notes", {}).unwrap()
        times.append(get(s, doc_id)["_creationTime"])

    with Store.open(path, schema=SCHEMA, clock=clock) as s:
        add(s)
        add(s)
    with Store.open(path, schema=SCHEMA, clock=clock) as s:
        add(s)
    a = Store.open(path, schema=SCHEMA, clock=clock)
    b = Store.open(path, schema=SCHEMA, clock=clock)
    try:
        for s in (a, b, a, b, b, a):
            add(s)
    finally:
        a.close()
        b.close()
    assert all(x < y for x, y in itertools.pairwise(times)), times


def test_rolled_back_inserts_do_not_advance_creation_time_wrongly(store):
    def fail(ctx: MutationCtx) -> None:
        ctx.db.insert("notes", {})
        raise ConvexError("no")

    first = insert(store, "notes", {}).unwrap()
    assert isinstance(failure(store.run(fail)), Rejected)
    second = insert(store, "notes", {}).unwrap()
    assert get(store, first)["_creationTime"] < get(store, second)["_creationTime"]


# ---------------------------------------------------------------- outcomes


def test_convex_error_is_rejected_with_its_data_and_rolls_back(store):
    def reject(ctx: MutationCtx) -> None:
        ctx.db.insert("agents", {"name": "a"})
        raise ConvexError({"code": "taken", "n": 1})

    problem = failure(store.run(reject))
    assert problem == Rejected({"code": "taken", "n": 1})
    assert count(store, "agents") == 0


def test_returned_failure_rolls_back(store):
    def refuse(ctx: MutationCtx) -> Any:
        ctx.db.insert("agents", {"name": "a"})
        return Failure(Rejected("Agent not found"))

    assert failure(store.run(refuse)) == Rejected("Agent not found")
    assert count(store, "agents") == 0


def test_returned_success_is_unwrapped(store):
    assert store.run(lambda ctx: Success(5)).unwrap() == 5


def test_exception_is_handler_error_with_the_exception_attached(store):
    error = KeyError("missing")

    def crash(ctx: MutationCtx) -> None:
        ctx.db.insert("agents", {"name": "a"})
        raise error

    problem = failure(store.run(crash))
    assert isinstance(problem, HandlerError)
    assert problem.exception is error
    assert "KeyError" in problem.message
    assert "crash" in problem.traceback
    assert count(store, "agents") == 0


def test_library_misuse_raises_and_rolls_back(store):
    def misuse(ctx: MutationCtx) -> None:
        ctx.db.insert("agents", {"name": "a"})
        ctx.db.query("_private")

    with pytest.raises(ContextError):
        store.run(misuse)
    assert count(store, "agents") == 0


def test_keyboard_interrupt_propagates_after_rollback(store):
    def interrupt(ctx: MutationCtx) -> None:
        ctx.db.insert("agents", {"name": "a"})
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.run(interrupt)
    assert count(store, "agents") == 0
    assert isinstance(insert(store, "agents", {"name": "b"}), Success)


@pytest.mark.parametrize("op", ["insert", "patch", "replace", "delete"])
def test_queries_cannot_write(store, op):
    agent_id = insert(store, "agents", {"name": "a"}).unwrap()

    @query
    def write(ctx, args):
        call = {
            "insert": lambda: ctx.db.insert("agents", {"name": "b"}),
            "patch": lambda: ctx.db.patch(agent_id, {"name": "b"}),
            "replace": lambda: ctx.db.replace(agent_id, {"name": "b"}),
            "delete": lambda: ctx.db.delete(agent_id),
        }[op]
        call()

    with pytest.raises(ContextError):
        store.query(write)
    assert get(store, agent_id)["name"] == "a"
    assert count(store, "agents") == 1


def test_returns_validator_checks_the_result(store):
    @mutation(returns=v.int64())
    def bad(ctx, args):
        ctx.db.insert("agents", {"name": "a"})
        return "nope"

    problem = failure(store.mutation(bad))
    assert isinstance(problem, ReturnsInvalid)
    assert count(store, "agents") == 0

    @query
    def unconvertible(ctx, args):
        return {"x": object()}

    assert failure(store.query(unconvertible)).path == ".x"


@pytest.mark.engine_independent("the executor counts the writes: 13 s on PostgreSQL")
def test_write_limit_is_16000_per_mutation(store):
    def many(n: int) -> Any:
        def work(ctx: MutationCtx) -> None:
            for _ in range(n):
                ctx.db.insert("notes", {})

        return work

    problem = failure(store.run(many(16_001)))
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "writes"
    assert problem.value == 16_000
    assert count(store, "notes") == 0
    assert isinstance(store.run(many(16_000)), Success)
    assert count(store, "notes") == 16_000


def test_bytes_written_limit_is_16_mib_per_mutation(store):
    big = "x" * 1_000_000

    def heavy(ctx: MutationCtx) -> None:
        for _ in range(17):
            ctx.db.insert("notes", {"s": big})

    problem = failure(store.run(heavy))
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "bytesWritten"
    assert count(store, "notes") == 0


def test_documents_read_limit_is_32000_per_call(store):
    def fill(ctx: MutationCtx) -> None:
        for _ in range(16_000):
            ctx.db.insert("notes", {})

    for _ in range(2):
        store.run(fill).unwrap()

    @query
    def read_all(ctx, args):
        return len(ctx.db.query("notes").collect())

    assert store.query(read_all).unwrap() == 32_000
    insert(store, "notes", {}).unwrap()
    problem = failure(store.query(read_all))
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "documentsRead"
    assert problem.value == 32_000


def test_function_lookup_by_path_without_an_app(store):
    problem = failure(store.mutation("agents:create", {}))
    assert isinstance(problem, FunctionNotFound)
    assert problem.path == "agents:create"
    assert isinstance(failure(store.function("nope")), FunctionNotFound)


def test_a_path_without_an_app_says_that_paths_need_one(store):
    message = failure(store.mutation("agents:create", {})).message
    assert message.startswith("Could not find public function for 'agents:create'.")
    assert "opened without an app" in message
    assert "Store.open(..., app=...)" in message
    assert "pass the function itself" in message


def test_a_missing_path_in_an_app_keeps_convexs_text():
    app = Path(__file__).resolve().parents[1] / "acceptance" / "apps" / "http_app"
    with Store.memory(app=app) as s:
        assert failure(s.query("notes:lsit", {})).message == (
            "Could not find public function for 'notes:lsit'. "
            "Did you mean: notes:list, notes:get, notes:secret?"
        )


def test_calling_a_function_of_another_kind_is_misuse(store):
    with pytest.raises(ContextError):
        store.query(create, {"name": "x"})
    with pytest.raises(ContextError):
        store.mutation(lambda ctx, args: None)


# ---------------------------------------------------------------- time and randomness


def test_now_is_frozen_for_the_whole_call(store, clock):
    def read_twice(ctx: MutationCtx) -> list[float]:
        first = ctx.now()
        clock.advance(1_000)
        return [first, ctx.now()]

    start = clock()
    assert store.run(read_twice).unwrap() == [start, start]
    assert store.run(lambda ctx: ctx.now()).unwrap() == start + 1_000


def test_seeded_random_replays(clock):
    def draws(s: Store) -> list[list[float]]:
        return [
            s.run(lambda ctx: [ctx.random.random() for _ in range(3)]).unwrap()
            for _ in range(2)
        ]

    with Store.memory(SCHEMA, clock=clock, seed=42) as a:
        first = draws(a)
    with Store.memory(SCHEMA, clock=clock, seed=42) as b:
        second = draws(b)
    with Store.memory(SCHEMA, clock=clock, seed=43) as c:
        other = draws(c)
    assert first == second
    assert first[0] != first[1]  # a fresh sequence per call
    assert first != other


def test_seeded_stores_make_the_same_ids(clock):
    def ids(seed: int) -> list[str]:
        with Store.memory(SCHEMA, clock=clock, seed=seed) as s:
            return [insert(s, "notes", {}).unwrap() for _ in range(3)]

    assert ids(5) == ids(5)
    assert ids(5) != ids(6)


# ---------------------------------------------------------------- 16 MiB args / returns


@mutation(args={"s": v.string()})
def echo_length(ctx, args):
    ctx.db.insert("notes", {"n": len(args["s"])})
    return len(args["s"])


@mutation(args={"n": v.int64()})
def big_return(ctx, args):
    ctx.db.insert("notes", {"n": args["n"]})
    return {"s": "x" * args["n"]}


def test_arguments_up_to_16_mib_are_accepted_and_one_byte_more_refused(store):
    # Convex's size of {"s": <N ascii chars>}: 2 + (1 + 1) + (2 + N) = N + 6.
    fits = (1 << 24) - 6
    assert store.mutation(echo_length, {"s": "x" * fits}).unwrap() == fits
    problem = failure(store.mutation(echo_length, {"s": "x" * (fits + 1)}))
    assert isinstance(problem, ArgsInvalid)
    assert problem.message == (
        "Arguments for echo_length are too large (actual: 16 MiB, limit: 16 MiB)"
    )
    assert count(store, "notes") == 1  # the refused call ran nothing


def test_a_return_value_over_16_mib_fails_the_mutation_and_writes_nothing(store):
    fits = (1 << 24) - 6
    assert isinstance(store.mutation(big_return, {"n": fits}), Success)
    problem = failure(store.mutation(big_return, {"n": 1 << 24}))
    assert isinstance(problem, ReturnsInvalid)
    assert problem.message == (
        "Function big_return return value is too large (actual: 16 MiB, limit: 16 MiB)"
    )
    assert count(store, "notes") == 1


@query(args={})
def all_numbers(ctx, args):
    return {"docs": ctx.db.query("numbers").collect()}


def test_returned_documents_are_held_to_16_mib_by_their_exact_size():
    # A document of 8,000 zeros is ~16 KB of JSON but 72 KB by Convex's size:
    # 240 of them read well within the 16 MiB read limit yet return more than
    # 16 MiB, so the bound from the stored text must fall back to the exact size.
    def add(n):
        return lambda ctx: [
            ctx.db.insert("numbers", {"xs": [0] * 8000}) for _ in range(n)
        ]

    with Store.memory() as store:
        store.run(add(230)).unwrap()
        assert len(store.query(all_numbers).unwrap()["docs"]) == 230  # 15.8 MiB
        store.run(add(10)).unwrap()
        problem = failure(store.query(all_numbers))
    assert isinstance(problem, ReturnsInvalid)
    assert problem.message == (
        "Function all_numbers return value is too large "
        "(actual: 16.5 MiB, limit: 16 MiB)"
    )


# ---------------------------------------------------------------- returning read documents


def test_a_read_document_edited_before_it_is_returned_is_checked_again(store):
    note_id = store.run(lambda ctx: ctx.db.insert("notes", {"n": 1})).unwrap()

    @query
    def add_a_set(ctx, args):
        doc = ctx.db.get(note_id)
        doc["extra"] = {1, 2}  # not a Convex value
        return doc

    @query
    def replace_a_field(ctx, args):
        doc = ctx.db.get(note_id)
        doc["n"] = object()
        return [doc]

    @query
    def join(ctx, args):
        doc = ctx.db.get(note_id)
        doc["self"] = ctx.db.get(note_id)
        return doc

    added = failure(store.query(add_a_set))
    assert isinstance(added, ReturnsInvalid)
    assert "extra" in added.path
    replaced = failure(store.query(replace_a_field))
    assert isinstance(replaced, ReturnsInvalid)
    assert "n" in replaced.path
    joined = store.query(join).unwrap()
    assert joined["self"]["_id"] == joined["_id"] == note_id
