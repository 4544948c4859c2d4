"""The ``one-store`` command: demo, serve, run, data, export, import, describe.

Built with typer (arguments, ``--help`` on every command) and rich (tables,
progress bars). Every error prints one line on stderr, ``Error: <what>``, and
exits non-zero (1 for a failure, 2 for a usage mistake, as click does); no
traceback reaches the user.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from returns.result import Failure, Success
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ..engine.sqlite.storage import StorageFailure
from ..model.errors import OneStoreError
from ..model.validators import Validator
from ..model.values import from_convex_json
from ..store import Store

app = typer.Typer(
    name="one-store",
    help="The Convex programming model on SQLite: serve, run, inspect, export and import an app's data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console()
err = Console(stderr=True)

AppArg = Annotated[
    Path,
    typer.Argument(
        metavar="APP",
        help="The app folder (schema.py plus function files), like convex/.",
    ),
]
DbOpt = Annotated[
    Path, typer.Option("--db", help="The SQLite file (created if missing).")
]


class CliError(Exception):
    """A failure to report in one line and exit 1."""


def fail(message: str) -> NoReturn:
    """Stop the command with ``Error: message``."""
    raise CliError(message)


@contextmanager
def open_store(app_dir: Path, db: Path, *, existing: bool = False) -> Iterator[Store]:
    """Open ``db`` with the app loaded; turn every opening problem into one line.

    ``existing``: the command only reads ``db``, so a missing file is a mistyped
    path to report, not a new database to create.
    """
    if not app_dir.is_dir():
        fail(f"app folder {str(app_dir)!r} does not exist")
    if existing and not db.is_file():
        fail(f"database {str(db)!r} does not exist")
    try:
        store = Store.open(db, app=app_dir)
    except StorageFailure as e:
        fail(f"cannot open {db}: {e.problem.message}")
    except OneStoreError as e:
        fail(str(e))
    except Exception as e:  # an error in the app's own code while it loads
        fail(f"cannot load app {app_dir}: {type(e).__name__}: {e}")
    with store:
        yield store


def _show(value: Any) -> str:
    from ..snapshot import to_export_json

    return json.dumps(to_export_json(value), indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- commands


@app.command()
def demo(
    db: Annotated[
        Path,
        typer.Option(
            "--db", help="The ONE system's file; the chat app uses <stem>.chat<suffix>."
        ),
    ] = Path("one_store_demo.db"),
) -> None:
    """Run the two spec systems (schema/one, schema/chat) on local files and show the result."""
    from .demo import run_demo

    code = run_demo(db, out)
    if code:
        raise typer.Exit(code)


@app.command()
def serve(
    app_dir: AppArg,
    db: DbOpt,
    host: Annotated[
        str, typer.Option(help="Interface to bind; loopback by default.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port (0 picks a free one).", min=0, max=65535)
    ] = 3210,
    scheduler: Annotated[
        bool,
        typer.Option(
            help="Run scheduled functions and crons while serving, as a Convex "
            "deployment does (--no-scheduler when another process runs them)."
        ),
    ] = True,
) -> None:
    """Serve the app over Convex's HTTP API (/api/query, /api/mutation, /api/action, http.py routes)."""
    from ..server.http_api import serve as run_server

    with open_store(app_dir, db) as store:
        if scheduler:
            store.scheduler.start()  # stopped by store.close() on the way out

        def ready(url: str) -> None:
            out.print(
                f"one-store serving {app_dir} ({db}) at {url}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            sys.stdout.flush()

        try:
            run_server(store, host=host, port=port, on_ready=ready)
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e}")


@app.command()
def run(
    app_dir: AppArg,
    function: Annotated[
        str,
        typer.Argument(
            metavar="FUNCTION", help='A function path, e.g. "messages:list".'
        ),
    ],
    db: DbOpt,
    args: Annotated[
        str,
        typer.Argument(
            metavar="ARGS", help="The arguments as a JSON object (Convex-encoded)."
        ),
    ] = "{}",
) -> None:
    """Run a query, mutation or action (internal ones too) and print its value as JSON."""
    try:
        decoded = from_convex_json(json.loads(args))
    except (ValueError, OverflowError, RecursionError) as e:
        fail(f"ARGS is not valid JSON: {e}")
    with open_store(app_dir, db) as store:
        found = store.function(function)
        if isinstance(found, Failure):
            fail(found.failure().message)
        spec = found.unwrap()
        if spec.kind not in ("query", "mutation", "action"):
            fail(f"{function} is an {spec.kind}; it is reached through its HTTP route")
        call = {
            "query": store.query,
            "mutation": store.mutation,
            "action": store.action,
        }
        match call[spec.kind](spec, decoded):  # type: ignore[arg-type]
            case Success(value):
                out.print_json(_show(value))
            case Failure(problem):
                fail(str(problem))


@app.command()
def data(
    app_dir: AppArg,
    db: DbOpt,
    table: Annotated[
        str | None, typer.Argument(metavar="TABLE", help="Show this table's documents.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Documents to show at most.", min=1)] = 50,
) -> None:
    """List the tables with their document counts, or the documents of one table."""
    with open_store(app_dir, db, existing=True) as store:
        storage = store.storage
        with storage.read():
            tables = storage.tables()
            if table is None:
                listing = Table("table", "documents", title=str(db))
                for name in tables:
                    listing.add_row(name, str(storage.count(name)))
                out.print(listing)
                return
            if table not in tables:
                fail(
                    f"no table {table!r} in {db} (tables: {', '.join(tables) or 'none'})"
                )
            docs = [d for _, d in zip(range(limit), storage.scan(table), strict=False)]
            total = storage.count(table)
        columns = [
            "_id",
            *sorted({k for d in docs for k in d} - {"_id", "_creationTime"}),
            "_creationTime",
        ]
        grid = Table(*columns, title=f"{table} ({len(docs)} of {total})")
        for doc in docs:
            grid.add_row(*(_cell(doc, c) for c in columns))
        out.print(grid)


def _cell(doc: dict[str, Any], column: str) -> str:
    if column not in doc:
        return ""
    value = doc[column]
    return value if isinstance(value, str) else _show(value).replace("\n", "")


class _Bars:
    """Rich progress bars behind the snapshot ``Progress`` protocol."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def start(self, description: str, total: int) -> None:
        self.task = self.progress.add_task(description, total=max(total, 1))
        if total == 0:
            self.progress.update(self.task, completed=1)

    def advance(self, amount: int) -> None:
        self.progress.advance(self.task, amount)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        # Bars are for people at a terminal; logs and pipes get the summary line only.
        disable=not err.is_terminal,
    )


@app.command("export")
def export_cmd(
    app_dir: AppArg,
    db: DbOpt,
    path: Annotated[Path, typer.Option("--path", help="The ZIP file to write.")],
) -> None:
    """Export every table to a Convex snapshot ZIP (npx convex export's layout)."""
    from ..snapshot import export_snapshot

    with open_store(app_dir, db, existing=True) as store, _progress() as progress:
        try:
            summary = export_snapshot(store, path, progress=_Bars(progress))
        except OSError as e:
            fail(f"cannot write {path}: {e.strerror or e}")
    out.print(
        f"Exported {summary.documents} documents from {len(summary.tables)} tables to {path}"
    )


@app.command("import")
def import_cmd(
    app_dir: AppArg,
    db: DbOpt,
    path: Annotated[
        Path, typer.Argument(metavar="SNAPSHOT", help="The snapshot ZIP to read.")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Empty the imported tables first.")
    ] = False,
    append: Annotated[
        bool, typer.Option("--append", help="Add to the tables' documents.")
    ] = False,
) -> None:
    """Import a Convex snapshot ZIP; all or nothing (tables must be empty unless --replace/--append)."""
    from ..snapshot import Mode, import_snapshot

    if replace and append:
        fail("--replace and --append exclude each other")
    if not path.is_file():
        fail(f"snapshot {str(path)!r} does not exist")
    mode: Mode = "replace" if replace else "append" if append else "require_empty"
    with open_store(app_dir, db) as store, _progress() as progress:
        result = import_snapshot(store, path, mode=mode, progress=_Bars(progress))
    match result:
        case Success(summary):
            out.print(
                f"Imported {summary.documents} documents into {len(summary.tables)} tables of {db}"
            )
        case Failure(problem):
            fail(f"import refused, nothing imported: {problem}")


@app.command()
def describe(app_dir: AppArg) -> None:
    """Print the app's tables (fields, indexes), functions (kinds, args, returns) and HTTP routes."""
    from ..app import load_app

    if not app_dir.is_dir():
        fail(f"app folder {str(app_dir)!r} does not exist")
    try:
        loaded = load_app(app_dir)
    except Exception as e:  # the app's own code failed while loading
        fail(f"cannot load app {app_dir}: {type(e).__name__}: {e}")
    schema = loaded.schema
    for name, definition in (schema.tables if schema else {}).items():
        grid = Table("field", "validator", title=f"table {name}", title_justify="left")
        document = definition.document
        if document.kind == "object":
            for field, validator in document.fields:
                grid.add_row(field, str(validator))
        else:
            grid.add_row("(document)", str(document))
        out.print(grid)
        for index in definition.indexes:
            out.print(
                f"  index {index.name}: {', '.join(index.fields)}", highlight=False
            )
        for search in definition.search_indexes:
            filters = (
                f" (filters: {', '.join(search.filter_fields)})"
                if search.filter_fields
                else ""
            )
            out.print(
                f"  search index {search.name}: {search.search_field}{filters}",
                highlight=False,
            )
    out.print("[bold]functions[/]")
    for path in loaded.paths():
        spec = loaded.functions[path]
        kind = spec.kind if spec.visibility == "public" else f"internal {spec.kind}"
        returns = str(spec.returns) if spec.returns is not None else "any"
        out.print(
            f"  {kind:<18} {path}({_signature(spec.args)}) -> {returns}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    if loaded.http is not None:
        routes = Table(
            "method", "route", "handler", title="http routes", title_justify="left"
        )
        for route in loaded.http.routes():
            routes.add_row(route.method, route.pattern, route.handler.display_name)
        out.print(routes)


def _signature(args: Validator | None) -> str:
    """``name: v.string(), n: v.optional(v.number())`` for an args validator."""
    if args is None:
        return "**any"
    if args.kind != "object":
        return str(args)
    return ", ".join(f"{name}: {validator}" for name, validator in args.fields)


def main() -> None:
    """Entry point of the ``one-store`` script."""
    try:
        app()
    except CliError as e:
        message = "; ".join(
            line.strip() for line in str(e).splitlines() if line.strip()
        )
        err.print(f"Error: {message}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
