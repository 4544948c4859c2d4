"""The ``one-store`` command: demo, serve, run, data, export, import, describe.

Built with typer (arguments, ``--help`` on every command) and rich (tables,
progress bars). Every error prints one line on stderr, ``Error: <what>``, and
exits non-zero (1 for a failure, 2 for a usage mistake, as click does); no
traceback reaches the user. ``data`` and ``export`` open the file read-only and
need no app folder: the file keeps its own tables and indexes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from returns.result import Failure, Success
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from typer.core import TyperCommand

from ..engine.postgres.connection import is_dsn
from ..model.errors import OneStoreError, StorageFailure
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
# A SQLite file, or a postgresql:// DSN (a string: a Path would fold its "//").
DbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        help="The SQLite file (created if missing), or a postgresql:// DSN.",
    ),
]
ReadDbOpt = Annotated[
    str,
    typer.Option(
        "--db",
        help="The SQLite file to read (it must exist and is never changed), "
        "or a postgresql:// DSN.",
    ),
]
AppOpt = Annotated[
    Path | None,
    typer.Option(
        "--app",
        help="The app folder; optional (the file keeps its own tables and indexes).",
        show_default=False,
    ),
]
# Ctrl-C on `serve`: how long the store may take to close (a transaction in
# progress commits in milliseconds) before the process ends without it.
STOP_GRACE_SECONDS = 1.0


class CliError(Exception):
    """A failure to report in one line and exit 1."""


def fail(message: str) -> NoReturn:
    """Stop the command with ``Error: message``."""
    raise CliError(message)


@contextmanager
def open_store(
    app_dir: Path | None, db: str, *, readonly: bool = False
) -> Iterator[Store]:
    """Open ``db`` with the app (if any); turn every opening problem into one line.

    ``readonly``: the command only reads ``db`` and never changes it, so a
    missing file is a mistyped path to report, not a new database to create.
    """
    if app_dir is not None and not app_dir.is_dir():
        fail(f"app folder {str(app_dir)!r} does not exist")
    if readonly and not is_dsn(db) and not Path(db).exists():
        fail(f"database {db!r} does not exist")
    try:
        store = Store.open(db, app=app_dir, readonly=readonly)
    except StorageFailure as e:  # its message names the file and why
        fail(e.problem.message)
    except OneStoreError as e:
        fail(str(e))
    except Exception as e:  # an error in the app's own code while it loads
        fail(f"cannot load app {app_dir}: {type(e).__name__}: {e}")
    with store:
        yield store


def _version(value: bool) -> None:
    if value:
        out.print(f"one-store {package_version()}", highlight=False)
        raise typer.Exit()


def package_version() -> str:
    """The installed distribution's version (the package's own when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("one-store")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from .. import __version__

        return __version__


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """The Convex programming model on SQLite: serve, run, inspect, export and import an app's data."""


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
    """Run the two apps one_store was built from (the ONE agent/human system and the agent chat app) on two local files."""
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
    access_log: Annotated[
        bool,
        typer.Option(
            help="Print one line per request on stderr (client, method, path, "
            "status, duration)."
        ),
    ] = True,
) -> None:
    """Serve the app over Convex's HTTP API (/api/query, /api/mutation, /api/action, http.py routes) and its sync protocol (/api/sync: live queries for useQuery and ConvexClient).

    Ctrl-C stops at once; SIGTERM lets requests in progress finish.
    """
    from ..server.auth import serving_admin_key
    from ..server.http_api import serve as run_server

    if access_log:
        _print_access_log()
    shown = serving_admin_key()  # the key serve reads from ONE_STORE_ADMIN_KEY
    with open_store(app_dir, db) as store:
        if scheduler:
            store.scheduler.start()  # stopped by store.close() on the way out

        def ready(url: str) -> None:
            out.print(
                f"one-store serving {app_dir} ({db}) at {url} (admin key: {shown})",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            sys.stdout.flush()

        try:
            run_server(
                store, host=host, port=port, on_ready=ready, access_log=access_log
            )
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
        except KeyboardInterrupt:
            _stop_at_once(store)


def _print_access_log() -> None:
    """Send the ``one_store.access`` lines to stderr, one per request."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    access = logging.getLogger("one_store.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False  # not also to the root logger's handlers


def _stop_at_once(store: Store) -> NoReturn:
    """Ctrl-C on ``serve``: close the store, unless something still runs in it.

    Python cannot stop a thread, so a request or scheduled job still running
    user code (an action waiting on the network, a long mutation) would hold the
    process. Past a short grace the process ends without it: what was committed
    is in the file, and SQLite discards the unfinished transaction.
    """
    closer = threading.Thread(target=store.close, name="one_store-close", daemon=True)
    closer.start()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    try:
        closer.join(STOP_GRACE_SECONDS)
        # The server's worker threads: idle ones end now that its loop is gone.
        workers = [
            t
            for t in threading.enumerate()
            if not t.daemon and t is not threading.main_thread()
        ]
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        running = closer.is_alive() or any(t.is_alive() for t in workers)
    except KeyboardInterrupt:  # a second Ctrl-C while waiting
        running = True
    if running:
        err.print(
            "Stopped; a function still running was abandoned (its transaction, "
            "if any, is rolled back).",
            highlight=False,
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    raise typer.Exit(130)


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
        match store.executor.call(spec.kind, spec, decoded):
            case Success(value):
                out.print_json(_show(value))
            case Failure(problem):
                fail(str(problem))


class _Command(TyperCommand):
    """A command whose usage line leaves out hidden arguments (an older form's)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS]`` and the visible arguments (``ctx``: click's or typer's Context)."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if not getattr(param, "hidden", False):
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


@app.command(cls=_Command)
def data(
    db: ReadDbOpt,
    first: Annotated[
        str | None,
        typer.Argument(
            metavar="TABLE",
            help="Show this table's documents. (The older form `data APP --db "
            "PATH [TABLE]` still works: a first argument that is a folder is "
            "the app.)",
            show_default=False,
        ),
    ] = None,
    second: Annotated[
        str | None, typer.Argument(hidden=True, show_default=False)
    ] = None,
    app_opt: AppOpt = None,
    limit: Annotated[int, typer.Option(help="Documents to show at most.", min=1)] = 50,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            metavar="FIELD=VALUE",
            help="Only documents whose indexed FIELD equals VALUE (JSON, or a "
            "plain word as a string); repeat for an index's next fields.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line (JSON Lines).")
    ] = False,
) -> None:
    """List the tables with their document counts, or the documents of one table.

    Opens the file read-only: it is never changed, and it needs no app folder.
    With --app, the listing also says which tables the app's schema declares.
    """
    from . import data as show

    words = [w for w in (first, second) if w is not None]
    app_dir, table = _app_and_table(words, app_opt)
    with open_store(app_dir, db, readonly=True) as store:
        if table is None:
            if where:
                fail("--where needs a TABLE")
            show.print_listing(out, store, db, app_dir, as_json)
            return
        tables = store.storage.tables()
        if table not in tables:
            fail(f"no table {table!r} in {db} (tables: {', '.join(tables) or 'none'})")
        try:
            docs, total = show.documents(
                store, table, show.parse_where(where or []), limit
            )
        except show.DataError as e:
            fail(str(e))
        show.print_documents(out, table, docs, total, as_json)


def _app_and_table(
    words: list[str], app_opt: Path | None
) -> tuple[Path | None, str | None]:
    """``data``'s positional words: ``[TABLE]``, or the older ``APP [TABLE]``."""
    if app_opt is not None:
        if len(words) > 1:
            raise typer.BadParameter(
                "with --app, give at most one TABLE", param_hint="[TABLE]"
            )
        return app_opt, words[0] if words else None
    if len(words) > 2:
        raise typer.BadParameter("expected [TABLE] (or APP [TABLE])")
    if len(words) == 2:
        return Path(words[0]), words[1]
    if words and _names_a_folder(words[0]):
        return Path(words[0]), None
    return None, words[0] if words else None


def _names_a_folder(word: str) -> bool:
    """An app folder of the older form: a folder, or a path (table names have no /)."""
    return Path(word).is_dir() or "/" in word or os.sep in word or word.startswith(".")


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
    db: ReadDbOpt,
    path: Annotated[Path, typer.Option("--path", help="The ZIP file to write.")],
    app_arg: Annotated[
        Path | None,
        typer.Argument(
            metavar="APP",
            help="The older form's app folder (same as --app).",
            show_default=False,
        ),
    ] = None,
    app_opt: AppOpt = None,
    files: Annotated[
        bool, typer.Option("--include-file-storage", help="Also export stored files.")
    ] = False,
) -> None:
    """Export every table to a Convex snapshot ZIP (npx convex export's layout).

    Opens the file read-only: it is never changed, and it needs no app folder.
    """
    from ..snapshot import export_snapshot

    if app_arg is not None and app_opt is not None:
        raise typer.BadParameter("give the app once: APP or --app")
    with (
        open_store(app_opt or app_arg, db, readonly=True) as store,
        _progress() as progress,
    ):
        try:
            bars = _Bars(progress)
            summary = export_snapshot(
                store, path, progress=bars, include_file_storage=files
            )
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
