"""``ctx.storage``: file storage as each kind of function sees it.

- :class:`StorageReader` in queries: ``get_url``;
- :class:`StorageWriter` in mutations: ``get_url``, ``generate_upload_url`` and
  ``delete``, inside the mutation's transaction;
- :class:`StorageActions` in actions: ``store``, ``get``, ``get_url``, ``delete``,
  ``generate_upload_url``, each a transaction of its own.

As Convex's ``setupStorageReader`` / ``setupStorageWriter`` /
``setupStorageActionWriter`` (convex-js ``src/server/impl/storage_impl.ts``). The
work is :class:`~one_store.runtime.files.Files`'.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from returns.result import Failure, Result

from ..model.errors import Problem, ProblemError
from ..model.ids import Id
from ..model.values import Document
from .files import Files
from .transaction import Transaction


class StorageReader:
    """``ctx.storage`` in queries: ``get_url``."""

    __slots__ = ("_files", "_txn")

    def __init__(self, files: Files, txn: Transaction) -> None:
        self._files = files
        self._txn = txn

    def get_url(self, storage_id: Id) -> str | None:
        """The URL serving the file, or None when it does not exist."""
        files = self._files
        doc = files.row(self._txn, files.check_id(storage_id, "getUrl"))
        return None if doc is None else files.url(str(doc["_id"]))


class StorageWriter(StorageReader):
    """``ctx.storage`` in mutations: ``get_url``, ``generate_upload_url``, ``delete``."""

    __slots__ = ()

    def generate_upload_url(self) -> str:
        """A URL a client POSTs a file's bytes to; it answers ``{"storageId": id}``.

        Signed, and valid for an hour from this mutation's ``now``.
        """
        return self._files.upload_url(self._txn.now_ms, self._txn)

    def delete(self, storage_id: Id) -> None:
        """Delete the file with this mutation (rolled back if the mutation fails)."""
        self._files.delete_in(self._txn, storage_id)


class StorageActions:
    """``ctx.storage`` in actions: each call is its own transaction.

    ``store``, ``get``, ``get_url``, ``delete`` and ``generate_upload_url``. A
    Failure of one of them fails the action with its Problem (they raise
    :class:`~one_store.model.errors.ProblemError`, as ``.unwrap()`` does).
    """

    __slots__ = ("_files",)

    def __init__(self, files: Files) -> None:
        self._files = files

    def store(self, data: bytes | BinaryIO, content_type: str | None = None) -> Id:
        """Store ``data`` (bytes or a binary file object, streamed); its storage ID.

        The file exists once this returns, whatever the action does next.
        """
        sid: Id = _value(self._files.store(data, content_type))
        return sid

    def get(self, storage_id: Id) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        body = _value(self._files.open(storage_id, "get"))
        if body is None:
            return None
        with body:
            data: bytes = body.read()
        return data

    def get_url(self, storage_id: Id) -> str | None:
        """The URL serving the file, or None when it does not exist."""
        doc: Document | None = _value(self._files.read(storage_id, "getUrl"))
        return None if doc is None else self._files.url(str(doc["_id"]))

    def delete(self, storage_id: Id) -> None:
        """Delete the file (its own transaction)."""
        _value(self._files.delete(storage_id))

    def generate_upload_url(self) -> str:
        """A signed upload URL, valid for an hour from now."""
        return self._files.upload_url(float(self._files.executor.clock()))


def _value(result: Result[Any, Problem]) -> Any:
    if isinstance(result, Failure):
        raise ProblemError(result.failure())
    return result.unwrap()
