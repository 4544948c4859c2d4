"""``store.files``: file storage for scripts and notebooks, every call a ``Result``.

The same files as ``ctx.storage`` (:mod:`one_store.runtime.files`), from outside
any function: each call is a transaction of its own, as in an action.

Example:
    >>> from one_store import Store
    >>> with Store.memory() as store:
    ...     sid = store.files.store(b"hello", content_type="text/plain").unwrap()
    ...     store.files.get(sid).unwrap()
    b'hello'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from returns.result import Failure, Result, Success

from ..model.errors import DocumentNotFound, Problem
from ..model.ids import Id
from ..model.values import Document
from .files import Files, TokenError, Upload


class FileStore:
    """``store.files``: ``store``, ``get``, ``open``, ``delete``, ``get_url``, ...

    Bad storage IDs are ``Failure(InvalidId)`` with Convex's text; a file that
    does not exist is ``None`` for ``get``/``get_url``/``metadata`` and
    ``Failure(DocumentNotFound)`` for ``open`` and ``delete``.
    """

    def __init__(self, files: Files) -> None:
        self._files = files

    @property
    def site_url(self) -> str:
        """The origin of the URLs ``get_url`` and upload URLs are made under."""
        return self._files.site_url

    @site_url.setter
    def site_url(self, url: str) -> None:
        self._files.site_url = url.rstrip("/")

    @property
    def max_size(self) -> int | None:
        """The largest file accepted, in bytes (None: no limit, as Convex)."""
        return self._files.max_size

    @max_size.setter
    def max_size(self, size: int | None) -> None:
        self._files.max_size = size

    def store(
        self,
        data: bytes | BinaryIO | Iterable[bytes],
        content_type: str | None = None,
    ) -> Result[Id, Problem]:
        """Store ``data`` (bytes, a binary file object or an iterable of pieces).

        A file object or iterable is streamed: memory stays flat whatever the
        size. The file exists (committed) once this returns ``Success(id)``.
        """
        return self._files.store(data, content_type)

    def begin(
        self, content_type: str | None = None, max_size: int | None = None
    ) -> Upload:
        r"""Store a file piece by piece: ``write(...)``, then ``commit()`` or ``abort()``.

        Use it as a context manager; leaving without a commit keeps nothing.

        Example:
            >>> from one_store import Store
            >>> with Store.memory() as store, store.files.begin("text/csv") as upload:
            ...     problem = upload.write(b"a,b\n")
            ...     sid = upload.commit().unwrap()
        """
        return self._files.begin(content_type, max_size)

    def get(self, storage_id: Id) -> Result[bytes | None, Problem]:
        """The whole file as bytes (None when it does not exist); prefer ``open``."""
        opened = self._files.open(storage_id, "get")
        if isinstance(opened, Failure):
            return opened
        body = opened.unwrap()
        if body is None:
            return Success(None)
        with body:
            return Success(body.read())

    def open(self, storage_id: Id) -> Result[BinaryIO, Problem]:
        """The file opened for streaming reads (close it; ``with`` does).

        It stays readable to its end even if the file is deleted meanwhile.
        """
        opened = self._files.open(storage_id, "get")
        if isinstance(opened, Failure):
            return opened
        body = opened.unwrap()
        if body is None:
            return Failure(DocumentNotFound(str(storage_id), "Read"))
        return Success(body)

    def delete(self, storage_id: Id) -> Result[None, Problem]:
        """Delete the file; ``Failure(DocumentNotFound)`` when there is none."""
        return self._files.delete(storage_id)

    def get_url(self, storage_id: Id) -> Result[str | None, Problem]:
        """The URL ``serve`` answers with the file (None when it does not exist)."""
        found = self._files.read(storage_id, "getUrl")
        if isinstance(found, Failure):
            return found
        doc = found.unwrap()
        return Success(None if doc is None else self._files.url(str(doc["_id"])))

    def metadata(self, storage_id: Id) -> Result[Document | None, Problem]:
        """The file's ``_storage`` document (None when it does not exist)."""
        return self._files.read(storage_id, "getMetadata")

    def upload_url(self) -> str:
        """A signed upload URL, valid for an hour (what ``generate_upload_url`` gives)."""
        return self._files.upload_url(float(self._files.executor.clock()))

    def check_upload_token(self, token: str) -> TokenError | None:
        """Why ``serve`` refuses an upload token, or None when it is good now."""
        return self._files.check_token(token)

    def id_of_url_key(self, key: str) -> Id | None:
        """The storage ID a file URL's last segment (a UUID) names, if any."""
        return self._files.id_of_uuid(key)

    def __repr__(self) -> str:
        return f"<FileStore {self._files.blobs!r} site_url={self.site_url!r}>"
