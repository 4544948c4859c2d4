"""Type-level pins of the public API: only mypy reads this file (it is never run).

``mypy`` (strict, part of ``.ci/run``) fails if what users see changes: the Result
types of the run API, the FunctionSpec a decorator returns, and that a ``match``
over ``Problem`` with ``assert_never`` is exhaustive (a new Problem class must be
added here, as everywhere a user matches on the union).
"""

from __future__ import annotations

from typing import Any, BinaryIO, assert_never, assert_type

from returns.result import Failure, Result, Success

from one_store import (
    ActionCtx,
    ArgsInvalid,
    Busy,
    DocumentInvalid,
    DocumentNotFound,
    FunctionNotFound,
    FunctionSpec,
    HandlerError,
    InvalidCursor,
    InvalidId,
    InvalidIndexRange,
    LimitExceeded,
    MutationCtx,
    NotUnique,
    Problem,
    QueryCtx,
    Rejected,
    ReturnsInvalid,
    StorageError,
    Store,
    TableView,
    Unauthenticated,
    Validator,
    Value,
    ValueInvalid,
    Watch,
    action,
    get_auth_user_id,
    internal_mutation,
    mutation,
    query,
    v,
)
from one_store.engine.filters import Expr, FilterBuilder


@mutation(args={"name": v.string()})
def create(ctx: MutationCtx, args: dict[str, Any]) -> str:
    return ctx.db.insert("agents", {"name": args["name"]})


@query
def count(ctx: QueryCtx, args: dict[str, Any]) -> int:
    return len(ctx.db.query("agents").collect())


# A handler returning a Result keeps its success type when its parameters hold no
# Any: with ``args: dict[str, Any]`` both decorator overloads match through the Any
# and mypy's overload rule widens the spec to FunctionSpec[Any].
@mutation
def rename(ctx: MutationCtx, args: dict[str, object]) -> Result[None, Problem]:
    if ctx.db.get(str(args["id"])) is None:
        return Failure(Rejected("Agent not found"))
    return Success(None)


@internal_mutation(returns=v.int64())
def bump(ctx: MutationCtx, args: dict[str, Any]) -> int:
    return 1


@action
def flow(ctx: Any, args: dict[str, Any]) -> list[str]:
    return []


def pinned(store: Store) -> None:
    assert_type(create, FunctionSpec[str])
    assert_type(rename, FunctionSpec[None])
    assert_type(store.mutation(create, {"name": "Ada"}), Result[str, Problem])
    assert_type(store.mutation(rename, {"id": "x"}), Result[None, Problem])
    assert_type(store.mutation(bump), Result[int, Problem])
    assert_type(store.query(count), Result[int, Problem])
    assert_type(store.action(flow), Result[list[str], Problem])
    assert_type(store.mutation("agents:create", {}), Result[Any, Problem])
    assert_type(store.run(lambda ctx: None), Result[Any, Problem])
    assert_type(store.read(lambda ctx: 1), Result[int, Problem])
    assert_type(store.table("agents"), TableView)
    assert_type(store.table("agents").head(), list[dict[str, Any]])
    assert_type(
        store.function("agents:create"), Result[FunctionSpec[Any], FunctionNotFound]
    )
    assert_type(v.object({"a": v.string()}), Validator)
    assert_type(v.string().validate("x"), Result[Value, ValueInvalid])
    assert_type(Store.memory(), Store)
    assert_type(Store.open("x.db"), Store)
    watch = store.watch(count, {}, on_change=lambda result: None)
    assert_type(watch, Watch)
    assert_type(watch.result, Result[Any, Problem])
    assert_type(watch.version, int)
    assert_type(next(watch.updates(timeout=1.0)), Result[Any, Problem])
    assert_type(store.with_token("a.b.c"), Result[Store, Problem])
    assert_type(store.with_identity({"subject": "u"}), Store)


def who(ctx: QueryCtx, actx: ActionCtx) -> None:
    assert_type(get_auth_user_id(ctx), str | None)
    assert_type(get_auth_user_id(actx), str | None)


def describe(problem: Problem) -> str:
    match problem:
        case ArgsInvalid(path=path, message=message):
            return f"bad argument at {path}: {message}"
        case ValueInvalid(path=path):
            return path
        case ReturnsInvalid(path=path):
            return path
        case DocumentInvalid(table=table, path=path):
            return f"{table}{path}"
        case DocumentNotFound(id=doc_id):
            return doc_id
        case InvalidId(id=doc_id):
            return doc_id
        case InvalidIndexRange(index=index):
            return index
        case NotUnique(table=table):
            return table
        case InvalidCursor():
            return problem.message
        case LimitExceeded(limit=limit, value=value):
            return f"{limit} {value}"
        case Rejected(data=data):
            assert_type(data, Value)
            return str(data)
        case HandlerError(exception=exception):
            assert_type(exception, BaseException)
            return repr(exception)
        case FunctionNotFound(path=path):
            return path
        case Busy():
            return "retry"
        case StorageError(message=message):
            return message
        case Unauthenticated(reason=reason):
            return reason
        case _:
            assert_never(problem)


def outcome(store: Store) -> str:
    match store.mutation(create, {"name": "Ada"}):
        case Success(agent_id):
            return str(agent_id)
        case Failure(problem):
            return describe(problem)
    return "unreachable for mypy's match on Result"


def filter_operators(q: FilterBuilder) -> None:
    """Filter operators are expressions to mypy too (not attrs' bool orderings)."""
    a = q.field("a")
    assert_type(a == 1, Expr)
    assert_type(a != 1, Expr)
    assert_type(a < 1, Expr)
    assert_type(1 < a, Expr)  # noqa: SIM300 (the reflected form)
    assert_type(a >= 1.0, Expr)
    assert_type(2 * a + 1, Expr)
    assert_type(-a / 2 % 3, Expr)
    assert_type((a == 1) & (a > 0) | ~(a == 2), Expr)


def file_storage(store: Store, ctx: MutationCtx, query_ctx: QueryCtx) -> None:
    """store.files returns Results; ctx.storage returns plain values (issue 18)."""
    sid = store.files.store(b"x", content_type="text/plain")
    assert_type(sid, Result[str, Problem])
    assert_type(store.files.get("s"), Result[bytes | None, Problem])
    assert_type(store.files.open("s"), Result[BinaryIO, Problem])
    assert_type(store.files.delete("s"), Result[None, Problem])
    assert_type(store.files.get_url("s"), Result[str | None, Problem])
    assert_type(ctx.storage.generate_upload_url(), str)
    assert_type(ctx.storage.get_url("s"), str | None)
    assert_type(query_ctx.storage.get_url("s"), str | None)
