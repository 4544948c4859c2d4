"""``@query``, ``@mutation``, ``@action``, their ``internal_*`` twins and ``@http_action``.

Each decorator turns a handler ``fn(ctx, args)`` into a frozen :class:`FunctionSpec`
holding the handler, its kind, its visibility and its validators. The spec is what
``store.query/mutation/action`` run, and what an app folder exposes by path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, Protocol, TypeAlias, TypeVar, overload

from attrs import frozen
from returns.result import Result

from ..model.errors import DefinitionError
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
