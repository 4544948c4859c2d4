"""Stored files in snapshot ZIPs: ``_storage`` in the layout of ``npx convex export``.

With ``--include-file-storage`` Convex's export ends with (convex-backend
``crates/exports/src/export_storage.rs``)::

    _storage/documents.jsonl     one line per file, in _id order:
        {"_creationTime":...,"_id":"...","contentType":"text/plain"|null,
         "internalId":"<uuid>","sha256":"<base64>","size":<int>}
    _storage/<_id>[.<ext>]       each file's bytes (ext guessed from contentType)

An import (``crates/application/src/snapshot_import/import_file_storage.rs``)
matches bodies by ``(.*/)?_storage/<id>(.<ext>)?``, keeps each file's ``_id`` and
``_creationTime``, checks its SHA-256 against the metadata line (a mismatch fails
the import), drops a metadata line that has no body, and gives a body that has
no line a fresh creation time and no content type. ``internalId`` is not kept:
here a file's URL is made from its ``_id`` (docs/file-storage.md).

Bodies are streamed to the store's folder before the import's transaction and
claimed until it commits (:class:`Staging`), so a failed import keeps none.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import mimetypes
import re
import zipfile
from collections.abc import Iterator
from typing import Any, Final

from ..engine.backend import Backend, PendingBlob
from ..model.ids import decode_id
from ..model.values import Document, loads
from .files import CHUNK, TABLE, sha256_text, storage_uuid

_BODY: Final = re.compile(r"^(?:.*/)?_storage/([^/.]+)(?:\.[^/]+)?$")
_META: Final = re.compile(r"^(?:.*/)?_storage/documents\.jsonl$")


class FileSnapshotError(ValueError):
    """A ``_storage`` entry of a snapshot that cannot be imported (the message says why)."""


def zip_entry(name: str) -> zipfile.ZipInfo:
    """A ZIP entry as Convex writes one: Deflate, mode 0644, a fixed date."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def metadata_line(doc: Document) -> str:
    """One ``_storage/documents.jsonl`` line, as Convex writes it (keys sorted)."""
    line = {
        "_creationTime": float(doc["_creationTime"]),
        "_id": doc["_id"],
        "contentType": doc.get("contentType"),
        "internalId": storage_uuid(str(doc["_id"])),
        "sha256": doc["sha256"],
        "size": int(doc["size"]),
    }
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


def body_name(doc: Document) -> str:
    """``_storage/<_id>[.<ext>]``: the extension guessed from the content type."""
    kind = doc.get("contentType")
    ext = mimetypes.guess_extension(str(kind).split(";")[0].strip()) if kind else None
    return f"_storage/{doc['_id']}{ext or ''}"


def export_files(archive: zipfile.ZipFile, backend: Backend) -> int:
    """Write ``_storage`` (metadata, then bodies) into ``archive``; how many files.

    Runs inside the caller's read of ``backend``, so the rows are one snapshot.

    Raises:
        FileNotFoundError: a row's body is missing (Convex aborts the same way).
    """
    docs = sorted(backend.scan(TABLE), key=lambda d: str(d["_id"]))
    text = "".join(metadata_line(d) + "\n" for d in docs)
    archive.writestr(zip_entry("_storage/documents.jsonl"), text.encode("utf-8"))
    for doc in docs:
        body = backend.blobs.open(str(doc["_id"]))
        if body is None:
            raise FileNotFoundError(f"file missing from storage: {doc['_id']}")
        with body, archive.open(zip_entry(body_name(doc)), "w") as out:
            while piece := body.read(CHUNK):
                out.write(piece)
    return len(docs)


def _metadata(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, Any]:
    lines: dict[str, Any] = {}
    with archive.open(info) as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                lines[str(line["_id"])] = line
            except (ValueError, KeyError, TypeError):
                raise FileSnapshotError(
                    f"_storage/documents.jsonl line {number}: not a file's metadata"
                ) from None
    return lines


class Staging:
    """The files of a snapshot being imported: bodies first, rows in the import.

    :meth:`stage` streams every body to the store's folder (claimed, see
    :class:`~one_store.engine.backend.PendingBlob`) and checks its SHA-256;
    :meth:`write_rows` writes the ``_storage`` rows inside the import's write;
    :meth:`release` lets the bodies go once that committed. Leaving the ``with``
    block without a release discards every staged body.
    """

    def __init__(self, backend: Backend, archive: zipfile.ZipFile, replace: bool):
        self.backend = backend
        self.archive = archive
        self.replace = replace
        self.pending: list[PendingBlob] = []
        self.rows: list[Document] = []
        self._released = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._released:
            for pending in self.pending:
                pending.discard()

    def _bodies(self) -> Iterator[tuple[str, zipfile.ZipInfo]]:
        for info in self.archive.infolist():
            match = _BODY.match(info.filename)
            inside = match is not None and "_components/" not in info.filename
            if match is not None and inside and match.group(1) != "documents":
                yield match.group(1), info

    def stage(self, now_ms: float) -> None:
        """Copy every body of the snapshot in, checking its SHA-256."""
        meta_info = next(
            (i for i in self.archive.infolist() if _META.match(i.filename)), None
        )
        meta = _metadata(self.archive, meta_info) if meta_info else {}
        created = now_ms
        for sid, info in self._bodies():
            if decode_id(sid) is None:
                raise FileSnapshotError(f"_storage/{sid}: not a valid storage ID")
            digest, size = self._copy(sid, info)
            line = meta.get(sid, {})
            actual = sha256_text(digest)
            expected = line.get("sha256")
            if expected is not None and _digest(expected) != digest:
                raise FileSnapshotError(
                    f"_storage/{sid}: sha256 mismatch (expected {expected}, "
                    f"the file has {actual})"
                )
            if "_creationTime" not in line:
                created = math.nextafter(created, math.inf)
            row: Document = {
                "_id": sid,
                "_creationTime": float(line.get("_creationTime", created)),
                "sha256": actual,
                "size": float(size),
            }
            if isinstance(line.get("contentType"), str):
                row["contentType"] = line["contentType"]
            self.rows.append(row)

    def _copy(self, sid: str, info: zipfile.ZipInfo) -> tuple[bytes, int]:
        """Stage the body of ``sid``; its SHA-256 and size.

        A body this store already holds under the same ID (a ``replace`` of the
        same files) is kept as it is, provided the snapshot's bytes are the same.
        """
        existing = self.backend.blobs.open(sid)
        if existing is not None:
            existing.close()
            if not self.replace:
                raise FileSnapshotError(f"duplicate _storage _id {sid}")
            digest, size = hashlib.sha256(), 0
            with self.archive.open(info) as body:
                while piece := body.read(CHUNK):
                    digest.update(piece)
                    size += len(piece)
            with self.backend.read():
                layout = self.backend.layouts[TABLE]
                stored = self.backend.get_text(layout, sid)
            same = stored is not None and loads(stored).get("sha256") == sha256_text(
                digest.digest()
            )
            if not same:
                raise FileSnapshotError(
                    f"_storage/{sid}: differs from the stored file with this _id"
                )
            return digest.digest(), size
        pending = self.backend.blobs.begin(sid)
        self.pending.append(pending)
        with self.archive.open(info) as body:
            while piece := body.read(CHUNK):
                pending.write(piece)
        pending.seal()
        return pending.sha256, pending.size

    def write_rows(self) -> int:
        """Write the staged files' rows (inside the import's write); how many."""
        backend = self.backend
        if not self.rows and not self.replace:
            return 0
        numbers = {decode_id(str(r["_id"])) for r in self.rows}
        wanted = {n[0] for n in numbers if n is not None}
        if len(wanted) > 1:
            raise FileSnapshotError("_storage IDs carry different table numbers")
        if self.replace:
            backend.clear(TABLE)
        layout = backend.layouts.get(TABLE) or backend.ensure_table(TABLE)
        if wanted and layout.number not in wanted:
            (number,) = wanted
            if backend.count(TABLE):
                raise FileSnapshotError(
                    f"_storage has table number {layout.number} here but {number} in "
                    "the snapshot; its IDs would not match (use --replace)"
                )
            owner = backend.table_of(number)
            if owner is not None:
                raise FileSnapshotError(
                    f"the snapshot's _storage number {number} belongs to {owner!r} here"
                )
            backend.renumber({TABLE: number})
        for row in self.rows:
            if backend.get_text(backend.layouts[TABLE], str(row["_id"])) is not None:
                raise FileSnapshotError(f"duplicate _storage _id {row['_id']}")
            backend.write_raw(TABLE, row)
        return len(self.rows)

    def release(self) -> None:
        """The import committed: the bodies belong to their rows now."""
        self._released = True
        for pending in self.pending:
            pending.release()
        if self.replace:  # bodies of the files the import replaced

            def live(key: str) -> bool:
                with self.backend.read():
                    layout = self.backend.layouts[TABLE]
                    return self.backend.get_text(layout, key) is not None

            self.backend.blobs.recover(live)


def _digest(text: str) -> bytes | None:
    """A metadata ``sha256``: base64 (Convex >= 1.9) or hex (older exports)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) == 32:
        return raw
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


__all__ = ["FileSnapshotError", "Staging", "export_files", "zip_entry"]
