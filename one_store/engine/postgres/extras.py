"""Where file bodies and SQL views plug into the PostgreSQL engine.

Text search (:mod:`one_store.engine.postgres.text_search`) and vector search
(:mod:`one_store.engine.postgres.vector_tables`) are called by the storage
class directly: every insert, replace and delete of a document of a table with
such an index calls their ``index_document`` / ``reindex_document`` /
``unindex_document`` in the writing transaction, and DDL their ``create`` /
``drop`` / ``backfill``.

Two features are found here by module name, loaded when first needed:

``one_store.engine.postgres.blobs``:
    ``blob_store(storage) -> BlobStore`` (file bodies in the database;
    ``storage`` is the :class:`~one_store.engine.postgres.storage.PgStorage`,
    whose ``dsn``, ``connection``, ``lock`` and ``write()`` it may use).
``one_store.engine.postgres.views``:
    ``sync(connection, schema, layouts)``: a ``<table>_view`` per table, run in
    the write of ``sync_schema``; it records what it made under the ``views``
    key of ``_one_store_meta``.

Until a module exists, storing a file fails with a ``StorageFailure`` naming
it (reading finds no body), and no views are made.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from ...model.errors import StorageError, StorageFailure

if TYPE_CHECKING:
    from ...model.schema import Schema
    from ..backend import BlobStore, PendingBlob
    from .layout import PgTableLayout


class BlobModule(Protocol):
    """``one_store.engine.postgres.blobs``."""

    def blob_store(self, storage: Any) -> BlobStore:
        """The store's file bodies."""


class ViewModule(Protocol):
    """``one_store.engine.postgres.views``."""

    def sync(
        self, connection: Any, schema: Schema, layouts: Mapping[str, PgTableLayout]
    ) -> None:
        """A ``<table>_view`` per table."""


def find(name: str) -> object | None:
    """The module ``one_store.engine.postgres.<name>``, or None while it does not exist."""
    full = f"{__package__}.{name}"
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as e:
        if e.name == full:
            return None
        raise


def views() -> ViewModule | None:
    """The views module, or None (no views are made)."""
    return cast("ViewModule | None", find("views"))


def blob_store(storage: object) -> BlobStore:
    """The file bodies: the ``blobs`` module's store, or one that refuses every body."""
    module = find("blobs")
    if module is None:
        return NoBlobs()
    return cast(BlobModule, module).blob_store(storage)


class NoBlobs:
    """File bodies while ``blobs`` is missing: none held; storing one fails."""

    def begin(self, key: str) -> PendingBlob:
        """Refuse: no file can be stored."""
        raise StorageFailure(
            StorageError(
                "file storage is not available on PostgreSQL in this one_store "
                "(one_store.engine.postgres.blobs is missing)"
            )
        )

    def open(self, key: str) -> BinaryIO | None:
        """No body is held."""
        return None

    def remove(self, key: str) -> None:
        """Nothing to remove."""

    def names(self) -> list[str]:
        """No body is held."""
        return []

    def recover(self, live: Callable[[str], bool]) -> list[str]:
        """Nothing to recover."""
        return []

    def close(self) -> None:
        """Nothing to release."""
