"""Problems (expected outcomes, returned in ``Failure``) and exceptions (misuse).

Problem values, each a frozen attrs class with a stable ``code`` and a human
``message`` (named after RFC 7807 problem details)::

    Problem
    ├── ArgsInvalid(path, message)              bad function arguments
    ├── ValueInvalid(path, message)             Validator.validate() said no
    ├── ReturnsInvalid(path, message)           the handler returned a bad value
    ├── DocumentInvalid(table, path, message)   a write broke the schema or a limit
    ├── DocumentNotFound(id)                    patch/replace/delete of a missing doc
    ├── InvalidId(id, message)                  a string that is not an ID of that table
    ├── InvalidIndexRange(index, field, message)
    ├── NotUnique(table, ids)                   unique() saw more than one document
    ├── InvalidCursor(cursor, message)
    ├── LimitExceeded(limit, value)             a per-transaction limit
    ├── Rejected(data)                          the handler raised ConvexError(data)
    ├── HandlerError(exception)                 an unexpected exception in user code
    ├── FunctionNotFound(path, suggestions)
    ├── Busy(message)                           write lock not obtained in busy_timeout
    ├── StorageError(message)                   disk full, corrupt file, I/O error
    └── Unauthenticated(reason, message)        a token or admin key was refused

Exceptions (library misuse, raised at once, never turned into a Failure)::

    OneStoreError
    ├── SchemaError(OneStoreError, ValueError)          bad schema definition
    ├── SchemaMismatchError(OneStoreError, ValueError)  stored data breaks a new schema
    ├── ContextError(OneStoreError, RuntimeError)       ctx misuse (db in an action,
    │                                                   a write inside a query, ...)
    ├── DefinitionError(OneStoreError, TypeError)       bad function definition
    └── StoreOpenError(OneStoreError)                   the file cannot be opened
                                                        (``.problem``: StorageError)

``ConvexError(data)`` is raised *by handlers* to reject with data; the store turns it
into ``Failure(Rejected(data))``. ``ProblemError`` is what ``.unwrap()``-style helpers
raise to carry a Problem through an action.

A ``Failure`` one_store hands out is a :class:`ProblemFailure`: a ``returns``
``Failure`` in every way (``isinstance``, ``match``, ``==``, ``.failure()``, the
container methods) except that ``.unwrap()`` raises :class:`UnwrapError`, a
``returns`` ``UnwrapFailedError`` whose text names the Problem's code and message and
whose ``__cause__`` is the Problem's exception (``HandlerError``'s). returns' own
``Failure.unwrap`` raises one with an empty text, and with no cause unless the
Failure holds an exception itself, so a script that crashed on it showed no reason.
"""

from __future__ import annotations

import json
import traceback
from typing import Any, Never, TypeAlias, TypeVar, final

from attrs import frozen
from returns.primitives.exceptions import UnwrapFailedError
from returns.result import Failure, Result

from .display import problem_html
from .values import Value


def _short(data: object) -> str:
    if isinstance(data, str):
        return data
    try:
        return json.dumps(data, default=repr)
    except (TypeError, ValueError):
        return repr(data)


@frozen
class ArgsInvalid:
    """A function's arguments do not match its ``args`` validator."""

    path: str
    message: str
    code = "ArgsInvalid"

    def __str__(self) -> str:
        return f"ArgumentValidationError: {self.message}"


@frozen
class ValueInvalid:
    """A value does not match a validator (``Validator.validate``)."""

    path: str
    message: str
    code = "ValueInvalid"

    def __str__(self) -> str:
        return self.message


@frozen
class ReturnsInvalid:
    """A handler's return value does not match its ``returns`` validator."""

    path: str
    message: str
    code = "ReturnsInvalid"

    def __str__(self) -> str:
        return f"ReturnsValidationError: {self.message}"


@frozen
class DocumentInvalid:
    """A document written to ``table`` breaks its schema or a document limit."""

    table: str
    path: str
    message: str
    code = "DocumentInvalid"

    def __str__(self) -> str:
        return (
            f'Failed to insert or update a document in table "{self.table}" '
            f"because it does not match the schema: {self.message}"
        )


@frozen
class DocumentNotFound:
    """``patch``/``replace``/``delete`` named a document that does not exist."""

    id: str
    operation: str = "Update"
    code = "DocumentNotFound"

    @property
    def message(self) -> str:
        """Convex's text: ``Update on nonexistent document ID <id>``."""
        return f"{self.operation} on nonexistent document ID {self.id}"

    def __str__(self) -> str:
        return self.message


@frozen
class InvalidId:
    """A string that is not a (valid) ID, or an ID of another table."""

    id: str
    message: str
    code = "InvalidId"

    def __str__(self) -> str:
        return self.message


@frozen
class InvalidIndexRange:
    """An index name or range expression that Convex would refuse."""

    index: str
    field: str | None
    message: str
    code = "InvalidIndexRange"

    def __str__(self) -> str:
        return self.message


@frozen
class NotUnique:
    """``unique()`` found more than one document."""

    table: str
    ids: tuple[str, ...]
    code = "NotUnique"

    @property
    def message(self) -> str:
        """Convex's text for ``unique()`` with several results."""
        return (
            f"unique() query returned more than one result from table {self.table}:\n"
            f" [{', '.join(self.ids)}, ...]"
        )

    def __str__(self) -> str:
        return self.message


@frozen
class InvalidCursor:
    """A pagination cursor that is garbage or belongs to another query."""

    cursor: str | None
    message: str
    code = "InvalidCursor"

    def __str__(self) -> str:
        return self.message


@frozen
class LimitExceeded:
    """A per-transaction limit (writes, documents read, bytes read/written, ...)."""

    limit: str
    value: int
    message: str = ""
    code = "LimitExceeded"

    def __str__(self) -> str:
        return self.message or f"Too many {self.limit} (limit: {self.value})"


@frozen
class Rejected:
    """The handler raised ``ConvexError(data)`` (or returned ``Failure(Rejected(...))``)."""

    data: Value
    code = "Rejected"

    @property
    def message(self) -> str:
        """``data`` itself when it is a string, else its JSON form."""
        return _short(self.data)

    def __str__(self) -> str:
        return self.message


@frozen(eq=False)
class HandlerError:
    """An unexpected exception in handler code; the original is attached."""

    exception: BaseException
    function: str | None = None
    code = "HandlerError"

    @property
    def message(self) -> str:
        """``Uncaught <Type>: <text>``, as a Convex dev deployment prints it."""
        return f"Uncaught {type(self.exception).__name__}: {self.exception}"

    @property
    def traceback(self) -> str:
        """The formatted traceback of the original exception."""
        return "".join(traceback.format_exception(self.exception))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HandlerError)
            and type(other.exception) is type(self.exception)
            and other.exception.args == self.exception.args
        )

    def __hash__(self) -> int:
        return hash((type(self.exception), self.exception.args))

    def __str__(self) -> str:
        return self.message


@frozen
class FunctionNotFound:
    """No public function at ``path`` (internal functions count as missing remotely)."""

    path: str
    suggestions: tuple[str, ...] = ()
    hint: str = ""  # what to do instead, when the cause is known (no app loaded)
    code = "FunctionNotFound"

    @property
    def message(self) -> str:
        """Convex's text, with close matches or a hint when there are any."""
        text = f"Could not find public function for '{self.path}'."
        if self.suggestions:
            text += " Did you mean: " + ", ".join(self.suggestions) + "?"
        if self.hint:
            text += " " + self.hint
        return text

    def __str__(self) -> str:
        return self.message


@frozen
class Busy:
    """The write lock was not obtained within ``busy_timeout``; safe to retry."""

    message: str = "database is locked: another writer held the lock past busy_timeout"
    code = "Busy"

    def __str__(self) -> str:
        return self.message


@frozen
class StorageError:
    """SQLite could not do the work: disk full, corrupt file, I/O error."""

    message: str
    code = "StorageError"

    def __str__(self) -> str:
        return self.message


@frozen
class Unauthenticated:
    """A token (or an admin key) was refused; the caller is not signed in.

    ``reason`` says why in one word: ``"malformed"``,
    ``"kid"``, ``"signature"``, ``"expired"``, ``"not_yet_valid"``,
    ``"issued_in_future"``, ``"issuer"``, ``"audience"``, ``"claims"``,
    ``"jwks"``, ``"discovery"`` or ``"admin_key"``. ``convex_code`` and
    ``status`` are what Convex's HTTP API answers (``{"code", "message"}`` with
    that status): ``InvalidAuthHeader``, ``NoAuthProvider``, ``Unauthenticated``
    and ``BadAdminKey`` are 401; ``AuthProviderDiscoveryFailed`` is 400 or the
    identity provider's own status.
    """

    reason: str
    message: str
    convex_code: str = "Unauthenticated"
    status: int = 401
    code = "Unauthenticated"

    def __str__(self) -> str:
        return self.message


Problem: TypeAlias = (
    ArgsInvalid
    | ValueInvalid
    | ReturnsInvalid
    | DocumentInvalid
    | DocumentNotFound
    | InvalidId
    | InvalidIndexRange
    | NotUnique
    | InvalidCursor
    | LimitExceeded
    | Rejected
    | HandlerError
    | FunctionNotFound
    | Busy
    | StorageError
    | Unauthenticated
)
"""The closed union of everything a ``Failure`` from one_store can hold."""

PROBLEM_TYPES: tuple[type, ...] = (
    ArgsInvalid,
    ValueInvalid,
    ReturnsInvalid,
    DocumentInvalid,
    DocumentNotFound,
    InvalidId,
    InvalidIndexRange,
    NotUnique,
    InvalidCursor,
    LimitExceeded,
    Rejected,
    HandlerError,
    FunctionNotFound,
    Busy,
    StorageError,
    Unauthenticated,
)


# Every Problem shows in a notebook as its code, message and fields (attrs'
# repr already reads well in a terminal). Set once here rather than in 15 classes.
for _problem_type in PROBLEM_TYPES:
    setattr(_problem_type, "_repr_html_", problem_html)  # noqa: B010 - not declared


def is_problem(value: object) -> bool:
    """Whether ``value`` is one of the Problem classes."""
    return isinstance(value, PROBLEM_TYPES)


class OneStoreError(Exception):
    """Base of the exceptions one_store raises for misuse of the library."""

    code = "OneStoreError"


class SchemaError(OneStoreError, ValueError):
    """A schema definition Convex would refuse (raised at definition time)."""

    code = "SchemaError"


@frozen
class Mismatch:
    """One stored document that does not match the new schema, and why."""

    table: str
    id: str
    path: str
    """Where in the document the check failed, as ``.a.b[0]`` (``""``: the document)."""
    message: str
    """The validator's message (Convex's text, ``Path:`` line included)."""


class SchemaMismatchError(OneStoreError, ValueError):
    """Documents in the file do not match the schema given to ``Store.open``.

    ``mismatches`` holds the first offending documents (at most 10), in the order
    they are stored, and ``offending`` their IDs.
    """

    code = "SchemaMismatchError"

    def __init__(
        self,
        message: str,
        offending: tuple[str, ...] = (),
        mismatches: tuple[Mismatch, ...] = (),
    ) -> None:
        super().__init__(message)
        self.offending = offending
        self.mismatches = mismatches


class ContextError(OneStoreError, RuntimeError):
    """A context used outside its rules (``ctx.db`` in an action, a write in a query)."""

    code = "ContextError"


class DefinitionError(OneStoreError, TypeError):
    """A function definition one_store cannot run (bad validators, bad handler)."""

    code = "DefinitionError"


class StorageFailure(Exception):  # noqa: N818 - carries a Problem (Busy, StorageError)
    """SQLite refused the work; ``problem`` is ``Busy`` or ``StorageError``.

    Inside function calls it becomes ``Failure(problem)``; it escapes only from
    :class:`StoreOpenError`.
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class StoreOpenError(StorageFailure, OneStoreError):
    """``Store.open`` could not open the file as a database (corrupt, locked, not SQLite).

    ``problem`` is the ``StorageError`` (or ``Busy``) that says why.
    """

    code = "StoreOpenError"


class ConvexError(Exception):
    """Raise inside a handler to reject with ``data``: the call returns ``Failure(Rejected(data))``.

    Example:
        >>> try:
        ...     raise ConvexError({"code": "taken"})
        ... except ConvexError as e:
        ...     e.data
        {'code': 'taken'}
    """

    def __init__(self, data: Value) -> None:
        super().__init__(_short(data))
        self.data = data


class ProblemError(Exception):
    """Carries a Problem out of handler code (e.g. ``.unwrap()`` inside an action)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def describe(problem: object) -> str:
    """``"<code>: <message>"`` of a Problem, as a failed ``.unwrap()`` shows it.

    A ``HandlerError`` shows its exception (type and text, without Convex's
    ``Uncaught``) and the function it came from.
    """
    if isinstance(problem, HandlerError):
        exception = problem.exception
        text = f"HandlerError: {type(exception).__name__}: {exception}"
        return text if problem.function is None else f"{text} in '{problem.function}'"
    code = getattr(problem, "code", None)
    message = getattr(problem, "message", None)
    if isinstance(code, str) and isinstance(message, str):
        return f"{code}: {message}"
    return repr(problem)


def cause_of(problem: object) -> BaseException | None:
    """The exception a Problem carries (``HandlerError.exception``), if any."""
    if isinstance(problem, BaseException):
        return problem
    exception = getattr(problem, "exception", None)
    return exception if isinstance(exception, BaseException) else None


class UnwrapError(UnwrapFailedError):
    """``.unwrap()`` of a one_store ``Failure``: names the Problem, chains its cause.

    A subclass of ``returns``' ``UnwrapFailedError`` (``except UnwrapFailedError``
    still catches it), with the Problem's code and message as its text,
    ``problem`` for the Problem itself, and the Problem's exception (a
    ``HandlerError``'s) as ``__cause__``.

    Example:
        >>> from one_store import Rejected
        >>> try:
        ...     ProblemFailure(Rejected("taken")).unwrap()
        ... except UnwrapError as e:
        ...     print(e)
        Rejected: taken
    """

    def __init__(self, container: ProblemFailure[Any]) -> None:
        super().__init__(container)
        self.args = (describe(container.failure()),)

    @property
    def problem(self) -> Any:
        """The Problem in the Failure that was unwrapped."""
        return self.halted_container.failure()


_P_co = TypeVar("_P_co", covariant=True)


@final
class ProblemFailure(Failure[_P_co]):  # type: ignore[misc]  # returns marks Failure @final for type checkers only
    """The ``Failure`` one_store hands out: ``.unwrap()`` raises :class:`UnwrapError`.

    returns marks ``Failure`` ``@final`` for type checkers only (the ignore above);
    subclassing it is what keeps ``isinstance(r, Failure)`` and
    ``case Failure(...)`` working. Equality, hashing and ``repr`` are those of a
    plain ``Failure`` holding the same Problem; ``alt``, ``swap`` and the other
    container methods return what they return on ``Failure``.
    """

    __slots__ = ()

    def unwrap(self) -> Never:
        """Raise :class:`UnwrapError` naming the Problem, from its exception."""
        cause = cause_of(self._inner_value)
        if cause is None:  # no ``from None``: an enclosing exception stays visible
            raise UnwrapError(self)
        raise UnwrapError(self) from cause

    def __eq__(self, other: object) -> bool:
        # returns compares exact types; a plain Failure of the same Problem is equal.
        return isinstance(other, Failure) and self._inner_value == other.failure()

    def equals(self, other: object) -> bool:
        """Typesafe equality with another ``Result``, as ``Result.equals``."""
        return self == other

    __hash__ = Failure.__hash__

    def __repr__(self) -> str:
        return repr(Failure(self._inner_value))

    def _repr_html_(self) -> str:
        return f"Failure: {problem_html(self._inner_value)}"


_T = TypeVar("_T")
_E = TypeVar("_E")


def as_user_result(result: Result[_T, _E]) -> Result[_T, _E]:
    """``result`` as one_store hands it to the user: a Failure becomes a ProblemFailure.

    Called where the store returns a Result to user code (``Store.query`` /
    ``mutation`` / ``action`` / ``run``, ``ctx.run_query`` / ``run_mutation`` /
    ``run_action``); a Success, or a Failure already converted, is returned as is.
    """
    if type(result) is Failure:
        return ProblemFailure(result.failure())
    return result
