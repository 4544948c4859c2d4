"""Every operator form of a filter returns what its builder form returns.

Random documents and random filter expressions (comparisons, int64/float64
arithmetic, ``neg``, ``and``/``or``/``not``, fields and literals of every type,
nested) are built twice: with the builder's methods (``q.eq``, ``q.add``,
``q.and_``, ...) as in Convex's JS, and with Python's operators (``==``, ``+``,
``&``, ...; a literal on the left goes through Python's reflected and mirrored
forms). Both run through a real ``Store`` query with ``.filter``; the outcome must
be the same: the same documents in the same order, or the same error with the
same text (an EvalError, e.g. an int64 overflow or a non-boolean predicate).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from returns.result import Success

from one_store import UNSET, HandlerError, Store, define_schema, define_table, v
from one_store.engine.filters import Expr, FilterBuilder

SCHEMA = define_schema(
    {
        "t": define_table(
            {
                "a": v.optional(v.any()),
                "b": v.optional(v.any()),
                "c": v.optional(v.any()),
            }
        )
    }
)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Few values, so that equalities hit; int64 extremes for overflow, every float
# oddity, and one value of every other Convex type.
VALUES: list[Any] = [
    None,
    0,
    1,
    2,
    -1,
    -7,
    INT64_MAX,
    INT64_MIN,
    0.0,
    -0.0,
    1.5,
    -2.5,
    math.inf,
    math.nan,
    True,
    False,
    "x",
    "y",
    b"x",
    [1],
    {"k": 1},
]
values = st.sampled_from(VALUES)

ARITHMETIC = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "mod": operator.mod,
}
COMPARISON = {
    "eq": operator.eq,
    "neq": operator.ne,
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}
OPERATORS = {**ARITHMETIC, **COMPARISON}

# An expression spec: ("field", path) | ("lit", value) | ("bin", op, left, right)
# | ("neg", x) | ("not", x) | ("and" | "or", [x, y, ...]).
fields = st.sampled_from([("field", "a"), ("field", "b"), ("field", "c.d")])
literals = st.one_of(values, st.just(UNSET)).map(lambda value: ("lit", value))
leaves = st.one_of(fields, literals)
# Mostly plain fields and literals, so that many filters select some documents
# rather than fail on mixed-type arithmetic.
terms = st.one_of(
    leaves,
    leaves,
    st.recursive(
        leaves,
        lambda t: st.one_of(
            st.tuples(st.just("bin"), st.sampled_from(sorted(ARITHMETIC)), t, t),
            st.tuples(st.just("neg"), t),
        ),
        max_leaves=4,
    ),
)
comparison_ops = st.sampled_from(sorted(COMPARISON))
comparisons = st.one_of(
    st.tuples(st.just("bin"), comparison_ops, terms, terms),
    # The usual shapes, a field and a literal, either way round (reflected).
    st.tuples(st.just("bin"), comparison_ops, fields, literals),
    st.tuples(st.just("bin"), comparison_ops, literals, fields),
)
predicates = st.recursive(
    comparisons,
    lambda p: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), st.lists(p, min_size=2, max_size=3)),
        st.tuples(st.just("not"), p),
    ),
    max_leaves=6,
)
# Now and then a bare term: a predicate that is not a boolean is an EvalError.
filters = st.sampled_from([predicates] * 9 + [terms]).flatmap(lambda s: s)
# A field is missing now and then (UNSET), as a key absent from the document.
maybe = st.one_of(values, st.just(UNSET))


def _present(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: _present(x) if k == "c" else x for k, x in doc.items() if x is not UNSET}


documents = st.fixed_dictionaries(
    {"a": maybe, "b": maybe, "c": st.fixed_dictionaries({"d": maybe})}
).map(_present)


def by_builder(spec: Any, q: FilterBuilder) -> Any:
    """The expression written with the builder's methods, as in Convex's JS."""
    kind = spec[0]
    if kind == "field":
        return q.field(spec[1])
    if kind == "lit":
        return spec[1]
    if kind == "bin":
        method = getattr(q, spec[1])
        return method(by_builder(spec[2], q), by_builder(spec[3], q))
    if kind == "neg":
        return q.neg(by_builder(spec[1], q))
    if kind == "not":
        return q.not_(by_builder(spec[1], q))
    parts = [by_builder(part, q) for part in spec[1]]
    return q.and_(*parts) if kind == "and" else q.or_(*parts)


def by_operators(spec: Any, q: FilterBuilder) -> Any:
    """The same expression written with Python's operators wherever Python allows.

    Where no operand is an expression, Python computes the operator itself (``1 ==
    2`` is ``False``, ``~True`` is ``-2``), which is not the question here, so that
    node uses the builder; so does a ``str``/``bytes`` literal left of ``%``, which
    is Python's string formatting.
    """
    kind = spec[0]
    if kind in ("field", "lit"):
        return by_builder(spec, q)
    if kind == "bin":
        left, right = by_operators(spec[2], q), by_operators(spec[3], q)
        python_formats = spec[1] == "mod" and isinstance(left, str | bytes)
        if (isinstance(left, Expr) or isinstance(right, Expr)) and not python_formats:
            return OPERATORS[spec[1]](left, right)
        return getattr(q, spec[1])(left, right)
    if kind in ("neg", "not"):
        inner = by_operators(spec[1], q)
        if not isinstance(inner, Expr):
            return getattr(q, "neg" if kind == "neg" else "not_")(inner)
        return -inner if kind == "neg" else ~inner
    parts = [by_operators(part, q) for part in spec[1]]
    if not (isinstance(parts[0], Expr) or isinstance(parts[1], Expr)):
        return q.and_(*parts) if kind == "and" else q.or_(*parts)
    return functools.reduce(operator.and_ if kind == "and" else operator.or_, parts)


def outcome(store: Store, predicate: Callable[[FilterBuilder], Any]) -> object:
    """The documents' ids, or the error's type and text."""
    result = store.run(
        lambda ctx: [d["_id"] for d in ctx.db.query("t").filter(predicate).collect()]
    )
    if isinstance(result, Success):
        return result.unwrap()
    problem = result.failure()
    assert isinstance(problem, HandlerError), problem
    return type(problem.exception).__name__, str(problem.exception)


@given(st.lists(documents, min_size=1, max_size=8), filters)
def test_every_operator_form_returns_what_its_builder_form_returns(
    docs: list[dict[str, Any]], spec: Any
) -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        store.run(lambda ctx: [ctx.db.insert("t", d) for d in docs]).unwrap()
        want = outcome(store, lambda q: by_builder(spec, q))
        got = outcome(store, lambda q: by_operators(spec, q))
    assert got == want
