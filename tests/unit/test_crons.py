"""Crons: Convex's cronJobs() calls, the 5-field cron parser, and crons firing at fake times."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_store import (
    Crons,
    DefinitionError,
    Store,
    action,
    define_schema,
    define_table,
    internal_mutation,
    query,
    v,
)
from one_store.runtime.crons import CronExpression
from one_store.testing import FakeClock, inject_faults, scheduled_jobs

SCHEMA = define_schema({"ticks": define_table({"label": v.string(), "at": v.number()})})


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp() * 1000


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t / 1000, dt.UTC).strftime("%Y-%m-%d %a %H:%M")


@internal_mutation(args={"label": v.string()})
def tick(ctx, args):
    ctx.db.insert("ticks", {"label": args["label"], "at": ctx.now()})


@query
def ticks(ctx, args):
    return [(d["label"], d["at"]) for d in ctx.db.query("ticks").collect()]


def fired(store: Store, label: str | None = None) -> list[str]:
    return [
        iso(at) for name, at in store.query(ticks).unwrap() if label in (None, name)
    ]


# ----------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 * * * *", (2024, 1, 1, 10, 0), "2024-01-01 Mon 11:00"),
        ("0 * * * *", (2024, 1, 1, 10, 59), "2024-01-01 Mon 11:00"),
        ("*/15 * * * *", (2024, 1, 1, 10, 7), "2024-01-01 Mon 10:15"),
        ("5/20 * * * *", (2024, 1, 1, 10, 30), "2024-01-01 Mon 10:45"),
        ("30 9 * * mon-fri", (2024, 1, 6, 12, 0), "2024-01-08 Mon 09:30"),
        ("15 7 * * *", (2024, 12, 31, 8, 0), "2025-01-01 Wed 07:15"),
        ("0 0 1 1 *", (2024, 3, 1, 0, 0), "2025-01-01 Wed 00:00"),
        ("0 12 * * 0", (2024, 1, 1, 0, 0), "2024-01-07 Sun 12:00"),
        ("0 12 * * 7", (2024, 1, 1, 0, 0), "2024-01-07 Sun 12:00"),
        ("0 0 29 2 *", (2024, 3, 1, 0, 0), "2028-02-29 Tue 00:00"),
        ("0 0 31 * *", (2024, 4, 1, 0, 0), "2024-05-31 Fri 00:00"),
        # Both day fields restricted: either may match (Vixie cron).
        ("0 0 13 * fri", (2024, 1, 1, 0, 0), "2024-01-05 Fri 00:00"),
        ("0 0 */10 * 1", (2024, 1, 2, 0, 0), "2024-01-08 Mon 00:00"),
        ("0 0 1,15 jan,jul *", (2024, 1, 2, 0, 0), "2024-01-15 Mon 00:00"),
        ("59 23 31 12 *", (2024, 1, 1, 0, 0), "2024-12-31 Tue 23:59"),
        # convex-backend crates/model/src/cron_jobs/next_ts.rs, "every Monday and Friday".
        ("0 12 * * 1,5", (2023, 2, 28, 8, 35), "2023-03-03 Fri 12:00"),
    ],
)
def test_next_after_matches_cron_semantics(cron, after, expected):
    assert iso(CronExpression.parse(cron).next_after(ms(*after))) == expected


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        # Both day fields restricted: a day matching either runs the job.
        ("0 0 1-7 * mon", (2024, 1, 8, 0, 0), "2024-01-15 Mon 00:00"),
        # A day field is restricted unless it is a bare "*" (saffron, which Convex
        # uses); Debian cron would read "*/3" and "*/1" as "*" and require both.
        ("0 0 15 * */3", (2024, 1, 1, 0, 0), "2024-01-03 Wed 00:00"),
        ("0 0 */1 * mon", (2024, 1, 1, 0, 0), "2024-01-02 Tue 00:00"),
        # One day field a bare "*": only the other one counts.
        ("0 0 * * */3", (2024, 1, 1, 0, 0), "2024-01-03 Wed 00:00"),
        ("0 0 */10 * *", (2024, 1, 1, 0, 0), "2024-01-11 Thu 00:00"),
    ],
)
def test_the_day_of_month_or_day_of_week_rule(cron, after, expected):
    assert iso(CronExpression.parse(cron).next_after(ms(*after))) == expected


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        ("0 9-17/4 * * *", (2024, 1, 1, 13, 30), "2024-01-01 Mon 17:00"),
        ("10-40/15 * * * *", (2024, 1, 1, 10, 41), "2024-01-01 Mon 11:10"),
        ("0 0 1 1-12/3 *", (2024, 2, 1, 0, 0), "2024-04-01 Mon 00:00"),
        ("0 0 * * mon-fri/2", (2024, 1, 2, 0, 0), "2024-01-03 Wed 00:00"),
        ("0 0 * feb-apr/2 sun", (2024, 2, 25, 0, 0), "2024-04-07 Sun 00:00"),
    ],
)
def test_ranges_with_steps(cron, after, expected):
    assert iso(CronExpression.parse(cron).next_after(ms(*after))) == expected


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        # February 29th, alone and or-ed with a weekday.
        ("0 0 29 2 *", (2028, 2, 29, 0, 0), "2032-02-29 Sun 00:00"),
        ("0 0 29 2 mon", (2024, 3, 1, 0, 0), "2025-02-03 Mon 00:00"),
        # Month ends: the 30th and 31st skip the months without them; L is the last day.
        ("0 0 30 * *", (2024, 2, 1, 0, 0), "2024-03-30 Sat 00:00"),
        ("0 12 31 * *", (2024, 1, 31, 12, 0), "2024-03-31 Sun 12:00"),
        ("0 0 L * *", (2024, 4, 1, 0, 0), "2024-04-30 Tue 00:00"),
        ("0 0 L 2 *", (2024, 1, 1, 0, 0), "2024-02-29 Thu 00:00"),
        ("0 0 L 2 *", (2024, 3, 1, 0, 0), "2025-02-28 Fri 00:00"),
        ("59 23 L 12 *", (2024, 1, 1, 0, 0), "2024-12-31 Tue 23:59"),
        # LW: the last weekday (March 2024 ends on a Sunday); 5L: the last Friday;
        # MON#2: the second Monday.
        ("0 0 LW * *", (2024, 3, 1, 0, 0), "2024-03-29 Fri 00:00"),
        ("0 0 * * 5L", (2024, 1, 1, 0, 0), "2024-01-26 Fri 00:00"),
        ("0 0 * * mon#2", (2024, 1, 9, 0, 0), "2024-02-12 Mon 00:00"),
    ],
)
def test_leap_days_and_month_ends(cron, after, expected):
    assert iso(CronExpression.parse(cron).next_after(ms(*after))) == expected


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "60 is outside 0-59 in the minute field"),
        ("* 24 * * *", "outside 0-23 in the hour field"),
        ("* * 0 * *", "outside 1-31 in the day of month field"),
        ("* * * 13 *", "outside 1-12 in the month field"),
        ("* * * * 8", "outside 0-7 in the day of week field"),
        ("*/0 * * * *", "must be > 0"),
        ("10-5 * * * *", "backwards"),
        ("a * * * *", "not a number"),
        ("1,,2 * * * *", "empty list item"),
        ("0 0 30 2 *", "no month in it has that day"),
        ("0 0 31 apr,jun *", "no month in it has that day"),
    ],
)
def test_bad_cron_strings_are_definition_errors(cron, message):
    with pytest.raises(DefinitionError, match=message):
        CronExpression.parse(cron)


def _field(low: int, high: int):
    values = st.lists(st.integers(low, high), min_size=1, max_size=3).map(
        lambda xs: ",".join(map(str, sorted(set(xs))))
    )
    steps = st.integers(1, high - low + 1).map(lambda n: f"*/{n}")
    return st.one_of(st.just("*"), values, steps)


def _allowed(field: str, low: int, high: int) -> set[int]:
    """The values a field made by ``_field`` allows, read without the parser."""
    if field == "*":
        return set(range(low, high + 1))
    if field.startswith("*/"):
        return set(range(low, high + 1, int(field[2:])))
    return {int(x) for x in field.split(",")}


@given(
    minute=_field(0, 59),
    hour=_field(0, 23),
    weekday=_field(0, 6),
    start=st.integers(int(ms(2020, 1, 1)), int(ms(2030, 1, 1))),
)
def test_next_after_is_the_first_matching_minute(minute, hour, weekday, start):
    # Day-of-month and month stay "*" so the next run is at most a week away and
    # every minute in between can be checked.
    minutes, hours = _allowed(minute, 0, 59), _allowed(hour, 0, 23)
    weekdays = _allowed(weekday, 0, 6)  # 0 = Sunday

    def matches(t: dt.datetime) -> bool:
        sunday_first = (t.weekday() + 1) % 7
        return t.minute in minutes and t.hour in hours and sunday_first in weekdays

    nxt = CronExpression.parse(f"{minute} {hour} * * {weekday}").next_after(start)
    t = dt.datetime.fromtimestamp(nxt / 1000, dt.UTC)
    assert nxt > start
    assert nxt % 60_000 == 0
    assert matches(t)
    probe = (start // 60_000 + 1) * 60_000
    while probe < nxt:
        assert not matches(dt.datetime.fromtimestamp(probe / 1000, dt.UTC))
        probe += 60_000


# ----------------------------------------------------------------- the Crons calls


def test_interval_takes_convexs_dict_form_and_a_keyword_form():
    crons = Crons()
    crons.interval("a", {"seconds": 30}, tick, {"label": "a"})
    crons.interval("b", tick, {"label": "b"}, minutes=5)
    crons.interval("c", "jobs:x", hours=2)
    assert crons.jobs["a"].schedule == {"type": "interval", "seconds": 30}
    assert crons.jobs["b"].schedule == {"type": "interval", "minutes": 5}
    assert crons.jobs["c"].schedule == {"type": "interval", "hours": 2}
    assert crons.jobs["c"].args == {}
    assert [crons.jobs[k].interval_ms for k in "abc"] == [30_000, 300_000, 7_200_000]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.interval("x", {}, tick), "one of seconds, minutes, or hours"),
        (
            lambda c: c.interval("x", {"seconds": 1, "minutes": 1}, tick),
            "one of seconds, minutes, or hours",
        ),
        (lambda c: c.interval("x", {"days": 1}, tick), "unknown: days"),
        (lambda c: c.interval("x", {"minutes": 0}, tick), "integer greater than 0"),
        (lambda c: c.interval("x", {"minutes": 1.5}, tick), "integer greater than 0"),
        (lambda c: c.interval("x", {"minutes": True}, tick), "integer greater than 0"),
        (lambda c: c.interval("x", tick), "one of seconds, minutes, or hours"),
        (
            lambda c: c.interval("x", {"minutes": 1}, tick, minutes=2),
            "either as a dict or as keywords",
        ),
        (lambda c: c.daily("x", {"minuteUTC": 0}, tick), "needs 'hourUTC'"),
        (
            lambda c: c.daily("x", {"hourUTC": 24}, tick),
            "Hour of day must be an integer from 0 to 23",
        ),
        (
            lambda c: c.hourly("x", {"minuteUTC": 60}, tick),
            "Minute of hour must be an integer from 0 to 59",
        ),
        (
            lambda c: c.weekly("x", {"dayOfWeek": "Monday", "hourUTC": 1}, tick),
            'Day of week must be a string like "monday"',
        ),
        (
            lambda c: c.monthly("x", {"day": 32, "hourUTC": 1}, tick),
            "Day of month must be an integer from 1 to 31",
        ),
        (
            lambda c: c.daily("x", {"hourUTC": 1, "dayOfWeek": "monday"}, tick),
            "unknown daily schedule field",
        ),
        (lambda c: c.cron("x", "* * *", tick), "expected 5 fields"),
        (lambda c: c.cron("", "* * * * *", tick), "non-empty string"),
        (lambda c: c.cron("tab\there", "* * * * *", tick), "printable ASCII"),
        (lambda c: c.cron("x", "* * * * *", print), "expected a mutation or action"),
        (lambda c: c.cron("x", "* * * * *", ticks), "only mutations and actions"),
        (lambda c: c.cron("x", "* * * * *", tick, ["a"]), "args must be a dict"),
    ],
)
def test_bad_cron_definitions_raise_definition_errors(call, message):
    with pytest.raises(DefinitionError, match=message):
        call(Crons())


def test_identifiers_must_be_unique():
    crons = Crons()
    crons.hourly("job", {"minuteUTC": 5}, tick)
    with pytest.raises(DefinitionError, match="Cron identifier registered twice: job"):
        crons.daily("job", {"hourUTC": 1}, tick)


def test_calendar_helpers_become_cron_expressions():
    crons = Crons()
    crons.hourly("h", {"minuteUTC": 15}, tick)
    crons.daily("d", {"hourUTC": 17, "minuteUTC": 30}, tick)
    crons.weekly("w", {"dayOfWeek": "tuesday", "hourUTC": 9, "minuteUTC": 0}, tick)
    crons.monthly("m", {"day": 31, "hourUTC": 0, "minuteUTC": 0}, tick)
    texts = {k: job.expression.text for k, job in crons.jobs.items() if job.expression}
    assert texts == {
        "h": "15 * * * *",
        "d": "30 17 * * *",
        "w": "0 9 * * 2",
        "m": "0 0 31 * *",
    }


def test_an_omitted_minute_is_stable_per_identifier():
    a, b = Crons(), Crons()
    a.hourly("report", tick)
    b.hourly("report", tick)
    a.daily("digest", {"hourUTC": 3}, tick)
    minute = a.jobs["report"].schedule["minuteUTC"]
    assert minute == b.jobs["report"].schedule["minuteUTC"]
    assert 0 <= minute <= 59
    assert 0 <= a.jobs["digest"].schedule["minuteUTC"] <= 59


# ----------------------------------------------------------------- firing at fake times


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(ms(2024, 1, 1, 10, 2))  # a Monday


@pytest.fixture
def store(clock: FakeClock):
    with Store.memory(SCHEMA, clock=clock, seed=0) as s:
        yield s


def test_an_interval_job_runs_at_once_then_every_interval(store, clock):
    crons = Crons()
    crons.interval("every 5", {"minutes": 5}, tick, {"label": "i"})
    store.scheduler.use_crons(crons)
    store.scheduler.advance(16 * 60_000)
    assert fired(store) == [
        "2024-01-01 Mon 10:02",
        "2024-01-01 Mon 10:07",
        "2024-01-01 Mon 10:12",
        "2024-01-01 Mon 10:17",
    ]
    assert all(j["state"] == {"kind": "success"} for j in store.scheduler.jobs())


@pytest.mark.engine_independent("cron arithmetic over 2,500 runs: 24 s on PostgreSQL")
def test_calendar_jobs_fire_at_their_utc_minutes(store):
    crons = Crons()
    crons.cron("top of hour", "0 * * * *", tick, {"label": "hour"})
    crons.daily("daily", {"hourUTC": 9, "minuteUTC": 30}, tick, {"label": "day"})
    crons.weekly(
        "weekly",
        {"dayOfWeek": "wednesday", "hourUTC": 0, "minuteUTC": 0},
        tick,
        {"label": "week"},
    )
    crons.monthly(
        "monthly", {"day": 31, "hourUTC": 6, "minuteUTC": 45}, tick, {"label": "month"}
    )
    store.scheduler.use_crons(crons)
    store.scheduler.advance(3 * 60 * 60_000)  # to 13:02
    assert fired(store, "hour") == [
        "2024-01-01 Mon 11:00",
        "2024-01-01 Mon 12:00",
        "2024-01-01 Mon 13:00",
    ]
    assert fired(store, "day") == []
    store.scheduler.advance(100 * 24 * 60 * 60_000)  # to 2024-04-10 13:02
    assert fired(store, "day")[:2] == ["2024-01-02 Tue 09:30", "2024-01-03 Wed 09:30"]
    assert len(fired(store, "day")) == 100
    assert fired(store, "week")[:2] == ["2024-01-03 Wed 00:00", "2024-01-10 Wed 00:00"]
    assert fired(store, "month") == [
        "2024-01-31 Wed 06:45",
        "2024-03-31 Sun 06:45",
    ]  # no Feb 31
    assert len(fired(store, "hour")) == 3 + 100 * 24


def test_runs_missed_while_no_worker_ran_are_not_replayed(store, clock):
    crons = Crons()
    crons.interval("every minute", {"minutes": 1}, tick, {"label": "m"})
    store.scheduler.use_crons(crons)
    assert store.scheduler.run_due() == 1
    clock.advance(60 * 60_000)  # an hour passes with nobody running the scheduler
    assert store.scheduler.run_due() == 1
    (row,) = store.scheduler.cron_jobs()
    assert row["nextRun"] == ms(2024, 1, 1, 11, 3)  # back on the schedule
    # One late run at 11:02 (ctx.now() is when it ran), not sixty.
    assert fired(store) == ["2024-01-01 Mon 10:02", "2024-01-01 Mon 11:02"]


def test_a_cron_run_is_not_started_while_the_previous_one_is_pending(store, clock):
    crons = Crons()
    crons.interval("every minute", {"minutes": 1}, tick, {"label": "m"})
    store.scheduler.use_crons(crons)
    faults = inject_faults(store, busy=3)  # the run cannot commit three times
    for _ in range(3):
        store.scheduler.run_due()
        clock.advance(60_000)
    assert faults.remaining == 0
    assert len(scheduled_jobs(store)) == 1  # one run pending, no pile-up
    store.scheduler.run_due()
    assert len(scheduled_jobs(store, state="success")) == 1


def test_a_cron_action_runs_too(store):
    @action(args={"label": v.string()})
    def act(ctx, args):
        ctx.run_mutation(tick, {"label": args["label"]}).unwrap()

    crons = Crons()
    crons.cron("act", "*/30 * * * *", act, {"label": "a"})
    store.scheduler.use_crons(crons)
    store.scheduler.advance(60 * 60_000)
    assert fired(store) == ["2024-01-01 Mon 10:30", "2024-01-01 Mon 11:00"]


def test_run_all_is_not_kept_going_by_crons_alone(store):
    crons = Crons()
    crons.interval("forever", {"seconds": 1}, tick, {"label": "f"})
    store.scheduler.use_crons(crons)
    assert store.scheduler.run_all() == 1


def test_use_crons_checks_functions_and_args(store):
    unknown = Crons()
    unknown.interval("x", {"minutes": 1}, "nowhere:fn")
    with pytest.raises(DefinitionError, match=r"Cron 'x'.*nowhere:fn"):
        store.scheduler.use_crons(unknown)
    bad_args = Crons()
    bad_args.interval("y", {"minutes": 1}, tick, {"label": 5})
    with pytest.raises(DefinitionError, match="invalid args"):
        store.scheduler.use_crons(bad_args)
    with pytest.raises(DefinitionError, match="Crons"):
        store.scheduler.use_crons("not crons")
    assert store.scheduler.cron_jobs() == []


# ----------------------------------------------------------------- crons of an app, on a file


def write_app(folder: Path, crons_body: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "schema.py").write_text(
        "from one_store import define_schema, define_table, v\n"
        "schema = define_schema({'ticks': define_table({'label': v.string(), 'at': v.number()})})\n"
    )
    (folder / "jobs.py").write_text(
        "from one_store import internal_mutation, query, v\n"
        "@internal_mutation(args={'label': v.string()})\n"
        "def tick(ctx, args):\n"
        "    ctx.db.insert('ticks', {'label': args['label'], 'at': ctx.now()})\n"
        "@query\n"
        "def count(ctx, args):\n"
        "    return len(ctx.db.query('ticks').collect())\n"
    )
    (folder / "crons.py").write_text("from one_store import Crons\n" + crons_body)
    return folder


def test_an_apps_crons_py_is_run_by_the_store(tmp_path, clock):
    app = write_app(
        tmp_path / "app",
        "from .jobs import tick\n"
        "crons = Crons()\n"
        "crons.interval('by object', {'minutes': 10}, tick, {'label': 'obj'})\n"
        "crons.cron('by path', '0 * * * *', 'jobs:tick', {'label': 'path'})\n",
    )
    with Store.memory(app=app, clock=clock) as store:
        assert [r["name"] for r in store.scheduler.cron_jobs()] == [
            "by object",
            "by path",
        ]
        assert store.scheduler.cron_jobs()[0]["function"] == "jobs:tick"
        store.scheduler.advance(60 * 60_000)
        labels = [j["args"][0]["label"] for j in scheduled_jobs(store, state="success")]
        assert labels.count("obj") == 7  # 10:02, 10:12, ..., 11:02
        assert labels.count("path") == 1  # 11:00
        assert store.query("jobs:count").unwrap() == 8


def test_an_app_with_a_bad_cron_fails_to_open(tmp_path, clock):
    app = write_app(
        tmp_path / "bad",
        "crons = Crons()\ncrons.interval('x', {'minutes': 1}, 'jobs:count')\n",
    )
    with pytest.raises(DefinitionError, match="only mutations and actions"):
        Store.memory(app=app, clock=clock)


def test_reopening_keeps_unchanged_crons_and_updates_changed_ones(tmp_path, clock):
    db = tmp_path / "crons.db"
    app = write_app(
        tmp_path / "app",
        "crons = Crons()\n"
        "crons.interval('keep', {'minutes': 10}, 'jobs:tick', {'label': 'k'})\n"
        "crons.interval('change', {'minutes': 10}, 'jobs:tick', {'label': 'c'})\n"
        "crons.interval('drop', {'minutes': 10}, 'jobs:tick', {'label': 'd'})\n",
    )
    with Store.open(db, app=app, clock=clock) as store:
        store.scheduler.advance(60_000)
        before = {r["name"]: r["nextRun"] for r in store.scheduler.cron_jobs()}
    assert set(before.values()) == {ms(2024, 1, 1, 10, 12)}
    write_app(
        app,
        "crons = Crons()\n"
        "crons.interval('keep', {'minutes': 10}, 'jobs:tick', {'label': 'k'})\n"
        "crons.cron('change', '30 * * * *', 'jobs:tick', {'label': 'c'})\n",
    )
    clock.advance(60_000)
    with Store.open(db, app=app, clock=clock) as store:
        after = {r["name"]: r["nextRun"] for r in store.scheduler.cron_jobs()}
    assert after == {"keep": before["keep"], "change": ms(2024, 1, 1, 10, 30)}


def test_two_stores_on_one_file_fire_each_cron_run_once(tmp_path, clock):
    db = tmp_path / "shared.db"
    app = write_app(
        tmp_path / "app",
        "crons = Crons()\ncrons.interval('tick', {'minutes': 1}, 'jobs:tick', {'label': 't'})\n",
    )
    with (
        Store.open(db, app=app, clock=clock) as a,
        Store.open(db, app=app, clock=clock) as b,
    ):
        for _ in range(5):
            a.scheduler.run_due()
            b.scheduler.run_due()
            clock.advance(60_000)
        assert a.query("jobs:count").unwrap() == 5
        assert len(a.scheduler.jobs()) == 5


@given(
    every=st.integers(1, 30),
    steps=st.lists(st.integers(0, 45 * 60_000), min_size=1, max_size=6),
)
def test_interval_runs_land_on_their_times_however_time_is_stepped(every, steps):
    start = ms(2024, 1, 1, 10, 2)
    with Store.memory(SCHEMA, clock=FakeClock(start), seed=0) as s:
        crons = Crons()
        crons.interval("i", {"minutes": every}, tick, {"label": "i"})
        s.scheduler.use_crons(crons)
        for step_ms in steps:
            s.scheduler.advance(step_ms)
        times = [at for _, at in s.query(ticks).unwrap()]
        end = s.clock()
    period = every * 60_000
    assert times == [
        start + k * period for k in range(int((end - start) // period) + 1)
    ]
