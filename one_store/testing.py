"""Helpers for testing code that uses one_store: a fake clock and store fixtures."""

from __future__ import annotations

import threading


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

    def __init__(self, start_ms: float = 1_700_000_000_000.0) -> None:
        self._now = float(start_ms)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._now

    def advance(self, ms: float) -> None:
        """Move time forward by ``ms`` (never backwards)."""
        if ms < 0:
            raise ValueError(f"FakeClock only moves forward; got advance({ms})")
        with self._lock:
            self._now += float(ms)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
