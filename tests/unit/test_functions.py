"""Tests for one_store.runtime.functions: the decorators and FunctionSpec."""

from __future__ import annotations

from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import (
    DefinitionError,
    FunctionSpec,
    Rejected,
    Store,
    action,
    http_action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
    v,
)

DECORATORS = [
    (query, "query", "public"),
    (mutation, "mutation", "public"),
    (action, "action", "public"),
    (internal_query, "query", "internal"),
    (internal_mutation, "mutation", "internal"),
    (internal_action, "action", "internal"),
]


@pytest.mark.parametrize(("decorator", "kind", "visibility"), DECORATORS)
def test_bare_decorator_makes_a_spec(decorator, kind, visibility):
    def handler(ctx, args):
        return None

    spec = decorator(handler)
    assert isinstance(spec, FunctionSpec)
    assert spec.handler is handler
    assert spec.kind == kind
    assert spec.visibility == visibility
    assert spec.args is None
    assert spec.returns is None
    assert spec.name is None
    assert spec.display_name == "handler"


@pytest.mark.parametrize(("decorator", "kind", "visibility"), DECORATORS)
def test_decorator_with_options(decorator, kind, visibility):
    @decorator(args={"a": v.string()}, returns=v.null(), name="doThing")
    def do_thing(ctx, args):
        return None

    assert do_thing.kind == kind
    assert do_thing.args == v.object({"a": v.string()})
    assert do_thing.returns == v.null()
    assert do_thing.name == "doThing"
    assert do_thing.display_name == "doThing"


def test_args_may_be_an_object_or_any_validator():
    assert mutation(args=v.any())(lambda c, a: None).args == v.any()
    obj = v.object({"x": v.int64()})
    assert mutation(args=obj)(lambda c, a: None).args == obj


@pytest.mark.parametrize(
    "options",
    [
        {"args": v.string()},
        {"args": v.array(v.any())},
        {"returns": {"a": v.string()}},
        {"name": "not an identifier"},
        {"name": 3},
    ],
)
def test_bad_definitions_raise_definition_error(options):
    with pytest.raises(DefinitionError):
        mutation(**options)(lambda ctx, args: None)


def test_double_registration_and_non_callables_are_refused():
    spec = query(lambda ctx, args: None)
    with pytest.raises(DefinitionError):
        mutation(spec)
    with pytest.raises(DefinitionError):
        mutation(3)  # type: ignore[call-overload]
    with pytest.raises(DefinitionError):
        http_action(3)  # type: ignore[arg-type]


def test_args_validator_keys_must_be_identifiers():
    with pytest.raises(ValueError, match="Object field name"):
        mutation(args={"bad-key": v.string()})(lambda ctx, args: None)


def test_http_action_is_an_internal_spec():
    def ingest(ctx, request):
        return None

    spec = http_action(ingest)
    assert spec.kind == "http_action"
    assert spec.visibility == "internal"


def test_spec_is_frozen_and_calls_its_handler_directly():
    @query
    def echo(ctx, args):
        return (ctx, args)

    assert echo("ctx", {"a": 1}) == ("ctx", {"a": 1})
    with pytest.raises(AttributeError):
        echo.kind = "mutation"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (5, Success(5)),
        (None, Success(None)),
        (Success([1]), Success([1])),
        (Failure(Rejected("no")), Failure(Rejected("no"))),
        (Failure("plain data"), Failure(Rejected("plain data"))),
    ],
)
def test_handler_may_return_a_value_or_a_result(store, returned, expected):
    @mutation
    def handler(ctx, args):
        return returned

    @query
    def reader(ctx, args):
        return returned

    assert store.mutation(handler) == expected
    assert store.query(reader) == expected


def test_args_reach_the_handler_validated_and_normalised(store: Store):
    seen: list[Any] = []

    @mutation(args={"n": v.number(), "t": v.array(v.int64())})
    def handler(ctx, args):
        seen.append(args)

    store.mutation(handler, {"n": 2, "t": (1, 2)}).unwrap()
    assert seen == [{"n": 2.0, "t": [1, 2]}]
    assert type(seen[0]["n"]) is float


def test_actions_run_queries_and_mutations_as_results(store: Store):
    @mutation(args={"name": v.string()})
    def add(ctx, args):
        return ctx.db.insert("agents", {"name": args["name"]})

    @query
    def names(ctx, args):
        return [d["name"] for d in ctx.db.query("agents").collect()]

    @action
    def flow(ctx, args):
        first = ctx.run_mutation(add, {"name": "a"}).unwrap()
        bad = ctx.run_mutation(add, {"name": 1})
        return {
            "first": first,
            "bad": bad.failure().code,
            "names": ctx.run_query(names).unwrap(),
        }

    out = store.action(flow).unwrap()
    assert out["bad"] == "ArgsInvalid"
    assert out["names"] == ["a"]


def test_the_decorators_say_what_they_register_in_english():
    import one_store

    for kind in ("query", "mutation", "action"):
        public = getattr(one_store, kind).__doc__.splitlines()[0]
        internal = getattr(one_store, f"internal_{kind}").__doc__.splitlines()[0]
        assert public == f"Register a public {kind}."
        assert internal == f"Register an internal {kind}."
