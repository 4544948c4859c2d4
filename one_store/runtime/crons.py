"""Cron jobs: ``crons = Crons()`` in an app's ``crons.py``, run by the scheduler.

The calls mirror Convex's ``cronJobs()``::

    crons = Crons()
    crons.interval("clear presence", {"seconds": 30}, "presence:clear")
    crons.interval("sweep", sweep, {}, minutes=5)           # keyword form
    crons.hourly("report", {"minuteUTC": 15}, "reports:hourly")
    crons.daily("digest", {"hourUTC": 17, "minuteUTC": 30}, "emails:digest")
    crons.weekly("plan", {"dayOfWeek": "monday", "hourUTC": 9}, "plans:make")
    crons.monthly("bill", {"day": 1, "hourUTC": 0, "minuteUTC": 0}, "billing:run")
    crons.cron("top of the hour", "0 * * * *", "stats:roll", {"window": 60})

All times are UTC. Interval jobs first run when the store first sees them (Convex:
"beginning when the job is first deployed"), then every interval. A job whose run
is still pending or in progress is not started again ("at most one run at a time");
runs missed while no worker was running are not replayed: the job runs once when
a worker next looks, then keeps its schedule.

When ``minuteUTC`` is omitted, a stable minute is derived from the job's
identifier, as Convex picks one, so an app's hourly jobs do not all start at :00.

Cron strings are parsed and stepped by ``cronsim`` (the parser of healthchecks.io:
BSD-licensed, typed, standard library only). It was chosen over ``croniter`` by
measurement on this project's machine (2 cores, CPython 3.11): parse plus next run
takes 16-80 us with cronsim and 150-210 us with croniter, and cronsim imports in
~8 ms where croniter brings python-dateutil (~35 ms).

Convex parses cron strings with the ``saffron`` crate (convex-backend's
``crates/model/src/cron_jobs``), in UTC, 5 fields. Where saffron and Debian cron
(which cronsim follows) differ, :func:`_for_cronsim` adapts the string first:

- A day field is restricted unless it is a bare ``*``. When both day fields are
  restricted, a day matching either runs the job (``0 0 */10 * 1``: every tenth day
  *or* Monday). Debian cron reads any field that starts with ``*`` as unrestricted
  and then requires both, so ``*/10`` is spelt ``1-31/10`` for cronsim.
- There is no seconds field: cronsim's optional sixth field is refused.

cronsim adds ``L`` (last day of the month), ``LW`` (last weekday of the month),
``5L`` (last Friday) and ``MON#2`` (second Monday), which saffron has too. Left as
cronsim has them (docs/differences-from-convex.md): ``7`` is Sunday too, and a
backwards range (``22-2``), ``15W`` and ``L-3`` are refused where saffron takes them.
cronsim's errors only name the field ("Bad minute"); :func:`_explain` says why.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping
from typing import Any, overload

from attrs import frozen
from cronsim import CronSim, CronSimError

from ..model.errors import DefinitionError
from .functions import FunctionSpec

MINUTE_MS = 60_000
DAYS_OF_WEEK = (
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
)
_MONTHS = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_MONTH_NAMES = {name: i + 1 for i, name in enumerate(_MONTHS)}
_DAY_NAMES = {name[:3]: i for i, name in enumerate(DAYS_OF_WEEK)}
# cronsim gives up after 50 years without a match (no string that parses needs that).
_SEARCH_YEARS = 50
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Schedulable = FunctionSpec[Any] | str


@frozen
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day of week", 0, 7, _DAY_NAMES),  # 7 is Sunday too, as Vixie cron
)
# cronsim's error text ("Bad minute") names the field; the index into _FIELDS.
_CRONSIM_FIELDS = {
    "minute": 0,
    "hour": 1,
    "day-of-month": 2,
    "month": 3,
    "day-of-week": 4,
}


def _bad_cron(text: str, why: str) -> DefinitionError:
    return DefinitionError(f"Invalid cron string {text!r}: {why}")


def _for_cronsim(parts: list[str]) -> str:
    """The 5 fields as cronsim reads them with saffron's day rule (module docstring)."""
    out = list(parts)
    for i, full in ((2, "1-31"), (4, "0-6")):
        if out[i] != "*":
            items = out[i].split(",")
            out[i] = ",".join(
                full + it[1:] if it.startswith("*") else it for it in items
            )
    return " ".join(out)


def _explain(part: str, spec: _Field) -> str | None:
    """Why cronsim refused ``part`` (its message only names the field), if it is plain."""
    for item in part.split(","):
        if not item:
            return f"empty list item in the {spec.name} field"
        base, slash, step = item.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            return f"step {step!r} in the {spec.name} field must be > 0"
        ends: list[int] = []
        for token in [] if base == "*" else base.split("-"):
            if token.lower() in spec.names:
                ends.append(spec.names[token.lower()])
            elif token.isdigit():
                if not spec.low <= int(token) <= spec.high:
                    return f"{int(token)} is outside {spec.low}-{spec.high} in the {spec.name} field"
                ends.append(int(token))
            elif "L" in token.upper() or "#" in token:
                break  # cronsim's L / LW / 5L / MON#2: the generic message below
            else:
                return f"{token!r} is not a number in the {spec.name} field"
        if len(ends) == 2 and ends[0] > ends[1]:
            return f"range {base!r} in the {spec.name} field is backwards"
    return None


def _why(parts: list[str], error: CronSimError) -> str:
    index = _CRONSIM_FIELDS.get(str(error).removeprefix("Bad "))
    if index is None:
        return str(error)
    spec = _FIELDS[index]
    reason = _explain(parts[index], spec)
    if reason is not None:
        return reason
    if index == 2:
        try:  # the day is fine on its own: it is the months that never have it
            CronSim(f"0 0 {parts[2]} * *", _EPOCH)
        except CronSimError:
            pass
        else:
            return "no month in it has that day"
    return f"{parts[index]!r} is not a valid {spec.name} field"


@frozen
class CronExpression:
    """A 5-field UTC cron string: minute hour day-of-month month day-of-week.

    Example:
        >>> e = CronExpression.parse("30 9 * * mon-fri")
        >>> import datetime as dt
        >>> t = dt.datetime(2024, 1, 6, tzinfo=dt.UTC).timestamp() * 1000  # a Saturday
        >>> dt.datetime.fromtimestamp(e.next_after(t) / 1000, dt.UTC).isoformat()
        '2024-01-08T09:30:00+00:00'
    """

    text: str
    cronsim_text: str  # ``text`` with saffron's day rule spelt out for cronsim

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``.

        Raises:
            DefinitionError: not 5 fields, an unknown name, a value out of range,
                or a date that never occurs (e.g. ``"0 0 30 2 *"``).
        """
        if not isinstance(text, str):
            raise DefinitionError(f"A cron string must be a str, got {text!r}")
        parts = text.split()
        if len(parts) != 5:
            raise _bad_cron(
                text,
                f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}",
            )
        adapted = _for_cronsim(parts)
        try:
            CronSim(adapted, _EPOCH)
        except CronSimError as error:
            raise _bad_cron(text, _why(parts, error)) from None
        return cls(text, adapted)

    def next_after(self, ms: float) -> float:
        """The first whole UTC minute strictly after ``ms`` that matches, in ms."""
        # cronsim drops the microseconds, then steps at least one second forward.
        start = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
        try:
            found = next(CronSim(self.cronsim_text, start))
        except StopIteration:
            raise ValueError(
                f"cron {self.text!r} has no run in {_SEARCH_YEARS} years"
            ) from None
        return found.timestamp() * 1000


def _stable_minute(identifier: str) -> int:
    return zlib.crc32(identifier.encode()) % 60


def _whole(value: object, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionError(
            f"{what} must be an integer from {low} to {high}, got {value!r}"
        )
    if value != int(value) or not low <= value <= high:
        raise DefinitionError(
            f"{what} must be an integer from {low} to {high}, got {value!r}"
        )
    return int(value)


@frozen
class CronJob:
    """One registered job: identifier, function, args, and Convex's schedule object."""

    identifier: str
    function: Schedulable
    args: dict[str, Any]
    schedule: dict[str, Any]  # e.g. {"type": "interval", "seconds": 30}

    @property
    def interval_ms(self) -> float | None:
        """The period of an interval job, None for calendar jobs."""
        s = self.schedule
        if s["type"] != "interval":
            return None
        unit = {"seconds": 1_000, "minutes": 60_000, "hours": 3_600_000}
        return next(float(s[k] * ms) for k, ms in unit.items() if k in s)

    @property
    def expression(self) -> CronExpression | None:
        """The cron expression of a calendar job (hourly, daily, ..., cron)."""
        s = self.schedule
        minute = s.get("minuteUTC")
        match s["type"]:
            case "cron":
                return CronExpression.parse(s["cron"])
            case "hourly":
                return CronExpression.parse(f"{minute} * * * *")
            case "daily":
                return CronExpression.parse(f"{minute} {s['hourUTC']} * * *")
            case "weekly":
                day = DAYS_OF_WEEK.index(s["dayOfWeek"])
                return CronExpression.parse(f"{minute} {s['hourUTC']} * * {day}")
            case "monthly":
                return CronExpression.parse(f"{minute} {s['hourUTC']} {s['day']} * *")
        return None

    def first_run(self, now_ms: float) -> float:
        """When a job first seen at ``now_ms`` first runs (interval jobs: at once)."""
        expression = self.expression
        return now_ms if expression is None else expression.next_after(now_ms - 1)

    def next_run(self, previous_ms: float, now_ms: float) -> float:
        """The first run strictly after ``now_ms`` on the schedule anchored at ``previous_ms``."""
        period = self.interval_ms
        if period is not None:
            if now_ms < previous_ms:
                return previous_ms + period
            steps = int((now_ms - previous_ms) // period) + 1
            return previous_ms + steps * period
        expression = self.expression
        assert expression is not None
        return expression.next_after(max(now_ms, previous_ms))


class Crons:
    """Recurring jobs of an app (Convex's ``cronJobs()``). Times are UTC.

    Declare ``crons = Crons()`` in the app's ``crons.py``; the store's scheduler
    (``store.scheduler.run_due()/advance()/start()``) runs the jobs on schedule.

    Example:
        >>> crons = Crons()
        >>> crons.interval("sweep", {"minutes": 5}, "agents:sweep", {})
        >>> crons.cron("hourly stats", "0 * * * *", "stats:roll")
        >>> sorted(crons.jobs)
        ['hourly stats', 'sweep']
    """

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}

    def _add(
        self,
        identifier: str,
        schedule: dict[str, Any],
        fn: object,
        args: object,
    ) -> None:
        if not isinstance(identifier, str) or not identifier:
            raise DefinitionError(
                f"A cron identifier must be a non-empty string, got {identifier!r}"
            )
        if not all(" " <= ch <= "~" for ch in identifier):
            raise DefinitionError(
                f"Invalid cron identifier {identifier!r}: use printable ASCII characters"
            )
        if identifier in self.jobs:
            raise DefinitionError(f"Cron identifier registered twice: {identifier}")
        if not isinstance(fn, FunctionSpec | str):
            raise DefinitionError(
                f"Cron {identifier!r}: expected a mutation or action (function or 'file:name'), got {fn!r}"
            )
        if isinstance(fn, FunctionSpec) and fn.kind not in ("mutation", "action"):
            raise DefinitionError(
                f"Cron {identifier!r}: only mutations and actions can be scheduled, "
                f"{fn.display_name} is a {fn.kind}"
            )
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise DefinitionError(
                f"Cron {identifier!r}: args must be a dict, got {args!r}"
            )
        self.jobs[identifier] = CronJob(identifier, fn, dict(args), schedule)

    @overload
    def interval(
        self,
        identifier: str,
        schedule: Mapping[str, int],
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
        /,
    ) -> None: ...
    @overload
    def interval(
        self,
        identifier: str,
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
        /,
        *,
        seconds: int | None = None,
        minutes: int | None = None,
        hours: int | None = None,
    ) -> None: ...
    def interval(
        self,
        identifier: str,
        /,
        *positional: Any,
        seconds: int | None = None,
        minutes: int | None = None,
        hours: int | None = None,
    ) -> None:
        """Run ``fn(args)`` every N seconds, minutes or hours (exactly one, a positive integer).

        Either Convex's form ``interval(id, {"minutes": 5}, fn, args)`` or
        ``interval(id, fn, args, minutes=5)``. The first run is when the store
        first sees the job.
        """
        keywords = {
            k: value
            for k, value in (
                ("seconds", seconds),
                ("minutes", minutes),
                ("hours", hours),
            )
            if value is not None
        }
        if positional and isinstance(positional[0], Mapping):
            if keywords:
                raise DefinitionError(
                    f"Cron {identifier!r}: give the interval either as a dict or as keywords, not both"
                )
            given = {
                k: value for k, value in positional[0].items() if value is not None
            }
            rest = positional[1:]
        else:
            given, rest = keywords, positional
        unknown = set(given) - {"seconds", "minutes", "hours"}
        if unknown or len(given) != 1:
            raise DefinitionError(
                f"Cron {identifier!r}: must specify one of seconds, minutes, or hours"
                + (f" (unknown: {', '.join(sorted(unknown))})" if unknown else "")
            )
        ((unit, amount),) = given.items()
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or amount != int(amount)
            or amount <= 0
        ):
            raise DefinitionError(
                f"Cron {identifier!r}: Interval must be an integer greater than 0, got {amount!r}"
            )
        if not 1 <= len(rest) <= 2:
            raise DefinitionError(
                f"Cron {identifier!r}: interval(id, schedule, fn, args) takes a function and optional args"
            )
        self._add(
            identifier,
            {"type": "interval", unit: int(amount)},
            rest[0],
            rest[1] if len(rest) > 1 else None,
        )

    @overload
    def hourly(
        self,
        identifier: str,
        schedule: Mapping[str, int],
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
        /,
    ) -> None: ...
    @overload
    def hourly(
        self,
        identifier: str,
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
        /,
    ) -> None: ...
    def hourly(self, identifier: str, /, *positional: Any) -> None:
        """Run every hour at ``{"minuteUTC": 0-59}`` (schedule optional: a stable minute)."""
        if positional and isinstance(positional[0], Mapping):
            schedule, rest = dict(positional[0]), positional[1:]
        else:
            schedule, rest = {}, positional
        self._calendar(identifier, "hourly", schedule, rest, ())

    def daily(
        self,
        identifier: str,
        schedule: Mapping[str, Any],
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        """Run every day at ``{"hourUTC": 0-23, "minuteUTC"?: 0-59}``."""
        self._calendar(identifier, "daily", dict(schedule), (fn, args), ("hourUTC",))

    def weekly(
        self,
        identifier: str,
        schedule: Mapping[str, Any],
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        """Run every week at ``{"dayOfWeek": "monday", "hourUTC": 0-23, "minuteUTC"?: 0-59}``."""
        self._calendar(
            identifier, "weekly", dict(schedule), (fn, args), ("dayOfWeek", "hourUTC")
        )

    def monthly(
        self,
        identifier: str,
        schedule: Mapping[str, Any],
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        """Run every month at ``{"day": 1-31, "hourUTC": 0-23, "minuteUTC"?: 0-59}``.

        Days after the 28th do not occur every month; those months are skipped, as Convex.
        """
        self._calendar(
            identifier, "monthly", dict(schedule), (fn, args), ("day", "hourUTC")
        )

    def cron(
        self,
        identifier: str,
        cron: str,
        fn: Schedulable,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        """Run on a 5-field UTC cron string (``"15 7 * * *"``: every day at 07:15 UTC)."""
        CronExpression.parse(cron)
        self._add(identifier, {"type": "cron", "cron": cron}, fn, args)

    def _calendar(
        self,
        identifier: str,
        kind: str,
        schedule: dict[str, Any],
        rest: tuple[Any, ...],
        required: tuple[str, ...],
    ) -> None:
        allowed = {"minuteUTC", *required}
        unknown = set(schedule) - allowed
        if unknown:
            raise DefinitionError(
                f"Cron {identifier!r}: unknown {kind} schedule field(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(sorted(allowed))}"
            )
        for name in required:
            if name not in schedule:
                raise DefinitionError(
                    f"Cron {identifier!r}: {kind} schedule needs {name!r}"
                )
        out: dict[str, Any] = {"type": kind}
        if "day" in required:
            out["day"] = _whole(schedule["day"], 1, 31, "Day of month")
        if "dayOfWeek" in required:
            day = schedule["dayOfWeek"]
            if day not in DAYS_OF_WEEK:
                raise DefinitionError(
                    f'Cron {identifier!r}: Day of week must be a string like "monday", got {day!r}'
                )
            out["dayOfWeek"] = day
        if "hourUTC" in required:
            out["hourUTC"] = _whole(schedule["hourUTC"], 0, 23, "Hour of day")
        minute = schedule.get("minuteUTC")
        out["minuteUTC"] = (
            _stable_minute(identifier)
            if minute is None
            else _whole(minute, 0, 59, "Minute of hour")
        )
        if not 1 <= len(rest) <= 2:
            raise DefinitionError(
                f"Cron {identifier!r}: {kind}(id, schedule, fn, args) takes a function and optional args"
            )
        self._add(identifier, out, rest[0], rest[1] if len(rest) > 1 else None)

    def __len__(self) -> int:
        return len(self.jobs)

    def __repr__(self) -> str:
        return f"Crons({', '.join(map(repr, self.jobs))})"


__all__ = ["CronExpression", "CronJob", "Crons"]
