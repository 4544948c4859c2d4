"""Opening the store's one SQLite connection, and saying why it failed.

``readonly`` opens the file with SQLite's ``mode=ro`` URI: nothing is created,
migrated or checkpointed, and SQLite itself then never writes the file (a reader
of a WAL file may create the empty ``-wal`` / ``-shm`` companions a WAL reader
needs, as the ``sqlite3`` shell does). SQLite's own "unable to open database
file" names neither the file nor the cause; :func:`open_problem` adds both.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ...model.errors import Problem, StorageError
from .transactions import classify


def connect(path: str, timeout: float, readonly: bool) -> sqlite3.Connection:
    """The store's one connection; ``readonly`` opens the file with ``mode=ro``."""
    target, uri = path, False
    if readonly:
        # A URI keeps SQLite from ever opening the file for writing (or creating
        # it); as_uri() percent-encodes ?, # and % in the path.
        target, uri = Path(path).absolute().as_uri() + "?mode=ro", True
    return sqlite3.connect(
        target,
        timeout=timeout,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # guarded by Storage.lock
        cached_statements=512,
        uri=uri,
    )


def open_problem(path: str, error: sqlite3.Error, readonly: bool) -> Problem:
    """The Problem of a failed open: SQLite's text, the path, and why if we can tell.

    SQLite's own "unable to open database file" names neither the file nor the
    cause; the file system usually knows the cause.
    """
    problem = named(path, classify(error))
    why = _why_not_opened(Path(path), readonly) if path != ":memory:" else None
    if why is None or not isinstance(problem, StorageError):
        return problem
    return StorageError(f"{problem.message} ({why})")


def named(path: str, problem: Problem) -> Problem:
    """``problem`` with the path in its message (Busy's own text is enough)."""
    if not isinstance(problem, StorageError):
        return problem
    return StorageError(f"cannot open {path!r}: {problem.message}")


def _why_not_opened(path: Path, readonly: bool) -> str | None:
    """What the file system says about opening ``path`` (None: nothing wrong seen)."""
    folder = path.absolute().parent
    if not folder.exists():
        return f"the folder {str(folder)!r} does not exist"
    if not folder.is_dir():
        return f"{str(folder)!r} is not a folder"
    if path.is_dir():
        return "it is a folder, not a file"
    if not path.exists():
        if readonly:
            return "the file does not exist"
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"permission denied: cannot create a file in {str(folder)!r}"
        return None
    if not os.access(path, os.R_OK):
        return "permission denied: the file is not readable"
    if not readonly and not os.access(path, os.W_OK):
        return "permission denied: the file is not writable (readonly=True reads it)"
    if not readonly and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"permission denied: SQLite needs to create the -wal and -shm files "
            f"in {str(folder)!r} (readonly=True reads the file)"
        )
    return None
