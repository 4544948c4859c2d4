"""ctx.scheduler and store.scheduler, against Convex's scheduling semantics (docs.convex.dev/scheduling/scheduled-functions)."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure

from one_store import (
    ArgsInvalid,
    ContextError,
    ConvexError,
    FunctionNotFound,
    InvalidId,
    LimitExceeded,
    Rejected,
    Store,
    action,
    define_schema,
    define_table,
    internal_mutation,
    mutation,
    query,
    v,
)
from one_store.testing import FakeClock, inject_faults, scheduled_jobs

SCHEMA = define_schema(
    {
        "log": define_table({"step": v.string(), "at": v.number()}),
        "other": define_table(),
    }
)
START = 1_700_000_000_000.0


@internal_mutation(args={"step": v.string()})
def log(ctx, args):
    if args["step"] == "reject":
        raise ConvexError("rejected on purpose")
    if args["step"] == "crash":
        raise ValueError("boom")
    ctx.db.insert("log", {"step": args["step"], "at": ctx.now()})


@mutation(args={"delay": v.number(), "step": v.string()})
def schedule_log(ctx, args):
    return ctx.scheduler.run_after(args["delay"], log, {"step": args["step"]})


@query
def steps(ctx, args):
    return [(d["step"], d["at"]) for d in ctx.db.query("log").collect()]


@query
def system_jobs(ctx, args):
    return ctx.db.system.query("_scheduled_functions").collect()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def store(clock: FakeClock):
    with Store.memory(SCHEMA, clock=clock, seed=7) as s:
        yield s


def logged(store: Store) -> list[tuple[str, float]]:
    return [(step, at) for step, at in store.query(steps).unwrap()]


# ----------------------------------------------------------------- scheduling


def test_job_document_has_convexs_shape_and_is_readable_from_queries(store):
    job_id = store.mutation(schedule_log, {"delay": 5_000, "step": "a"}).unwrap()
    (job,) = store.query(system_jobs).unwrap()
    assert job["_id"] == job_id
    assert job["name"].endswith(":log")
    assert job["args"] == [{"step": "a"}]
    assert job["scheduledTime"] == START + 5_000
    assert job["state"] == {"kind": "pending"}
    assert "completedTime" not in job
    assert isinstance(job["_creationTime"], float)


def test_user_tables_cannot_be_read_through_db_system_nor_system_tables_through_db(
    store,
):
    store.mutation(schedule_log, {"delay": 0, "step": "a"}).unwrap()
    with pytest.raises(ContextError, match=r"db\.system"):
        store.run(lambda ctx: ctx.db.system.query("log").collect())
    with pytest.raises(ContextError, match="System tables"):
        store.run(lambda ctx: ctx.db.query("_scheduled_functions").collect())


def test_a_rolled_back_mutation_schedules_nothing(store):
    def schedule_then_fail(ctx):
        ctx.scheduler.run_after(0, log, {"step": "never"})
        raise ConvexError("changed my mind")

    def schedule_then_return_failure(ctx):
        ctx.scheduler.run_after(0, log, {"step": "never"})
        return Failure(Rejected("no"))

    assert store.run(schedule_then_fail).failure() == Rejected("changed my mind")
    assert store.run(schedule_then_return_failure).failure() == Rejected("no")
    assert store.scheduler.jobs() == []
    assert store.scheduler.run_due() == 0
    assert logged(store) == []


def test_jobs_wait_for_their_time_and_run_in_time_order_with_now_frozen_at_due_time(
    store, clock
):
    store.mutation(schedule_log, {"delay": 3_000, "step": "third"}).unwrap()
    store.mutation(schedule_log, {"delay": 1_000, "step": "first"}).unwrap()
    store.mutation(schedule_log, {"delay": 2_000, "step": "second"}).unwrap()
    assert store.scheduler.run_due() == 0
    assert store.scheduler.advance(999) == 0
    assert logged(store) == []
    assert store.scheduler.advance(1_501) == 2
    assert logged(store) == [("first", START + 1_000), ("second", START + 2_000)]
    assert clock() == START + 2_500
    assert store.scheduler.advance(10_000) == 1
    assert logged(store)[-1] == ("third", START + 3_000)
    assert clock() == START + 12_500
    states = {j["args"][0]["step"]: j for j in store.scheduler.jobs()}
    assert states["third"]["state"] == {"kind": "success"}
    assert states["third"]["completedTime"] == START + 3_000


def test_run_after_zero_runs_after_commit_in_scheduling_order(store):
    def three(ctx):
        for step in ("a", "b", "c"):
            ctx.scheduler.run_after(0, log, {"step": step})
        # Not run inside this mutation: nothing logged yet.
        assert ctx.db.query("log").collect() == []

    store.run(three).unwrap()
    assert store.scheduler.run_due() == 3
    assert [s for s, _ in logged(store)] == ["a", "b", "c"]


def test_run_at_a_past_time_runs_at_once(store):
    store.run(lambda ctx: ctx.scheduler.run_at(START - 60_000, log, {"step": "late"}))
    assert store.scheduler.run_due() == 1
    assert logged(store) == [("late", START)]


def test_run_at_and_run_after_more_than_five_years_away_are_rejected(store):
    year = 366 * 24 * 3600 * 1000
    far_past = store.run(
        lambda ctx: ctx.scheduler.run_at(START - 6 * year, log, {"step": "x"})
    )
    far_future = store.run(
        lambda ctx: ctx.scheduler.run_after(6 * year, log, {"step": "x"})
    )
    for result in (far_past, far_future):
        assert isinstance(result.failure(), ArgsInvalid)
        assert "5 years" in result.failure().message
    assert store.scheduler.jobs() == []


@pytest.mark.parametrize("delay", [-1, -0.5, math.nan, math.inf, True, "10", None])
def test_bad_delays_are_args_invalid_naming_delay_ms(store, delay):
    result = store.run(lambda ctx: ctx.scheduler.run_after(delay, log, {"step": "x"}))
    problem = result.failure()
    assert isinstance(problem, ArgsInvalid)
    assert problem.path == "delayMs"
    assert "non-negative finite" in problem.message
    assert store.scheduler.jobs() == []


@pytest.mark.parametrize("when", [math.nan, -math.inf, "soon", None])
def test_bad_timestamps_are_args_invalid(store, when):
    problem = store.run(
        lambda ctx: ctx.scheduler.run_at(when, log, {"step": "x"})
    ).failure()
    assert isinstance(problem, ArgsInvalid)
    assert problem.path == "timestamp"


def test_unknown_path_is_function_not_found_and_nothing_is_scheduled(store):
    problem = store.run(
        lambda ctx: ctx.scheduler.run_after(0, "nope:missing", {})
    ).failure()
    assert isinstance(problem, FunctionNotFound)
    assert problem.path == "nope:missing"
    assert store.scheduler.jobs() == []


def test_scheduling_a_query_is_rejected(store):
    problem = store.run(lambda ctx: ctx.scheduler.run_after(0, steps, {})).failure()
    assert isinstance(problem, ArgsInvalid)
    assert "Only mutations and actions" in problem.message


def test_args_are_validated_when_scheduled(store):
    problem = store.run(
        lambda ctx: ctx.scheduler.run_after(0, log, {"step": 3})
    ).failure()
    assert isinstance(problem, ArgsInvalid)
    assert problem.path == ".step"
    extra = store.run(
        lambda ctx: ctx.scheduler.run_after(0, log, {"step": "a", "x": 1})
    )
    assert isinstance(extra.failure(), ArgsInvalid)
    not_a_dict = store.run(lambda ctx: ctx.scheduler.run_after(0, log, ["a"]))
    assert isinstance(not_a_dict.failure(), ArgsInvalid)
    assert store.scheduler.jobs() == []


def test_scheduling_something_that_is_not_a_function_is_misuse(store):
    with pytest.raises(ContextError, match="Only functions"):
        store.run(lambda ctx: ctx.scheduler.run_after(0, print, {}))


def test_more_than_1000_jobs_from_one_mutation_is_limit_exceeded(store):
    def many(ctx):
        for _ in range(1001):
            ctx.scheduler.run_after(0, log, {"step": "x"})

    problem = store.run(many).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "functionsScheduled"
    assert store.scheduler.jobs() == []


def test_queries_have_no_scheduler(store):
    @query
    def sneaky(ctx, args):
        return ctx.scheduler.run_after(0, log, {"step": "x"})

    with pytest.raises(ContextError, match="not available in a query"):
        store.query(sneaky)


# ----------------------------------------------------------------- failures inside jobs


def test_a_raising_job_is_failed_with_the_error_text_and_later_jobs_still_run(store):
    for step in ("crash", "reject", "fine"):
        store.mutation(schedule_log, {"delay": 0, "step": step}).unwrap()
    assert store.scheduler.run_due() == 3
    by_step = {j["args"][0]["step"]: j["state"] for j in store.scheduler.jobs()}
    crash = by_step["crash"]
    assert set(crash) == {"kind", "error"}  # Convex's shape: kind and error only
    assert crash["kind"] == "failed"
    # Convex's error text is the message, then the stack: here Python's traceback.
    first, second, *_ = crash["error"].splitlines()
    assert first == "Uncaught ValueError: boom"
    assert second == "Traceback (most recent call last):"
    assert crash["error"].endswith("ValueError: boom")
    assert by_step["reject"] == {"kind": "failed", "error": "rejected on purpose"}
    assert by_step["fine"] == {"kind": "success"}
    assert [s for s, _ in logged(store)] == ["fine"]


def test_a_job_that_misuses_the_library_fails_alone_and_its_writes_roll_back(store):
    @internal_mutation
    def misuse(ctx, args):
        ctx.db.insert("log", {"step": "half", "at": 0.0})
        ctx.db.insert("_scheduled_functions", {})  # system tables are read-only

    store.run(lambda ctx: ctx.scheduler.run_after(0, misuse, {}))
    store.mutation(schedule_log, {"delay": 0, "step": "after"}).unwrap()
    assert store.scheduler.run_due() == 2
    (failed,) = scheduled_jobs(store, state="failed")
    assert failed["state"]["error"].startswith("ContextError: System tables")
    assert [s for s, _ in logged(store)] == ["after"]


def test_a_job_whose_function_disappeared_is_failed(tmp_path: Path, clock):
    app = tmp_path / "app"
    app.mkdir()
    (app / "schema.py").write_text(
        "from one_store import define_schema, define_table\n"
        "schema = define_schema({'t': define_table()})\n"
    )
    (app / "jobs.py").write_text(
        "from one_store import internal_mutation\n"
        "@internal_mutation\n"
        "def gone(ctx, args):\n"
        "    ctx.db.insert('t', {})\n"
    )
    path = tmp_path / "db.sqlite"
    with Store.open(path, app=app, clock=clock) as store:
        store.run(lambda ctx: ctx.scheduler.run_after(0, "jobs:gone", {})).unwrap()
    (app / "jobs.py").write_text("")
    with Store.open(path, app=app, clock=clock) as store:
        assert store.scheduler.run_due() == 1
        (job,) = store.scheduler.jobs()
        assert job["state"] == {
            "kind": "failed",
            "error": "Could not find function jobs:gone",
        }


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (a failing handler's line)."""
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    (number,) = [n for n, text in enumerate(lines, 1) if text.endswith(marker)]
    return number


@internal_mutation
def read_missing(ctx, args):
    first = ctx.db.query("log").first()
    return first["step"]  # fails: scheduled mutation


@query
def first_step(ctx, args):
    return ctx.db.query("log").first()


@action
def read_missing_in_action(ctx, args):
    first = ctx.run_query(first_step).unwrap()
    return first["step"]  # fails: scheduled action


def job_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("one_store")]


@pytest.mark.parametrize(
    ("fn", "marker"),
    [
        (read_missing, "# fails: scheduled mutation"),
        (read_missing_in_action, "# fails: scheduled action"),
    ],
    ids=["mutation", "action"],
)
def test_a_failing_job_keeps_its_traceback_in_its_error_and_in_the_log(
    store, caplog, fn, marker
):
    caplog.set_level(logging.ERROR, logger="one_store")
    job_id = store.run(lambda ctx: ctx.scheduler.run_after(0, fn, {})).unwrap()
    assert store.scheduler.run_due() == 1
    (job,) = store.scheduler.jobs()
    state = job["state"]
    assert set(state) == {"kind", "error"}
    assert state["kind"] == "failed"
    message = "Uncaught TypeError: 'NoneType' object is not subscriptable"
    assert state["error"].splitlines()[0] == message
    where = f'File "{__file__}", line {line_of(marker)}, in {fn.handler.__name__}'
    assert where in state["error"]
    # The log has it too, at the time the job fails: job id, name and traceback.
    (record,) = job_log(caplog)
    assert record.levelno == logging.ERROR
    assert record.name == "one_store.scheduler"
    assert job_id in record.getMessage()
    assert job["name"] in record.getMessage()
    assert message in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TypeError)
    assert where in caplog.text


def test_a_job_failing_without_an_exception_is_logged_with_its_message_only(
    store, caplog
):
    caplog.set_level(logging.ERROR, logger="one_store")
    store.mutation(schedule_log, {"delay": 0, "step": "reject"}).unwrap()
    store.mutation(schedule_log, {"delay": 0, "step": "fine"}).unwrap()
    assert store.scheduler.run_due() == 2
    (record,) = job_log(caplog)
    assert "rejected on purpose" in record.getMessage()
    assert record.exc_info is None


def test_a_misused_library_in_a_job_keeps_the_misuses_traceback(store, caplog):
    caplog.set_level(logging.ERROR, logger="one_store")

    @internal_mutation
    def write_system_table(ctx, args):
        ctx.db.insert("_scheduled_functions", {})  # fails: misuse

    store.run(lambda ctx: ctx.scheduler.run_after(0, write_system_table, {}))
    store.scheduler.run_due()
    (job,) = store.scheduler.jobs()
    where = f"line {line_of('# fails: misuse')}, in write_system_table"
    assert job["state"]["error"].startswith("ContextError: System tables")
    assert where in job["state"]["error"]
    (record,) = job_log(caplog)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ContextError)


def test_a_huge_error_text_is_cut_to_convexs_64_kib_keeping_both_ends(store):
    @internal_mutation
    def shout(ctx, args):
        raise ValueError("x" * 200_000 + " the end")

    store.run(lambda ctx: ctx.scheduler.run_after(0, shout, {}))
    store.scheduler.run_due()
    (job,) = store.scheduler.jobs()
    error = job["state"]["error"]
    assert len(error.encode()) <= 1 << 16
    assert error.startswith("Uncaught ValueError: xxx")
    assert error.endswith("the end")


# ----------------------------------------------------------------- cancel


def test_cancel_stops_a_pending_job(store, clock):
    job_id = store.mutation(schedule_log, {"delay": 1_000, "step": "x"}).unwrap()
    store.run(lambda ctx: ctx.scheduler.cancel(job_id)).unwrap()
    assert store.scheduler.advance(5_000) == 0
    (job,) = store.scheduler.jobs()
    assert job["state"] == {"kind": "canceled"}
    assert job["completedTime"] == START
    assert logged(store) == []


def test_cancel_of_a_finished_job_is_a_no_op_as_in_convexs_backend(store):
    job_id = store.mutation(schedule_log, {"delay": 0, "step": "x"}).unwrap()
    store.scheduler.run_due()
    assert store.run(lambda ctx: ctx.scheduler.cancel(job_id)).unwrap() is None
    assert store.scheduler.jobs()[0]["state"] == {"kind": "success"}


def test_cancel_inside_a_rolled_back_mutation_is_undone(store):
    job_id = store.mutation(schedule_log, {"delay": 0, "step": "x"}).unwrap()

    def cancel_then_fail(ctx):
        ctx.scheduler.cancel(job_id)
        raise ConvexError("no")

    assert isinstance(store.run(cancel_then_fail).failure(), Rejected)
    assert store.scheduler.run_due() == 1


def test_cancel_of_a_bad_id_is_invalid_id(store):
    doc_id = store.run(lambda ctx: ctx.db.insert("other", {})).unwrap()
    for bad in ("garbage", doc_id, 42):
        problem = store.run(lambda ctx, bad=bad: ctx.scheduler.cancel(bad)).failure()
        assert isinstance(problem, InvalidId), bad


def test_a_scheduled_mutation_cannot_cancel_itself(store):
    @internal_mutation
    def self_cancel(ctx, args):
        (me,) = ctx.db.system.query("_scheduled_functions").collect()
        ctx.scheduler.cancel(me["_id"])

    store.run(lambda ctx: ctx.scheduler.run_after(0, self_cancel, {}))
    store.scheduler.run_due()
    (job,) = store.scheduler.jobs()
    assert job["state"]["kind"] == "failed"
    first = job["state"]["error"].splitlines()[0]
    assert first == "ContextError: A mutation cannot cancel itself"


# ----------------------------------------------------------------- actions as jobs


@internal_mutation(args={"note": v.string()})
def note(ctx, args):
    ctx.db.insert("log", {"step": args["note"], "at": ctx.now()})


@action(args={"fail": v.boolean()})
def job_action(ctx, args):
    jobs = ctx.run_query(system_jobs).unwrap()
    ctx.run_mutation(
        note, {"note": "state while running: " + jobs[0]["state"]["kind"]}
    ).unwrap()
    if args["fail"]:
        raise ConvexError("action gave up")
    return "ok"


def test_an_action_job_is_in_progress_while_it_runs_then_success(store):
    store.run(lambda ctx: ctx.scheduler.run_after(0, job_action, {"fail": False}))
    assert store.scheduler.run_due() == 1
    assert [s for s, _ in logged(store)] == ["state while running: inProgress"]
    assert store.scheduler.jobs()[0]["state"] == {"kind": "success"}


def test_a_failing_action_job_is_failed_and_keeps_its_committed_steps(store):
    store.run(lambda ctx: ctx.scheduler.run_after(0, job_action, {"fail": True}))
    store.scheduler.run_due()
    assert store.scheduler.jobs()[0]["state"] == {
        "kind": "failed",
        "error": "action gave up",
    }
    assert len(logged(store)) == 1


def test_scheduling_from_an_action_commits_at_once_even_if_the_action_then_fails(store):
    @action
    def schedule_and_fail(ctx, args):
        ctx.scheduler.run_after(0, log, {"step": "from action"})
        raise ConvexError("failed after scheduling")

    assert store.action(schedule_and_fail).failure() == Rejected(
        "failed after scheduling"
    )
    assert store.scheduler.run_due() == 1
    assert [s for s, _ in logged(store)] == ["from action"]


def test_bad_scheduling_inside_an_action_fails_the_action_with_that_problem(store):
    @action
    def bad(ctx, args):
        ctx.scheduler.run_after(-5, log, {"step": "x"})

    problem = store.action(bad).failure()
    assert isinstance(problem, ArgsInvalid)
    assert problem.path == "delayMs"


def test_scheduled_functions_run_without_the_schedulers_identity(store):
    @internal_mutation
    def who(ctx, args):
        identity = ctx.auth.get_user_identity()
        ctx.db.insert("log", {"step": repr(identity), "at": ctx.now()})

    user = store.with_identity({"subject": "ada"})
    user.run(lambda ctx: ctx.scheduler.run_after(0, who, {})).unwrap()
    user.scheduler.run_due()
    assert [s for s, _ in logged(store)] == ["None"]


# ----------------------------------------------------------------- bounds and clocks


def test_run_due_stops_a_job_that_reschedules_itself_for_now(store):
    @internal_mutation
    def forever(ctx, args):
        ctx.scheduler.run_after(0, forever, {})

    store.run(lambda ctx: ctx.scheduler.run_after(0, forever, {}))
    with pytest.raises(ContextError, match="keeps rescheduling"):
        store.scheduler.run_due(max_jobs=50)


def test_run_all_stops_a_job_that_keeps_rescheduling_itself(store):
    @internal_mutation
    def tick(ctx, args):
        ctx.scheduler.run_after(1_000, tick, {})

    store.run(lambda ctx: ctx.scheduler.run_after(0, tick, {}))
    with pytest.raises(ContextError, match="run_all"):
        store.scheduler.run_all(max_jobs=25)
    assert len(scheduled_jobs(store, state="success")) == 25


def test_run_all_runs_chains_of_jobs_until_none_is_left(store, clock):
    @internal_mutation(args={"n": v.int64()})
    def countdown(ctx, args):
        ctx.db.insert("log", {"step": str(args["n"]), "at": ctx.now()})
        if args["n"] > 0:
            ctx.scheduler.run_after(60_000, countdown, {"n": args["n"] - 1})

    store.run(lambda ctx: ctx.scheduler.run_after(0, countdown, {"n": 3}))
    assert store.scheduler.run_all() == 4
    assert logged(store) == [(str(3 - i), START + i * 60_000) for i in range(4)]
    assert clock() == START + 180_000
    assert store.scheduler.run_all() == 0


def test_advance_needs_a_fake_clock():
    with Store.memory(SCHEMA) as store, pytest.raises(ContextError, match="FakeClock"):
        store.scheduler.advance(10)


@pytest.mark.parametrize("ms", [-1, math.nan, "1"])
def test_advance_rejects_bad_amounts(store, ms):
    with pytest.raises(ContextError, match="non-negative"):
        store.scheduler.advance(ms)


def test_same_seed_and_clock_replay_identically():
    @mutation
    def roll(ctx, args):
        ctx.scheduler.run_after(ctx.random.randint(1, 10_000), log, {"step": "r"})
        return ctx.db.insert("log", {"step": str(ctx.random.random()), "at": ctx.now()})

    def run_once():
        with Store.memory(SCHEMA, clock=FakeClock(START), seed=42) as s:
            ids = [s.mutation(roll).unwrap() for _ in range(3)]
            s.scheduler.run_all()
            return ids, logged(s), s.scheduler.jobs()

    assert run_once() == run_once()


# ----------------------------------------------------------------- faults


def test_a_scheduled_mutation_that_hits_busy_stays_pending_then_runs_once(store):
    store.mutation(schedule_log, {"delay": 0, "step": "x"}).unwrap()
    faults = inject_faults(store, busy=2)
    assert store.scheduler.run_due() == 0
    assert scheduled_jobs(store, state="pending")
    assert store.scheduler.run_due() == 0
    assert store.scheduler.run_due() == 1
    assert faults.remaining == 0
    assert len(faults.hits) == 2
    assert [s for s, _ in logged(store)] == ["x"]
    assert store.scheduler.run_due() == 0


# ----------------------------------------------------------------- concurrency


def test_two_stores_on_one_file_with_threads_run_each_job_exactly_once(tmp_path: Path):
    path = tmp_path / "jobs.db"
    with Store.open(path, schema=SCHEMA) as setup:
        for i in range(60):
            setup.mutation(schedule_log, {"delay": 0, "step": f"job{i}"}).unwrap()
    stores = [Store.open(path, schema=SCHEMA) for _ in range(2)]
    try:
        # Neither store scheduled `log` itself: each finds it in this imported module.
        errors: list[BaseException] = []

        def work(s: Store) -> None:
            try:
                s.scheduler.run_due(max_jobs=None)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        steps_run = sorted(s for s, _ in stores[0].query(steps).unwrap())
        assert steps_run == sorted(f"job{i}" for i in range(60))
        assert all(
            j["state"] == {"kind": "success"} for j in stores[0].scheduler.jobs()
        )
    finally:
        for s in stores:
            s.close()


def is_running(store: Store) -> bool:
    return store.scheduler.running


def test_the_background_worker_runs_jobs_and_survives_failing_ones(tmp_path: Path):
    with Store.open(tmp_path / "w.db", schema=SCHEMA) as store:
        store.scheduler.start(poll_interval=0.05)
        try:
            assert is_running(store)
            store.mutation(schedule_log, {"delay": 0, "step": "crash"}).unwrap()
            store.mutation(schedule_log, {"delay": 0, "step": "fine"}).unwrap()
            deadline = time.monotonic() + 30
            while (
                scheduled_jobs(store, state="pending") and time.monotonic() < deadline
            ):
                time.sleep(0.02)
        finally:
            store.scheduler.stop()
        assert not is_running(store)
        states = [j["state"]["kind"] for j in store.scheduler.jobs()]
        assert states == ["failed", "success"]
        assert [s for s, _ in store.query(steps).unwrap()] == ["fine"]


def test_jobs_listing_helper_filters_by_state_and_name(store):
    store.mutation(schedule_log, {"delay": 0, "step": "crash"}).unwrap()
    store.mutation(schedule_log, {"delay": 10, "step": "later"}).unwrap()
    store.scheduler.run_due()
    assert len(scheduled_jobs(store)) == 2
    assert [j["args"][0]["step"] for j in scheduled_jobs(store, state="failed")] == [
        "crash"
    ]
    assert [j["args"][0]["step"] for j in scheduled_jobs(store, state="pending")] == [
        "later"
    ]
    name = scheduled_jobs(store)[0]["name"]
    assert len(scheduled_jobs(store, name=name)) == 2
    assert scheduled_jobs(store, name="x:y") == []


def test_run_at_takes_an_aware_datetime_like_convexs_date(store):
    import datetime as dt

    when = dt.datetime.fromtimestamp((START + 90_000) / 1000, dt.UTC)
    store.run(lambda ctx: ctx.scheduler.run_at(when, log, {"step": "dated"})).unwrap()
    assert store.scheduler.jobs()[0]["scheduledTime"] == START + 90_000
    naive = dt.datetime(2024, 1, 1)
    problem = store.run(
        lambda ctx: ctx.scheduler.run_at(naive, log, {"step": "x"})
    ).failure()
    assert isinstance(problem, ArgsInvalid)
    assert "timezone-aware" in problem.message


def test_a_failed_sub_mutation_takes_its_scheduled_jobs_with_it(store):
    @internal_mutation
    def schedule_and_fail(ctx, args):
        ctx.scheduler.run_after(0, log, {"step": "from the failed sub-mutation"})
        raise ConvexError("sub failed")

    @mutation
    def outer(ctx, args):
        assert ctx.run_mutation(schedule_and_fail).failure() == Rejected("sub failed")
        ctx.scheduler.run_after(0, log, {"step": "from the outer mutation"})

    store.mutation(outer).unwrap()
    assert store.scheduler.run_due() == 1
    assert [s for s, _ in logged(store)] == ["from the outer mutation"]


def test_a_running_action_that_is_canceled_stays_canceled(store):
    @action
    def cancel_myself(ctx, args):
        (me,) = ctx.run_query(system_jobs).unwrap()
        ctx.scheduler.cancel(me["_id"])  # an action may; it keeps running, as Convex
        ctx.run_mutation(note, {"note": "still ran"}).unwrap()

    store.run(lambda ctx: ctx.scheduler.run_after(0, cancel_myself, {}))
    store.scheduler.run_due()
    (job,) = store.scheduler.jobs()
    assert job["state"] == {"kind": "canceled"}
    assert [s for s, _ in logged(store)] == ["still ran"]


def test_what_a_canceled_running_action_schedules_is_canceled(store, clock):
    @action
    def cancel_myself_then_schedule(ctx, args):
        (me,) = ctx.run_query(system_jobs).unwrap()
        ctx.scheduler.run_after(0, log, {"step": "before the cancel"})
        ctx.scheduler.cancel(me["_id"])
        return ctx.scheduler.run_after(0, log, {"step": "after the cancel"})

    store.run(lambda ctx: ctx.scheduler.run_after(0, cancel_myself_then_schedule, {}))
    store.scheduler.run_due()
    clock.advance(1)
    store.scheduler.run_due()
    states = {
        (j["name"].split(":")[-1], j["args"][0].get("step")): j["state"]["kind"]
        for j in store.scheduler.jobs()
    }
    assert states == {
        ("cancel_myself_then_schedule", None): "canceled",
        ("log", "before the cancel"): "success",
        ("log", "after the cancel"): "canceled",
    }
    assert [s for s, _ in logged(store)] == ["before the cancel"]


def test_an_action_run_directly_schedules_normally(store):
    @action
    def schedule_one(ctx, args):
        return ctx.scheduler.run_after(0, log, {"step": "direct"})

    store.action(schedule_one).unwrap()
    store.scheduler.run_due()
    assert [s for s, _ in logged(store)] == ["direct"]


def test_a_job_misusing_the_library_after_creating_a_table_leaves_no_table(store):
    @internal_mutation
    def create_then_misuse(ctx, args):
        ctx.db.insert("brand_new", {"x": 1})
        ctx.db.insert("_scheduled_functions", {})

    @mutation
    def use_brand_new(ctx, args):
        return ctx.db.insert("brand_new", {"x": 2})

    store.run(lambda ctx: ctx.scheduler.run_after(0, create_then_misuse, {}))
    store.scheduler.run_due()
    assert scheduled_jobs(store, state="failed")
    assert store.mutation(use_brand_new).unwrap()


def test_more_than_16_mib_of_scheduled_args_in_one_call_is_limit_exceeded(store):
    big = "x" * (9 * 1024 * 1024)

    def schedule_twice(ctx):
        ctx.scheduler.run_after(0, log, {"step": big})
        ctx.scheduler.run_after(0, log, {"step": big})

    problem = store.run(schedule_twice).failure()
    assert isinstance(problem, LimitExceeded)
    assert problem.limit == "scheduledFunctionArgsBytes"
    assert store.scheduler.jobs() == []
    store.run(lambda ctx: ctx.scheduler.run_after(0, log, {"step": big})).unwrap()


@given(
    delays=st.lists(st.integers(0, 10_000), min_size=1, max_size=15),
    steps=st.lists(st.integers(0, 4_000), min_size=1, max_size=8),
)
def test_advance_runs_every_job_once_in_time_order_at_its_time(delays, steps):
    with Store.memory(SCHEMA, clock=FakeClock(START), seed=0) as s:
        for i, delay in enumerate(delays):
            s.mutation(schedule_log, {"delay": delay, "step": str(i)}).unwrap()
        for step_ms in steps:
            s.scheduler.advance(step_ms)
        s.scheduler.run_all()
        ran = logged(s)
    expected = sorted(
        ((START + d, i) for i, d in enumerate(delays)),  # ties: in scheduling order
    )
    assert ran == [(str(i), at) for at, i in expected]


def test_a_job_scheduled_by_object_runs_in_another_store_of_the_process(tmp_path: Path):
    path = tmp_path / "objects.db"
    with Store.open(path, schema=SCHEMA, clock=FakeClock(START)) as first:
        first.mutation(schedule_log, {"delay": 0, "step": "handed over"}).unwrap()
    with Store.open(path, schema=SCHEMA, clock=FakeClock(START)) as second:
        assert second.scheduler.run_due() == 1
        assert logged(second) == [("handed over", START)]
