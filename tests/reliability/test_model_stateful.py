"""A Hypothesis state machine comparing a file-backed Store with a dict model.

Rules insert, patch, replace and delete documents (also of missing ids), run
mutations that write and then fail in every way a handler can (return
``Failure``, raise ``ConvexError``, raise another exception, write an invalid
document, touch a deleted document), batch several writes in one mutation, query
indexes with every range shape in both orders, paginate across other writes and
across reopening the file, and reopen the file. After every step the whole table
must equal the model. The model's order is ``model.order_key`` (written from the
Convex total order in the reference), never one_store's encoder.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from returns.result import Failure, Result, Success

from one_store import (
    UNSET,
    ConvexError,
    DocumentInvalid,
    DocumentNotFound,
    HandlerError,
    NotUnique,
    Rejected,
    Store,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from tests.reliability.conftest import long_run
from tests.reliability.model import (
    INT64_MAX,
    INT64_MIN,
    Clock,
    index_key,
    normalized,
    order_key,
    same,
)

schema = define_schema(
    {
        "items": define_table(
            {
                "k": v.optional(v.any()),
                "g": v.optional(v.string()),
                "n": v.optional(v.int64()),
            }
        )
        .index("by_k", ["k"])
        .index("by_g_n", ["g", "n"])
    }
)
INDEXES: dict[str, tuple[str, ...]] = {
    "by_k": ("k",),
    "by_g_n": ("g", "n"),
    "by_creation_time": (),
}

# --------------------------------------------------------------------- strategies

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([0.0, -0.0, 1.0, -1.5, math.inf, -math.inf, math.nan]),
    st.floats(allow_nan=False, width=64),
    st.text(alphabet="ab\x00\u00e9\U0001f600", max_size=3),
    st.binary(max_size=3),
)
key_value = st.one_of(
    leaf,
    st.lists(leaf, max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "_c"]), leaf, max_size=2),
)
maybe_key = st.one_of(st.just(UNSET), key_value)
group = st.sampled_from(["x", "y", "z", ""])
number = st.one_of(st.integers(-3, 3), st.integers(INT64_MIN, INT64_MAX))
fields = st.fixed_dictionaries({}, optional={"k": key_value, "g": group, "n": number})
patch_fields = st.fixed_dictionaries(
    {},
    optional={
        "k": maybe_key,
        "g": st.one_of(st.just(UNSET), group),
        "n": st.one_of(st.just(UNSET), number),
    },
)
comparison = st.sampled_from(["gt", "gte"]), st.sampled_from(["lt", "lte"])


@st.composite
def index_range(draw: st.DrawFn, fields: tuple[str, ...]) -> dict[str, Any]:
    """A legal range: equalities on a prefix, then optional bounds on the next field."""
    values = {
        "k": maybe_key,
        "g": st.one_of(st.just(UNSET), group),
        "n": st.one_of(st.just(UNSET), number),
    }
    n_eq = draw(st.integers(0, len(fields)))
    eqs = [(f, draw(values[f])) for f in fields[:n_eq]]
    lower = upper = None
    if n_eq < len(fields):
        field = fields[n_eq]
        if draw(st.booleans()):
            lower = (draw(comparison[0]), field, draw(values[field]))
        if draw(st.booleans()):
            upper = (draw(comparison[1]), field, draw(values[field]))
    return {"eqs": eqs, "lower": lower, "upper": upper}


def apply_range(q: Any, spec: Mapping[str, Any]) -> Any:
    """Build the range with one_store's builder."""
    for f, value in spec["eqs"]:
        q = q.eq(f, value)
    for bound in (spec["lower"], spec["upper"]):
        if bound is not None:
            op, f, value = bound
            q = getattr(q, op)(f, value)
    return q


def in_range(doc: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """Whether the model says ``doc`` lies in the range (Convex total order)."""
    for f, value in spec["eqs"]:
        if order_key(doc.get(f, UNSET)) != order_key(value):
            return False
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for bound in (spec["lower"], spec["upper"]):
        if bound is not None:
            op, f, value = bound
            if not tests[op](order_key(doc.get(f, UNSET)), order_key(value)):
                return False
    return True


# --------------------------------------------------------------------- functions


@mutation(
    args={
        "k": v.optional(v.any()),
        "g": v.optional(v.string()),
        "n": v.optional(v.int64()),
    }
)
def insert_item(ctx: Any, args: dict[str, Any]) -> Any:
    item_id = ctx.db.insert("items", dict(args))
    return [item_id, ctx.db.get(item_id)]


@query(args={"id": v.string()})
def get_item(ctx: Any, args: dict[str, Any]) -> Any:
    return ctx.db.get(args["id"])


@query
def all_items(ctx: Any, args: dict[str, Any]) -> Any:
    return ctx.db.query("items").collect()


@mutation(
    args={
        "mode": v.string(),
        "target": v.optional(v.string()),
        "gone": v.optional(v.string()),
    }
)
def write_then_fail(ctx: Any, args: dict[str, Any]) -> Any:
    """Write several things, then fail in the way ``mode`` names."""
    new_id = ctx.db.insert("items", {"k": "doomed", "g": "x"})
    ctx.db.patch(new_id, {"n": 1})
    if "target" in args:
        ctx.db.patch(args["target"], {"k": "doomed", "g": UNSET})
        if args["mode"] != "missing":
            ctx.db.delete(args["target"])
    match args["mode"]:
        case "return_failure":
            return Failure(Rejected("nope"))
        case "convex_error":
            raise ConvexError({"mode": "convex_error", "n": 1})
        case "exception":
            raise RuntimeError("boom")
        case "invalid_write":
            ctx.db.patch(new_id, {"n": "not an int64"})
        case "missing":
            ctx.db.delete(args["gone"])
    return new_id


FAILURE_MODES = (
    "return_failure",
    "convex_error",
    "exception",
    "invalid_write",
    "missing",
)


def expected_failure(mode: str, problem: object) -> bool:
    """Whether ``problem`` is the Failure a ``write_then_fail`` mode must give."""
    match mode, problem:
        case "return_failure", Rejected(data="nope"):
            return True
        case "convex_error", Rejected(data={"mode": "convex_error", "n": 1}):
            return True
        case "exception", HandlerError(exception=RuntimeError(args=("boom",))):
            return True
        case "invalid_write", DocumentInvalid(table="items"):
            return True
        case "missing", DocumentNotFound():
            return True
    return False


def run_read(store: Store, build: Callable[[Any], Any]) -> Result[Any, Any]:
    """Run ``build(ctx.db)`` as a query function of its own."""

    @query
    def read(ctx: Any, args: dict[str, Any]) -> Any:
        return build(ctx.db)

    return store.query(read)


# --------------------------------------------------------------------- the machine


class StoreVersusModel(RuleBasedStateMachine):
    """One file-backed store, one dict model, the same operations on both."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="one_store_model_"))
        self.path = self.dir / "model.db"
        self.clock = Clock()
        self.store = Store.open(self.path, schema=schema, clock=self.clock)
        self.model: dict[str, dict[str, Any]] = {}
        self.gone: list[str] = []
        self.last_time = 0.0
        self.pager: dict[str, Any] | None = None

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- helpers

    def pick(self, index: int, *, live: bool = True) -> str:
        # Insertion order, not ID order: IDs are random, and the choice must replay.
        pool = list(self.model) if live else self.gone
        return pool[index % len(pool)]

    def record_insert(
        self, doc: dict[str, Any], expected_fields: Mapping[str, Any]
    ) -> None:
        created = doc["_creationTime"]
        assert isinstance(created, float)
        assert created > self.last_time, "_creationTime must strictly increase"
        assert created >= self.clock.now, "_creationTime must not precede the clock"
        self.last_time = created
        fields: Any = normalized(expected_fields)
        expected = {"_id": doc["_id"], "_creationTime": created, **fields}
        assert same(doc, expected)
        self.model[doc["_id"]] = expected

    def dump(self) -> list[str]:
        return list(self.store.storage.connection.iterdump())

    # ---------------------------------------------------------------- writes

    @rule(ms=st.sampled_from([0.0, 0.0, 0.25, 1.0, 1000.0]))
    def advance_clock(self, ms: float) -> None:
        self.clock.advance(ms)

    @rule(doc=fields)
    def insert(self, doc: dict[str, Any]) -> None:
        result = self.store.mutation(insert_item, doc)
        assert isinstance(result, Success), result
        item_id, stored = result.unwrap()
        assert stored["_id"] == item_id
        self.record_insert(stored, doc)

    @precondition(lambda self: self.model)
    @rule(index=st.integers(0, 10**6), patch=patch_fields, with_system=st.booleans())
    def patch(self, index: int, patch: dict[str, Any], with_system: bool) -> None:
        target = self.pick(index)
        body = dict(patch)
        if with_system:  # Convex allows repeating the unchanged system fields
            body["_id"] = target
            body["_creationTime"] = self.model[target]["_creationTime"]
        result = self.store.run(lambda ctx: ctx.db.patch(target, body))
        assert result == Success(None), result
        merged = {**self.model[target], **patch}
        self.model[target] = {k: val for k, val in merged.items() if val is not UNSET}

    @precondition(lambda self: self.model)
    @rule(index=st.integers(0, 10**6), doc=fields)
    def replace(self, index: int, doc: dict[str, Any]) -> None:
        target = self.pick(index)
        result = self.store.run(lambda ctx: ctx.db.replace(target, doc))
        assert result == Success(None), result
        old = self.model[target]
        self.model[target] = {
            "_id": target,
            "_creationTime": old["_creationTime"],
            **doc,
        }

    @precondition(lambda self: self.model)
    @rule(index=st.integers(0, 10**6))
    def delete(self, index: int) -> None:
        target = self.pick(index)
        assert self.store.run(lambda ctx: ctx.db.delete(target)) == Success(None)
        del self.model[target]
        self.gone.append(target)

    @rule(first=fields, second=fields, patch=patch_fields)
    def batch(
        self, first: dict[str, Any], second: dict[str, Any], patch: dict[str, Any]
    ) -> None:
        """Several writes in one mutation, reading its own writes along the way."""

        def handler(ctx: Any) -> Any:
            a = ctx.db.insert("items", first)
            b = ctx.db.insert("items", second)
            ctx.db.patch(a, patch)
            seen = ctx.db.get(a)
            ctx.db.delete(b)
            return [ctx.db.get(a), seen, ctx.db.get(b)]

        result = self.store.run(handler)
        assert isinstance(result, Success), result
        final, seen, deleted = result.unwrap()
        assert deleted is None
        assert same(final, seen)
        merged = {**first, **patch}
        self.record_insert(
            final, {k: val for k, val in merged.items() if val is not UNSET}
        )

    # ---------------------------------------------------------------- failures

    @rule(mode=st.sampled_from(FAILURE_MODES), index=st.integers(0, 10**6))
    def failing_mutation(self, mode: str, index: int) -> None:
        if mode == "missing" and not self.gone:
            mode = "exception"
        args: dict[str, Any] = {"mode": mode}
        if self.model:
            args["target"] = self.pick(index)
        if mode == "missing":
            args["gone"] = self.pick(index, live=False)
        before = self.dump()
        result = self.store.mutation(write_then_fail, args)
        assert isinstance(result, Failure), result
        assert expected_failure(mode, result.failure()), result
        assert self.dump() == before, "a failed mutation left a trace"

    @precondition(lambda self: self.gone)
    @rule(
        index=st.integers(0, 10**6), op=st.sampled_from(["patch", "replace", "delete"])
    )
    def write_missing(self, index: int, op: str) -> None:
        target = self.pick(index, live=False)
        calls: dict[str, Callable[[Any], Any]] = {
            "patch": lambda ctx: ctx.db.patch(target, {"g": "x"}),
            "replace": lambda ctx: ctx.db.replace(target, {"g": "x"}),
            "delete": lambda ctx: ctx.db.delete(target),
        }
        before = self.dump()
        result = self.store.run(calls[op])
        assert isinstance(result, Failure), result
        assert isinstance(result.failure(), DocumentNotFound), result
        assert self.dump() == before

    @precondition(lambda self: self.model)
    @rule(index=st.integers(0, 10**6))
    def invalid_patch(self, index: int) -> None:
        target = self.pick(index)
        before = self.dump()
        result = self.store.run(lambda ctx: ctx.db.patch(target, {"n": 1.5}))
        assert isinstance(result, Failure), result
        assert isinstance(result.failure(), DocumentInvalid), result
        assert self.dump() == before

    # ---------------------------------------------------------------- reads

    @rule(index=st.integers(0, 10**6))
    def get(self, index: int) -> None:
        if not self.model and not self.gone:
            return
        live = not self.gone or (self.model and index % 2 == 0)
        target = self.pick(index, live=bool(live))
        result = self.store.query(get_item, {"id": target})
        assert isinstance(result, Success), result
        expected = self.model.get(target)
        if expected is None:
            assert result.unwrap() is None
        else:
            assert same(result.unwrap(), expected)

    @rule(
        data=st.data(),
        index=st.sampled_from(sorted(INDEXES)),
        desc=st.booleans(),
        terminal=st.sampled_from(["collect", "take", "first", "unique"]),
        n=st.integers(0, 4),
    )
    def indexed_query(
        self, data: st.DataObject, index: str, desc: bool, terminal: str, n: int
    ) -> None:
        fields = INDEXES[index]
        spec = (
            data.draw(index_range(fields))
            if fields
            else {"eqs": [], "lower": None, "upper": None}
        )

        def build(db: Any) -> Any:
            q = db.query("items").with_index(index, lambda r: apply_range(r, spec))
            q = q.order("desc" if desc else "asc")
            if terminal == "take":
                return q.take(n)
            return getattr(q, terminal)()

        matching = sorted(
            (d for d in self.model.values() if in_range(d, spec)),
            key=lambda d: index_key(d, fields),
            reverse=desc,
        )
        result = run_read(self.store, build)
        if terminal == "unique" and len(matching) > 1:
            assert isinstance(result, Failure), result
            assert isinstance(result.failure(), NotUnique), result
            return
        expected: Any = {
            "collect": matching,
            "take": matching[:n],
            "first": matching[0] if matching else None,
            "unique": matching[0] if matching else None,
        }[terminal]
        assert isinstance(result, Success), result
        assert same(result.unwrap(), expected), (spec, result.unwrap(), expected)

    @rule(data=st.data(), n=st.integers(1, 4))
    def paginate(self, data: st.DataObject, n: int) -> None:
        """One page of a pagination that may span other writes and reopens."""
        if self.pager is None:
            index = data.draw(st.sampled_from(["by_k", "by_g_n"]))
            self.pager = {
                "index": index,
                "spec": data.draw(index_range(INDEXES[index])),
                "desc": data.draw(st.booleans()),
                "cursor": None,
                "after": None,
            }
        pager = self.pager
        fields = INDEXES[pager["index"]]

        def build(db: Any) -> Any:
            q = db.query("items").with_index(
                pager["index"], lambda r: apply_range(r, pager["spec"])
            )
            q = q.order("desc" if pager["desc"] else "asc")
            return q.paginate({"numItems": n, "cursor": pager["cursor"]})

        candidates = sorted(
            (d for d in self.model.values() if in_range(d, pager["spec"])),
            key=lambda d: index_key(d, fields),
            reverse=pager["desc"],
        )
        if pager["after"] is not None:
            after = pager["after"]
            candidates = [
                d
                for d in candidates
                if (
                    index_key(d, fields) < after
                    if pager["desc"]
                    else index_key(d, fields) > after
                )
            ]
        result = run_read(self.store, build)
        assert isinstance(result, Success), result
        page = result.unwrap()
        assert same(page["page"], candidates[:n]), (pager, page, candidates[:n])
        assert page["isDone"] is (len(candidates) < n)
        if page["isDone"]:
            self.pager = None
            return
        pager["cursor"] = page["continueCursor"]
        pager["after"] = index_key(candidates[n - 1], fields)

    # ---------------------------------------------------------------- lifecycle

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store.open(self.path, schema=schema, clock=self.clock)

    @invariant()
    def matches_model(self) -> None:
        result = self.store.query(all_items)
        assert isinstance(result, Success), result
        expected = sorted(self.model.values(), key=lambda d: index_key(d, ()))
        assert same(result.unwrap(), expected)


# CI: 20 runs of 30 steps. Long (HYPOTHESIS_PROFILE=long): 250 x 50 = 12,500 steps.
StoreVersusModel.TestCase.settings = settings(
    max_examples=250 if long_run() else 20,
    stateful_step_count=50 if long_run() else 30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStoreVersusModel = StoreVersusModel.TestCase
