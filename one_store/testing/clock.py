"""Time under the test's control, and a look at scheduled jobs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.values import Document
    from ..store import Store

DEFAULT_START_MS = 1_700_000_000_000.0
"""Where :class:`FakeClock` and the ``fake_clock`` fixture start: 2023-11-14T22:13:20Z."""


class FakeClock:
    """A clock for tests: milliseconds since the epoch that move only when told.

    Pass it to ``Store.open(..., clock=FakeClock(...))``; ``store.scheduler.advance``
    moves it and runs what became due.

    Example:
        >>> clock = FakeClock(1_000.0)
        >>> clock.advance(500)
        >>> clock()
        1500.0
    """

    def __init__(self, start_ms: float = DEFAULT_START_MS) -> None:
        self._now = float(start_ms)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """The current fake time in milliseconds since the epoch."""
        return self._now

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` (never backwards)."""
        if not ms >= 0:
            raise ValueError(f"FakeClock only moves forward; got advance({ms})")
        with self._lock:
            self._now += float(ms)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"


def scheduled_jobs(
    store: Store, *, state: str | None = None, name: str | None = None
) -> list[Document]:
    """The ``_scheduled_functions`` documents, oldest first, optionally filtered.

    Args:
        store: the store.
        state: only jobs in this state (``"pending"``, ``"inProgress"``,
            ``"success"``, ``"failed"``, ``"canceled"``).
        name: only jobs of this function path (``"file:name"``).
    """
    out = []
    for job in store.scheduler.jobs():
        job_state = job["state"]
        kind = job_state.get("kind") if isinstance(job_state, dict) else None
        if state is not None and kind != state:
            continue
        if name is not None and job["name"] != name:
            continue
        out.append(job)
    return out
