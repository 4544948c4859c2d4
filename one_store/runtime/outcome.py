"""What a handler's outcome becomes: a checked value, or the Problem it stands for.

- :func:`checked_outcome`: a handler returned a plain value or a ``Result``; check
  it against the function's ``returns`` validator (or as any Convex value) and
  its size, without walking again the documents the transaction read and left
  untouched (:meth:`~one_store.runtime.transaction.Transaction.check_result`).
- :func:`problem_of`: a handler raised; ``ConvexError`` is ``Rejected``, a
  ``ProblemError`` its Problem, a SQLite or PostgreSQL failure ``StorageError``/``Busy``, any
  other exception ``HandlerError`` with the exception attached.
"""

from __future__ import annotations

import inspect
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

from returns.primitives.exceptions import UnwrapFailedError
from returns.result import Failure, Result, Success

from ..engine.sqlite.transactions import classify
from ..model.errors import (
    ContextError,
    ConvexError,
    HandlerError,
    Problem,
    ProblemError,
    Rejected,
    ReturnsInvalid,
    StorageFailure,
    is_problem,
)
from ..model.validators import error_text
from ..model.values import (
    MAX_FUNCTION_VALUE_SIZE,
    InvalidValue,
    Value,
    check_value,
    convex_size,
    mebibytes,
)
from .functions import FunctionSpec
from .transaction import Transaction

# Exact types a handler's plain return value usually has (skips the Result checks).
_PLAIN = frozenset({dict, list, str, int, float, bool, bytes, type(None)})


class Abort(Exception):  # noqa: N818 - internal control flow: roll back with a Problem
    """Raised inside a transaction to roll it back and fail the call with ``problem``."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def problem_of(error: Exception, function: str | None) -> Problem:
    """Turn an exception out of handler code into the Problem it stands for."""
    if isinstance(error, ConvexError):
        return Rejected(error.data)
    if isinstance(error, ProblemError | Abort | StorageFailure):
        return error.problem
    if type(error) in (sqlite3.OperationalError, sqlite3.DatabaseError):
        # SQLite failed under the handler's reads/writes (disk full, corrupt page,
        # I/O error, lock): StorageError or Busy, not a fault in the user's code.
        assert isinstance(error, sqlite3.Error)
        return classify(error)
    if _is_postgres_error(error):
        # PostgreSQL failed under the handler (a lost connection, a lock
        # timeout): StorageError or Busy, as on SQLite.
        from ..engine.postgres.connection import classify as classify_postgres

        return classify_postgres(error)
    if isinstance(error, UnwrapFailedError):
        inner = error.halted_container.failure()
        if is_problem(inner):
            return cast("Problem", inner)
        return Rejected(inner) if is_value(inner) else HandlerError(error, function)
    return HandlerError(error, function)


def storage_problem(error: BaseException) -> Problem | None:
    """The Problem of a database's own error (SQLite or PostgreSQL); None for others."""
    if isinstance(error, sqlite3.Error):
        return classify(error)
    if _is_postgres_error(error):
        from ..engine.postgres.connection import classify as classify_postgres

        return classify_postgres(error)
    return None


def _is_postgres_error(error: BaseException) -> bool:
    """Whether ``error`` is psycopg's (only when a PostgreSQL store loaded it)."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.Error)


def is_value(x: object) -> bool:
    """Whether ``x`` is a Convex value (a ``Failure`` holding one is ``Rejected``)."""
    try:
        check_value(x)
    except InvalidValue:
        return False
    return True


def checked_outcome(
    spec: FunctionSpec[Any],
    value: object,
    txn: Transaction | None,
    table_of: Callable[[int], str | None],
) -> Result[Any, Problem]:
    """Check a handler's outcome: a Result or a plain value, against ``returns``."""
    checked = checked_value(spec, value, txn, table_of)
    if type(checked) is Refused:
        return (
            checked.failure if checked.failure is not None else Failure(checked.problem)
        )
    return Success(checked)


class Refused:
    """What :func:`checked_value` returns for an outcome that is a Failure.

    ``failure`` is the handler's own ``Failure`` when it returned one holding a
    Problem (handed back as it is by :func:`checked_outcome`).
    """

    __slots__ = ("failure", "problem")

    def __init__(
        self, problem: Problem, failure: Result[Any, Problem] | None = None
    ) -> None:
        self.problem = problem
        self.failure = failure


def checked_value(
    spec: FunctionSpec[Any],
    value: object,
    txn: Transaction | None,
    table_of: Callable[[int], str | None],
) -> Any:
    """:func:`checked_outcome` without the ``Result``: the value, or :class:`Refused`.

    The executor's transaction path unwraps the outcome at once; building a
    returns container for it cost ~0.5 us of every query and mutation.
    """
    if type(value) not in _PLAIN:  # a plain value is neither a Result nor a coroutine
        if isinstance(value, Failure):
            problem = value.failure()
            if is_problem(problem):
                return Refused(problem, value)
            return Refused(
                Rejected(problem)
                if is_value(problem)
                else HandlerError(TypeError(f"handler returned Failure({problem!r})"))
            )
        if isinstance(value, Success):
            value = value.unwrap()
        if inspect.iscoroutine(value):
            value.close()
            raise ContextError(
                f"{spec.display_name} is async: only actions may be async def."
            )
    checked: Value
    try:
        if spec.returns is not None:
            checked = spec.returns.check(value, table_of)
            size = convex_size(checked)
        elif txn is not None:
            # Documents read by the transaction are sized by a bound from
            # their stored text; measure exactly only when the bound is over.
            checked, size = txn.check_result(value)
        else:
            checked = check_value(value)
            size = convex_size(checked)
    except InvalidValue as e:
        return Refused(ReturnsInvalid(e.path_text(), error_text(e)))
    if size > MAX_FUNCTION_VALUE_SIZE:
        size = convex_size(checked)
    if size > MAX_FUNCTION_VALUE_SIZE:
        return Refused(
            ReturnsInvalid(
                "",
                f"Function {spec.display_name} return value is too large "
                f"(actual: {mebibytes(size)}, limit: "
                f"{mebibytes(MAX_FUNCTION_VALUE_SIZE)})",
            )
        )
    return checked


def run_coroutine(coro: Any) -> Any:
    """Run an ``async def`` handler to completion from synchronous code."""
    import asyncio  # not at import: most programs never run an async action

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running loop (e.g. a notebook): run on a fresh thread.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # re-raised below in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
