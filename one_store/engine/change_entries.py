"""The entries of the change log, the same on every engine (reactive queries).

Each committed write is logged with what a precise intersection needs: the
document's key in every index (``by_id`` and ``by_creation_time`` included) and
its entry in every search index, before and after the write. A watcher tests
them against the key ranges its queries read, without reading the document
(which may be gone). The engines keep the entries in a table of their own
(:mod:`one_store.engine.sqlite.changes`, :mod:`one_store.engine.postgres.changes`);
what an entry holds, and its bytes, are made here once for both.

The entry is a small binary record (length-prefixed byte strings, see
:func:`_pack`): it costs about a microsecond to make, a tenth of JSON with hex
keys, and parsing it runs no code from the database. An entry that cannot be
parsed reads as "touched the whole table" (:class:`~one_store.engine.backend.Change`
with ``keys`` None), never as "touched nothing".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..model.keys import sort_key
from .backend import Change, SearchEntry

# Entries kept: a reader more than this many writes behind re-runs everything.
KEEP = 10_000
PRUNE_EVERY = 1_000
# Entries a connection remembers having made (its log's ``recent``).
RECENT = 1_024
# The entry of a cleared table (snapshot import, mode replace): it touches every
# reader of the table, as an entry that cannot be read does.
WHOLE_TABLE = b"*"
_NONE = b"\xff\xff\xff\xff"

Keys = list[tuple[str, bytes | None, bytes | None]]
Searches = tuple[tuple[str, SearchEntry | None, SearchEntry | None], ...]


def index_keys(
    key_fns: Sequence[tuple[str, Any]],
    prefix_fns: Sequence[Callable[[dict[str, Any]], bytes] | None],
    doc_id: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> Keys:
    """Per index, ``doc_id``'s key before and after a write (None: absent).

    ``key_fns`` names the indexes (the layout's key columns); ``prefix_fns``
    gives each one's key of the user fields (None: it has none).
    """
    id_key = sort_key(doc_id)
    # Every key ends with the document's _creationTime and _id: encoded once.
    old_tail = None if old is None else sort_key(old["_creationTime"]) + id_key
    new_tail = None if new is None else sort_key(new["_creationTime"]) + id_key
    keys: Keys = [
        ("by_id", None if old is None else id_key, None if new is None else id_key)
    ]
    for (name, _), prefix in zip(key_fns, prefix_fns, strict=True):
        keys.append((name, _key(old, prefix, old_tail), _key(new, prefix, new_tail)))
    return keys


def search_entries(
    search: Mapping[str, Any],
    entry: Callable[[Any, dict[str, Any]], SearchEntry | None],
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> Searches:
    """Per search index, the document's entry before and after (None: none)."""
    return tuple(
        (
            name,
            None if old is None else entry(s, old),
            None if new is None else entry(s, new),
        )
        for name, s in search.items()
    )


def _key(doc: dict[str, Any] | None, prefix: Any, tail: bytes | None) -> bytes | None:
    if doc is None or tail is None:
        return None
    return tail if prefix is None else prefix(doc) + tail


def encode(keys: Keys, search: Searches) -> bytes:
    """An entry's keys and search entries as one blob (see :func:`decode`)."""
    parts: list[bytes | None] = []
    for name, old, new in keys:
        parts += (name.encode(), old, new)
    for name, old_entry, new_entry in search:
        parts += (b"$" + name.encode(), _pack_entry(old_entry), _pack_entry(new_entry))
    return _pack(parts)


def decode(seq: int, table: str, doc_id: str, blob: bytes) -> Change:
    """One log row as a :class:`Change` (``keys`` None when it cannot be read)."""
    if blob == WHOLE_TABLE:  # a cleared table
        return Change(seq, table, doc_id, None, ())
    try:
        parts = _unpack(bytes(blob))
        if len(parts) % 3:
            raise ValueError("change-log entry of the wrong length")
        keys: Keys = []
        search: list[tuple[str, SearchEntry | None, SearchEntry | None]] = []
        for at in range(0, len(parts), 3):
            name, old, new = parts[at : at + 3]
            if name is None:
                raise ValueError("unnamed change-log part")
            if name.startswith(b"$"):
                entry = (_search_entry(old), _search_entry(new))
                search.append((name[1:].decode(), *entry))
            else:
                keys.append((name.decode(), old, new))
    except (ValueError, UnicodeDecodeError):
        return Change(seq, table, doc_id, None, ())
    return Change(seq, table, doc_id, tuple(keys), tuple(search))


def _pack_entry(entry: SearchEntry | None) -> bytes | None:
    if entry is None:
        return None
    return _pack([entry[0].encode(), *entry[1]])


def _pack(parts: list[bytes | None]) -> bytes:
    """Length-prefixed byte strings (4 bytes big-endian; all ones: None)."""
    out: list[bytes] = []
    for p in parts:
        if p is None:
            out.append(_NONE)
        else:
            out.append(len(p).to_bytes(4, "big"))
            out.append(p)
    return b"".join(out)


def _unpack(blob: bytes) -> list[bytes | None]:
    parts: list[bytes | None] = []
    at, end = 0, len(blob)
    while at < end:
        head = blob[at : at + 4]
        at += 4
        if head == _NONE:
            parts.append(None)
            continue
        size = int.from_bytes(head, "big")
        if len(head) < 4 or at + size > end:
            raise ValueError("truncated change-log entry")
        parts.append(blob[at : at + size])
        at += size
    return parts


def _search_entry(packed: bytes | None) -> SearchEntry | None:
    if packed is None:
        return None
    tokens, *filters = _unpack(packed)
    if tokens is None or any(f is None for f in filters):
        raise ValueError("malformed search entry")
    return tokens.decode(), tuple(f for f in filters if f is not None)
