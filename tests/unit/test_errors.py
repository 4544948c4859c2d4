"""Tests for one_store.model.errors: what a failed ``.unwrap()`` tells the user.

A Failure from one_store is still a ``returns`` Failure (``isinstance``, ``match``,
``.failure()``, ``==`` and the container methods behave as on ``Failure``), but its
``.unwrap()`` raises an ``UnwrapFailedError`` whose text names the Problem's code
and message, with the Problem's exception (if any) as ``__cause__`` (returns 0.30's
own ``Failure.unwrap`` raises one with an empty text and no cause for a Problem).
"""

from __future__ import annotations

import asyncio
import io
import pickle
from typing import Any

import pytest
from returns.pipeline import is_successful
from returns.primitives.exceptions import UnwrapFailedError
from returns.result import Failure, Success

from one_store import (
    ArgsInvalid,
    FunctionNotFound,
    HandlerError,
    Rejected,
    Store,
    UnwrapError,
    ValueInvalid,
    action,
    mutation,
    query,
    v,
)
from one_store.snapshot import import_snapshot


@mutation(args={"name": v.string()})
def create(ctx, args):
    return ctx.db.insert("agents", {"name": args["name"]})


@mutation(args={"n": v.int64()})
def divide(ctx, args):
    ctx.db.insert("agents", {"name": "half-done"})
    return 1 // args["n"]


@query
def count(ctx, args):
    return len(ctx.db.query("agents").collect())


def unwrap_error(result: Any) -> UnwrapFailedError:
    with pytest.raises(UnwrapFailedError) as caught:
        result.unwrap()
    return caught.value


# ----------------------------------------------------------------- the exception


def test_unwrap_of_a_handler_error_names_it_and_chains_the_original(store):
    result = store.mutation(divide, {"n": 0})
    error = unwrap_error(result)
    problem = result.failure()
    assert isinstance(problem, HandlerError)
    assert str(error) == (
        "HandlerError: ZeroDivisionError: integer division or modulo by zero "
        "in 'divide'"
    )
    assert error.__cause__ is problem.exception
    assert error.halted_container is result


def test_unwrap_of_a_problem_without_exception_names_code_and_message(store):
    result = store.mutation(create, {"name": 3})
    error = unwrap_error(result)
    problem = result.failure()
    assert isinstance(problem, ArgsInvalid)
    assert str(error) == f"ArgsInvalid: {problem.message}"
    assert ".name" in str(error)
    assert error.__cause__ is None


def test_the_exception_is_one_stores_subclass_and_carries_the_problem(store):
    error = unwrap_error(store.mutation("agents:nope", {}))
    assert isinstance(error, UnwrapError)
    assert isinstance(error.problem, FunctionNotFound)
    assert str(error).startswith(
        "FunctionNotFound: Could not find public function for 'agents:nope'."
    )
    assert "app=" in str(error)  # this store has no app: the hint says so


def test_unwrap_inside_an_except_block_keeps_the_context(store):
    result = store.mutation(create, {"name": 3})

    def handle_then_unwrap():
        try:
            raise KeyError("while handling")
        except KeyError:
            result.unwrap()

    with pytest.raises(UnwrapFailedError) as caught:
        handle_then_unwrap()
    assert isinstance(caught.value.__context__, KeyError)
    assert not caught.value.__suppress_context__


def test_the_exception_pickles_with_its_text(store):
    error = unwrap_error(store.mutation(create, {"name": 3}))
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


# ----------------------------------------------------------------- still a Failure


def test_a_failure_is_still_a_returns_failure(store):
    result = store.mutation(create, {"name": 3})
    assert isinstance(result, Failure)
    match result:
        case Failure(ArgsInvalid(path=path)):
            assert path == ".name"
        case _:
            raise AssertionError(result)
    assert not is_successful(result)
    assert repr(result) == repr(Failure(result.failure()))


def test_failures_compare_and_hash_as_plain_failures(store):
    first = store.mutation(create, {"name": 3})
    second = store.mutation(create, {"name": 3})
    plain = Failure(first.failure())
    assert first == second
    assert first == plain
    assert plain == first
    assert first.equals(plain)
    assert hash(first) == hash(plain)
    assert first != Failure(ArgsInvalid(".other", "x"))
    assert first != Success(first.failure())
    assert {first, plain} == {plain}


def test_container_methods_behave_as_on_failure(store):
    result = store.mutation(create, {"name": 3})
    problem = result.failure()
    assert result.value_or(7) == 7
    assert result.map(lambda x: x + 1) == Failure(problem)
    assert result.bind(lambda x: Success(x)) == Failure(problem)
    assert result.alt(lambda p: p.code) == Failure("ArgsInvalid")
    assert result.lash(lambda p: Success(p.path)) == Success(".name")
    assert result.swap() == Success(problem)
    # A plain Failure again after alt: returns' own rules apply to what it holds.
    assert type(result.alt(lambda p: p)) is Failure


def test_a_success_is_untouched(store):
    result = store.mutation(create, {"name": "Ada"})
    assert type(result) is Success


# ----------------------------------------------------------------- every exit


def test_a_failure_returned_by_the_handler_unwraps_with_its_problem(store):
    @mutation
    def refuse(ctx, args):
        ctx.db.insert("agents", {"name": "rolled back"})
        return Failure(Rejected("not today"))

    result = store.mutation(refuse)
    assert result == Failure(Rejected("not today"))
    assert str(unwrap_error(result)) == "Rejected: not today"
    assert store.query(count).unwrap() == 0


def test_store_run_and_query_failures_unwrap_with_their_problem(store):
    assert "HandlerError: ZeroDivisionError" in str(
        unwrap_error(store.run(lambda ctx: 1 / 0))
    )

    @query
    def broken(ctx, args):
        return {1, 2}

    assert str(unwrap_error(store.query(broken))).startswith("ReturnsInvalid: ")


def test_ctx_run_results_inside_an_action_unwrap_with_their_problem(store):
    @action
    def explain(ctx, args):
        texts = []
        for result in (
            ctx.run_mutation(divide, {"n": 0}),
            ctx.run_query("agents:nope"),
            ctx.run_action("agents:nope"),
        ):
            try:
                result.unwrap()
            except UnwrapFailedError as e:
                texts.append(str(e))
                assert isinstance(result, Failure)
        return texts

    texts = store.action(explain).unwrap()
    assert texts[0].startswith("HandlerError: ZeroDivisionError")
    assert texts[1].startswith("FunctionNotFound: ")
    assert texts[2].startswith("FunctionNotFound: ")


def test_unwrap_of_run_mutation_in_an_action_still_fails_the_action_with_it(store):
    @action
    def careless(ctx, args):
        return ctx.run_mutation(divide, {"n": 0}).unwrap()

    result = store.action(careless)
    problem = result.failure()
    assert isinstance(problem, HandlerError)
    assert isinstance(problem.exception, ZeroDivisionError)
    assert problem.function == "divide"
    assert unwrap_error(result).__cause__ is problem.exception


def test_ctx_run_results_inside_a_mutation_unwrap_with_their_problem(store):
    @mutation
    def outer(ctx, args):
        try:
            ctx.run_mutation(create, {"name": 3}).unwrap()
        except UnwrapFailedError as e:
            return str(e)
        return "no error"

    assert store.mutation(outer).unwrap().startswith("ArgsInvalid: ")


def test_action_async_failures_unwrap_with_their_problem(store):
    @action
    async def sleepy(ctx, args):
        await asyncio.sleep(0)
        raise LookupError("nothing here")

    result = asyncio.run(store.action_async(sleepy))
    error = unwrap_error(result)
    assert str(error) == "HandlerError: LookupError: nothing here in 'sleepy'"
    assert isinstance(error.__cause__, LookupError)
    bad_args = asyncio.run(store.action_async(sleepy, {"x": {1}}))
    assert str(unwrap_error(bad_args)).startswith("ArgsInvalid: ")


def test_validator_lookup_and_import_failures_unwrap_with_their_problem(
    store: Store,
):
    checked = v.string().validate(3)
    assert isinstance(checked.failure(), ValueInvalid)
    assert str(unwrap_error(checked)).startswith("ValueInvalid: ")
    assert str(unwrap_error(store.function("agents:nope"))).startswith(
        "FunctionNotFound: "
    )
    imported = import_snapshot(store, io.BytesIO(b"not a zip"))
    assert str(unwrap_error(imported)).startswith(
        "SnapshotInvalid: not a readable ZIP file"
    )
