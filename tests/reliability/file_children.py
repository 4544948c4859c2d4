"""Child process of the file-storage crash tests (run as a script, never collected).

Usage::

    python file_children.py DB STEP

Opens ``DB`` and dies by SIGKILL at ``STEP`` of storing or deleting a file:

- ``mid-write``: while the body is being written (a ``.part`` file);
- ``store-before-commit``: body sealed under its name, ``_storage`` row not committed;
- ``store-after-commit``: row committed, body not yet released;
- ``delete-before-commit``: row deleted in the open transaction;
- ``delete-after-commit``: delete committed, body not yet removed;
- ``hold``: an upload begun and left open; prints ``ready`` and waits to be killed.

The kills at commit points come through the Instrumentation protocol (an
observer of the file-storage write), the mid-write one from the data being
stored: nothing in the library knows about this test.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from one_store import Store


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Killer:
    """An observer that dies at one event of one call."""

    def __init__(self, on_write: bool) -> None:
        self.on_write = on_write

    def document_read(self, doc: object) -> None:
        return None

    def range_read(self, *args: object) -> Callable[[str], None] | None:
        return None

    def scanned(self, *args: object) -> None:
        return None

    def searched(self, scan: object) -> None:
        return None

    def document_written(self, op: str, table: str, doc_id: str) -> None:
        if self.on_write:
            die()

    def finished(self, committed: bool) -> None:
        if committed and not self.on_write:
            die()


class KillAt:
    """Instrumentation: an observer that kills for the file-storage write ``path``."""

    def __init__(self, path: str, on_write: bool) -> None:
        self.path = path
        self.on_write = on_write

    def fault(self, path: str) -> None:
        return None

    def observer(self, kind: str, path: str) -> Killer | None:
        return Killer(self.on_write) if path == self.path else None


def pieces() -> Iterator[bytes]:
    yield b"a" * 100_000
    die()
    yield b"never"


def main(db: str, step: str) -> None:
    store = Store.open(db)
    victim = os.environ.get("VICTIM", "")
    match step:
        case "mid-write":
            store.files.store(pieces())
        case "store-before-commit" | "store-after-commit":
            store.executor.instrument(KillAt("_storage:store", "before" in step))
            store.files.store(b"x" * 100_000, "text/plain")
        case "delete-before-commit" | "delete-after-commit":
            store.executor.instrument(KillAt("_storage:delete", "before" in step))
            store.files.delete(victim)
        case "hold":
            upload = store.files.begin("text/plain")
            upload.write(b"y" * 1000)
            print("ready", flush=True)
            time.sleep(600)
    raise SystemExit(f"step {step} did not die")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
