"""Tests for one_store.engine.filters: Python's operators as aliases of the builder.

Convex's filter builder (convex-js ``filter_builder.ts``) has only methods; a Python
user writes ``q.field("a") == 1`` and expects what ``q.eq(q.field("a"), 1)`` does.
Each operator must build the builder's own node (so evaluation, errors, cursors and
the SQL prefilter are the builder's), and ``bool()`` of an expression must fail
loudly, so ``and``/``or``/``not``/``if`` and chained comparisons can never drop a
condition. The expected results are Convex's (crates/common/src/query.rs ``eval``):
int64 ``/`` truncates and ``%`` takes the dividend's sign, as Rust's.
"""

# ruff: noqa: SIM300
# (Yoda conditions, `1 == q.field("a")`, are the reflected forms under test.)
from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from one_store import HandlerError, Store, define_schema, define_table, v
from one_store.engine.backend import IndexScan
from one_store.engine.filters import Expr, FilterBuilder, FilterError, compile_expr
from one_store.engine.query import plan
from one_store.engine.sqlite.scans import index_scan_sql

SCHEMA = define_schema(
    {
        "items": define_table(
            {
                "name": v.optional(v.any()),
                "a": v.optional(v.any()),
                "b": v.optional(v.any()),
            }
        ).index("by_name", ["name"]),
    }
)

DOCS: list[dict[str, Any]] = [
    {"name": "r0", "a": 1, "b": 2},
    {"name": "r1", "a": -7, "b": 2},
    {"name": "r2", "a": 4, "b": 4},
    {"name": "r3", "a": 2.5, "b": 0.5},
    {"name": "r4", "a": True, "b": False},
    {"name": "r5"},
]

q = FilterBuilder()
A, B = q.field("a"), q.field("b")


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with Store.memory(SCHEMA, seed=0) as s:
        s.run(lambda ctx: [ctx.db.insert("items", d) for d in DOCS]).unwrap()
        yield s


def names(store: Store, predicate: Callable[[Any], Any]) -> list[str]:
    """The names of the documents ``.filter(predicate)`` keeps, in insertion order."""
    docs = store.run(
        lambda ctx: ctx.db.query("items").filter(predicate).collect()
    ).unwrap()
    return [d["name"] for d in docs]


def failure_of(store: Store, predicate: Callable[[Any], Any]) -> BaseException:
    """The exception a filter fails its function with (a ``HandlerError``'s cause)."""
    problem = store.run(
        lambda ctx: ctx.db.query("items").filter(predicate).collect()
    ).failure()
    assert isinstance(problem, HandlerError), problem
    return problem.exception


def same(a: object, b: object) -> bool:
    """Structural equality of two expressions (``==`` now builds an expression)."""
    return repr(a) == repr(b)


# ------------------------------------------------------------------ the issue


def test_equality_operator_finds_the_matching_document(store: Store) -> None:
    # Before: Success([]) although r1 matches (attrs' __eq__ returned False).
    assert names(store, lambda q: q.field("name") == "r1") == ["r1"]


def test_not_equal_operator_drops_the_matching_document(store: Store) -> None:
    # Before: every document (the expression was the literal True).
    assert names(store, lambda q: q.field("name") != "r1") == [
        "r0",
        "r2",
        "r3",
        "r4",
        "r5",
    ]


def test_and_operator_keeps_both_conditions(store: Store) -> None:
    # Before: TypeError: unsupported operand type(s) for &.
    got = names(store, lambda q: (q.field("a") > 0) & (q.field("b") == 2))
    assert got == ["r0"]


def test_greater_than_operator(store: Store) -> None:
    # Before: TypeError: '>' not supported between instances of 'Expr' and 'int'.
    # int64 before float64 before boolean in Convex's order: 2.5 and True are > 1.
    assert names(store, lambda q: q.field("a") > 1) == ["r2", "r3", "r4"]


# ------------------------------------------------------------------ each operator

# (operator form, builder form): the same node, so the same documents.
BINARY: list[tuple[str, Callable[[Any, Any], Any], str]] = [
    ("==", operator.eq, "eq"),
    ("!=", operator.ne, "neq"),
    ("<", operator.lt, "lt"),
    ("<=", operator.le, "lte"),
    (">", operator.gt, "gt"),
    (">=", operator.ge, "gte"),
    ("+", operator.add, "add"),
    ("-", operator.sub, "sub"),
    ("*", operator.mul, "mul"),
    ("/", operator.truediv, "div"),
    ("%", operator.mod, "mod"),
]


@pytest.mark.parametrize(("symbol", "op", "method"), BINARY, ids=[b[0] for b in BINARY])
def test_each_binary_operator_builds_the_builders_node(
    symbol: str, op: Callable[[Any, Any], Any], method: str
) -> None:
    built = op(A, B)
    assert isinstance(built, Expr), symbol
    assert same(built, getattr(q, method)(A, B))
    # A literal on the right stays a literal, as with the builder.
    assert same(op(A, 3), getattr(q, method)(A, 3))


@pytest.mark.parametrize(
    ("operator_form", "builder_form", "expected"),
    [
        (lambda q: q.field("a") == 4, lambda q: q.eq(q.field("a"), 4), ["r2"]),
        (
            lambda q: q.field("a") != q.field("b"),
            lambda q: q.neq(q.field("a"), q.field("b")),
            ["r0", "r1", "r3", "r4"],
        ),
        (lambda q: q.field("a") < 1, lambda q: q.lt(q.field("a"), 1), ["r1", "r5"]),
        (
            lambda q: q.field("a") <= 1,
            lambda q: q.lte(q.field("a"), 1),
            ["r0", "r1", "r5"],
        ),
        (lambda q: q.field("a") > 4, lambda q: q.gt(q.field("a"), 4), ["r3", "r4"]),
        (
            lambda q: q.field("a") >= 4,
            lambda q: q.gte(q.field("a"), 4),
            ["r2", "r3", "r4"],
        ),
        # Arithmetic on int64 only: r0-r2 (names before "r3") hold ints.
        (
            lambda q: (q.field("name") < "r3") & (q.field("a") + 1 == 5),
            lambda q: q.and_(
                q.lt(q.field("name"), "r3"), q.eq(q.add(q.field("a"), 1), 5)
            ),
            ["r2"],
        ),
        (
            lambda q: (q.field("name") < "r3") & (q.field("a") - q.field("b") == -9),
            lambda q: q.and_(
                q.lt(q.field("name"), "r3"),
                q.eq(q.sub(q.field("a"), q.field("b")), -9),
            ),
            ["r1"],
        ),
        (
            lambda q: (q.field("name") < "r3") & (q.field("a") * q.field("b") == 16),
            lambda q: q.and_(
                q.lt(q.field("name"), "r3"),
                q.eq(q.mul(q.field("a"), q.field("b")), 16),
            ),
            ["r2"],
        ),
        (
            lambda q: (q.field("name") == "r1") & (q.field("a") / 2 == -3),
            lambda q: q.and_(
                q.eq(q.field("name"), "r1"), q.eq(q.div(q.field("a"), 2), -3)
            ),
            ["r1"],
        ),
        (
            lambda q: (q.field("name") == "r1") & (q.field("a") % 2 == -1),
            lambda q: q.and_(
                q.eq(q.field("name"), "r1"), q.eq(q.mod(q.field("a"), 2), -1)
            ),
            ["r1"],
        ),
        (
            lambda q: (q.field("name") == "r0") | (q.field("name") == "r4"),
            lambda q: q.or_(q.eq(q.field("name"), "r0"), q.eq(q.field("name"), "r4")),
            ["r0", "r4"],
        ),
        (
            lambda q: ~(q.field("a") > 0),
            lambda q: q.not_(q.gt(q.field("a"), 0)),
            ["r1", "r5"],
        ),
        (
            lambda q: (q.field("name") == "r2") & (-q.field("a") == -4),
            lambda q: q.and_(
                q.eq(q.field("name"), "r2"), q.eq(q.neg(q.field("a")), -4)
            ),
            ["r2"],
        ),
    ],
    ids=["==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "|", "~", "neg"],
)
def test_each_operator_returns_the_builders_documents(
    store: Store,
    operator_form: Callable[[Any], Any],
    builder_form: Callable[[Any], Any],
    expected: list[str],
) -> None:
    assert names(store, operator_form) == expected
    assert names(store, builder_form) == expected
    assert same(operator_form(q), builder_form(q))


def test_unary_operators_build_the_builders_nodes() -> None:
    assert same(-A, q.neg(A))
    assert same(~A, q.not_(A))
    assert same(-(A + 1), q.neg(q.add(A, 1)))


# ------------------------------------------------------------------ reflected forms


@pytest.mark.parametrize(
    ("operator_form", "builder_form"),
    [
        # Arithmetic keeps the operands' order: the literal is the left operand.
        (lambda: 2 * A, lambda: q.mul(2, A)),
        (lambda: 10 - A, lambda: q.sub(10, A)),
        (lambda: 1.5 + A, lambda: q.add(1.5, A)),
        (lambda: 7 / A, lambda: q.div(7, A)),
        (lambda: 7 % A, lambda: q.mod(7, A)),
        (lambda: True & A, lambda: q.and_(True, A)),
        (lambda: False | A, lambda: q.or_(False, A)),
        # Python reflects a comparison to its mirror: 1 < a is a > 1, the same test.
        (lambda: 1 == A, lambda: q.eq(A, 1)),
        (lambda: 1 != A, lambda: q.neq(A, 1)),
        (lambda: 1 < A, lambda: q.gt(A, 1)),
        (lambda: 1 <= A, lambda: q.gte(A, 1)),
        (lambda: 1 > A, lambda: q.lt(A, 1)),
        (lambda: 1 >= A, lambda: q.lte(A, 1)),
        (lambda: None == A, lambda: q.eq(A, None)),  # noqa: E711
        (lambda: "x" == A, lambda: q.eq(A, "x")),
        (lambda: [1] == A, lambda: q.eq(A, [1])),
        (lambda: {"k": 1} == A, lambda: q.eq(A, {"k": 1})),
    ],
)
def test_reflected_forms(
    operator_form: Callable[[], Any], builder_form: Callable[[], Any]
) -> None:
    assert same(operator_form(), builder_form())


def test_reflected_forms_select_the_same_documents(store: Store) -> None:
    assert names(store, lambda q: 4 == q.field("a")) == ["r2"]
    got = names(store, lambda q: (q.field("name") == "r1") & (-14 == 2 * q.field("a")))
    assert got == ["r1"]
    assert names(store, lambda q: 3 > q.field("a")) == ["r0", "r1", "r5"]


# ------------------------------------------------------------------ arithmetic


def test_int64_division_truncates_and_mod_takes_the_dividends_sign() -> None:
    # Rust's i64 / and %, not Python's (-7 / 2 == -3.5, -7 // 2 == -4, -7 % 2 == 1).
    doc = {"a": -7}
    assert compile_expr(A / 2)(doc) == -3
    assert compile_expr(A % 2)(doc) == -1
    assert compile_expr(-7 / q.field("two"))({"two": 2}) == -3
    assert type(compile_expr(A / 2)(doc)) is int


def test_float64_division_is_ieee() -> None:
    assert compile_expr(A / 0.0)({"a": 1.0}) == math.inf
    assert compile_expr(A / 2.0)({"a": -7.0}) == -3.5
    assert math.isnan(compile_expr(A % 0.0)({"a": 1.0}))  # type: ignore[arg-type]


def test_int64_division_by_zero_is_the_builders_error(store: Store) -> None:
    by_operator = failure_of(store, lambda q: q.field("a") / 0 == 1)
    by_builder = failure_of(store, lambda q: q.eq(q.div(q.field("a"), 0), 1))
    assert isinstance(by_operator, FilterError)
    assert str(by_operator) == str(by_builder) == "Cannot divide 1 by zero"


def test_mixed_types_fail_as_with_the_builder(store: Store) -> None:
    error = failure_of(store, lambda q: q.field("a") + 1.0 == 2.0)
    assert str(error) == "Cannot add 1 (type int64) and 1.0 (type float64)"


def test_floor_division_is_refused_with_a_pointer_to_div() -> None:
    with pytest.raises(TypeError, match=r"`/` \(q\.div\)"):
        A // 2
    with pytest.raises(TypeError, match=r"`/` \(q\.div\)"):
        7 // A


# ------------------------------------------------------------------ and / or chains


def test_and_chains_build_one_flat_node_like_and_() -> None:
    c = q.field("c")
    assert same((A == 1) & (B == 2) & (c == 3), q.and_(A == 1, B == 2, c == 3))
    assert same((A == 1) & ((B == 2) & (c == 3)), q.and_(A == 1, B == 2, c == 3))
    assert same((A == 1) | (B == 2) | (c == 3), q.or_(A == 1, B == 2, c == 3))
    # Mixed operators keep their grouping.
    assert same(((A == 1) | (B == 2)) & (c == 3), q.and_(q.or_(A == 1, B == 2), c == 3))


def test_and_chains_are_tested_in_sql_like_the_builders(store: Store) -> None:
    def sql(predicate: Callable[[Any], Any]) -> Any:
        def scan_sql(ctx: Any) -> Any:
            scan = plan(ctx.db.query("items").filter(predicate))
            assert isinstance(scan, IndexScan)
            return list(index_scan_sql(scan))

        return store.run(scan_sql).unwrap()

    by_builder = sql(
        lambda q: q.and_(
            q.eq(q.field("name"), "r0"), q.eq(q.field("a"), 1), q.eq(q.field("b"), 2)
        )
    )
    assert by_builder[0].startswith("SELECT CASE WHEN")
    chained = sql(
        lambda q: (q.field("name") == "r0") & (q.field("a") == 1) & (q.field("b") == 2)
    )
    assert chained == by_builder
    # Reflected equalities are the same tests.
    reflected = sql(
        lambda q: ("r0" == q.field("name")) & (1 == q.field("a")) & (2 == q.field("b"))
    )
    assert reflected == by_builder


# ------------------------------------------------------------------ the and / if trap

TRAP = "use & / | / ~ or q.and_ / q.or_ / q.not_"


def _with_and(q: Any) -> Any:
    return q.field("a") == 1 and q.field("b") == 3


def _with_or(q: Any) -> Any:
    return q.field("a") == 1 or q.field("b") == 3


def _with_not(q: Any) -> Any:
    return not q.field("a") == 1  # noqa: SIM201


def _with_if(q: Any) -> Any:
    if q.field("a") == 1:  # noqa: SIM103
        return True
    return False


def _chained(q: Any) -> Any:
    return 0 < q.field("a") < 3


def _unparenthesised(q: Any) -> Any:
    # & binds tighter than ==: a == (1 & b) == 2, a chained comparison.
    return q.field("a") == 1 & q.field("b") == 2


def _in_list(q: Any) -> Any:
    # `in` compares with ==, then asks for the truth of the result.
    return (q.field("a") == 1) in [q.field("b") == 2]


@pytest.mark.parametrize(
    "predicate",
    [_with_and, _with_or, _with_not, _with_if, _chained, _unparenthesised, _in_list],
)
def test_truth_value_of_an_expression_is_a_type_error(
    store: Store, predicate: Callable[[Any], Any]
) -> None:
    # Before: `and` kept only the second condition, silently (r0 has a == 1, b == 2).
    error = failure_of(store, predicate)
    assert type(error) is TypeError
    assert TRAP in str(error)


def test_truth_value_message_says_what_to_write() -> None:
    with pytest.raises(TypeError) as caught:
        bool(A == 1)
    message = str(caught.value)
    assert message == (
        "A filter expression has no truth value, so Python's `and`, `or`, `not`, "
        "`if` and chained comparisons (`0 < x < 3`) cannot combine it: "
        f"{TRAP}, with each comparison in parentheses: "
        '(q.field("a") == 1) & (q.field("b") > 2).'
    )


def test_expressions_are_unhashable() -> None:
    # __eq__ builds an expression, so there is no equality a hash could agree with.
    with pytest.raises(TypeError, match="unhashable"):
        hash(A == 1)
    with pytest.raises(TypeError, match="unhashable"):
        {q.field("a"): 1}


# ------------------------------------------------------------------ literals


@pytest.mark.parametrize(
    "predicate",
    [
        lambda q: q.field("a") == {1, 2},
        lambda q: {1, 2} == q.field("a"),
        lambda q: q.field("a") > 2**64,
        lambda q: q.field("a") + object() == 1,
        lambda q: (q.field("a") == 1) & (q.field("b") == [{1}]),
    ],
)
def test_a_literal_that_is_not_a_convex_value_is_refused_as_with_the_builder(
    store: Store, predicate: Callable[[Any], Any]
) -> None:
    error = failure_of(store, predicate)
    assert isinstance(error, FilterError)
    assert str(error).startswith("Invalid literal in filter expression:")


def test_the_builders_literal_error_is_the_same_text(store: Store) -> None:
    by_operator = failure_of(store, lambda q: q.field("a") == {1, 2})
    by_builder = failure_of(store, lambda q: q.eq(q.field("a"), {1, 2}))
    assert str(by_operator) == str(by_builder)


def test_chains_of_many_conditions_reduce_to_one_and() -> None:
    conditions = [q.field(f"f{i}") == i for i in range(5)]
    chained = functools.reduce(operator.and_, conditions)
    assert same(chained, q.and_(*conditions))
