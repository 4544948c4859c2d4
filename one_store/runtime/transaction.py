"""One function execution's view of the database: limits, creation times, IDs.

A :class:`Transaction` is made by the executor for every query and mutation (a
nested ``run_query``/``run_mutation`` shares its caller's). It counts reads and
writes against Convex's per-transaction limits, hands out strictly increasing
``_creationTime`` values, and checks what the handler returns
(:meth:`Transaction.check_result`) without walking again the documents it read
and left untouched.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any, cast

from ..engine.backend import NO_OBSERVER, Backend, CallObserver
from ..model.errors import LimitExceeded, ProblemError
from ..model.ids import IdGenerator
from ..model.schema import Schema
from ..model.validators import Validator
from ..model.values import (
    MAX_ARRAY_LEN,
    MAX_OBJECT_FIELDS,
    MAX_VALUE_NESTING,
    UNSET,
    Document,
    InvalidValue,
    Value,
    check_value,
    convex_size,
    field_name_error,
)

MAX_WRITES = 16_000
MAX_DOCS_READ = 32_000
MAX_BYTES_READ = 16 * 1024 * 1024
MAX_BYTES_WRITTEN = 16 * 1024 * 1024
SYSTEM_FIELDS = ("_id", "_creationTime")
# _id (32-char ID) and _creationTime (float) in Convex's size formula.
_SYSTEM_FIELDS_SIZE = (3 + 1 + 34) + (13 + 1 + 9)


class Transaction:
    """One function execution's view of storage: limits, creation times, ID making."""

    # Counters start at these class defaults (set on the instance when they
    # move): a transaction is made per call, and most calls move few of them.
    writes = 0
    bytes_written = 0
    docs_read = 0
    bytes_read = 0
    inserted = False
    _next_creation_time: float | None = None
    # Who watches this transaction's reads and writes (a trace, a read set).
    observer: CallObserver = NO_OBSERVER

    def __init__(
        self,
        storage: Backend,
        schema: Schema | None,
        now_ms: float,
        ids: IdGenerator,
        writable: bool,
    ) -> None:
        self.storage = storage
        self.schema = schema
        self.now_ms = now_ms
        self.ids = ids
        self.writable = writable
        self.on_commit: list[Callable[[], None]] = []
        # Documents this transaction read from storage, by identity, with the
        # length of their stored JSON and what they held as read (see ``trust``):
        # while that is unchanged they are valid Convex values already, so
        # returning them needs no second check, and their Convex size is at most
        # 9 bytes per JSON character (see ``check_result``). A handler that sets
        # a field of a read document, at any depth (``msg["meta"]["x"] = ...``),
        # gets the walk again. Each entry is what its table's ``remember`` made
        # (see ``check_for``): the document, its JSON length, the function that
        # says whether it is unchanged, then what it held when read.
        self.trusted: dict[int, tuple[Any, ...]] = {}

    # ---------------------------------------------------------------- limits

    def count_read(self, size: int) -> None:
        """Count one scanned document of ``size`` bytes against the read limits."""
        self.docs_read += 1
        self.bytes_read += size
        if self.docs_read > MAX_DOCS_READ:
            raise ProblemError(
                LimitExceeded(
                    "documentsRead",
                    MAX_DOCS_READ,
                    f"Too many documents read in a single function execution (limit: {MAX_DOCS_READ}).",
                )
            )
        if self.bytes_read > MAX_BYTES_READ:
            raise ProblemError(
                LimitExceeded(
                    "bytesRead",
                    MAX_BYTES_READ,
                    f"Too many bytes read in a single function execution (limit: {MAX_BYTES_READ} bytes).",
                )
            )

    def count_write(self, size: int) -> None:
        """Count one document write of ``size`` bytes against the write limits."""
        self.writes += 1
        self.bytes_written += size
        if self.writes > MAX_WRITES:
            raise ProblemError(
                LimitExceeded(
                    "writes",
                    MAX_WRITES,
                    f"Too many writes in a single function execution (limit: {MAX_WRITES})",
                )
            )
        if self.bytes_written > MAX_BYTES_WRITTEN:
            raise ProblemError(
                LimitExceeded(
                    "bytesWritten",
                    MAX_BYTES_WRITTEN,
                    "Too many bytes written in a single function execution (limit: 16 MiB)",
                )
            )

    # ---------------------------------------------------------------- helpers

    def creation_time(self) -> float:
        """The next ``_creationTime``: strictly increasing within and across transactions."""
        if self._next_creation_time is None:
            self._next_creation_time = self.storage.next_creation_time(self.now_ms)
        value = self._next_creation_time
        self._next_creation_time = math.nextafter(value, math.inf)
        self.inserted = True
        self.last_creation_time = value
        return value

    def check_result(self, value: object) -> tuple[Value, int]:
        """A handler's return value, checked, and a bound of its Convex size.

        The same walk as ``check_value`` (same limits, same error paths), except
        that a document this transaction read is returned as it is at any depth:
        a ``paginate`` result or ``{"thread": doc, "messages": [...]}`` costs a
        look at its shell, not a re-walk of every document (the walk was ~70% of
        a page of 100 documents).

        The size is exact for everything but read documents, which count as 9
        bytes per character of their stored JSON: that bounds their Convex size
        (every JSON token is at least 1/9 of its size: an int64 or float64 is 9
        bytes and at least 1 character, a string's UTF-8 at most 4 bytes per
        character plus the quotes). Within a limit the value is too, so a page
        of documents is not walked a second time just to be sized; above one,
        callers measure exactly before failing. Both come from one walk.
        """
        if not self.trusted:
            checked = check_value(value)
            return checked, convex_size(checked)
        size = [0]
        return self._check(value, 0, size), size[0]

    def _check(self, value: Any, depth: int, size: list[int]) -> Value:
        t = type(value)
        if depth < MAX_VALUE_NESTING:
            if t is dict:
                # A read document as read (see _as_read; inline: one call less each).
                entry = self.trusted.get(id(value))
                if entry is not None and entry[0] is value and entry[2](value, entry):
                    size[0] += 9 * entry[1]
                    return cast("Document", value)
                if len(value) <= MAX_OBJECT_FIELDS:
                    size[0] += 2
                    out: dict[str, Value] = {}
                    for key, item in value.items():
                        error = field_name_error(key)
                        if error is not None:
                            raise InvalidValue(error)
                        if item is UNSET:
                            continue
                        size[0] += len(key) + 1
                        try:
                            out[key] = self._check(item, depth + 1, size)
                        except InvalidValue as e:
                            raise e.at(key) from None
                    return out
            elif t is list and len(value) <= MAX_ARRAY_LEN:
                if depth + 1 < MAX_VALUE_NESTING:
                    # A scan's list of documents as read (see remember_list):
                    # one look at the list and a same() per document from C.
                    entry = self.trusted.get(id(value))
                    if (
                        entry is not None
                        and entry[0] is value
                        and entry[2](value, entry)
                    ):
                        size[0] += 9 * entry[1]
                        return cast("list[Value]", value)
                size[0] += 2
                items: list[Value] = []
                append = items.append
                # A read document as read, inline here too: a query's list of
                # documents costs a lookup and a ``same`` per item, not a call
                # of this method each (the items' depth must allow a dict).
                trusted = self.trusted if depth + 1 < MAX_VALUE_NESTING else {}
                for i, item in enumerate(value):
                    if type(item) is dict:
                        entry = trusted.get(id(item))
                        if (
                            entry is not None
                            and entry[0] is item
                            and entry[2](item, entry)
                        ):
                            size[0] += 9 * entry[1]
                            append(item)
                            continue
                    try:
                        append(self._check(item, depth + 1, size))
                    except InvalidValue as e:
                        raise e.at(i) from None
                return items
        # A leaf, or a container over a limit (check_value raises the usual error).
        checked = check_value(value, depth)
        size[0] += convex_size(checked)
        return checked

    def check_for(self, table: str) -> Remember:
        """How documents read from ``table`` are remembered (see :func:`document_check`).

        From the table's validator when the schema checks every write (so every
        stored document matches it: documents stored before a schema change are
        checked when the store opens); :data:`GENERIC` otherwise (no schema, a
        table it does not define, ``define_table()`` with no validator, or
        ``schema_validation=False``, where a document may hold anything).
        """
        schema = self.schema
        if schema is None or not schema.schema_validation:
            return GENERIC
        definition = schema.tables.get(table)
        return GENERIC if definition is None else document_check(definition.document)

    def trust(self, doc: Document, size: int, remember: Remember | None = None) -> None:
        """Remember a document decoded from ``size`` characters of stored JSON.

        ``remember`` is its table's (:meth:`check_for`); without it, the
        generic one, which looks at everything.
        """
        try:
            entry = (GENERIC if remember is None else remember)(doc, size)
        except (KeyError, TypeError):
            # A document that does not match its table's validator (written by a
            # process that does not validate): the generic check looks at all.
            entry = GENERIC(doc, size)
        self.trusted[id(doc)] = entry

    def _as_read(self, value: dict[str, Any]) -> int | None:
        """The stored JSON length of ``value`` if it is a read document as read, else None.

        "As read": the same keys holding the same objects, and every object or
        array inside it holding the same items (see :func:`remember_any`).
        """
        entry = self.trusted.get(id(value))
        if entry is None or entry[0] is not value or not entry[2](value, entry):
            return None
        size: int = entry[1]
        return size

    def resolve(self, number: int) -> str | None:
        """Table number -> user table name, or ``_storage`` (for ``v.id`` checks)."""
        name = self.storage.table_of(number)
        if name is None or (name.startswith("_") and name != "_storage"):
            return None
        return name


def _same(value: object, expected: object) -> bool:
    """Whether a repeated system field equals the document's, by Convex value equality.

    An int64 ``1000`` is not the float64 ``1000.0``, so it does not match
    ``_creationTime``.
    """
    return type(value) is type(expected) and value == expected


# What a read document held when it was decoded: its top-level values, and each
# object or array inside it followed by its items (a flat list: container,
# items, container, items...; None when it has none). Identity, not equality: a
# value object replaced or an item added anywhere shows up, and no value is
# compared or walked. A flat document costs one tuple; a nested one a tuple per
# object or array (benchmarks/return_check.py measures this against the
# top-level-only check it replaced). A table whose validator says where objects
# and arrays can be has a check of its own (see :func:`document_check`).
_DICT, _LIST = dict, list
_is = operator.is_


def remember_any(doc: Document, size: int) -> tuple[Any, ...]:
    """The entry of a document whose table's validator says nothing.

    ``(doc, size, unchanged, (values, nested))``: what ``doc`` holds now, by
    identity (see :func:`unchanged`).
    """
    values = tuple(doc.values())
    nested: list[Any] | None = None
    for value in values:
        t = type(value)
        if t is _DICT:
            items = tuple(value.values())
        elif t is _LIST:
            items = tuple(value)
        else:
            continue
        if nested is None:
            nested = [value, items]
        else:
            nested += (value, items)
        for item in items:
            t = type(item)
            if t is _DICT or t is _LIST:
                _containers(item, nested)
    return doc, size, unchanged, (values, nested)


def _containers(value: Any, out: list[Any]) -> None:
    items = tuple(value.values()) if type(value) is _DICT else tuple(value)
    out += (value, items)
    for item in items:
        t = type(item)
        if t is _DICT or t is _LIST:
            _containers(item, out)


def _inner(items: tuple[object, ...], out: list[Any]) -> None:
    """Add every object or array among ``items`` (and inside them) to ``out``."""
    for item in items:
        t = type(item)
        if t is _DICT or t is _LIST:
            _containers(item, out)


def unchanged(doc: dict[str, Any], entry: tuple[Any, ...]) -> bool:
    """Whether ``doc`` still holds what :func:`remember_any` saw (``entry[3]``)."""
    values, nested = entry[3]
    if len(doc) != len(values) or not all(map(_is, doc.values(), values)):
        return False
    if nested is None:
        return True
    pairs = iter(nested)  # inline, not _nested_unchanged: one call less per document
    for container in pairs:
        items = next(pairs)
        now = container.values() if type(container) is _DICT else container
        if len(now) != len(items) or not all(map(_is, now, items)):
            return False
    return True


def _entry_same(doc: Document, entry: tuple[Any, ...]) -> bool:
    same: Callable[[Document, tuple[Any, ...]], bool] = entry[2]
    return same(doc, entry)


def remember_list(
    docs: list[Document],
    entries: list[tuple[Any, ...]],
    chars: int,
    same: Callable[[Document, tuple[Any, ...]], bool] | None,
) -> tuple[Any, ...]:
    """The entry of a list of read documents as a scan returned it (``read_all``).

    ``entries`` are the documents' own (``remember``'s), ``chars`` their stored
    JSON lengths summed, ``same`` their common ``same`` (None when they differ).
    The list is as read while it holds the same documents in the same order and
    each is as read; its Convex size is at most 9 bytes per character of their
    JSON plus the list's own 2 (``chars + 1``).
    """
    return docs, chars + 1, _list_unchanged, tuple(docs), tuple(entries), same


def _list_unchanged(docs: list[Document], entry: tuple[Any, ...]) -> bool:
    _, _, _, items, entries, same = entry
    return (
        len(docs) == len(items)
        and all(map(_is, docs, items))
        and all(map(same or _entry_same, docs, entries))
    )


def _nested_unchanged(nested: list[Any]) -> bool:
    """Whether every (container, items) pair of ``nested`` still holds its items."""
    pairs = iter(nested)
    for container in pairs:
        items = next(pairs)
        now = container.values() if type(container) is _DICT else container
        if len(now) != len(items) or not all(map(_is, now, items)):
            return False
    return True


# ------------------------------------------------- checks from a table's validator

# ``remember(doc, size)``: the entry ``Transaction.trusted`` keeps for a read
# document: ``(doc, size, same, ...what doc holds)``, where ``same(doc, entry)``
# says whether ``doc`` still holds it. One tuple per document.
Remember = Callable[[Document, int], tuple[Any, ...]]


GENERIC: Remember = remember_any
_MEMO_KEY = "return_check"


def _can_hold(validator: Validator) -> tuple[bool, bool]:
    """Whether a value of ``validator`` can be an object or array, and its items too."""
    match validator.kind:
        case "any":
            return True, True
        case "array":
            assert validator.element is not None
            return True, _can_hold(validator.element)[0]
        case "object":
            return True, any(_can_hold(f)[0] for _, f in validator.fields)
        case "record":
            assert validator.values is not None
            return True, _can_hold(validator.values)[0]
        case "union":
            held = [_can_hold(m) for m in validator.members]
            return any(c for c, _ in held), any(d for _, d in held)
        case _:  # string, number, int64, boolean, bytes, null, id, literal
            return False, False


def _always(validator: Validator) -> str | None:
    """``"list"`` or ``"dict"`` when every value of ``validator`` is one, else None."""
    if validator.is_optional:
        return None
    match validator.kind:
        case "array":
            return "list"
        case "object" | "record":
            return "dict"
        case "union":
            shapes = {_always(m) for m in validator.members}
            return shapes.pop() if len(shapes) == 1 else None
        case _:
            return None


def _container_fields(document: Validator) -> dict[str, tuple[bool, str | None]] | None:
    """Top-level fields that can hold an object or array -> (their items can, always).

    ``always``: ``"list"`` or ``"dict"`` when every document has the field and
    it holds that (see :func:`_always`). None when the validator does not say
    (``v.any()``).
    """
    members = document.members if document.kind == "union" else (document,)
    found: list[dict[str, tuple[bool, str | None]]] = []
    for member in members:
        if member.kind != "object":
            return None
        found.append({})
        for name, sub in member.fields:
            container, deep = _can_hold(sub)
            if container:
                found[-1][name] = (deep, _always(sub))
    fields: dict[str, tuple[bool, str | None]] = {}
    for name in {name: None for each in found for name in each}:
        held = [each.get(name) for each in found]
        shapes = {h[1] if h is not None else None for h in held}
        fields[name] = (
            any(h is not None and h[0] for h in held),
            shapes.pop() if len(shapes) == 1 else None,
        )
    return fields


def document_check(document: Validator) -> Remember:
    """The ``remember`` of documents that match ``document`` (see :data:`Remember`).

    Only the fields the validator lets hold an object or array are looked
    into, and only the items of those that can hold one are walked: a
    ``v.array(v.string())`` field costs a tuple of its items, a ``v.string()``
    field nothing beyond the top-level tuple. Made once per validator (kept in
    its memo) as two small functions written for its fields, so a document
    costs a few tuples and no loop over fields. The guarantee is
    :func:`remember_any`'s: any edit at any depth is seen, provided the document
    matched the validator when it was read (a schema that validates writes).
    """
    return document.derived(_MEMO_KEY, _remember_for)


def _remember_for(document: Validator) -> Remember:
    fields = _container_fields(document)
    return GENERIC if fields is None else _compile(fields)


def _compile(fields: dict[str, tuple[bool, str | None]]) -> Remember:
    """Write ``remember(doc, size)`` and ``same(doc, entry)`` for these fields.

    A field holds a view of its items (the list, or the dict's ``values()``;
    ``()`` when it is absent or not a container; a field every document has
    as a list, or as an object, is taken as one) and a tuple of them; a field
    whose items can be containers adds them, with their items, to one list
    (as :func:`remember_any`). The field names are written as ``repr`` literals.
    """
    names = list(fields)
    deep = [i for i, name in enumerate(names) if fields[name][0]]
    snap = ["def remember(doc, size):"]
    for i, name in enumerate(names):
        always = fields[name][1]
        if always == "list":
            snap.append(f"    c{i} = doc[{name!r}]")
        elif always == "dict":
            snap.append(f"    c{i} = doc[{name!r}].values()")
        else:
            snap += [
                f"    c{i} = doc.get({name!r})",
                f"    t = type(c{i})",
                "    if t is _DICT:",
                f"        c{i} = c{i}.values()",
                "    elif t is not _LIST:",
                f"        c{i} = ()",
            ]
        snap.append(f"    i{i} = tuple(c{i})")
    parts = ["doc, size, same, tuple(doc.values())"] + [
        f"c{i}, i{i}" for i in range(len(names))
    ]
    if deep:
        snap.append("    nested = []")
        snap += [f"    _inner(i{i}, nested)" for i in deep]
        parts.append("nested")
    snap.append(f"    return ({', '.join(parts)},)")
    unpack = ["_, _, _, values"] + [f"c{i}, i{i}" for i in range(len(names))]
    if deep:
        unpack.append("nested")
    checks = ["len(doc) == len(values)", "all(map(_is, doc.values(), values))"]
    for i in range(len(names)):
        checks += [f"len(c{i}) == len(i{i})", f"all(map(_is, c{i}, i{i}))"]
    if deep:
        checks.append("_nested_unchanged(nested)")
    check = [
        "def same(doc, entry):",
        f"    {', '.join(unpack)}, = entry",
        f"    return {' and '.join(checks)}",
    ]
    namespace: dict[str, Any] = {
        "_DICT": _DICT,
        "_LIST": _LIST,
        "_is": _is,
        "_inner": _inner,
        "_nested_unchanged": _nested_unchanged,
    }
    # Our own text: the only data in it are field names, written with repr.
    exec("\n".join(snap + check), namespace)
    remember: Remember = namespace["remember"]
    return remember
