"""The testing kit, dogfooded: FakeClock, the pytest plugin, from_validator, faults, traces."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure

from one_store import (
    Busy,
    LimitExceeded,
    Rejected,
    StorageError,
    Store,
    action,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.model.validators import Validator
from one_store.testing import (
    DEFAULT_START_MS,
    DocumentRead,
    DocumentWrite,
    FakeClock,
    from_validator,
    inject_faults,
    trace,
)

ROOT = Path(__file__).resolve().parents[2]
AGENT_APP = "tests/acceptance/apps/agent_app"

# ----------------------------------------------------------------- FakeClock


def test_fake_clock_moves_only_forward_and_only_when_told():
    clock = FakeClock()
    assert clock() == DEFAULT_START_MS
    assert clock() == clock()
    clock.advance(0)
    clock.advance(250.5)
    assert clock() == DEFAULT_START_MS + 250.5
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match="only moves forward"):
            clock.advance(bad)
    assert clock() == DEFAULT_START_MS + 250.5


def test_the_fake_clock_fixture(fake_clock):
    assert isinstance(fake_clock, FakeClock)
    assert fake_clock() == DEFAULT_START_MS


# ----------------------------------------------------------------- the plugin


@pytest.mark.sqlite_only("app_store is a SQLite memory store")
@pytest.mark.one_store_app(AGENT_APP)
def test_app_store_is_an_in_memory_store_of_the_marked_app(app_store, fake_clock):
    assert "tasks:submit" in app_store.app.functions
    assert app_store.storage.path == ":memory:"
    assert app_store.clock is fake_clock
    assert app_store.seed == 0


def test_app_store_without_an_app_is_an_empty_store(app_store):
    assert app_store.app is None
    assert app_store.schema is None
    assert app_store.run(lambda ctx: ctx.db.insert("anything", {"x": 1})).unwrap()


@pytest.mark.engine_independent(
    "the executor's limits in the plugin's store: 8 s on PostgreSQL"
)
@pytest.mark.one_store_app(AGENT_APP)
def test_limits_are_enforced_in_test_stores_by_default(app_store):
    @mutation
    def too_many(ctx, args):
        for i in range(16_001):
            ctx.db.insert("counters", {"name": f"c{i}", "value": i})

    problem = app_store.mutation(too_many).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "writes"
    assert app_store.query("tasks:counter", {"name": "c0"}).unwrap() == 0


@pytest.mark.one_store_app(AGENT_APP)
def test_with_identity_gives_handlers_an_identity(app_store):
    @query
    def whoami(ctx, args):
        return ctx.auth.get_user_identity()

    ada = app_store.with_identity({"subject": "ada", "issuer": "https://auth.example"})
    assert ada.query(whoami).unwrap()["tokenIdentifier"] == "https://auth.example|ada"
    assert app_store.query(whoami).unwrap() is None
    # The view shares the data: a task submitted as Ada is seen by everyone.
    task = ada.mutation("tasks:submit", {"goal": "g"}).unwrap()
    assert app_store.query("tasks:get", {"taskId": task}).unwrap()["goal"] == "g"


def test_the_plugin_is_registered_through_its_entry_point(tmp_path):
    # A fresh pytest run that imports nothing from one_store still gets the fixtures.
    (tmp_path / "test_plugin.py").write_text(
        textwrap.dedent(
            f"""
            import pytest

            @pytest.mark.one_store_app({str(ROOT / AGENT_APP)!r})
            def test_fixtures(app_store, fake_clock):
                task = app_store.mutation("tasks:submit", {{"goal": "x"}}).unwrap()
                assert app_store.scheduler.jobs()[0]["state"]["kind"] == "pending"
                fake_clock.advance(1)
                assert app_store.clock() == fake_clock()
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path / "test_plugin.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_ini_option_chooses_the_app(tmp_path):
    (tmp_path / "test_ini.py").write_text(
        "def test_app(app_store):\n    assert 'agent:work' in app_store.app.functions\n"
    )
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\naddopts = -p no:cacheprovider\none_store_app = {ROOT / AGENT_APP}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path / "test_ini.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ----------------------------------------------------------------- from_validator


def validators(max_leaves: int = 6) -> st.SearchStrategy[Validator]:
    """Arbitrary validators, nested, with optional fields, records, unions and literals."""
    names = st.text("abcdefgh_", min_size=1, max_size=6).map(lambda s: "f" + s)
    scalars = st.one_of(
        st.sampled_from(
            [
                v.string(),
                v.number(),
                v.int64(),
                v.boolean(),
                v.bytes(),
                v.null(),
                v.any(),
                v.id("agents"),
            ]
        ),
        st.one_of(
            st.text(max_size=5),
            st.integers(-(2**63), 2**63 - 1),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
        ).map(v.literal),
    )

    def nest(inner: st.SearchStrategy[Validator]) -> st.SearchStrategy[Validator]:
        field = st.tuples(inner, st.booleans()).map(
            lambda t: v.optional(t[0]) if t[1] else t[0]
        )
        return st.one_of(
            inner.map(v.array),
            st.dictionaries(names, field, max_size=4).map(v.object),
            inner.map(lambda x: v.record(v.string(), x)),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: v.union(*xs)),
            inner.map(v.nullable),
        )

    return st.recursive(scalars, nest, max_leaves=max_leaves)


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (validate returns the value it was given)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b) or (
        isinstance(b, float) and isinstance(a, int) and float(a) == b
    )


@given(data=st.data(), validator=validators())
def test_every_generated_valid_value_passes_validate(data, validator):
    value = data.draw(from_validator(validator))
    result = validator.validate(value)
    assert not isinstance(result, Failure), (validator, value, result)
    assert same(value, result.unwrap())


@given(data=st.data(), validator=validators())
def test_every_generated_invalid_value_fails_validate(data, validator):
    value = data.draw(from_validator(validator, invalid=True))
    assert isinstance(validator.validate(value), Failure), (validator, value)


AGENT = v.object(
    {
        "name": v.string(),
        "status": v.union(v.literal("active"), v.literal("paused")),
        "tags": v.optional(v.array(v.string())),
        "owner": v.id("users"),
        "meta": v.optional(v.record(v.string(), v.any())),
    }
)


@given(from_validator(AGENT))
def test_issue_example_object_values_are_valid(value):
    assert AGENT.validate(value).unwrap() == value
    assert value["status"] in ("active", "paused")


@given(from_validator(AGENT, invalid=True))
def test_issue_example_invalid_values_are_rejected(value):
    assert isinstance(AGENT.validate(value), Failure)


WITHOUT_HYPOTHESIS = """
import sys

sys.modules["hypothesis"] = None  # as if it were not installed
import one_store.testing as kit
from one_store import v

for make in (lambda: kit.from_validator(v.string()), lambda: kit.any_value()):
    try:
        make()
    except ImportError as e:
        print(e.name, "|", e)
    else:
        raise SystemExit("no ImportError")
print(kit.FakeClock(5.0)())  # the rest of the kit works without it
"""


def test_the_strategies_without_hypothesis_name_the_extra():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_HYPOTHESIS],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    first, second, clock = done.stdout.splitlines()
    assert first == second
    assert first.startswith("hypothesis | one_store.testing's strategies")
    assert "pip install 'one-store[testing]'" in first
    assert clock == "5.0"


def test_the_testing_extra_brings_pytest_and_hypothesis():
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["testing"]
    assert sorted(r.split(">")[0] for r in extra) == ["hypothesis", "pytest"]


def test_from_validator_rejects_non_validators():
    with pytest.raises(TypeError, match="v\\.\\* validator"):
        from_validator({"name": v.string()})  # type: ignore[arg-type]


SCHEMA = define_schema(
    {
        "users": define_table({"name": v.string()}),
        "agents": define_table({"name": v.string(), "owner": v.id("users")}),
    }
)


@mutation(args={"name": v.string(), "owner": v.id("users")})
def create_agent(ctx, args):
    return ctx.db.insert("agents", args)


def test_generated_ids_can_pass_a_stores_table_check():
    with Store.memory(SCHEMA) as store:
        numbers = {t: store.storage.table_number(t) for t in ("users", "agents")}
        args_v = v.object({"name": v.string(), "owner": v.id("users")})

        @given(from_validator(args_v, tables=numbers))
        def args_are_accepted(args):
            # The owner does not exist, but the args pass validation: the insert runs.
            assert store.mutation(create_agent, args).unwrap()

        @given(from_validator(args_v, invalid=True, tables=numbers))
        def bad_args_are_args_invalid(args):
            assert store.mutation(create_agent, args).failure().code == "ArgsInvalid"

        args_are_accepted()
        bad_args_are_args_invalid()


# ----------------------------------------------------------------- faults


@mutation(args={"name": v.string()})
def add_user(ctx, args):
    return ctx.db.insert("users", {"name": args["name"]})


@query
def user_names(ctx, args):
    return [u["name"] for u in ctx.db.query("users").collect()]


def test_injected_busy_then_storage_errors_hit_the_next_mutations_in_order():
    with Store.memory(SCHEMA) as store:
        faults = inject_faults(store, busy=2, storage_error=1)
        results = [store.mutation(add_user, {"name": str(i)}) for i in range(4)]
        assert [r.failure() for r in results[:2]] == [Busy(), Busy()]
        assert isinstance(results[2].failure(), StorageError)
        assert "injected" in results[2].failure().message
        assert isinstance(results[3].unwrap(), str)
        assert store.query(user_names).unwrap() == ["3"]  # faulted ones wrote nothing
        assert faults.remaining == 0
        assert len(faults.hits) == 3


def test_faults_skip_queries_and_can_be_cleared_by_a_with_block():
    with Store.memory(SCHEMA) as store:
        with inject_faults(store, busy=5) as faults:
            assert store.query(user_names).unwrap() == []
            assert store.mutation(add_user, {"name": "a"}).failure() == Busy()
        assert faults.remaining == 0
        assert store.mutation(add_user, {"name": "b"}).unwrap()


def test_custom_problems_can_be_injected():
    with Store.memory(SCHEMA) as store:
        inject_faults(store, problems=[StorageError("disk full")])
        assert store.run(lambda ctx: None).failure() == StorageError("disk full")


def test_an_action_can_retry_a_mutation_that_hit_busy():
    @action
    def add_with_retry(ctx, args):
        for attempt in range(1, 6):
            result = ctx.run_mutation(add_user, {"name": "retried"})
            if isinstance(result, Failure) and isinstance(result.failure(), Busy):
                continue
            return attempt
        return Failure(Rejected("gave up"))

    with Store.memory(SCHEMA) as store:
        inject_faults(store, busy=3)
        assert store.action(add_with_retry).unwrap() == 4
        inject_faults(store, busy=5)
        assert store.action(add_with_retry).failure() == Rejected("gave up")
        assert store.query(user_names).unwrap() == ["retried"]


# ----------------------------------------------------------------- trace

TRACE_SCHEMA = define_schema(
    {
        "msgs": define_table({"thread": v.string(), "text": v.string()}).index(
            "by_thread", ["thread"]
        ),
    }
)


@mutation(args={"thread": v.string(), "text": v.string()})
def post(ctx, args):
    last = (
        ctx.db.query("msgs")
        .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
        .order("desc")
        .first()
    )
    if last is not None and last["text"] == args["text"]:
        ctx.db.delete(last["_id"])
        return None
    new = ctx.db.insert("msgs", dict(args))
    ctx.db.patch(new, {"text": args["text"].strip()})
    return new


def test_a_trace_reports_index_ranges_documents_read_and_writes():
    with Store.memory(TRACE_SCHEMA, clock=FakeClock()) as store:
        with trace(store) as t:
            first = store.mutation(post, {"thread": "t1", "text": "hi "}).unwrap()
            store.mutation(post, {"thread": "t1", "text": "hi"}).unwrap()
        one, two = t.calls
        assert (one.kind, one.path, one.committed) == ("mutation", "post", True)
        (scan,) = one.ranges
        assert (scan.table, scan.index, scan.bounds, scan.order, scan.documents) == (
            "msgs",
            "by_thread",
            (("eq", "thread", "t1"),),
            "desc",
            [],
        )
        # patch reads the document it changes
        assert one.reads == [DocumentRead("msgs", first)]
        assert one.writes == [
            DocumentWrite("insert", "msgs", first),
            DocumentWrite("patch", "msgs", first),
        ]
        assert two.ranges[0].documents == [first]
        assert two.writes == [DocumentWrite("delete", "msgs", first)]
        assert 'msgs.by_thread [eq thread "t1"] desc -> 1 document(s)' in t.report()


def test_a_rolled_back_call_is_traced_but_its_writes_are_not_counted():
    @mutation
    def write_then_fail(ctx, args):
        ctx.db.insert("msgs", {"thread": "x", "text": "y"})
        return Failure(Rejected("no"))

    with Store.memory(TRACE_SCHEMA) as store:
        with trace(store) as t:
            store.mutation(write_then_fail)
        (call,) = t.calls
        assert not call.committed
        assert [w.op for w in call.writes] == ["insert"]
        assert t.writes == []
        assert "(not committed)" in t.report()


def test_each_step_of_an_action_is_its_own_traced_transaction():
    @query(args={"thread": v.string()})
    def count(ctx, args):
        return len(
            ctx.db.query("msgs")
            .with_index("by_thread", lambda q: q.eq("thread", args["thread"]))
            .collect()
        )

    @action
    def two_posts(ctx, args):
        ctx.run_mutation(post, {"thread": "a", "text": "1"}).unwrap()
        ctx.run_mutation(post, {"thread": "a", "text": "2"}).unwrap()
        ctx.scheduler.run_after(0, post, {"thread": "a", "text": "3"})
        return ctx.run_query(count, {"thread": "a"}).unwrap()

    with Store.memory(TRACE_SCHEMA, clock=FakeClock()) as store:
        with trace(store) as t:
            assert store.action(two_posts).unwrap() == 2
            store.scheduler.run_due()
        kinds = [(c.kind, c.committed) for c in t.calls]
        assert kinds == [
            ("mutation", True),
            ("mutation", True),
            ("query", False),
            ("mutation", True),
        ]
        assert (
            t.calls[2].ranges[0].documents
            == [w.id for w in t.writes if w.op == "insert"][:2]
        )
        assert t.calls[3].path.endswith(":post")  # the scheduled job
        # scheduling from an action is a system write, not part of any call
        assert [w.op for w in t.writes].count("insert") == 3


def test_scheduling_inside_a_mutation_is_a_traced_write():
    @mutation
    def later(ctx, args):
        return ctx.scheduler.run_after(10, post, {"thread": "b", "text": "x"})

    with Store.memory(TRACE_SCHEMA, clock=FakeClock()) as store:
        with trace(store) as t:
            job = store.mutation(later).unwrap()
        assert t.writes == [DocumentWrite("schedule", "_scheduled_functions", job)]


def test_trace_stops_recording_after_the_block():
    with Store.memory(TRACE_SCHEMA) as store:
        with trace(store) as t:
            store.mutation(post, {"thread": "t", "text": "a"})
        store.mutation(post, {"thread": "t", "text": "b"})
        assert len(t.calls) == 1
        with trace(store) as again:
            store.mutation(post, {"thread": "t", "text": "c"})
        assert (len(t.calls), len(again.calls)) == (1, 1)


# ----------------------------------------------------------------- determinism


@pytest.mark.one_store_app(AGENT_APP)
def test_app_store_is_seeded_so_ids_replay(app_store):
    first = app_store.mutation("tasks:submit", {"goal": "a"}).unwrap()
    with Store.memory(app=ROOT / AGENT_APP, clock=FakeClock(), seed=0) as again:
        assert again.mutation("tasks:submit", {"goal": "a"}).unwrap() == first


def test_traces_cover_search_pagination_and_unindexed_scans():
    schema = define_schema(
        {
            "notes": define_table({"text": v.string(), "tag": v.string()})
            .index("by_tag", ["tag"])
            .search_index("search_text", search_field="text", filter_fields=["tag"])
        }
    )

    @query
    def reads(ctx, args):
        page = ctx.db.query("notes").with_index("by_tag", lambda q: q.eq("tag", "a"))
        first = page.paginate({"numItems": 2, "cursor": None})
        found = (
            ctx.db.query("notes")
            .with_search_index(
                "search_text", lambda q: q.search("text", "hello").eq("tag", "a")
            )
            .take(10)
        )
        scanned = (
            ctx.db.query("notes").filter(lambda q: q.eq(q.field("tag"), "b")).collect()
        )
        return [len(first["page"]), len(found), len(scanned)]

    with Store.memory(schema) as store:

        @mutation(args={"text": v.string()})
        def add(ctx, args):
            return ctx.db.insert("notes", {"text": args["text"], "tag": "a"})

        for i in range(3):
            store.mutation(add, {"text": f"hello {i}"}).unwrap()
        with trace(store) as t:
            assert store.query(reads).unwrap() == [2, 3, 0]
        pages, search, scan = t.calls[0].ranges
        assert (pages.index, pages.bounds, len(pages.documents)) == (
            "by_tag",
            (("eq", "tag", "a"),),
            2,
        )
        assert search.bounds == (("search", "text", "hello"), ("eq", "tag", "a"))
        assert (search.order, len(search.documents)) == ("relevance", 3)
        assert (scan.index, scan.bounds, scan.documents) == ("by_creation_time", (), [])
