"""``@query``, ``@mutation``, ``@action``, their ``internal_*`` twins and ``@http_action``.

Each decorator turns a handler ``fn(ctx, args)`` into a frozen :class:`FunctionSpec`
holding the handler, its kind, its visibility and its validators. The spec is what
``store.query/mutation/action`` run, and what an app folder exposes by path.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar, overload

from attrs import frozen
from returns.result import Failure, Result, Success

from ..model.errors import ContextError, DefinitionError, FunctionNotFound, Problem
from ..model.validators import Validator, v

T = TypeVar("T")
Kind: TypeAlias = Literal["query", "mutation", "action", "http_action"]
Visibility: TypeAlias = Literal["public", "internal"]
ArgsSpec: TypeAlias = Mapping[str, Validator] | Validator | None


@frozen
class FunctionSpec(Generic[T]):
    """A registered function: what a store runs and an app exposes by path.

    ``T`` is what a successful call returns (``store.mutation(spec)`` is
    ``Result[T, Problem]``).
    """

    handler: Callable[..., Any]
    kind: Kind
    visibility: Visibility = "public"
    args: Validator | None = None
    returns: Validator | None = None
    name: str | None = None

    @property
    def display_name(self) -> str:
        """The explicit ``name=`` or the handler's Python name."""
        return self.name or str(getattr(self.handler, "__name__", "<function>"))

    def __call__(self, ctx: Any, args: Any) -> Any:
        """Call the handler directly (no validation, no transaction): for unit tests."""
        return self.handler(ctx, args)


def _args_validator(args: ArgsSpec, where: str) -> Validator | None:
    if args is None:
        return None
    validator = args if isinstance(args, Validator) else v.object(args)
    if validator.kind not in ("object", "any"):
        raise DefinitionError(
            f"{where}: Args validator must be an object or any, got {validator}"
        )
    return validator


def _register(
    kind: Kind,
    visibility: Visibility,
    handler: Callable[..., Any] | None,
    args: ArgsSpec,
    returns: Validator | None,
    name: str | None,
) -> Any:
    def wrap(fn: Callable[..., Any]) -> FunctionSpec[Any]:
        if isinstance(fn, FunctionSpec):
            raise DefinitionError(
                f"{fn.display_name} is already registered as a {fn.kind}"
            )
        if not callable(fn):
            raise DefinitionError(f"@{kind} needs a function, got {fn!r}")
        if returns is not None and not isinstance(returns, Validator):
            raise DefinitionError(f"returns= must be a validator, got {returns!r}")
        if name is not None and (not isinstance(name, str) or not name.isidentifier()):
            raise DefinitionError(f"name= must be an identifier, got {name!r}")
        where = f"@{kind} {name or getattr(fn, '__name__', fn)!r}"
        return FunctionSpec(
            fn, kind, visibility, _args_validator(args, where), returns, name
        )

    return wrap if handler is None else wrap(handler)


def _make(kind: Kind, visibility: Visibility) -> Any:
    def decorator(
        handler: Callable[..., Any] | None = None,
        *,
        args: ArgsSpec = None,
        returns: Validator | None = None,
        name: str | None = None,
    ) -> Any:
        return _register(kind, visibility, handler, args, returns, name)

    decorator.__name__ = kind if visibility == "public" else f"internal_{kind}"
    decorator.__doc__ = (
        f"Register {'a public' if visibility == 'public' else 'an internal'} {kind}.\n\n"
        "Use as ``@decorator`` or ``@decorator(args={...}, returns=v..., name=...)``.\n"
        "``name=`` sets the path's function part (``file:name``)."
    )
    return decorator


class _Wrap(Protocol):
    """What ``@mutation(args=...)`` returns: a decorator keeping the return type."""

    @overload
    def __call__(
        self, handler: Callable[..., Result[T, Any]], /
    ) -> FunctionSpec[T]: ...
    @overload
    def __call__(self, handler: Callable[..., T], /) -> FunctionSpec[T]: ...


# The decorators. Typed through overloads so that a handler returning
# ``Result[T, P]`` gives ``FunctionSpec[T]`` just as one returning ``T`` does.
class _Decorator:
    def __init__(self, kind: Kind, visibility: Visibility) -> None:
        self._fn = _make(kind, visibility)
        self.__doc__ = self._fn.__doc__

    @overload
    def __call__(
        self, handler: Callable[..., Result[T, Any]], /
    ) -> FunctionSpec[T]: ...
    @overload
    def __call__(self, handler: Callable[..., T], /) -> FunctionSpec[T]: ...
    @overload
    def __call__(
        self,
        handler: None = None,
        /,
        *,
        args: ArgsSpec = None,
        returns: Validator | None = None,
        name: str | None = None,
    ) -> _Wrap: ...
    def __call__(
        self,
        handler: Callable[..., Any] | None = None,
        /,
        *,
        args: ArgsSpec = None,
        returns: Validator | None = None,
        name: str | None = None,
    ) -> Any:
        return self._fn(handler, args=args, returns=returns, name=name)


query = _Decorator("query", "public")
mutation = _Decorator("mutation", "public")
action = _Decorator("action", "public")
internal_query = _Decorator("query", "internal")
internal_mutation = _Decorator("mutation", "internal")
internal_action = _Decorator("action", "internal")


def http_action(handler: Callable[..., Any]) -> FunctionSpec[Any]:
    """Register an HTTP action ``fn(ctx, request) -> HttpResponse`` for an app's router."""
    if not callable(handler):
        raise DefinitionError(f"@http_action needs a function, got {handler!r}")
    return FunctionSpec(handler, "http_action", "internal")


def normalize_path(path: object) -> str | None:
    """Canonical ``"file:name"`` for a Convex function path, or None if malformed.

    ``"messages:list"``, ``"messages.js:list"`` and ``"dir/file:fn"`` are accepted;
    a module without ``:name`` means its ``default`` export.
    """
    if not isinstance(path, str) or not path:
        return None
    module, sep, name = path.rpartition(":")
    if not sep:
        module, name = path, "default"
    for ext in (".js", ".ts", ".py"):
        if module.endswith(ext):
            module = module[: -len(ext)]
    parts = module.split("/")
    if not module or any(p in ("", ".", "..") for p in parts) or not name:
        return None
    return f"{module}:{name}"


# Convex's text adds "Did you forget to run `npx convex dev`?"; here the cause is
# a store with no app to look the path up in.
NO_APP_HINT = (
    "This store was opened without an app: a function is found by its "
    '"file:name" path only in an app folder given as Store.open(..., app=...) '
    "or Store.memory(app=...); without one, pass the function itself."
)


class FunctionIndex:
    """An app's functions by ``"file:name"`` path: find, name and resolve them.

    ``functions`` is None for a store opened without an app: every path is
    then unknown, and the Problem says why.
    """

    def __init__(self, functions: Mapping[str, FunctionSpec[Any]] | None) -> None:
        self._functions: Mapping[str, FunctionSpec[Any]] = functions or {}
        self._no_app = functions is None

    def find(self, path: str) -> Result[FunctionSpec[Any], FunctionNotFound]:
        """Find a function of the loaded app by its ``"file:name"`` path."""
        if self._no_app:
            return Failure(FunctionNotFound(str(path), hint=NO_APP_HINT))
        functions = self._functions
        key = normalize_path(path)
        spec = functions.get(key) if key is not None else None
        if spec is None:
            close = tuple(difflib.get_close_matches(str(path), list(functions), n=3))
            return Failure(FunctionNotFound(str(path), close))
        return Success(spec)

    def path_of(self, spec: FunctionSpec[Any]) -> str:
        """The ``"file:name"`` path of a function of the app (or its Python name)."""
        for path, candidate in self._functions.items():
            if candidate is spec:
                return path
        return spec.display_name

    def resolve(self, kind: Kind, fn: object) -> Result[FunctionSpec[Any], Problem]:
        """The function ``fn`` names (a spec or a path), which must be a ``kind``."""
        if type(fn) is FunctionSpec and fn.kind == kind:  # the common case
            return Success(fn)
        if isinstance(fn, str):
            found = self.find(fn)
            if isinstance(found, Success) and found.unwrap().kind != kind:
                spec = found.unwrap()
                return Failure(
                    FunctionNotFound(fn, (f"{fn} is a {spec.kind}, not a {kind}",))
                )
            return found
        if isinstance(fn, FunctionSpec):
            if fn.kind != kind:
                raise ContextError(
                    f"{fn.display_name} is a {fn.kind}; call it with store.{fn.kind}() / ctx.run_{fn.kind}()"
                )
            return Success(fn)
        raise ContextError(
            f"Expected a function registered with @{kind} or a 'file:name' path, got {fn!r}"
        )
