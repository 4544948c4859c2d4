"""one_store: the Convex programming model, embedded in Python on SQLite.

Declare tables with validators and indexes, write queries, mutations and actions as
plain Python functions, and run them against a local file (or memory). Every
mutation is one SQLite transaction; every call returns a ``returns`` ``Result``.

Example:
    >>> from one_store import Store, define_schema, define_table, mutation, query, v
    >>> schema = define_schema({"agents": define_table({"name": v.string()})})
    >>> @mutation(args={"name": v.string()})
    ... def create(ctx, args):
    ...     return ctx.db.insert("agents", {"name": args["name"]})
    >>> store = Store.memory(schema)
    >>> store.mutation(create, {"name": 3}).failure().code
    'ArgsInvalid'
"""

import typing as _typing

from .app import bundled_app
from .data import TableView, to_arrow, to_pandas, to_polars
from .model.errors import (
    ArgsInvalid,
    Busy,
    ContextError,
    ConvexError,
    DefinitionError,
    DocumentInvalid,
    DocumentNotFound,
    FunctionNotFound,
    HandlerError,
    InvalidCursor,
    InvalidId,
    InvalidIndexRange,
    LimitExceeded,
    NotUnique,
    OneStoreError,
    Problem,
    Rejected,
    ReturnsInvalid,
    SchemaError,
    SchemaMismatchError,
    StorageError,
    StoreOpenError,
    Unauthenticated,
    UnwrapError,
    ValueInvalid,
)
from .model.ids import Id
from .model.schema import Schema, TableDefinition, define_schema, define_table
from .model.validators import Validator, v
from .model.values import UNSET, Document, Value
from .runtime.context import (
    ActionCtx,
    MutationCtx,
    QueryCtx,
)
from .runtime.crons import Crons
from .runtime.database import DatabaseReader, DatabaseWriter
from .runtime.functions import (
    FunctionSpec,
    action,
    http_action,
    internal_action,
    internal_mutation,
    internal_query,
    mutation,
    query,
)
from .runtime.identity import get_auth_user_id
from .runtime.router import HttpRequest, HttpResponse, HttpRouter
from .runtime.watch import Watch
from .store import Store

if _typing.TYPE_CHECKING:
    __version__: str
else:

    def __getattr__(name: str) -> str:
        # ``__version__`` is read from the installed package's metadata on first use:
        # importing importlib.metadata and finding the distribution costs more than
        # `import one_store` should pay for a name most programs never read.
        if name != "__version__":
            raise AttributeError(f"module 'one_store' has no attribute {name!r}")
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("one-store")
        except PackageNotFoundError:  # a source tree on sys.path, not installed
            found = "0+unknown"
        globals()["__version__"] = found
        return found


__all__ = [
    "UNSET",
    "ActionCtx",
    "ArgsInvalid",
    "Busy",
    "ContextError",
    "ConvexError",
    "Crons",
    "DatabaseReader",
    "DatabaseWriter",
    "DefinitionError",
    "Document",
    "DocumentInvalid",
    "DocumentNotFound",
    "FunctionNotFound",
    "FunctionSpec",
    "HandlerError",
    "HttpRequest",
    "HttpResponse",
    "HttpRouter",
    "Id",
    "InvalidCursor",
    "InvalidId",
    "InvalidIndexRange",
    "LimitExceeded",
    "MutationCtx",
    "NotUnique",
    "OneStoreError",
    "Problem",
    "QueryCtx",
    "Rejected",
    "ReturnsInvalid",
    "Schema",
    "SchemaError",
    "SchemaMismatchError",
    "StorageError",
    "Store",
    "StoreOpenError",
    "TableDefinition",
    "TableView",
    "Unauthenticated",
    "UnwrapError",
    "Validator",
    "Value",
    "ValueInvalid",
    "Watch",
    "action",
    "bundled_app",
    "define_schema",
    "define_table",
    "get_auth_user_id",
    "http_action",
    "internal_action",
    "internal_mutation",
    "internal_query",
    "mutation",
    "query",
    "to_arrow",
    "to_pandas",
    "to_polars",
    "v",
]
