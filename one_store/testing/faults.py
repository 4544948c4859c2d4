"""Faults: make the next mutations fail as if SQLite refused them."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..model.errors import Busy, Problem, StorageError

if TYPE_CHECKING:
    from ..engine.backend import CallObserver
    from ..runtime.functions import Kind
    from ..store import Store


class Faults:
    """Problems the next mutations will hit instead of running (see :func:`inject_faults`).

    Attributes:
        hits: the function paths that got a fault, in order.
    """

    def __init__(self, store: Store, problems: Sequence[Problem]) -> None:
        self._queue = list(problems)
        self._lock = threading.Lock()
        self.hits: list[str] = []
        self._remove = store.executor.instrument(self)

    @property
    def remaining(self) -> int:
        """How many injected faults have not been hit yet."""
        return len(self._queue)

    def fault(self, path: str) -> Problem | None:
        """The next injected Problem, for the mutation ``path`` (Instrumentation)."""
        with self._lock:
            if not self._queue:
                return None
            self.hits.append(path)
            return self._queue.pop(0)

    def clear(self) -> None:
        """Remove the faults not hit yet and stop injecting."""
        with self._lock:
            self._queue.clear()
        self._remove()

    def observer(self, kind: Kind, path: str) -> CallObserver | None:
        """Faults observe nothing (Instrumentation)."""
        return None

    def __enter__(self) -> Faults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


def inject_faults(
    store: Store,
    *,
    busy: int = 0,
    storage_error: int = 0,
    problems: Sequence[Problem] = (),
) -> Faults:
    """Make the next mutations fail as if SQLite refused them, to test retry logic.

    The next ``busy`` mutations return ``Failure(Busy())`` and the ``storage_error``
    after them ``Failure(StorageError(...))``, then ``problems`` in order; each
    faulted mutation does not run at all (nothing written), exactly as when
    ``BEGIN IMMEDIATE`` times out. This covers ``store.mutation``,
    ``store.run``, an action's ``ctx.run_mutation`` and scheduled mutations (a
    scheduled job that hits a fault stays ``pending`` and runs on a later
    ``run_due``, as Convex retries internal errors). Queries are not affected.

    Use it as a context manager to remove faults not hit by the end of the block.

    Example:
        >>> from one_store import Store, mutation
        >>> @mutation
        ... def ping(ctx, args):
        ...     return "pong"
        >>> store = Store.memory()
        >>> faults = inject_faults(store, busy=1)
        >>> store.mutation(ping).failure().code, store.mutation(ping).unwrap()
        ('Busy', 'pong')
    """
    queue: list[Problem] = [Busy()] * busy
    queue += [StorageError("disk I/O error (injected by one_store.testing)")] * (
        storage_error
    )
    queue += list(problems)
    return Faults(store, queue)
