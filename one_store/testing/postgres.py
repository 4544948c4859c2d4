"""A throwaway PostgreSQL server for tests, and fresh isolated databases in it.

:func:`postgres_cluster` gives the process's :class:`PostgresCluster`: either a
server started here (``initdb`` into a temporary folder, ``pg_ctl start`` on a free
port with its unix socket in that folder, settings for speed rather than
durability) or, when the environment variable ``ONE_STORE_TEST_POSTGRES`` holds a
DSN, that existing server. Each :meth:`PostgresCluster.database` call hands out
the DSN of a fresh, empty, isolated place to open a store in::

    from one_store import Store
    from one_store.testing.postgres import postgres_cluster

    dsn = postgres_cluster().database()  # postgresql://...?options=...
    with Store.open(dsn, schema=schema) as store:
        ...

Isolation is a PostgreSQL *schema* per call, named in the DSN's
``options=-csearch_path=...``: the engine's SQL is unqualified and the names that
are global to a database (NOTIFY channels, advisory-lock keys) are derived from
``current_schema()``, so two such DSNs never see each other. A schema costs about
a millisecond to create; a ``CREATE DATABASE`` costs tens (the numbers are in
docs/postgresql.md, "Testing on PostgreSQL"), so :meth:`PostgresCluster.database`
uses schemas and :meth:`PostgresCluster.separate_database` is there for the tests
that need a database of their own.

The binaries are found with ``pg_config --bindir``, then under
``/usr/lib/postgresql/<version>/bin`` (Debian, newest first), then on ``PATH``.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres``
OS user (``runuser``), which owns the temporary folder. Without binaries,
:class:`PostgresNotFoundError` says how to install them. The server is stopped and
its folder removed when the process exits (or at :meth:`PostgresCluster.close`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..model.errors import OneStoreError

if TYPE_CHECKING:
    import psycopg

ENV_DSN = "ONE_STORE_TEST_POSTGRES"
"""The environment variable naming an existing server to test against (a DSN)."""

# Durability off, for speed: a test's server is thrown away, never recovered.
FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "max_locks_per_transaction": "256",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}

# The watchdog of :meth:`PostgresCluster._watch_this_process` (a separate process).
WATCHDOG = """
import os, shutil, subprocess, sys, time
parent, folder, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
while True:
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
    time.sleep(1)
if os.path.exists(os.path.join(folder, "data", "postmaster.pid")):
    subprocess.run(stop, capture_output=True, check=False)
shutil.rmtree(folder, ignore_errors=True)
"""

INSTALL_HINT = (
    "install PostgreSQL's server binaries (Debian/Ubuntu: `apt-get install postgresql`; "
    "macOS: `brew install postgresql@16`), or set "
    f"{ENV_DSN}=postgresql://user@host/db to test against a running server"
)


class PostgresNotFoundError(OneStoreError, RuntimeError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``) on this machine."""

    code = "PostgresNotFoundError"


class PostgresClusterError(OneStoreError, RuntimeError):
    """The throwaway server could not be created, started or stopped."""

    code = "PostgresClusterError"


def find_bindir(
    path: str | None = None, debian: Path = Path("/usr/lib/postgresql")
) -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``, or :class:`PostgresNotFoundError`.

    Looks at ``pg_config --bindir``, then ``debian/<version>/bin`` (newest first),
    then ``initdb`` on ``path`` (default: ``$PATH``).
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config", path=path)
    if pg_config is not None:
        ran = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        if ran.returncode == 0 and ran.stdout.strip():
            candidates.append(Path(ran.stdout.strip()))
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.split(".")[0].isdigit()]
        versions.sort(key=lambda p: int(p.name.split(".")[0]), reverse=True)
        candidates.extend(p / "bin" for p in versions)
    on_path = shutil.which("initdb", path=path)
    if on_path is not None:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    looked = ", ".join(str(c) for c in candidates) or f"pg_config, {debian}, PATH"
    raise PostgresNotFoundError(
        f"no PostgreSQL server binaries (initdb, pg_ctl) found (looked in {looked}): "
        + INSTALL_HINT
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_options(dsn: str, **settings: str) -> str:
    """``dsn`` (a ``postgresql://`` URL) with ``-c name=value`` added to its options."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    extra = " ".join(f"-c{name}={value}" for name, value in settings.items())
    options = [v for k, v in query if k == "options"]
    rest = [(k, v) for k, v in query if k != "options"]
    merged = " ".join([*options, extra]) if options else extra
    return urlunsplit(parts._replace(query=urlencode([*rest, ("options", merged)])))


def with_database(dsn: str, name: str) -> str:
    """``dsn`` (a ``postgresql://`` URL) naming database ``name`` instead."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def search_path_of(dsn: str) -> str | None:
    """The schema a :meth:`PostgresCluster.database` DSN names, or None."""
    for key, value in parse_qsl(urlsplit(dsn).query):
        if key == "options":
            for word in value.split():
                if word.startswith("-csearch_path="):
                    return word.removeprefix("-csearch_path=")
    return None


class PostgresCluster:
    """A PostgreSQL server for tests: one started here, or an existing one.

    Args:
        dsn: an existing server's DSN; None starts a throwaway server here.
        settings: server settings for a server started here (on top of
            :data:`FAST_SETTINGS`).

    ``.dsn`` connects to its ``postgres`` database. A server started here can be
    stopped, started and restarted by the test (its port and folder stay); an
    existing server cannot (:class:`PostgresClusterError`).
    """

    def __init__(
        self, dsn: str | None = None, *, settings: dict[str, str] | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._created: list[str] = []  # DSNs handed out, dropped at close()
        self._folder: Path | None = None
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        if dsn is not None:
            self.dsn = dsn
            self.owned = False
            atexit.register(self.close)  # drops what it handed out
            return
        self.owned = True
        self._bindir = find_bindir()
        self._settings = {**FAST_SETTINGS, **(settings or {})}
        self._folder = Path(tempfile.mkdtemp(prefix="one-store-pg-"))
        self.port = free_port()
        self.dsn = f"postgresql://postgres@/postgres?host={quote(str(self._folder))}&port={self.port}"
        try:
            self._initdb()
            self.start()
        except BaseException:
            self._remove_folder()
            raise
        atexit.register(self.close)
        self._watch_this_process()

    def __repr__(self) -> str:
        where = f"port {self.port} in {self._folder}" if self.owned else "existing"
        return f"<PostgresCluster {where}: {self.dsn}>"

    # -- the server --------------------------------------------------------------

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresClusterError(
                "PostgreSQL refuses to run as root and `runuser` is missing: run the "
                f"tests as another user, or set {ENV_DSN}"
            )
        return [runuser, "-u", "postgres", "--", *argv]

    def _run(self, argv: list[str], what: str) -> None:
        ran = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, check=False
        )
        if ran.returncode != 0:
            log = self._log_tail()
            raise PostgresClusterError(
                f"{what} failed (exit {ran.returncode}): {ran.stderr.strip() or ran.stdout.strip()}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def _owned_folder(self) -> Path:
        if self._folder is None:
            raise PostgresClusterError(
                f"this server was not started here ({ENV_DSN} names it): "
                "the test cannot stop or start it"
            )
        return self._folder

    def _initdb(self) -> None:
        folder = self._owned_folder()
        if os.geteuid() == 0:
            shutil.chown(folder, user="postgres")
        self._run(
            [
                str(self._bindir / "initdb"),
                *("-D", str(folder / "data")),
                *("-A", "trust", "-U", "postgres", "-E", "UTF8"),
                *("--locale", "C", "--no-sync"),
            ],
            "initdb",
        )

    def _log_tail(self) -> str:
        if self._folder is None:
            return ""
        log = self._folder / "log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def start(self) -> None:
        """Start the server (waits until it accepts connections)."""
        folder = self._owned_folder()
        options = [
            *("-p", str(self.port), "-k", str(folder)),
            *("-c", "listen_addresses=127.0.0.1"),
        ]
        for name, value in self._settings.items():
            options += ["-c", f"{name}={value}"]
        self._run(
            [
                str(self._bindir / "pg_ctl"),
                *("-D", str(folder / "data"), "-l", str(folder / "log")),
                *("-w", "-t", "60", "-o", " ".join(options), "start"),
            ],
            "pg_ctl start",
        )

    def _watch_this_process(self) -> None:
        """Stop the server and remove its folder once this process is gone.

        ``atexit`` does not run when the process is killed (a test run's
        timeout, ``os._exit`` in a forked child): a detached watchdog then stops
        the server (``pg_ctl stop -m immediate``) and removes the folder, so no
        server outlives its test run.
        """
        folder = self._owned_folder()
        stop = self._as_server_user(
            [
                str(self._bindir / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]
        )
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(os.getpid()), str(folder), *stop],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C of the test run does not reach it
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (roll back open transactions) or ``immediate``."""
        folder = self._owned_folder()
        self._run(
            [
                str(self._bindir / "pg_ctl"),
                *("-D", str(folder / "data"), "-m", mode, "-w", "-t", "60", "stop"),
            ],
            "pg_ctl stop",
        )

    def restart(self) -> None:
        """Stop the server and start it again on the same port and folder."""
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        """Whether the server accepts connections now."""
        import psycopg

        try:
            with self.connect(connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    # -- databases ---------------------------------------------------------------

    def connect(self, dsn: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        """An autocommit psycopg connection to ``dsn`` (default: the server's)."""
        import psycopg

        return psycopg.connect(dsn or self.dsn, autocommit=True, **kwargs)

    def _admin(self, sql: str) -> None:
        """Run ``sql`` on the kept autocommit connection (reconnecting after a restart)."""
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                if self._conn is None or self._conn.closed:
                    self._conn = self.connect()
                try:
                    self._conn.execute(sql.encode())
                    return
                except psycopg.OperationalError:
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise

    def _fresh_name(self, kind: str) -> str:
        # Unique across processes and machines sharing an existing server.
        return f"one_store_{kind}_{uuid.uuid4().hex[:16]}"

    def database(self) -> str:
        """The DSN of a fresh, empty schema of its own (``search_path`` set in it)."""
        name = self._fresh_name("t")
        self._admin(f'CREATE SCHEMA "{name}"')
        dsn = with_options(self.dsn, search_path=name)
        self._created.append(dsn)
        return dsn

    def separate_database(self) -> str:
        """The DSN of a fresh, empty database of its own (``CREATE DATABASE``)."""
        name = self._fresh_name("db")
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        dsn = with_database(self.dsn, name)
        self._created.append(dsn)
        return dsn

    def drop(self, dsn: str) -> None:
        """Drop what :meth:`database` / :meth:`separate_database` made for ``dsn``."""
        schema = search_path_of(dsn)
        if schema is not None:
            self._admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        else:
            name = urlsplit(dsn).path.lstrip("/")
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if dsn in self._created:
            self._created.remove(dsn)

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """:meth:`database` for the ``with`` block, dropped after it."""
        dsn = self.database()
        try:
            yield dsn
        finally:
            self.drop(dsn)

    # -- the end -----------------------------------------------------------------

    def close(self) -> None:
        """Stop a server started here and remove its folder.

        On an existing server, drop every schema and database handed out instead.
        """
        if self._closed:
            return
        self._closed = True
        if self._folder is None:
            self._drop_all()
        if self._conn is not None:
            self._conn.close()
        if self._folder is None:
            return
        if (self._folder / "data" / "postmaster.pid").exists():
            # Already stopped by the test: the folder goes all the same.
            with suppress(PostgresClusterError):
                self.stop("immediate")
        self._remove_folder()
        if self._watchdog is not None:  # its work is done
            self._watchdog.kill()
            self._watchdog.wait()

    def _drop_all(self) -> None:
        import psycopg

        for dsn in list(self._created):
            try:
                self.drop(dsn)
            except psycopg.OperationalError:  # the server is gone: nothing to drop
                return

    def _remove_folder(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: PostgresCluster | None = None
_shared_lock = threading.Lock()


def postgres_cluster() -> PostgresCluster:
    """The process's shared server: ``ONE_STORE_TEST_POSTGRES``'s, else one started now.

    Started once per process on first use, stopped when the process exits.
    """
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = PostgresCluster(os.environ.get(ENV_DSN) or None)
        return _shared


__all__ = [
    "ENV_DSN",
    "FAST_SETTINGS",
    "PostgresCluster",
    "PostgresClusterError",
    "PostgresNotFoundError",
    "find_bindir",
    "postgres_cluster",
]
