"""Where text search, vector search, file bodies and views plug into the engine.

The storage class (:mod:`one_store.engine.postgres.storage`) keeps documents,
keys, transactions and the change log. Four features live in modules of their
own, each found here by name and loaded when first needed:

``one_store.engine.postgres.search`` (text search) and
``one_store.engine.postgres.vectors`` (vector search), each a :class:`SideModule`:
    ``create(connection, table, index)`` makes the index's storage (in the open
    write); ``drop(connection, table, index)`` removes it; ``write(connection,
    table, index, doc_id, old, new)`` is called in the writing transaction for
    every insert (``old`` None), update and delete (``new`` None) of a document
    of a table with such an index, with the document before and after (an
    update whose entry did not change is not reported); ``clear(connection,
    table, index)`` empties it. ``table`` is the Convex table name (quote it
    with :func:`one_store.engine.postgres.layout.quote`).
    search also answers ``search_rows(connection, scan, max_results)``
    (:meth:`~one_store.engine.backend.Scanner.search_rows`); vectors answers
    ``vector_search(storage, scan)``
    (:meth:`~one_store.engine.backend.Scanner.vector_search`).
``one_store.engine.postgres.blobs``:
    ``blob_store(storage) -> BlobStore`` (file bodies in the database).
``one_store.engine.postgres.views``:
    ``sync(connection, schema, layouts)``: a ``<table>_view`` per table, run
    in the write of ``sync_schema``.

Until a module exists, the feature fails with a ``StorageFailure`` naming it
(a schema with a search or vector index cannot be opened; a file cannot be
stored) and views are skipped.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from ...model.errors import StorageError, StorageFailure

if TYPE_CHECKING:
    from ...model.schema import Schema
    from ...model.values import Document
    from ..backend import BlobStore, PendingBlob, Rows, SearchScan, VectorScan
    from .layout import PgTableLayout, SideIndex

_WHAT = {
    "search": "text search",
    "vectors": "vector search",
    "blobs": "file storage",
    "views": "SQL views",
}


class SideModule(Protocol):
    """What ``search`` and ``vectors`` provide for their index entries."""

    def create(self, connection: Any, table: str, index: SideIndex) -> None:
        """Make the index's storage."""

    def drop(self, connection: Any, table: str, index: SideIndex) -> None:
        """Remove the index's storage."""

    def write(
        self,
        connection: Any,
        table: str,
        index: SideIndex,
        doc_id: str,
        old: Document | None,
        new: Document | None,
    ) -> None:
        """Keep the entry of ``doc_id`` in step with a write."""

    def clear(self, connection: Any, table: str, index: SideIndex) -> None:
        """Remove every entry."""


class SearchModule(SideModule, Protocol):
    """``one_store.engine.postgres.search``."""

    def search_rows(self, connection: Any, scan: SearchScan, max_results: int) -> Rows:
        """The first ``max_results`` matches, in Convex's order."""


class VectorModule(SideModule, Protocol):
    """``one_store.engine.postgres.vectors``."""

    def vector_search(self, storage: Any, scan: VectorScan) -> list[tuple[str, float]]:
        """The best matches, best first."""


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


def missing(name: str) -> StorageFailure:
    """The failure of a feature whose module is not there."""
    return StorageFailure(
        StorageError(
            f"{_WHAT[name]} is not available on PostgreSQL in this one_store "
            f"(one_store.engine.postgres.{name} is missing)"
        )
    )


def need(name: str) -> object:
    """The module ``name`` (raises :func:`missing`'s failure when absent)."""
    module = find(name)
    if module is None:
        raise missing(name)
    return module


def side_module(index: SideIndex) -> SideModule:
    """The module keeping entries of ``index`` (search or vectors)."""
    from ...model.schema import SearchIndex

    return cast(
        SideModule, need("search" if isinstance(index, SearchIndex) else "vectors")
    )


def search() -> SearchModule:
    """The text-search module."""
    return cast(SearchModule, need("search"))


def vectors() -> VectorModule:
    """The vector-search module."""
    return cast(VectorModule, need("vectors"))


def views() -> ViewModule | None:
    """The views module, or None (views are then skipped)."""
    return cast("ViewModule | None", find("views"))


def blob_store(storage: object) -> BlobStore:
    """The file bodies: pg-extras' store, or one that refuses every body."""
    module = find("blobs")
    if module is None:
        return NoBlobs()
    return cast(BlobModule, module).blob_store(storage)


class NoBlobs:
    """File bodies while ``blobs`` is missing: none held; storing one fails."""

    def begin(self, key: str) -> PendingBlob:
        """Refuse: no file can be stored."""
        raise missing("blobs")

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
