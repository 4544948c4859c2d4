"""What ``one-store data`` prints: the tables of a file, or one table's documents.

The file is opened read-only and needs no app folder: its own records say which
tables and indexes it has. ``--where field=value`` (repeatable) reads through an
index whose leading fields are exactly the fields given, as a Convex query's
``with_index(..., q => q.eq(...))`` would; a field no index starts with is
refused with the indexes there are. Values are JSON (``5`` is an int64, ``5.0``
a float64, ``true``), and a word that is not JSON is a string, so IDs and names
need no quotes.

For people, a table of documents: ``_id`` whole (never cut; other columns wrap),
``_creationTime`` as a UTC time. With ``--json``, one JSON object per line (JSON
Lines), each value as Convex's export writes it (the snapshot's
``documents.jsonl``), for ``jq`` and scripts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from returns.result import Failure, Success
from rich.console import Console
from rich.table import Table

from ..engine.backend import TableInfo
from ..model.display import cell, columns_of
from ..model.values import Document
from ..snapshot import to_export_json
from ..store import Store


class DataError(Exception):
    """A mistake in what was asked (an unknown table, an unindexed field)."""


def parse_where(words: list[str]) -> dict[str, Any]:
    """``["field=value", ...]`` as ``{field: value}`` (values JSON, else strings)."""
    found: dict[str, Any] = {}
    for word in words:
        field, sep, text = word.partition("=")
        if not sep or not field:
            raise DataError(f"--where takes FIELD=VALUE, got {word!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        found[field.strip()] = value
    return found


def index_for(store: Store, table: str, fields: list[str]) -> str:
    """The index whose leading fields are exactly ``fields`` (in any order)."""
    layout: TableInfo = store.storage.layouts[table]
    for name, index in layout.indexes.items():
        if name not in ("by_id", "by_creation_time") and set(
            index.fields[: len(fields)]
        ) == set(fields):
            return name
    known = ", ".join(
        f"{n} ({', '.join(i.fields)})"
        for n, i in layout.indexes.items()
        if n not in ("by_id", "by_creation_time")
    )
    raise DataError(
        f"no index of table {table!r} starts with {', '.join(map(repr, fields))}; "
        f"--where works on indexed fields (indexes: {known or 'none'})"
    )


def documents(
    store: Store, table: str, where: dict[str, Any], limit: int
) -> tuple[list[Document], int | None]:
    """The first ``limit`` documents (and the table's count, without ``where``)."""
    if not where:
        view = store.table(table)
        return view.head(limit), len(view)
    name = index_for(store, table, list(where))
    fields = store.storage.layouts[table].indexes[name].fields

    def read(ctx: Any) -> list[Document]:
        def bounds(q: Any) -> Any:
            for field in fields[: len(where)]:
                q = q.eq(field, where[field])
            return q

        found: list[Document] = ctx.db.query(table).with_index(name, bounds).take(limit)
        return found

    match store.read(read):
        case Success(found):
            return found, None
        case Failure(problem):
            raise DataError(str(problem))
    raise AssertionError("a Result is a Success or a Failure")


def print_documents(
    console: Console,
    table: str,
    docs: list[Document],
    total: int | None,
    as_json: bool,
) -> None:
    """The documents as a table for people, or as JSON Lines."""
    if as_json:
        for doc in docs:
            console.out(
                json.dumps(to_export_json(doc), ensure_ascii=False), highlight=False
            )
        return
    shown = f"{len(docs)} of {total}" if total is not None else f"{len(docs)} found"
    title = f"{table} ({shown})"
    columns = columns_of(docs, documents=True)
    # One row per document while every column gets a readable width; else one
    # block per document (field, value), as psql's expanded display: nothing cut.
    wide = ID_WIDTH + TIME_WIDTH + MIN_WIDTH * (len(columns) - 2) + 3 * len(columns)
    console.print(
        _rows(title, columns, docs) if wide <= console.width else _blocks(title, docs)
    )


ID_WIDTH = 32
TIME_WIDTH = len("2026-12-07 19:34:23.204 UTC")
MIN_WIDTH = 12
"""The narrowest a field's column may get before documents are shown as blocks."""


def _rows(title: str, columns: list[str], docs: list[Document]) -> Table:
    grid = Table(title=title)
    for column in columns:
        if column in ("_id", "_creationTime"):
            # IDs whole: an ID cut short cannot be copied into a query.
            grid.add_column(column, no_wrap=True)
        else:
            grid.add_column(column, overflow="fold", min_width=MIN_WIDTH)
    for doc in docs:
        grid.add_row(*(cell(doc[c], c, None) if c in doc else "" for c in columns))
    return grid


def _blocks(title: str, docs: list[Document]) -> Table:
    grid = Table("field", "value", title=title, show_lines=False)
    grid.columns[0].no_wrap = True
    grid.columns[1].overflow = "fold"
    for doc in docs:
        for column in columns_of([doc], documents=True):
            grid.add_row(column, cell(doc[column], column, None))
        grid.add_section()
    return grid


def print_listing(
    console: Console,
    store: Store,
    db: str,
    app_dir: Path | None,
    as_json: bool,
) -> None:
    """Each table with its document count (and, with an app, whether it declares it)."""
    storage = store.storage
    declared = set(store.schema.tables) if store.schema is not None else None
    with storage.read():
        counts = {name: storage.count(name) for name in storage.tables()}
    if as_json:
        for name, count in counts.items():
            console.out(
                json.dumps({"table": name, "documents": count}), highlight=False
            )
        return
    if app_dir is None or declared is None:
        listing = Table("table", "documents", title=str(db))
        for name, count in counts.items():
            listing.add_row(name, str(count))
    else:
        listing = Table("table", "documents", f"in {app_dir}", title=str(db))
        for name, count in counts.items():
            listing.add_row(name, str(count), "yes" if name in declared else "no")
        for name in sorted(declared - set(counts)):
            listing.add_row(name, "0", "yes (not in the file yet)")
    console.print(listing)
