"""A kit for testing code that uses one_store, and a pytest plugin.

- :class:`FakeClock`: time that moves only when the test says
  (``store.scheduler.advance(ms)`` moves it and runs what became due).
- pytest fixtures (:mod:`one_store.testing.plugin`, registered through the ``pytest11``
  entry point, so installing one_store is enough): ``fake_clock``, ``one_store_app``, ``one_store_http`` and
  ``app_store`` (an in-memory store of your app on the fake clock, seeded, with
  every limit on).
- :func:`from_validator`: Hypothesis strategies of values that a validator accepts,
  or (``invalid=True``) rejects.
- :func:`inject_faults`: make the next mutations fail with ``Busy`` or a
  ``StorageError``, to test retry logic.
- :func:`trace`: record which documents and index ranges each call read and which
  documents it wrote.
- :func:`scheduled_jobs`: the ``_scheduled_functions`` documents, filtered.
- :func:`wait_for`: block until a watch's result satisfies a predicate (writes
  from other processes or background threads), with a timeout.
- :func:`convex_auth_keys`: ``JWT_PRIVATE_KEY`` and ``JWKS`` for an app that signs
  users in as ``@convex-dev/auth`` does (the chat app).

Example:
    >>> clock = FakeClock(1_000.0)
    >>> clock.advance(500)
    >>> clock()
    1500.0
"""

from typing import TYPE_CHECKING

from .clock import DEFAULT_START_MS, FakeClock, scheduled_jobs
from .faults import Faults, inject_faults
from .keys import convex_auth_keys

if TYPE_CHECKING:
    from .strategies import any_value, from_validator
from .traces import (
    CallTrace,
    DocumentRead,
    DocumentWrite,
    IndexRangeRead,
    Trace,
    trace,
)
from .watches import wait_for


def __getattr__(name: str) -> object:
    """``any_value`` / ``from_validator`` load Hypothesis only when first used."""
    if name in ("any_value", "from_validator"):
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_START_MS",
    "CallTrace",
    "DocumentRead",
    "DocumentWrite",
    "FakeClock",
    "Faults",
    "IndexRangeRead",
    "Trace",
    "any_value",
    "convex_auth_keys",
    "from_validator",
    "inject_faults",
    "scheduled_jobs",
    "trace",
    "wait_for",
]
