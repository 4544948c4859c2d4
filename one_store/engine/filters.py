"""Filter expressions: Convex's ``q.eq/and_/add/...`` builder, compiled to closures.

Filters are compiled once into Python closures and always run on the documents a
query returns, with Convex's type-strict comparisons (``1`` is not ``1.0``, ``True``
is not ``1``, missing is not ``null``, ``-0.0 < 0.0``, ``NaN == NaN``) and int64
arithmetic as Rust's checked operations. The leading ``eq(field, literal)``
conjuncts, which can never raise, are also handed to the engine
(:func:`leading_equalities`) so that rows they reject need not be decoded; see
:mod:`one_store.engine.sqlite.scans` for the measurement behind that choice.

Python's operators are aliases of the builder (``q.field("a") == 1`` is
``q.eq(q.field("a"), 1)``, ``&`` is ``q.and_``, ``/`` is ``q.div``, ...): each
builds the builder's own node, so evaluation, errors, cursors and the SQL
prefilter cannot tell the two forms apart. Chains of ``&`` (or ``|``) build one
flat node, as ``q.and_(a, b, c)`` does, so the prefilter still sees every leading
equality. ``bool()`` of an expression raises ``TypeError``: Python's ``and``,
``or``, ``not``, ``if`` and chained comparisons would otherwise drop a condition
without a word. Since ``==`` builds an expression, expressions are unhashable
(Python sets ``__hash__`` to None for a class that defines ``__eq__``): no hash
could agree with an ``==`` that never answers True or False, and nothing keys a
dict or a set by expression (a query's cursor fingerprint uses their ``repr``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from attrs import frozen

from ..model.keys import compare
from ..model.values import (
    INT64_MAX,
    INT64_MIN,
    UNSET,
    InvalidValue,
    check_value,
    get_path,
    show,
    type_name,
)
from .backend import Equalities


class FilterError(ValueError):
    """A filter expression Convex cannot evaluate (its ``EvalError``)."""


_NO_TRUTH = (
    "A filter expression has no truth value, so Python's `and`, `or`, `not`, `if` "
    "and chained comparisons (`0 < x < 3`) cannot combine it: use & / | / ~ or "
    "q.and_ / q.or_ / q.not_, with each comparison in parentheses: "
    '(q.field("a") == 1) & (q.field("b") > 2).'
)
_NO_FLOOR = (
    "Convex filters have no floor division: use `/` (q.div), which truncates "
    "int64 division toward zero as Rust does, and divides float64 as IEEE 754."
)


# eq=False: the operators below are Expr's own (attrs' eq would compare nodes, and
# attrs' mypy plugin would type <, >, ... as its bool-returning ordering methods).
@frozen(eq=False)
class Expr:
    """A node of a filter expression: ``op`` over ``args`` (literal values or Exprs).

    Python's operators build the builder's nodes: ``==, !=, <, <=, >, >=`` are
    ``eq neq lt lte gt gte``, ``+ - * / %`` are ``add sub mul div mod`` (reflected
    too: ``2 * q.field("a")`` is ``q.mul(2, q.field("a"))``), unary ``-`` is
    ``neg``, and ``& | ~`` are ``and_ or_ not_``. A comparison with a literal on
    the left is Python's mirrored comparison (``1 < x`` is ``x > 1``), the same
    test in Convex's total order.

    Example:
        >>> q = FilterBuilder()
        >>> a, b = q.field("a"), q.field("b")
        >>> repr((a == 1) & (b > 2.0)) == repr(q.and_(q.eq(a, 1), q.gt(b, 2.0)))
        True
    """

    op: str
    args: tuple[Any, ...]

    def evaluate(self, doc: Mapping[str, Any]) -> object:
        """Evaluate against ``doc`` with Convex's semantics (compiles on each call)."""
        return compile_expr(self)(doc)

    def __bool__(self) -> NoReturn:
        raise TypeError(_NO_TRUTH)

    # typeshed types object.__eq__/__ne__ as returning bool; an operator that
    # builds an expression is the point here (as in SQLAlchemy and polars).
    def __eq__(self, other: object) -> Expr:  # type: ignore[override]
        return Expr("eq", (self, other))

    def __ne__(self, other: object) -> Expr:  # type: ignore[override]
        return Expr("neq", (self, other))

    # A literal on the left reaches these reflected, as its mirror (1 < x is x > 1).
    def __lt__(self, other: object) -> Expr:
        return Expr("lt", (self, other))

    def __le__(self, other: object) -> Expr:
        return Expr("lte", (self, other))

    def __gt__(self, other: object) -> Expr:
        return Expr("gt", (self, other))

    def __ge__(self, other: object) -> Expr:
        return Expr("gte", (self, other))

    # Arithmetic keeps the written order: it decides the result and the error.
    def __add__(self, other: object) -> Expr:
        return Expr("add", (self, other))

    def __radd__(self, other: object) -> Expr:
        return Expr("add", (other, self))

    def __sub__(self, other: object) -> Expr:
        return Expr("sub", (self, other))

    def __rsub__(self, other: object) -> Expr:
        return Expr("sub", (other, self))

    def __mul__(self, other: object) -> Expr:
        return Expr("mul", (self, other))

    def __rmul__(self, other: object) -> Expr:
        return Expr("mul", (other, self))

    def __truediv__(self, other: object) -> Expr:
        return Expr("div", (self, other))

    def __rtruediv__(self, other: object) -> Expr:
        return Expr("div", (other, self))

    def __mod__(self, other: object) -> Expr:
        return Expr("mod", (self, other))

    def __rmod__(self, other: object) -> Expr:
        return Expr("mod", (other, self))

    def __floordiv__(self, other: object) -> NoReturn:
        raise TypeError(_NO_FLOOR)

    def __rfloordiv__(self, other: object) -> NoReturn:
        raise TypeError(_NO_FLOOR)

    def __neg__(self) -> Expr:
        return Expr("neg", (self,))

    # Logic keeps the written order too: and_/or_ short-circuit left to right.
    def __and__(self, other: object) -> Expr:
        return _joined("and", self, other)

    def __rand__(self, other: object) -> Expr:
        return _joined("and", other, self)

    def __or__(self, other: object) -> Expr:
        return _joined("or", self, other)

    def __ror__(self, other: object) -> Expr:
        return _joined("or", other, self)

    def __invert__(self) -> Expr:
        return Expr("not", (self,))


def _joined(op: str, left: object, right: object) -> Expr:
    """``left & right`` (or ``|``) as one flat node, the shape ``q.and_(a, b, c)`` has.

    ``and``/``or`` are associative and short-circuit left to right, so flattening
    changes neither a result nor which operand fails first, and it keeps a chain's
    leading equalities visible to :func:`prefilter`.
    """
    parts: list[object] = []
    for side in (left, right):
        if isinstance(side, Expr) and side.op == op:
            parts.extend(side.args)
        else:
            parts.append(side)
    return Expr(op, tuple(parts))


Evaluator = Callable[[Mapping[str, Any]], object]
_NATIVE_ORDER = frozenset({str, int, bytes, bool})


def _cmp(a: object, b: object) -> int:
    """Convex's total order; same-type str/int/bytes/bool compare natively (same order)."""
    kind = type(a)
    if kind is type(b) and kind in _NATIVE_ORDER:
        x: Any = a  # one native type, checked above: str, int, bytes or bool
        y: Any = b
        return int((x > y) - (x < y))
    return compare(a, b)


_COMPARE: dict[str, Callable[[int], bool]] = {
    "eq": lambda c: c == 0,
    "neq": lambda c: c != 0,
    "lt": lambda c: c < 0,
    "lte": lambda c: c <= 0,
    "gt": lambda c: c > 0,
    "gte": lambda c: c >= 0,
}


def _described(value: object) -> str:
    shown = "undefined" if value is UNSET else show(value)
    return f"{shown} (type {type_name(value)})"


def as_boolean(value: object, where: str) -> bool:
    """``value`` if it is a boolean, else the FilterError Convex gives (``where`` says which)."""
    if not isinstance(value, bool):
        raise FilterError(
            f"Cannot use value {_described(value)} as a Boolean in {where}"
        )
    return value


def compile_expr(node: object) -> Evaluator:
    """Compile a filter expression (or a literal) into ``doc -> value``."""
    if not isinstance(node, Expr):
        return lambda doc: node
    op, args = node.op, node.args
    if op == "field":
        path = args[0]
        if len(path) == 1:
            name = path[0]
            return lambda doc: doc.get(name, UNSET)
        return lambda doc: get_path(dict(doc), path)
    if op == "literal":
        value = args[0]
        return lambda doc: value
    parts = [compile_expr(a) for a in args]
    if op in ("and", "or"):
        return _logic(op, parts)
    if op == "not":
        inner = parts[0]
        return lambda doc: not as_boolean(inner(doc), "not")
    if op == "neg":
        return _negation(parts[0])
    left, right = parts
    if op in _COMPARE:
        test = _COMPARE[op]
        return lambda doc: test(_cmp(left(doc), right(doc)))
    return lambda doc: _arith(op, left(doc), right(doc))


def _logic(op: str, parts: list[Evaluator]) -> Evaluator:
    want = op == "or"

    def run(doc: Mapping[str, Any]) -> bool:
        for part in parts:  # short-circuit, as Convex
            if as_boolean(part(doc), op) is want:
                return want
        return not want

    return run


def _negation(inner: Evaluator) -> Evaluator:
    def run(doc: Mapping[str, Any]) -> object:
        value = inner(doc)
        if type(value) is int:
            if value == INT64_MIN:  # Rust's i64::checked_neg
                raise FilterError(
                    f"Cannot negate {value}: the result is out of range for Int64"
                )
            return -value
        if type(value) is float:
            return -value
        raise FilterError(f"Cannot negate {_described(value)}")

    return run


_VERB = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "div": "divide",
    "mod": "mod",
}


def _arith(op: str, a: object, b: object) -> object:
    if type(a) is int and type(b) is int:
        return _int_arith(op, a, b)
    if type(a) is float and type(b) is float:
        return _float_arith(op, a, b)
    raise FilterError(f"Cannot {_VERB[op]} {_described(a)} and {_described(b)}")


def _int_arith(op: str, x: int, y: int) -> int:
    """Rust's ``i64::checked_*``: None there (overflow, zero divisor) is an EvalError here."""
    if op in ("div", "mod"):
        if y == 0:
            raise FilterError(f"Cannot {_VERB[op]} {x} by zero")
        q = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)  # truncates, as Rust
        # checked_rem(MIN, -1) is None although the remainder (0) fits: the
        # division it implies overflows. So both test the quotient.
        result = q if op == "div" else x - y * q
        overflow = not INT64_MIN <= q <= INT64_MAX
    else:
        result = x + y if op == "add" else x - y if op == "sub" else x * y
        overflow = not INT64_MIN <= result <= INT64_MAX
    if overflow:
        raise FilterError(
            f"Cannot {_VERB[op]} {x} and {y}: the result is out of range for Int64"
        )
    return result


def _float_arith(op: str, x: float, y: float) -> float:
    # IEEE 754, as Rust's f64: division by zero gives ±inf or NaN, never an error.
    if op == "add":
        return x + y
    if op == "sub":
        return x - y
    if op == "mul":
        return x * y
    if op == "div":
        if y == 0:
            if x == 0 or math.isnan(x):
                return math.nan
            return math.copysign(math.inf, x) * math.copysign(1.0, y)
        return x / y
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    return math.fmod(x, y)


def checked_literals(node: object) -> object:
    """Check every literal of an expression is a Convex value (as Convex serialises them)."""
    if isinstance(node, Expr):
        if node.op == "field":
            if not isinstance(node.args[0], tuple):
                raise FilterError(
                    f"q.field() takes a field path string, got {node.args[0]!r}"
                )
            return node
        return Expr(node.op, tuple(checked_literals(a) for a in node.args))
    if node is UNSET:
        return node
    try:
        return check_value(node)
    except InvalidValue as e:
        raise FilterError(f"Invalid literal in filter expression: {e}") from None


def _equality(node: object) -> tuple[tuple[str, ...], object] | None:
    """``(path, value)`` when ``node`` is ``eq`` of a field and a literal, else None."""
    if not isinstance(node, Expr) or node.op != "eq":
        return None
    a, b = node.args
    if isinstance(b, Expr):
        a, b = b, a
    if not isinstance(a, Expr) or a.op != "field" or isinstance(b, Expr):
        return None
    return a.args[0], b


def leading_equalities(filters: tuple[Expr, ...]) -> Equalities:
    """The ``eq(field, literal)`` conjuncts every filter evaluation starts with.

    Filters run in Python on decoded documents; most of a filtered scan's cost
    is decoding rows the filter then drops. The leading ``eq(field, literal)``
    conjuncts (of the first filter, and of the next ones while every earlier
    conjunct was such an equality) are evaluated first and can never raise, so a
    row failing one of them is one the Python predicate would drop without an
    error: an engine that can test them while scanning
    (:attr:`~one_store.engine.backend.Features.equality_prefilter`) never
    decodes such rows, though it counts them as read. The full predicate still
    runs on every other row.
    """
    found: list[tuple[tuple[str, ...], object]] = []
    for expr in filters:
        conjuncts = expr.args if expr.op == "and" else (expr,)
        for conjunct in conjuncts:
            equality = _equality(conjunct)
            if equality is None:
                return tuple(found)
            found.append(equality)
    return tuple(found)


class FilterBuilder:
    """The ``q`` of ``.filter(lambda q: q.eq(q.field("role"), "user"))``."""

    def field(self, path: str) -> Expr:
        """A document field (dotted path); missing fields read as ``UNSET``."""
        if not isinstance(path, str):
            raise FilterError(f"q.field() takes a field path string, got {path!r}")
        return Expr("field", (tuple(path.split(".")),))

    def _binary(self, op: str, a: object, b: object) -> Expr:
        return Expr(op, (a, b))

    def eq(self, a: object, b: object) -> Expr:
        """``a == b`` in Convex's total order (type-strict)."""
        return self._binary("eq", a, b)

    def neq(self, a: object, b: object) -> Expr:
        """``a != b``."""
        return self._binary("neq", a, b)

    def lt(self, a: object, b: object) -> Expr:
        """``a < b``."""
        return self._binary("lt", a, b)

    def lte(self, a: object, b: object) -> Expr:
        """``a <= b``."""
        return self._binary("lte", a, b)

    def gt(self, a: object, b: object) -> Expr:
        """``a > b``."""
        return self._binary("gt", a, b)

    def gte(self, a: object, b: object) -> Expr:
        """``a >= b``."""
        return self._binary("gte", a, b)

    def add(self, a: object, b: object) -> Expr:
        """``a + b`` (both int64 or both float64)."""
        return self._binary("add", a, b)

    def sub(self, a: object, b: object) -> Expr:
        """``a - b``."""
        return self._binary("sub", a, b)

    def mul(self, a: object, b: object) -> Expr:
        """``a * b``."""
        return self._binary("mul", a, b)

    def div(self, a: object, b: object) -> Expr:
        """``a / b`` (int64 division truncates, as Rust)."""
        return self._binary("div", a, b)

    def mod(self, a: object, b: object) -> Expr:
        """``a % b`` (sign of the dividend, as Rust)."""
        return self._binary("mod", a, b)

    def neg(self, a: object) -> Expr:
        """``-a``."""
        return Expr("neg", (a,))

    def and_(self, *args: object) -> Expr:
        """All of ``args`` (booleans), short-circuit."""
        return Expr("and", args)

    def or_(self, *args: object) -> Expr:
        """Any of ``args`` (booleans), short-circuit."""
        return Expr("or", args)

    def not_(self, a: object) -> Expr:
        """Boolean negation."""
        return Expr("not", (a,))
