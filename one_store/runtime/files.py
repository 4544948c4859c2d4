"""File storage: the ``_storage`` system table, ``ctx.storage`` and uploads.

As Convex's file storage (docs.convex.dev/file-storage; convex-backend
``crates/file_storage``, ``crates/model/src/file_storage``):

- a stored file is a ``_storage`` document ``{_id, _creationTime, sha256, size,
  contentType?}`` (``sha256`` standard base64, ``size`` a float64 as in Convex's
  virtual table; ``contentType`` absent when none was given) and a body the engine
  keeps beside the database (:class:`~one_store.engine.backend.BlobStore`);
- ``ctx.storage`` has ``get_url`` in queries; ``generate_upload_url``, ``get_url``
  and ``delete`` in mutations (inside the mutation's transaction: a delete rolls
  back with it); and ``store``, ``get``, ``get_url``, ``delete``,
  ``generate_upload_url`` in actions (each its own transaction; a file stored by
  an action stays when the action later fails);
- a storage ID is a ``_storage`` document ID; a file's URL is
  ``{site_url}/api/storage/{uuid}``, the UUID being the ID's 16 internal bytes,
  and such a UUID is accepted wherever a storage ID is (Convex's legacy form);
- an upload URL is ``{site_url}/api/storage/upload?token=...``: the token is
  signed (HMAC-SHA256 with a secret kept in the database file) and valid for an
  hour from the issuing function's ``now``, as Convex's.

Storing a body runs in three steps (write and seal the body, commit its row,
release it: :class:`Upload`); deleting removes the body after the row's delete
commits. Every ``_storage`` write goes through the engine's document write path
(``insert``/``delete``), so change logs and observers see it like any other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO, Final, Literal, Protocol, TypeVar, cast

from returns.result import Failure, Result, Success

from ..engine.backend import Backend, BlobStore, PendingBlob, TableInfo
from ..model.errors import (
    ArgsInvalid,
    ContextError,
    DocumentNotFound,
    InvalidId,
    LimitExceeded,
    Problem,
    ProblemError,
    StorageFailure,
)
from ..model.ids import (
    FIRST_USER_TABLE_NUMBER,
    Id,
    decode_id,
    encode_id,
    table_number_of,
)
from ..model.values import Document, loads
from .functions import FunctionSpec
from .transaction import Transaction

T = TypeVar("T")
TABLE: Final = "_storage"
DEFAULT_SITE_URL: Final = "http://127.0.0.1:3210"
UPLOAD_VALIDITY_S: Final = 3600  # Convex's STORE_FILE_AUTHORIZATION_VALIDITY
SECRET_KEY: Final = "file_upload_secret"
CHUNK: Final = 1 << 20
TokenError = Literal["StorageTokenInvalid", "StorageTokenExpired"]


class Transactions(Protocol):
    """What file storage needs from the executor (which implements it)."""

    @property
    def backend(self) -> Backend:
        """The engine."""

    @property
    def clock(self) -> Callable[[], float]:
        """The store's clock (ms since the epoch)."""

    @property
    def closed(self) -> bool:
        """Whether the store was closed."""

    def transaction(
        self,
        work: Callable[[Transaction], T],
        *,
        writable: bool,
        path: str | None = None,
        spec: FunctionSpec[Any] | None = None,
    ) -> Result[T, Problem]:
        """Run ``work`` in a transaction (a savepoint inside a running one)."""

    def system_write(self, work: Callable[[Transaction], T]) -> Result[T, Problem]:
        """Run library code in a write transaction of its own."""


def _no_handler(ctx: object, args: object) -> None:
    raise AssertionError("never called: names the file-storage writes for observers")


# What instrumentation sees a file-storage write as (its path, for faults and
# observers): the commit of a stored file's row, and a delete outside a function.
STORE_WRITE: Final[FunctionSpec[None]] = FunctionSpec(
    _no_handler, "mutation", "internal", name="store"
)
DELETE_WRITE: Final[FunctionSpec[None]] = FunctionSpec(
    _no_handler, "mutation", "internal", name="delete"
)


def storage_uuid(sid: Id) -> str:
    """The UUID in a file's URL: the 16 internal bytes of its storage ID."""
    decoded = decode_id(sid)
    assert decoded is not None, sid
    return str(uuid.UUID(bytes=decoded[1]))


def sha256_text(digest: bytes) -> str:
    """A SHA-256 digest as ``_storage`` shows it: standard base64, padded."""
    return base64.b64encode(digest).decode("ascii")


class Files:
    """A store's file storage: the ``_storage`` table, bodies, URLs, tokens.

    Made by the store when it opens, which removes what a crash left behind
    (bodies with no committed row, half-written bodies). The ``_storage`` table
    and the upload secret are made on first use.

    Args:
        executor: the store's executor.
        site_url: the origin URLs are made under (``serve`` sets its own).
        max_size: the largest file :meth:`begin` accepts, in bytes (None: any).
    """

    def __init__(
        self, executor: Transactions, site_url: str, max_size: int | None = None
    ) -> None:
        self.executor = executor
        self.backend = executor.backend
        self.site_url = site_url.rstrip("/")
        self.max_size = max_size
        self.blobs: BlobStore = self.backend.blobs
        # The upload secret, once read from the file (or made: see _secret_in).
        self._secret: bytes | None = None
        if not self.backend.readonly:
            self.blobs.recover(self._live)

    def _table(self) -> TableInfo:
        """The ``_storage`` table, created on first use (outside any transaction).

        Not at open: a store that never stores a file pays nothing for it.
        """
        layout = self.backend.layouts.get(TABLE)
        if layout is not None:
            return layout
        made = self.executor.system_write(lambda txn: txn.storage.ensure_table(TABLE))
        if isinstance(made, Failure):
            raise StorageFailure(made.failure())
        return made.unwrap()

    def _secret_in(self, txn: Transaction | None) -> bytes | None:
        """The file's upload secret, made in ``txn`` (or a write of its own) if new.

        None only in a read, when the file has none yet (no token can verify).
        """
        if self._secret is not None:
            return self._secret

        def work(txn: Transaction) -> str | None:
            found = txn.storage.meta(SECRET_KEY)
            if found is None and txn.writable:
                found = os.urandom(32).hex()
                txn.storage.set_meta(SECRET_KEY, found)
            return found

        if txn is None:
            result = self.executor.system_write(work)
            if isinstance(result, Failure):
                raise StorageFailure(result.failure())
            found = result.unwrap()
        else:
            found = work(txn)
        if found is None:
            return None
        secret = bytes.fromhex(found)
        if txn is None or not txn.writable:
            # Committed (a mutation's secret is read again each time: it may
            # roll back with the mutation that made it).
            self._secret = secret
        return secret

    def _live(self, key: str) -> bool:
        """Whether ``key`` has a committed ``_storage`` row (crash recovery)."""
        with self.backend.read():
            layout = self.backend.layouts.get(TABLE)
            return layout is not None and self.backend.get_text(layout, key) is not None

    # ------------------------------------------------------------ IDs and URLs

    def check_id(self, sid: object, method: str) -> Id:
        """``sid`` as a storage ID (a UUID from a URL becomes its ID).

        Raises:
            ProblemError: ``InvalidId`` with Convex's text, for a non-string, a
                malformed ID, or another table's ID.
        """
        where = f"Invalid argument `storageId` for `storage.{method}`"
        if not isinstance(sid, str):
            raise ProblemError(
                InvalidId(repr(sid), f"{where}: expected a string, got {sid!r}")
            )
        number = table_number_of(sid)
        if number is not None:
            owner = self.backend.table_of(number)
            if owner != TABLE and not (owner is None and self._unnumbered(number)):
                raise ProblemError(
                    InvalidId(
                        sid,
                        f"{where}: Invalid storage ID. Storage ID cannot be an ID "
                        "on any table other than '_storage'.",
                    )
                )
            return sid
        found = self.id_of_uuid(sid)
        if found is None:
            raise ProblemError(
                InvalidId(
                    sid,
                    f'{where}: Invalid storage ID: "{sid}". Storage ID should be an '
                    "Id of '_storage' table, or a UUID string.",
                )
            )
        return found

    def _unnumbered(self, number: int) -> bool:
        """No ``_storage`` table yet, and ``number`` is a system table's (no files)."""
        return TABLE not in self.backend.layouts and number < FIRST_USER_TABLE_NUMBER

    def id_of_uuid(self, text: str) -> Id | None:
        """The storage ID whose URL holds the UUID ``text`` (None: not a UUID)."""
        try:
            raw = uuid.UUID(text).bytes
        except ValueError:
            return None
        layout = self.backend.layouts.get(TABLE)
        return None if layout is None else encode_id(layout.number, raw)

    def url(self, sid: Id) -> str:
        """The URL that serves the file ``sid`` (``serve`` answers it)."""
        return f"{self.site_url}/api/storage/{storage_uuid(sid)}"

    def upload_url(self, now_ms: float, txn: Transaction | None = None) -> str:
        """A signed upload URL issued at ``now_ms`` (in ``txn``), valid for an hour."""
        secret = self._secret_in(txn)
        assert secret is not None  # made in a write
        payload = b"\x01" + int(now_ms // 1000).to_bytes(8, "big") + os.urandom(12)
        mac = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
        return f"{self.site_url}/api/storage/upload?token={(payload + mac).hex()}"

    def check_token(self, token: str) -> TokenError | None:
        """Why an upload token is refused (None: it is good now, by the store's clock)."""
        try:
            raw = bytes.fromhex(token)
        except ValueError:
            return "StorageTokenInvalid"
        secret = self._read_secret()
        if secret is None:
            return "StorageTokenInvalid"  # no URL was ever made for this file
        payload, mac = raw[:-16], raw[-16:]
        expected = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
        if len(raw) != 37 or raw[0] != 1 or not hmac.compare_digest(mac, expected):
            return "StorageTokenInvalid"
        issued = int.from_bytes(payload[1:9], "big")
        if issued + UPLOAD_VALIDITY_S <= self.executor.clock() / 1000:
            return "StorageTokenExpired"
        return None

    def _read_secret(self) -> bytes | None:
        result = self.executor.transaction(self._secret_in, writable=False)
        if isinstance(result, Failure):
            raise StorageFailure(result.failure())
        secret: bytes | None = result.unwrap()
        return secret

    # ------------------------------------------------------------ rows

    def row(self, txn: Transaction, sid: Id) -> Document | None:
        """The ``_storage`` document ``sid`` as ``txn`` sees it (counted as a read)."""
        layout = txn.storage.layouts.get(TABLE)
        body = None if layout is None else txn.storage.get_text(layout, sid)
        if body is None:
            return None
        txn.count_read(len(body))
        doc: Document = loads(body)
        txn.observer.document_read(doc)
        return doc

    def delete_in(self, txn: Transaction, sid: object) -> None:
        """Delete the file ``sid`` in ``txn``; its body goes once ``txn`` commits.

        Raises:
            ProblemError: ``InvalidId`` (see :meth:`check_id`), or
                ``DocumentNotFound`` when there is no such file (a second
                delete included).
        """
        if not txn.writable:
            raise ContextError("Writes are not allowed in a query: use a mutation.")
        key = self.check_id(sid, "delete")
        layout = txn.storage.layouts.get(TABLE)
        if layout is None or not txn.storage.delete(layout, key):
            raise ProblemError(DocumentNotFound(key, "Delete"))
        txn.count_write(0)
        txn.observer.document_written("delete", TABLE, key)
        txn.on_commit.append(lambda: self._drop_body(key))

    def _drop_body(self, key: str) -> None:
        # A delete inside a nested mutation that rolled back still queued this
        # hook: the body goes only if its row really is gone.
        if not self._live(key):
            self.blobs.remove(key)

    # ------------------------------------------------------------ own transactions

    def _open_store(self) -> None:
        if self.executor.closed:
            raise ContextError("This store is closed.")

    def read(self, sid: object, method: str) -> Result[Document | None, Problem]:
        """The ``_storage`` document ``sid`` in a read of its own."""
        self._open_store()

        def work(txn: Transaction) -> Document | None:
            return self.row(txn, self.check_id(sid, method))

        return self.executor.transaction(work, writable=False)

    def delete(self, sid: object) -> Result[None, Problem]:
        """Delete the file ``sid`` in a write of its own."""
        self._open_store()
        return self.executor.transaction(
            lambda txn: self.delete_in(txn, sid),
            writable=True,
            path="_storage:delete",
            spec=DELETE_WRITE,
        )

    def begin(
        self, content_type: str | None = None, max_size: int | None = None
    ) -> Upload:
        """Start storing a file: write its bytes, then :meth:`Upload.commit`.

        Raises:
            ContextError: the store is read-only, or ``content_type`` is not a
                string.
        """
        self._open_store()
        if self.backend.readonly:
            raise ContextError("This store is read-only: it cannot store files.")
        if content_type is not None and not isinstance(content_type, str):
            raise ContextError(f"content_type must be a string, got {content_type!r}")
        limit = self.max_size if max_size is None else max_size
        layout = self._table()
        days = int(self.executor.clock() // 86_400_000) & 0xFFFF
        key = encode_id(layout.number, os.urandom(14) + days.to_bytes(2, "big"))
        pending = self.blobs.begin(key)
        return Upload(self, layout, pending, content_type or None, limit)

    def store(
        self, data: bytes | BinaryIO | Iterable[bytes], content_type: str | None = None
    ) -> Result[Id, Problem]:
        """Store ``data`` (bytes, a binary file object, or pieces) as a new file."""
        with self.begin(content_type) as upload:
            problem = upload.write_all(data)
            if problem is not None:
                return Failure(problem)
            return upload.commit()

    def open(
        self, sid: object, method: str = "get"
    ) -> Result[BinaryIO | None, Problem]:
        """The body of ``sid`` opened for reading (None: no such file)."""
        found = self.read(sid, method)
        if isinstance(found, Failure):
            return found
        doc = found.unwrap()
        return Success(None if doc is None else self.blobs.open(str(doc["_id"])))


class Upload:
    """A file being stored: ``write`` its bytes, then ``commit`` (or ``abort``).

    Use it as a context manager: leaving without a commit aborts, so nothing of
    an interrupted upload is kept. The bytes go to the body as they come (no
    whole-file copy in memory).
    """

    def __init__(
        self,
        files: Files,
        layout: TableInfo,
        pending: PendingBlob,
        content_type: str | None,
        max_size: int | None = None,
    ) -> None:
        self._files = files
        self.max_size = max_size
        self._layout = layout
        self._pending = pending
        self.content_type = content_type
        self._done = False

    @property
    def key(self) -> Id:
        """The storage ID the file gets when it commits (its body's key)."""
        return self._pending.key

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._pending.size

    @property
    def sha256(self) -> str:
        """The base64 SHA-256 of what was written so far."""
        return sha256_text(self._pending.sha256)

    def write(self, data: bytes) -> Problem | None:
        """Append ``data``; a ``LimitExceeded`` Problem once over the size cap."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ContextError(
                f"store() expects bytes or a binary file object, got {type(data).__name__}"
            )
        limit = self.max_size
        if limit is not None and self._pending.size + len(data) > limit:
            self.abort()
            return LimitExceeded(
                "fileSize", limit, f"File is larger than the limit of {limit} bytes"
            )
        self._pending.write(bytes(data))
        return None

    def write_all(self, data: object) -> Problem | None:
        """Write bytes, every piece of an iterable, or a binary file to its end."""
        if isinstance(data, bytes | bytearray | memoryview):
            return self.write(bytes(data))
        read = getattr(data, "read", None)
        if (read is None and not isinstance(data, Iterable)) or isinstance(data, str):
            raise ContextError(
                f"store() expects bytes or a binary file object, got {type(data).__name__}"
            )
        pieces = iter(lambda: read(CHUNK), b"") if read else cast("Iterable[Any]", data)
        for piece in pieces:
            problem = self.write(piece)
            if problem is not None:
                return problem
        return None

    def commit(self, sha256: str | None = None) -> Result[Id, Problem]:
        """Make the file durable and commit its ``_storage`` row; return its ID.

        ``sha256`` (standard base64), when given, must match what was written
        (Convex's ``Digest`` check); a mismatch keeps nothing.
        """
        if self._done:
            raise ContextError("This upload has already been committed or aborted.")
        actual = self.sha256
        if sha256 is not None and sha256 != actual:
            self.abort()
            return Failure(
                ArgsInvalid(
                    "sha256", f"Sha256 mismatch. Expected: {sha256} Actual: {actual}"
                )
            )
        pending = self._pending
        self._done = True
        try:
            pending.seal()
        except OSError:
            pending.discard()
            raise
        doc: Document = {"sha256": actual, "size": float(pending.size)}
        if self.content_type is not None:
            doc["contentType"] = self.content_type
        files = self._files

        def work(txn: Transaction) -> Id:
            row = {"_id": self.key, "_creationTime": txn.creation_time(), **doc}
            txn.count_write(len(str(row)))
            txn.storage.insert(self._layout, row)
            txn.observer.document_written("insert", TABLE, self.key)
            return self.key

        try:
            result = files.executor.transaction(
                work, writable=True, path="_storage:store", spec=STORE_WRITE
            )
        except BaseException:
            pending.discard()
            raise
        if isinstance(result, Failure):
            pending.discard()
        else:
            pending.release()
        return result

    def abort(self) -> None:
        """Keep nothing of this upload."""
        if not self._done:
            self._done = True
            self._pending.discard()

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()
