"""Actions compose mutations, each its own transaction; scheduled jobs run once across processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from returns.result import Failure, Success

from one_store import (
    ArgsInvalid,
    ContextError,
    ConvexError,
    DocumentInvalid,
    FunctionNotFound,
    HandlerError,
    Rejected,
    ReturnsInvalid,
    Store,
    action,
    define_schema,
    define_table,
    internal_action,
    mutation,
    query,
    v,
)
from one_store.testing import FakeClock, scheduled_jobs

APPS = Path(__file__).resolve().parent / "apps"

SCHEMA = define_schema(
    {"steps": define_table({"n": v.int64(), "at": v.number()}).index("by_n", ["n"])}
)


@mutation(args={"n": v.int64(), "how": v.string()})
def step(ctx, args):
    """Write step n, or fail in the way `how` says (before or after writing)."""
    ctx.db.insert("steps", {"n": args["n"], "at": ctx.now()})
    match args["how"]:
        case "ok":
            return args["n"]
        case "convex_error":
            raise ConvexError({"step": args["n"], "reason": "refused"})
        case "failure":
            return Failure(Rejected(f"step {args['n']} said no"))
        case "exception":
            raise KeyError("missing thing")
        case "bad_document":
            ctx.db.insert("steps", {"n": "not an int", "at": 0})
    return None


@query
def written(ctx, args):
    return [d["n"] for d in ctx.db.query("steps").collect()]


@action(args={"plan": v.array(v.string())})
def run_plan(ctx, args):
    """The composition under test: one run_mutation per step, each unwrapped."""
    done = []
    for n, how in enumerate(args["plan"], start=1):
        done.append(ctx.run_mutation(step, {"n": n, "how": how}).unwrap())
    return done


@pytest.fixture
def store():
    with Store.memory(SCHEMA, clock=FakeClock(), seed=3) as s:
        yield s


# ----------------------------------------------------------------- composition


@pytest.mark.parametrize(
    "how", ["convex_error", "failure", "exception", "bad_document"]
)
def test_second_of_three_mutations_fails_first_stays_third_never_runs(store, how):
    # What the 2nd step fails with when called on its own (in a throwaway store).
    with Store.memory(SCHEMA, clock=FakeClock()) as alone:
        expected = alone.mutation(step, {"n": 2, "how": how}).failure()
        assert alone.query(written).unwrap() == []  # the failing step rolled back

    result = store.action(run_plan, {"plan": ["ok", how, "ok"]})

    assert isinstance(result, Failure)
    assert result.failure() == expected  # the 2nd's own Problem, not a generic error
    assert store.query(written).unwrap() == [
        1
    ]  # 1st committed; 2nd rolled back; 3rd never ran


def test_the_problem_kinds_carried_through_an_action(store):
    problems = {
        how: store.action(run_plan, {"plan": [how]}).failure()
        for how in ("convex_error", "failure", "exception", "bad_document")
    }
    assert problems["convex_error"] == Rejected({"step": 1, "reason": "refused"})
    assert problems["failure"] == Rejected("step 1 said no")
    assert isinstance(problems["exception"], HandlerError)
    assert isinstance(problems["exception"].exception, KeyError)
    assert isinstance(problems["bad_document"], DocumentInvalid)
    assert problems["bad_document"].path == ".n"


def test_all_steps_succeeding_returns_every_result(store):
    assert store.action(run_plan, {"plan": ["ok", "ok", "ok"]}).unwrap() == [1, 2, 3]
    assert store.query(written).unwrap() == [1, 2, 3]


def test_an_action_may_handle_a_failed_step_and_go_on(store):
    @action
    def tolerant(ctx, args):
        outcomes = [
            ctx.run_mutation(step, {"n": n, "how": how})
            for n, how in ((1, "ok"), (2, "failure"), (3, "ok"))
        ]
        return [
            o.failure().code if isinstance(o, Failure) else o.unwrap() for o in outcomes
        ]

    assert store.action(tolerant).unwrap() == [1, "Rejected", 3]
    assert store.query(written).unwrap() == [1, 3]


def test_each_step_gets_its_own_time(store):
    clock: FakeClock = store.clock

    @action
    def slow(ctx, args):
        started = ctx.now()
        ctx.run_mutation(step, {"n": 1, "how": "ok"}).unwrap()
        clock.advance(5_000)  # the action waited on something
        ctx.run_mutation(step, {"n": 2, "how": "ok"}).unwrap()
        return [started, ctx.now()]

    started, still = store.action(slow).unwrap()
    assert started == still  # ctx.now() is frozen for the action itself
    times = [d["at"] for d in store.documents("steps")]
    assert times == [started, started + 5_000]


# ----------------------------------------------------------------- the action context


def test_ctx_db_in_an_action_is_misuse_and_raises(store):
    @action
    def direct(ctx, args):
        return ctx.db.query("steps").collect()

    with pytest.raises(ContextError, match=r"ctx\.db is not available in an action"):
        store.action(direct)


def test_running_a_function_of_the_wrong_kind_is_misuse(store):
    @action
    def confused(ctx, args):
        return ctx.run_mutation(written)

    with pytest.raises(ContextError, match="is a query"):
        store.action(confused)


def test_action_args_and_return_values_are_checked(store):
    assert isinstance(store.action(run_plan, {"plan": "ok"}).failure(), ArgsInvalid)

    @action(returns=v.string())
    def wrong_return(ctx, args):
        return 3

    @action
    def not_a_value(ctx, args):
        return {1, 2}

    assert isinstance(store.action(wrong_return).failure(), ReturnsInvalid)
    assert isinstance(store.action(not_a_value).failure(), ReturnsInvalid)


@pytest.mark.one_store_app(str(APPS / "agent_app"))
def test_actions_call_by_path_and_unknown_paths_are_function_not_found(app_store):
    @action
    def by_path(ctx, args):
        first = ctx.run_mutation("tasks:bump", {"name": "n"}).unwrap()
        nested = ctx.run_action("agent:bump_async", {"name": "n"}).unwrap()
        seen = ctx.run_query("tasks:counter", {"name": "n"}).unwrap()
        missing = ctx.run_query("tasks:nope", {})
        return [first, nested, seen, missing.failure().code]

    assert app_store.action(by_path).unwrap() == [1, 2, 2, "FunctionNotFound"]

    @action
    def unwrap_missing(ctx, args):
        return ctx.run_mutation("nowhere:fn", {}).unwrap()

    problem = app_store.action(unwrap_missing).failure()
    assert isinstance(problem, FunctionNotFound)
    assert problem.path == "nowhere:fn"


@pytest.mark.one_store_app(str(APPS / "agent_app"))
def test_internal_actions_are_found_by_path_from_the_store(app_store):
    # agent:work is internal; the store (the server side) may still call it by path.
    assert app_store.function("agent:work").unwrap().visibility == "internal"


# ----------------------------------------------------------------- async actions


@action(args={"n": v.int64()})
async def async_steps(ctx, args):
    await asyncio.sleep(0)
    results = []
    for n in range(1, args["n"] + 1):
        results.append(ctx.run_mutation(step, {"n": n, "how": "ok"}).unwrap())
        await asyncio.sleep(0)
    return results


@action
async def async_fails(ctx, args):
    await asyncio.sleep(0)
    raise RuntimeError("async trouble")


def test_async_actions_run_from_plain_calls(store):
    assert store.action(async_steps, {"n": 3}).unwrap() == [1, 2, 3]
    problem = store.action(async_fails).failure()
    assert isinstance(problem, HandlerError)
    assert problem.message == "Uncaught RuntimeError: async trouble"


def test_action_async_serves_async_callers(store):
    async def main() -> list[Any]:
        first = await store.action_async(async_steps, {"n": 2})
        second = await store.action_async(
            run_plan, {"plan": ["ok"]}
        )  # a sync action too
        failed = await store.action_async(async_fails)
        return [first, second, failed.failure().code]

    assert asyncio.run(main()) == [Success([1, 2]), Success([1]), "HandlerError"]


def test_a_plain_call_works_inside_a_running_event_loop(store):
    async def main() -> Any:
        return store.action(async_steps, {"n": 1})  # e.g. from a notebook cell

    assert asyncio.run(main()).unwrap() == [1]


# ----------------------------------------------------------------- outbound HTTP


def test_outbound_http_goes_through_the_injected_client():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/broken":
            return httpx.Response(503, text="down")
        return httpx.Response(200, json={"temp": 21.5})

    @action(args={"path": v.string()})
    def fetch(ctx, args):
        response = ctx.http.get(
            f"https://weather.example{args['path']}", params={"city": "Oslo"}
        )
        if response.status_code != 200:
            raise ConvexError({"status": response.status_code})
        ctx.run_mutation(step, {"n": 1, "how": "ok"}).unwrap()
        return response.json()["temp"]

    client = httpx.Client(transport=httpx.MockTransport(answer))
    with Store.memory(SCHEMA, http=client) as store:
        assert store.action(fetch, {"path": "/now"}).unwrap() == 21.5
        assert store.action(fetch, {"path": "/broken"}).failure() == Rejected(
            {"status": 503}
        )
        assert [str(r.url) for r in seen] == [
            "https://weather.example/now?city=Oslo",
            "https://weather.example/broken?city=Oslo",
        ]
        assert store.query(written).unwrap() == [1]


def test_a_store_without_an_injected_client_gives_actions_a_real_one(store):
    @action
    def client_kind(ctx, args):
        return type(ctx.http).__name__

    assert store.action(client_kind).unwrap() == "Client"


# ----------------------------------------------------------------- scheduled actions


def test_a_scheduled_action_runs_at_most_once_even_when_run_due_is_repeated(store):
    @internal_action
    def once(ctx, args):
        ctx.run_mutation(step, {"n": 7, "how": "ok"}).unwrap()

    store.run(lambda ctx: ctx.scheduler.run_after(0, once, {}))
    assert store.scheduler.run_due() == 1
    assert store.scheduler.run_due() == 0
    assert store.scheduler.run_all() == 0
    assert store.query(written).unwrap() == [7]
    assert [j["state"]["kind"] for j in scheduled_jobs(store)] == ["success"]


# ----------------------------------------------------------------- two worker processes

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from one_store import Store

    db, app, go = sys.argv[1:4]
    ran = 0
    with Store.open(db, app=app, busy_timeout=60) as store:
        Path(go + "." + sys.argv[4]).touch()  # ready
        while not Path(go).exists():
            time.sleep(0.002)
        while store.scheduler.next_job_time() is not None:
            ran += store.scheduler.run_due(max_jobs=None)
    print(json.dumps({"ran": ran}))
    """
)


def test_two_worker_processes_on_one_file_run_every_job_exactly_once(
    tmp_path: Path, store_target
):
    db = store_target("shared.db")
    app = APPS / "worker_app"
    mutations, actions = 150, 40
    with Store.open(db, app=app) as store:

        def schedule_all(ctx):
            for job in range(mutations):
                ctx.scheduler.run_after(
                    0, "jobs:record", {"job": job, "kind": "mutation"}
                )
            for job in range(mutations, mutations + actions):
                ctx.scheduler.run_after(0, "jobs:record_from_action", {"job": job})

        store.run(schedule_all).unwrap()

    go = str(tmp_path / "go")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db), str(app), go, str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for i in range(2):  # wait until both have opened the file, then start together
            ready = Path(f"{go}.{i}")
            for _ in range(60_000):
                if ready.exists() or workers[i].poll() is not None:
                    break
                time.sleep(0.005)
        Path(go).touch()
        outputs = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    for w, (_out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
    ran = [json.loads(out.strip().splitlines()[-1])["ran"] for out, _ in outputs]
    print("jobs run per worker:", ran)
    assert sum(ran) == mutations + actions  # every job claimed by exactly one worker

    with Store.open(db, app=app) as store:
        runs = list(store.documents("runs"))
        per_job = Counter(int(str(r["job"])) for r in runs)
        assert sorted(per_job) == list(range(mutations + actions))
        assert set(per_job.values()) == {1}  # nothing ran twice, nothing was lost
        kinds = Counter(r["kind"] for r in runs)
        assert kinds == {"mutation": mutations, "action": actions}
        states = Counter(j["state"]["kind"] for j in store.scheduler.jobs())
        assert states == {"success": mutations + actions}


HANGING_WORKER = textwrap.dedent(
    """
    import sys
    from one_store import Store

    with Store.open(sys.argv[1], app=sys.argv[2]) as store:
        store.scheduler.run_due()
    """
)


def test_an_action_whose_worker_process_dies_is_failed_not_rerun(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    db = tmp_path / "hang.db"
    app = APPS / "worker_app"
    marker = tmp_path / "started"
    with Store.open(db, app=app) as store:
        job_id = store.run(
            lambda ctx: ctx.scheduler.run_after(0, "jobs:hang", {"marker": str(marker)})
        ).unwrap()
    worker = subprocess.Popen([sys.executable, "-c", HANGING_WORKER, str(db), str(app)])
    try:
        for _ in range(6_000):  # wait (up to ~60 s) until the action has started
            if marker.exists() or worker.poll() is not None:
                break
            time.sleep(0.01)
        assert marker.exists(), "the worker never started the action"
        with Store.open(db, app=app) as store:
            # While its process lives, the running action is left alone.
            assert store.scheduler.run_due() == 0
            (job,) = store.scheduler.jobs()
            assert job["state"]["kind"] == "inProgress"
            assert job["state"]["executionId"].endswith(f":{worker.pid}")
    finally:
        worker.kill()
        worker.wait(timeout=60)
    with Store.open(db, app=app) as store:
        assert store.scheduler.run_due() == 0  # not re-run: at most once
        (job,) = store.scheduler.jobs()
        assert job["_id"] == job_id
        assert job["state"] == {
            "kind": "failed",
            "error": "Transient error while executing action",
        }
    (record,) = [r for r in caplog.records if r.name == "one_store.scheduler"]
    assert job_id in record.getMessage()
    assert "Transient error while executing action" in record.getMessage()


def test_a_scheduled_async_action_runs_on_its_own_loop(store):
    store.run(lambda ctx: ctx.scheduler.run_after(0, async_steps, {"n": 2})).unwrap()
    assert store.scheduler.run_due() == 1
    assert store.query(written).unwrap() == [1, 2]
    assert [j["state"] for j in scheduled_jobs(store)] == [{"kind": "success"}]
