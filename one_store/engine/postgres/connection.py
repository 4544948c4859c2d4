"""Connecting to PostgreSQL, the names a schema owns, and what an error becomes.

psycopg (3) is imported here, and this module only when a ``postgresql://`` or
``postgres://`` DSN is opened: ``import one_store`` never loads it.

The connection runs in autocommit mode: the engine sends ``BEGIN`` / ``COMMIT``
itself (:mod:`one_store.engine.postgres.transactions`), as the SQLite engine
does. Names global to a database (the advisory-lock key that serialises
writers, the ``NOTIFY`` channel of the change log) are derived from
``current_schema()``, so two stores in two schemas of one database never
interfere.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from ...model.errors import Busy, Problem, StorageError

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql://", "postgres://")
# SQLSTATEs of a lock not obtained in time (lock_timeout), a deadlock, and a
# serialization failure: all retryable, so Busy.
_BUSY = {"55P03", "40P01", "40001"}
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def is_dsn(target: str) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a SQLite file."""
    return target.startswith(SCHEMES)


def redacted(dsn: str) -> str:
    """``dsn`` with its password (if any) replaced, for messages."""
    return _PASSWORD.sub(r"\1***@", dsn)


def connect(dsn: str, timeout: float) -> psycopg.Connection[tuple[object, ...]]:
    """A new autocommit connection to ``dsn`` (raises psycopg's error when it fails)."""
    import psycopg

    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=max(1, round(timeout)),
        application_name="one_store",
    )


def schema_name(connection: psycopg.Connection[tuple[object, ...]]) -> str:
    """The schema the store's tables live in (the first of ``search_path``)."""
    row = connection.execute("SELECT current_schema()").fetchone()
    if row is None or row[0] is None:
        raise LookupError(
            "no schema of the connection's search_path exists "
            "(CREATE SCHEMA it, or name an existing one in the DSN's options)"
        )
    return str(row[0])


def lock_key(schema: str) -> int:
    """The advisory-lock key (a signed 64-bit number) of the store in ``schema``."""
    digest = hashlib.sha256(b"one_store write lock\x00" + schema.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def channel(schema: str) -> str:
    """The ``NOTIFY`` channel of the store in ``schema`` (a plain identifier)."""
    return "one_store_" + hashlib.sha256(schema.encode()).hexdigest()[:24]


def classify(error: BaseException) -> Problem:
    """Map a psycopg error to the Problem a caller can act on."""
    state = getattr(getattr(error, "diag", None), "sqlstate", None)
    if state in _BUSY:
        return Busy()
    text = str(error).strip() or type(error).__name__
    return StorageError(f"PostgreSQL error: {text}")


def open_problem(dsn: str, error: BaseException) -> Problem:
    """The Problem of a failed open, naming the database (without its password)."""
    problem = classify(error)
    if not isinstance(problem, StorageError):
        return problem
    return StorageError(f"cannot open {redacted(dsn)!r}: {problem.message}")


def named(location: str, problem: Problem) -> Problem:
    """``problem`` with the database in its message (Busy's own text is enough)."""
    if not isinstance(problem, StorageError) or problem.message.startswith(
        "cannot open"
    ):
        return problem
    return StorageError(f"cannot open {location!r}: {problem.message}")


def is_error(error: BaseException) -> bool:
    """Whether ``error`` is one of psycopg's (the database failed)."""
    import psycopg

    return isinstance(error, psycopg.Error)
