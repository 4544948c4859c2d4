"""A kit for testing code that uses one_store, and a pytest plugin.

- :class:`FakeClock`: time that moves only when the test says
  (``store.scheduler.advance(ms)`` moves it and runs what became due).
- pytest fixtures (registered through the ``pytest11`` entry point, so installing
  one_store is enough): ``fake_clock``, ``one_store_app``, ``one_store_http`` and
  ``app_store`` (an in-memory store of your app on the fake clock, seeded, with
  every limit on).
- :func:`from_validator`: Hypothesis strategies of values that a validator accepts,
  or (``invalid=True``) rejects.
- :func:`inject_faults`: make the next mutations fail with ``Busy`` or a
  ``StorageError``, to test retry logic.
- :func:`trace`: record which documents and index ranges each call read and which
  documents it wrote.
- :func:`scheduled_jobs`: the ``_scheduled_functions`` documents, filtered.

Example:
    >>> clock = FakeClock(1_000.0)
    >>> clock.advance(500)
    >>> clock()
    1500.0
"""

from __future__ import annotations

import contextlib
import os
import string
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from attrs import define, field, frozen

from .engine.query import IndexRangeBuilder, Query, SearchFilterBuilder
from .model.errors import Busy, Problem, StorageError
from .model.ids import encode_id, table_number_of
from .model.validators import Validator
from .model.values import (
    INT64_MAX,
    INT64_MIN,
    MAX_VALUE_NESTING,
    Document,
    Value,
    show,
)
from .store import Store

if TYPE_CHECKING:
    import httpx
    from hypothesis.strategies import SearchStrategy

    from .runtime.context import DatabaseReader, Transaction

DEFAULT_START_MS = 1_700_000_000_000.0
"""Where :class:`FakeClock` and the ``fake_clock`` fixture start: 2023-11-14T22:13:20Z."""


class FakeClock:
    """A clock for tests: milliseconds since the epoch that move only when told.

    Pass it to ``Store.open(..., clock=FakeClock(...))``; ``store.scheduler.advance``
    moves it and runs what became due.

    Example:
        >>> clock = FakeClock(1_000.0)
        >>> clock.advance(500)
        >>> clock()
        1500.0
    """

    def __init__(self, start_ms: float = DEFAULT_START_MS) -> None:
        self._now = float(start_ms)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """The current fake time in milliseconds since the epoch."""
        return self._now

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` (never backwards)."""
        if not ms >= 0:
            raise ValueError(f"FakeClock only moves forward; got advance({ms})")
        with self._lock:
            self._now += float(ms)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


# --------------------------------------------------------------------------- jobs


def scheduled_jobs(
    store: Store, *, state: str | None = None, name: str | None = None
) -> list[Document]:
    """The ``_scheduled_functions`` documents, oldest first, optionally filtered.

    Args:
        store: the store.
        state: only jobs in this state (``"pending"``, ``"inProgress"``,
            ``"success"``, ``"failed"``, ``"canceled"``).
        name: only jobs of this function path (``"file:name"``).
    """
    out = []
    for job in store.scheduler.jobs():
        job_state = job["state"]
        kind = job_state.get("kind") if isinstance(job_state, dict) else None
        if state is not None and kind != state:
            continue
        if name is not None and job["name"] != name:
            continue
        out.append(job)
    return out


# --------------------------------------------------------------------------- faults


class Faults:
    """Problems the next mutations will hit instead of running (see :func:`inject_faults`).

    Attributes:
        hits: the function paths that got a fault, in order.
    """

    def __init__(self, store: Store, problems: Sequence[Problem]) -> None:
        self._store = store
        self._queue = list(problems)
        self._lock = threading.Lock()
        self.hits: list[str] = []

    @property
    def remaining(self) -> int:
        """How many injected faults have not been hit yet."""
        return len(self._queue)

    def _take(self, path: str) -> Problem | None:
        with self._lock:
            if not self._queue:
                return None
            self.hits.append(path)
            return self._queue.pop(0)

    def clear(self) -> None:
        """Remove the faults not hit yet and stop injecting."""
        with self._lock:
            self._queue.clear()
        if self._store._testing.get("fault") == self._take:
            del self._store._testing["fault"]

    def __enter__(self) -> Faults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


def inject_faults(
    store: Store,
    *,
    busy: int = 0,
    storage_error: int = 0,
    problems: Sequence[Problem] = (),
) -> Faults:
    """Make the next mutations fail as if SQLite refused them, to test retry logic.

    The next ``busy`` mutations return ``Failure(Busy())`` and the ``storage_error``
    after them ``Failure(StorageError(...))``, then ``problems`` in order; each
    faulted mutation does not run at all (nothing written), exactly as when
    ``BEGIN IMMEDIATE`` times out. This covers ``store.mutation``,
    ``store.run``, an action's ``ctx.run_mutation`` and scheduled mutations (a
    scheduled job that hits a fault stays ``pending`` and runs on a later
    ``run_due``, as Convex retries internal errors). Queries are not affected.

    Use it as a context manager to remove faults not hit by the end of the block.

    Example:
        >>> from one_store import Store, mutation
        >>> @mutation
        ... def ping(ctx, args):
        ...     return "pong"
        >>> store = Store.memory()
        >>> faults = inject_faults(store, busy=1)
        >>> store.mutation(ping).failure().code, store.mutation(ping).unwrap()
        ('Busy', 'pong')
    """
    queue: list[Problem] = [Busy()] * busy
    queue += [StorageError("disk I/O error (injected by one_store.testing)")] * (
        storage_error
    )
    queue += list(problems)
    faults = Faults(store, queue)
    store._testing["fault"] = faults._take
    return faults


# --------------------------------------------------------------------------- trace


@frozen
class DocumentRead:
    """One document a call read (by ``get`` or as a query result)."""

    table: str
    id: str


@define
class IndexRangeRead:
    """One index range a query scanned, and the documents it returned.

    ``bounds`` are the range calls as written: ``("eq", "threadId", tid)``,
    ``("gt", "_creationTime", t0)``; ``()`` is the whole index. A text search
    has ``("search", field, text)`` and its ``("eq", field, value)`` filters, and
    ``order`` ``"relevance"``. A page of ``paginate`` shows the query's declared
    bounds (the cursor narrows them further).
    """

    table: str
    index: str
    bounds: tuple[tuple[str, str, Value], ...]
    order: str
    documents: list[str] = field(factory=list)

    def describe(self) -> str:
        """``agents.by_name [eq name "Ada"] asc -> 1 document(s)``."""
        bounds = ", ".join(f"{op} {f} {show(value)}" for op, f, value in self.bounds)
        return (
            f"{self.table}.{self.index} [{bounds or 'all'}] {self.order} "
            f"-> {len(self.documents)} document(s)"
        )


@frozen
class DocumentWrite:
    """One write: ``op`` is ``insert``, ``patch``, ``replace``, ``delete`` or ``schedule``."""

    op: str
    table: str
    id: str


@define
class CallTrace:
    """What one transaction (a query, a mutation, an action's step, a job) did.

    ``committed`` is True once a mutation's writes are kept (always False for a query).
    """

    kind: str
    path: str
    reads: list[DocumentRead] = field(factory=list)
    ranges: list[IndexRangeRead] = field(factory=list)
    writes: list[DocumentWrite] = field(factory=list)
    committed: bool = False

    def describe(self) -> str:
        """A few readable lines: the call, then each range, read and write."""
        status = "committed" if self.committed else "not committed"
        if self.kind == "query":
            status = "read"
        lines = [f"{self.kind} {self.path} ({status})"]
        lines += [f"  range {r.describe()}" for r in self.ranges]
        lines += [f"  read  {r.table} {r.id}" for r in self.reads]
        lines += [f"  {w.op:<7}{w.table} {w.id}" for w in self.writes]
        return "\n".join(lines)


@define
class Trace:
    """The calls recorded by :func:`trace`, in the order they started."""

    calls: list[CallTrace] = field(factory=list)

    @property
    def reads(self) -> list[DocumentRead]:
        """Every document read, across calls."""
        return [r for c in self.calls for r in c.reads]

    @property
    def ranges(self) -> list[IndexRangeRead]:
        """Every index range scanned, across calls."""
        return [r for c in self.calls for r in c.ranges]

    @property
    def writes(self) -> list[DocumentWrite]:
        """Every write of a committed call, across calls."""
        return [w for c in self.calls if c.committed for w in c.writes]

    def report(self) -> str:
        """All calls, described one after another."""
        return "\n".join(c.describe() for c in self.calls)


class _TracedQuery(Query):
    """A query that records the index range it scans and the documents it returns."""

    bounds: tuple[tuple[str, str, Value], ...] = ()

    def with_index(
        self,
        name: str,
        range_fn: Callable[[IndexRangeBuilder], IndexRangeBuilder] | None = None,
    ) -> Query:
        query = super().with_index(name, range_fn)  # raises first on a bad range
        ops: tuple[tuple[str, str, Value], ...] = ()
        if range_fn is not None:
            ops = tuple(range_fn(IndexRangeBuilder()).ops)  # type: ignore[arg-type]
        return _with_bounds(query, ops)

    def with_search_index(
        self, name: str, filter_fn: Callable[[SearchFilterBuilder], SearchFilterBuilder]
    ) -> Query:
        query = super().with_search_index(name, filter_fn)
        builder = filter_fn(SearchFilterBuilder())
        ops: list[tuple[str, str, Value]] = [
            ("search", f, text) for f, text in builder.search_calls
        ]
        ops += [("eq", f, cast(Value, value)) for f, value in builder.eqs]
        return _with_bounds(query, tuple(ops))

    def _rows(
        self, key_range: Any = None, limit: int | None = None, scan: Any = None
    ) -> Generator[tuple[Document, bytes], None, None]:
        tracer: _TxnTracer | None = self.db._txn.tracer
        record = None
        if tracer is not None:
            order = "relevance" if self.search is not None else self.order_
            record = IndexRangeRead(self.table, self.index, self.bounds, order)
            tracer.call.ranges.append(record)
        for doc, key in super()._rows(key_range, limit, scan):
            if record is not None:
                record.documents.append(str(doc["_id"]))
            yield doc, key


def _with_bounds(query: Query, ops: tuple[tuple[str, str, Value], ...]) -> Query:
    return query._with(bounds=ops)


class _TxnTracer:
    """Attached to a Transaction as ``txn.tracer``; fills one :class:`CallTrace`."""

    def __init__(self, txn: Transaction, call: CallTrace) -> None:
        self.txn = txn
        self.call = call

    def read(self, doc: Document) -> None:
        doc_id = str(doc.get("_id"))
        number = table_number_of(doc_id)
        table = self.txn.storage.table_of(number) if number is not None else None
        self.call.reads.append(DocumentRead(table or "?", doc_id))

    def query(self, reader: DatabaseReader, table: str) -> Query:
        return _TracedQuery(reader, table)

    def write(self, op: str, table: str, doc_id: str) -> None:
        self.call.writes.append(DocumentWrite(op, table, doc_id))


@contextlib.contextmanager
def trace(store: Store) -> Iterator[Trace]:
    """Record what every call on ``store`` reads and writes inside the block.

    Each transaction becomes a :class:`CallTrace`: a query, a mutation, each
    ``run_query``/``run_mutation`` step of an action (each its own transaction),
    each scheduled mutation. Nested ``ctx.run_query``/``run_mutation`` inside a
    mutation belong to that mutation's trace. ``committed`` says whether its
    writes were kept.

    Example:
        >>> from one_store import Store, define_schema, define_table, mutation, v
        >>> schema = define_schema({"agents": define_table({"name": v.string()}).index("by_name", ["name"])})
        >>> @mutation(args={"name": v.string()})
        ... def create(ctx, args):
        ...     if ctx.db.query("agents").with_index("by_name", lambda q: q.eq("name", args["name"])).first():
        ...         return None
        ...     return ctx.db.insert("agents", {"name": args["name"]})
        >>> store = Store.memory(schema)
        >>> with trace(store) as t:
        ...     _ = store.mutation(create, {"name": "Ada"})
        >>> t.calls[0].ranges[0].describe(), [w.op for w in t.writes]
        ('agents.by_name [eq name "Ada"] asc -> 0 document(s)', ['insert'])
    """
    recorded = Trace()

    def attach(txn: Transaction, kind: str, path: str) -> None:
        call = CallTrace(kind, path)
        recorded.calls.append(call)
        txn.tracer = _TxnTracer(txn, call)
        if txn.writable:
            txn.on_commit.append(lambda: setattr(call, "committed", True))

    previous = store._testing.get("trace")
    store._testing["trace"] = attach
    try:
        yield recorded
    finally:
        if previous is None:
            store._testing.pop("trace", None)
        else:
            store._testing["trace"] = previous


# --------------------------------------------------------------------------- strategies

_FIELD_ALPHABET = string.ascii_letters + string.digits + "_"
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Convex's base32
DEFAULT_TABLE_NUMBER = 10_001


HYPOTHESIS_MISSING = (
    "one_store.testing's strategies (from_validator, any_value) need Hypothesis, "
    "which is not installed: pip install 'one-store[testing]' (pytest and "
    "hypothesis)"
)


def _st() -> Any:
    try:
        import hypothesis.strategies as st
    except ImportError as e:  # an optional dependency: name the extra
        raise ImportError(HYPOTHESIS_MISSING, name="hypothesis") from e
    return st


def _field_names() -> SearchStrategy[str]:
    st = _st()
    return st.text(_FIELD_ALPHABET, min_size=1, max_size=12)  # type: ignore[no-any-return]


def any_value(max_leaves: int = 20) -> SearchStrategy[Value]:
    """Any Convex value: null, bool, int64, float, str, bytes, lists and objects."""
    st = _st()
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(INT64_MIN, INT64_MAX),
        st.floats(),
        st.text(max_size=20),
        st.binary(max_size=20),
    )
    return st.recursive(  # type: ignore[no-any-return]
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(_field_names(), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def from_validator(
    validator: Validator,
    *,
    invalid: bool = False,
    tables: Mapping[str, int] | None = None,
) -> SearchStrategy[Any]:
    """A Hypothesis strategy of values ``validator`` accepts (or, ``invalid=True``, rejects).

    Every valid value passes ``validator.validate(x)`` and every invalid one fails
    it (``tests/unit/test_testing.py`` proves both for generated validators).
    Invalid values are built from the validator's shape, not filtered: a wrong
    type, a missing required field, an extra field, an invalid element or
    record value, an int outside int64, a malformed ID, a different literal.

    Args:
        validator: any ``v.*`` validator (an ``args=`` dict: wrap it in ``v.object``).
        invalid: generate values the validator rejects instead.
        tables: table name -> table number for ``v.id`` values; use
            ``store.storage.table_number(name)`` to make IDs that pass a store's
            checks (they name no existing document). Defaults to 10001.

    Example:
        >>> from hypothesis import given
        >>> from one_store import v
        >>> agent = v.object({"name": v.string(), "age": v.optional(v.int64())})
        >>> @given(from_validator(agent))
        ... def test_agents_validate(value):
        ...     assert agent.validate(value).unwrap() == value
        >>> test_agents_validate()
    """
    if not isinstance(validator, Validator):
        raise TypeError(f"from_validator() takes a v.* validator, got {validator!r}")
    numbers = dict(tables or {})
    strategy: SearchStrategy[Any] = (
        _invalid(validator, numbers) if invalid else _valid(validator, numbers)
    )
    return strategy


def _id_strategy(table: str | None, numbers: Mapping[str, int]) -> SearchStrategy[str]:
    st = _st()
    number = numbers.get(table or "", DEFAULT_TABLE_NUMBER)
    return st.binary(min_size=16, max_size=16).map(lambda raw: encode_id(number, raw))  # type: ignore[no-any-return]


def _valid(val: Validator, numbers: Mapping[str, int], depth: int = 0) -> Any:
    st = _st()
    match val.kind:
        case "string":
            return st.text(max_size=30)
        case "number":
            return st.one_of(st.floats(), st.integers(-(2**53), 2**53))
        case "int64":
            return st.integers(INT64_MIN, INT64_MAX)
        case "boolean":
            return st.booleans()
        case "bytes":
            return st.binary(max_size=30)
        case "null":
            return st.none()
        case "any":
            return any_value()
        case "id":
            return _id_strategy(val.table, numbers)
        case "literal":
            return st.just(val.literal)
        case "array":
            assert val.element is not None
            return st.lists(_valid(val.element, numbers, depth + 1), max_size=4)
        case "object":
            required = {
                name: _valid(f, numbers, depth + 1)
                for name, f in val.fields
                if not f.is_optional
            }
            optional = {
                name: _valid(f, numbers, depth + 1)
                for name, f in val.fields
                if f.is_optional
            }
            return st.fixed_dictionaries(required, optional=optional)
        case "record":
            assert val.keys is not None
            assert val.values is not None
            keys = _keys(val.keys, numbers)
            return st.dictionaries(
                keys, _valid(val.values, numbers, depth + 1), max_size=4
            )
        case "union":
            return st.one_of(*(_valid(m, numbers, depth + 1) for m in val.members))
    raise TypeError(f"unknown validator kind {val.kind!r}")  # pragma: no cover


# The Python types each kind accepts (bool before int: bool is an int subclass).
_TAGS = ("str", "float", "int", "bool", "bytes", "null", "list", "dict")


def _accepted(val: Validator) -> set[str]:
    match val.kind:
        case "string" | "id":
            return {"str"}
        case "number":
            return {"float", "int"}
        case "int64":
            return {"int"}
        case "boolean":
            return {"bool"}
        case "bytes":
            return {"bytes"}
        case "null":
            return {"null"}
        case "any":
            return set(_TAGS)
        case "literal":
            lit = val.literal
            return {
                "bool"
                if isinstance(lit, bool)
                else "int"
                if isinstance(lit, int)
                else "float"
                if isinstance(lit, float)
                else "str"
            }
        case "array":
            return {"list"}
        case "object" | "record":
            return {"dict"}
        case "union":
            return set().union(*(_accepted(m) for m in val.members))
    raise TypeError(f"unknown validator kind {val.kind!r}")  # pragma: no cover


def _of_tag(tag: str) -> Any:
    st = _st()
    return {
        "str": st.text(max_size=10),
        "float": st.floats(),
        "int": st.integers(INT64_MIN, INT64_MAX),
        "bool": st.booleans(),
        "bytes": st.binary(max_size=10),
        "null": st.none(),
        "list": st.lists(st.none(), max_size=2),
        "dict": st.dictionaries(_field_names(), st.none(), max_size=2),
    }[tag]


def _not_convex(accepts_number: bool) -> Any:
    """Values no validator accepts: not Convex values at all."""
    st = _st()
    options = [
        st.sets(st.integers(), max_size=2),
        st.just(object()),
        st.dictionaries(
            st.text(_FIELD_ALPHABET, max_size=5).map(lambda k: "$" + k),
            st.none(),
            min_size=1,
        ),
        st.just(_nested(MAX_VALUE_NESTING + 5)),
    ]
    if not accepts_number:  # v.number() takes any int and stores float(x)
        options.append(st.integers(min_value=INT64_MAX + 1))
        options.append(st.integers(max_value=INT64_MIN - 1))
    return st.one_of(*options)


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def _keys(val: Validator, numbers: Mapping[str, int]) -> Any:
    """Valid record keys: field names (strings) or IDs."""
    st = _st()
    if val.kind == "union":
        return st.one_of(*(_keys(m, numbers) for m in val.members))
    if val.kind == "id":
        return _id_strategy(val.table, numbers)
    return _field_names()


def _invalid(val: Validator, numbers: Mapping[str, int]) -> Any:
    """Values ``val`` rejects, built from its shape."""
    st = _st()
    accepted = _accepted(val)
    wrong = [t for t in _TAGS if t not in accepted]
    options = [_not_convex("float" in accepted)]
    if wrong:
        options.append(st.one_of(*(_of_tag(t) for t in wrong)))
    match val.kind:
        case "int64":
            options.append(st.integers(min_value=INT64_MAX + 1))
        case "id":
            # Strings with characters outside Convex's base32 are never IDs.
            options.append(st.text(alphabet="!#%&*+-./:;<=>?@IiLlOoUu ", max_size=40))
        case "literal":
            lit = val.literal
            if isinstance(lit, str):
                options.append(st.text(max_size=10).filter(lambda x: x != lit))
            elif isinstance(lit, bool):
                options.append(st.just(not lit))
            elif isinstance(lit, int):
                options.append(
                    st.integers(INT64_MIN, INT64_MAX).filter(lambda x: x != lit)
                )
            else:
                options.append(st.floats().filter(lambda x: x != lit))
        case "array":
            assert val.element is not None
            options.append(
                st.tuples(
                    st.lists(_valid(val.element, numbers), max_size=3),
                    _invalid(val.element, numbers),
                    st.integers(0, 3),
                ).map(lambda t: [*t[0][: t[2]], t[1], *t[0][t[2] :]])
            )
        case "object":
            options.append(_invalid_object(val, numbers))
        case "record":
            assert val.keys is not None
            assert val.values is not None
            keys = _keys(val.keys, numbers)
            options.append(
                st.tuples(
                    st.dictionaries(keys, _valid(val.values, numbers), max_size=3),
                    keys,
                    _invalid(val.values, numbers),
                ).map(lambda t: {**t[0], t[1]: t[2]})
            )
        case "union":
            literals = [m.literal for m in val.members if m.kind == "literal"]
            if all(m.kind == "literal" for m in val.members) and all(
                isinstance(x, str) for x in literals
            ):
                options.append(st.text(max_size=10).filter(lambda x: x not in literals))
    return st.one_of(*options)


def _invalid_object(val: Validator, numbers: Mapping[str, int]) -> Any:
    st = _st()
    fields = dict(val.fields)
    valid = _valid(val, numbers)
    broken = []
    required = [name for name, f in val.fields if not f.is_optional]
    if required:  # a required field missing
        broken.append(
            st.tuples(valid, st.sampled_from(required)).map(
                lambda t: {k: x for k, x in t[0].items() if k != t[1]}
            )
        )
    # an extra field
    extra = _field_names().filter(lambda k: k not in fields)
    broken.append(
        st.tuples(valid, extra, any_value(5)).map(lambda t: {**t[0], t[1]: t[2]})
    )
    # one field with a value its validator rejects
    if fields:
        names = sorted(fields)
        broken.append(
            st.tuples(valid, st.sampled_from(names)).flatmap(
                lambda t: _invalid(fields[t[1]], numbers).map(
                    lambda bad: {**t[0], t[1]: bad}
                )
            )
        )
    return st.one_of(*broken)


# --------------------------------------------------------------------------- pytest plugin

try:
    import pytest
except ImportError:  # pragma: no cover - the kit works without pytest, minus fixtures
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    def pytest_addoption(parser: pytest.Parser) -> None:
        """The ``one_store_app`` ini option: the app folder ``app_store`` loads."""
        parser.addini(
            "one_store_app",
            "app folder (relative to the rootdir) for the one_store app_store fixture",
            default="",
        )

    def pytest_configure(config: pytest.Config) -> None:
        """Register the ``one_store_app`` marker."""
        config.addinivalue_line(
            "markers",
            "one_store_app(path): the app folder the app_store fixture loads for this test",
        )

    @pytest.fixture
    def fake_clock() -> FakeClock:
        """A :class:`FakeClock` at 2023-11-14T22:13:20Z that moves only when told."""
        return FakeClock(DEFAULT_START_MS)

    @pytest.fixture
    def one_store_app(request: pytest.FixtureRequest) -> str | None:
        """The app folder ``app_store`` loads: the ``one_store_app`` marker, else the ini option.

        A relative path is taken from pytest's rootdir. Override this fixture in a
        ``conftest.py`` to choose the app in code.
        """
        marker = request.node.get_closest_marker("one_store_app")
        chosen = marker.args[0] if marker is not None else None
        if chosen is None:
            chosen = str(request.config.getini("one_store_app") or "") or None
        if chosen is None:
            return None
        path = Path(os.fspath(chosen))
        if not path.is_absolute():
            path = Path(request.config.rootpath) / path
        return str(path)

    @pytest.fixture
    def one_store_http() -> httpx.Client | None:
        """The ``httpx.Client`` actions get as ``ctx.http`` in ``app_store`` (None: a real one).

        Override it to answer outbound HTTP in tests, e.g. with
        ``httpx.Client(transport=httpx.MockTransport(handler))``.
        """
        return None

    @pytest.fixture
    def app_store(
        one_store_app: str | None,
        fake_clock: FakeClock,
        one_store_http: httpx.Client | None,
    ) -> Iterator[Store]:
        """An in-memory store of the app, on ``fake_clock``, seeded (``seed=0``).

        Limits are enforced exactly as in production. Without an app (no marker,
        no ini option) it is an empty store without a schema.
        """
        with Store.memory(
            app=one_store_app, clock=fake_clock, seed=0, http=one_store_http
        ) as store:
            yield store


__all__ = [
    "DEFAULT_START_MS",
    "CallTrace",
    "DocumentRead",
    "DocumentWrite",
    "FakeClock",
    "Faults",
    "IndexRangeRead",
    "Trace",
    "any_value",
    "from_validator",
    "inject_faults",
    "scheduled_jobs",
    "trace",
]
