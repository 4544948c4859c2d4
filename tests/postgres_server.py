"""A real PostgreSQL server for the tests of the PostgreSQL engine, and a schema per test.

``ONE_STORE_TEST_POSTGRES`` (a DSN) names an existing server; without it a
throwaway cluster is made for the session (``initdb`` and ``pg_ctl`` from the
installed PostgreSQL, run as the ``postgres`` user when the tests run as root),
on a free port, with its socket in its own folder, and stopped at the end.

Every test gets a connection whose ``search_path`` is a fresh schema, dropped
afterwards, so tests never see one another's tables.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

ENV = "ONE_STORE_TEST_POSTGRES"


def _bindir() -> str:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not versions:
        raise RuntimeError(
            f"PostgreSQL is not installed: install it or set {ENV} to a server's DSN"
        )
    return os.path.dirname(versions[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    # initdb refuses to run as root: run it (and the server) as "postgres".
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a server for the session (see the module docstring)."""
    existing = os.environ.get(ENV)
    if existing:
        yield existing
        return
    bindir = _bindir()
    folder = tempfile.mkdtemp(prefix="one_store-pg-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data = os.path.join(folder, "data")
    port = _free_port()
    subprocess.run(
        _as_owner([f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off"
    subprocess.run(
        _as_owner(
            [f"{bindir}/pg_ctl", "-D", data, "-o", options, "-l", f"{data}.log", "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run(
            _as_owner([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema's name, dropped after the test."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield name
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def connect(dsn: str, schema: str, **options: Any) -> Any:
    """A connection to ``dsn`` whose tables live in ``schema``."""
    import psycopg

    return psycopg.connect(dsn, options=f"-c search_path={schema}", **options)


@pytest.fixture
def pg(postgres_dsn: str, pg_schema: str) -> Iterator[Any]:
    """An autocommit connection to the test's schema."""
    with connect(postgres_dsn, pg_schema, autocommit=True) as connection:
        yield connection
