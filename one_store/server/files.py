"""File storage over HTTP: upload URLs and file URLs, as Convex's backend answers them.

- ``POST /api/storage/upload?token=...``: the body is the file's bytes (raw, no
  multipart), streamed to disk as it arrives; ``Content-Type`` (optional) becomes
  the file's ``contentType``; ``Digest: sha-256=<base64>`` (optional) is checked.
  Answers ``{"storageId": id}`` once the file's row has committed. A missing token
  is 400 ``BadQueryArgs``; a forged or mangled one 401 ``StorageTokenInvalid``; one
  issued more than an hour ago 401 ``StorageTokenExpired`` (convex-backend
  ``crates/local_backend/src/storage.rs``, ``crates/keybroker``). A body over the
  store's ``files.max_size`` is 413 ``FileTooLarge`` (Convex has no cap); a client
  that disconnects mid-upload leaves nothing behind.
- ``GET`` / ``HEAD /api/storage/<uuid>``: the file, with its ``Content-Type`` (when
  it has one), ``Content-Length``, ``Digest``, ``Accept-Ranges: bytes`` and
  ``Cache-Control: private, max-age=2592000``; one ``Range`` gives 206 with
  ``Content-Range``, several give 416 (as Convex), an unsatisfiable one 416 (RFC
  9110), an unparsable one is ignored. A path that is not a UUID is 400
  ``InvalidStoragePath``; a missing or deleted file 404 ``FileNotFound``.

Bodies are read and written in 1 MiB pieces: a 200 MB file never sits in memory.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

import anyio.to_thread
from returns.result import Failure
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ..model.errors import ArgsInvalid
from ..store import Store

CHUNK: Final = 1 << 20
MAX_FILE_SIZE_ENV: Final = "ONE_STORE_MAX_FILE_SIZE"
SITE_URL_ENV: Final = "ONE_STORE_SITE_URL"
_MIME: Final = re.compile(
    r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;.*)?$"
)
_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")
_TOKEN_ERRORS: Final = {
    "StorageTokenInvalid": "Couldn't decode the StoreFileAuthorization token",
    "StorageTokenExpired": "Store File Authorization expired",
}


class RequestError(Exception):
    """A refused request: answered with ``status`` and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        """The 4xx (or 5xx) answer, as Convex's ``HttpError``."""
        body = {"code": self.code, "message": self.message}
        return JSONResponse(body, status_code=self.status)


async def run_in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking store work on a worker thread (abandoned if the server stops)."""
    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


async def upload(store: Store, request: Request) -> Response:
    """``POST /api/storage/upload?token=...``: store the body; ``{"storageId"}``."""
    try:
        return await _upload(store, request)
    except RequestError as e:
        return e.response()


async def serve_file(store: Store, request: Request) -> Response:
    """``GET``/``HEAD /api/storage/<uuid>``: the file's bytes (one ``Range`` honoured)."""
    try:
        return await _serve_file(store, request)
    except RequestError as e:
        return e.response()


def configure(store: Store, site_url: str, max_file_size: int | None = None) -> None:
    """Point file and upload URLs at ``site_url``; set the upload cap.

    ``$ONE_STORE_SITE_URL``, when set, wins over ``site_url`` (the address clients
    reach, e.g. behind a proxy or when bound to ``0.0.0.0``; Convex's
    ``--convex-origin``). The cap is ``max_file_size``, else
    ``$ONE_STORE_MAX_FILE_SIZE`` bytes, else whatever ``store.files.max_size``
    already was (none by default, as Convex).
    """
    store.files.site_url = os.environ.get(SITE_URL_ENV) or site_url
    if max_file_size is None:
        raw = os.environ.get(MAX_FILE_SIZE_ENV, "").strip()
        max_file_size = int(raw) if raw.isdigit() else None
    if max_file_size is not None:
        store.files.max_size = max_file_size


def _content_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    if raw is None or raw == "":
        return None
    if not _MIME.match(raw):
        raise RequestError(
            400, "BadHeader", f"Bad header for content-type: invalid media type {raw!r}"
        )
    return raw


def _digest(request: Request) -> str | None:
    raw = request.headers.get("digest")
    if raw is None:
        return None
    name, _, value = raw.partition("=")
    try:
        ok = name.strip().lower() == "sha-256" and len(base64.b64decode(value)) == 32
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise RequestError(400, "BadHeader", f"Bad header for digest: {raw!r}")
    return value.strip()


def _too_large(limit: int) -> RequestError:
    return RequestError(
        413, "FileTooLarge", f"File is larger than the limit of {limit} bytes"
    )


async def _upload(store: Store, request: Request) -> Response:
    if request.method != "POST":
        raise RequestError(405, "MethodNotAllowed", "Use POST to upload a file")
    token = request.query_params.get("token")
    if token is None:
        raise RequestError(
            400,
            "BadQueryArgs",
            "Failed to deserialize query string: missing field `token`",
        )
    # Store work runs on a worker thread: it may wait for the store's lock.
    refused = await run_in_thread(store.files.check_upload_token, token)
    if refused is not None:
        raise RequestError(401, refused, _TOKEN_ERRORS[refused])
    content_type, digest = _content_type(request), _digest(request)
    limit = store.files.max_size
    declared = request.headers.get("content-length", "")
    if limit is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    with await run_in_thread(store.files.begin, content_type) as pending:
        try:
            async for chunk in request.stream():
                if pending.write(chunk) is not None:
                    assert limit is not None
                    raise _too_large(limit)
        except ClientDisconnect:
            # Nothing is kept (leaving the ``with`` discards the body); nobody
            # is left to read an answer.
            return Response(status_code=400)
        result = await run_in_thread(pending.commit, digest)
    match result:
        case Failure(ArgsInvalid(message=message)):
            raise RequestError(400, "Sha256Mismatch", message)
        case Failure(problem):
            raise RequestError(500, problem.code, problem.message)
    return JSONResponse({"storageId": result.unwrap()})


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(first, last)`` of one satisfiable range, ``"multi"``/``"unsatisfiable"``, or None."""
    if header is None or size == 0:
        return None
    if "," in header:
        return "multi" if header.strip().startswith("bytes=") else None
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None  # unparsable: ignored, the whole file is sent
    first, last = match.groups()
    if first == "":  # bytes=-N: the last N bytes
        count = int(last)
        return (max(size - count, 0), size - 1) if count else "unsatisfiable"
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


def _pieces(body: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with body:
        body.seek(start)
        while length > 0:
            piece = body.read(min(CHUNK, length))
            if not piece:
                return
            length -= len(piece)
            yield piece


async def _serve_file(store: Store, request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        raise RequestError(405, "MethodNotAllowed", "Use GET to read a file")
    key = request.path_params["key"]
    sid = store.files.id_of_url_key(key)
    if sid is None:
        raise RequestError(
            400,
            "InvalidStoragePath",
            f'Invalid storage path: "{key}". Please use `storage.getUrl(storageId: '
            'Id<"_storage">)` to generate a valid URL to retrieve files. See '
            "https://docs.convex.dev/file-storage/serve-files for more details",
        )
    found = await run_in_thread(store.files.open, sid)
    meta = await run_in_thread(store.files.metadata, sid)
    doc = meta.value_or(None)
    if isinstance(found, Failure) or doc is None:
        if not isinstance(found, Failure):
            found.unwrap().close()
        raise RequestError(404, "FileNotFound", f"File {key} not found")
    body = found.unwrap()
    size = int(doc["size"])
    headers: dict[str, Any] = {
        "cache-control": "private, max-age=2592000",
        "accept-ranges": "bytes",
    }
    if "contentType" in doc:
        headers["content-type"] = str(doc["contentType"])
    wanted = byte_range(request.headers.get("range"), size)
    if isinstance(wanted, str):
        body.close()
        if wanted == "unsatisfiable":
            headers["content-range"] = f"bytes */{size}"
        return Response(b"", status_code=416, headers=headers)
    status, start, length = 200, 0, size
    if wanted is None:
        digest = base64.b64decode(str(doc["sha256"]))
        headers["digest"] = "sha-256=" + base64.b64encode(digest).decode()
    else:
        status, start, length = 206, wanted[0], wanted[1] - wanted[0] + 1
        headers["content-range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    headers["content-length"] = str(length)
    if request.method == "HEAD":
        body.close()
        return Response(b"", status_code=status, headers=headers)
    return StreamingResponse(
        _pieces(body, start, length), status_code=status, headers=headers
    )
