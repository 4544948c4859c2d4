"""The protocol state of one sync socket, and the server's timestamps.

:class:`SocketState` is the part of a socket's life that needs no I/O, modelled
on Convex's ``SyncState`` (convex-backend ``crates/sync/src/state.rs``):

- ``current``: the version of the last Transition sent (``{querySet, identity,
  ts}``, ``{0, 0, 0}`` before the first one);
- the query-set and identity versions *received* (each ModifyQuerySet moves the
  query set from ``baseVersion`` to ``newVersion``; each Authenticate moves the
  identity by one), with the modifications not yet answered;
- the query IDs the client holds, so that a duplicate Add or an unknown Remove
  is refused as Convex refuses them.

A Transition takes what was received (:meth:`SocketState.take`) and ends at
those versions (:meth:`SocketState.advance`); versions never go down, and a
Transition always starts where the previous one ended. Nothing survives the
socket: a reconnecting client starts again from ``{0, 0, 0}``.

:class:`Timestamps` hands out the ``ts`` of Transitions and MutationResponses:
nanoseconds since the epoch, as Convex's, strictly increasing in the process
(``max(time_ns(), last + 1)``). A restart of ``serve`` on the same file starts
from the wall clock, which is past every ts handed out before unless the clock
went back; clients report the highest ts they saw in ``Connect``
(``maxObservedTimestamp``), and the clock never hands out a ts below it, so what
a client sees never goes backwards, also across a restart (Convex instead
refuses such a client until its own clock catches up).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs

from .sync_messages import (
    MAX_TS,
    Add,
    Authenticate,
    ModifyQuerySet,
    ProtocolError,
    QuerySetModification,
    Remove,
    StateVersion,
)


class Timestamps:
    """Strictly increasing nanosecond timestamps, never below one a client saw.

    Example:
        >>> clock = Timestamps(lambda: 5)
        >>> clock.tick(), clock.tick()
        (5, 6)
        >>> clock.observe(100); clock.tick()
        101
    """

    def __init__(self, now: Callable[[], int] = time.time_ns) -> None:
        self._now = now
        self._last = 0
        self._lock = threading.Lock()

    def tick(self) -> int:
        """A new timestamp, later than every one handed out or observed."""
        with self._lock:
            self._last = min(MAX_TS, max(self._now(), self._last + 1))
            return self._last

    def observe(self, ts: int) -> None:
        """A client saw ``ts``: every later tick is above it."""
        with self._lock:
            self._last = max(self._last, min(ts, MAX_TS))

    @property
    def last(self) -> int:
        """The latest timestamp handed out or observed (0 before any)."""
        return self._last


@attrs.frozen
class Pending:
    """What a Transition answers: the versions reached and the query-set changes."""

    query_set: int
    identity: int
    modifications: tuple[QuerySetModification, ...]


@attrs.define
class SocketState:
    """The versions and query IDs of one socket (no I/O; see the module docstring)."""

    current: StateVersion = attrs.field(factory=StateVersion)
    received_query_set: int = 0
    received_identity: int = 0
    pending: list[QuerySetModification] = attrs.field(factory=list)
    # The query IDs as the client sees them after every message received so far.
    query_ids: set[int] = attrs.field(factory=set)

    def modify(self, message: ModifyQuerySet) -> None:
        """Accept a ModifyQuerySet, or raise ProtocolError as Convex refuses it.

        Raises:
            ProtocolError: the base version is not the last version received, the
                new version is not above it, an Add repeats a query ID the client
                holds, or a Remove names one it does not hold. Nothing changes.
        """
        if message.base_version != self.received_query_set:
            raise ProtocolError(
                f"Base version {message.base_version} passed up doesn't match the "
                f"current version {self.received_query_set}"
            )
        if message.new_version <= message.base_version:
            raise ProtocolError(
                f"New version {message.new_version} must be greater than the base "
                f"version {message.base_version}"
            )
        ids = set(self.query_ids)
        for mod in message.modifications:
            if isinstance(mod, Add):
                if mod.query_id in ids:
                    raise ProtocolError(f"Duplicate query ID {mod.query_id}")
                ids.add(mod.query_id)
            else:
                if mod.query_id not in ids:
                    raise ProtocolError(
                        f"Removing a query ID that isn't in the query set: "
                        f"{mod.query_id}"
                    )
                ids.discard(mod.query_id)
        self.query_ids = ids
        self.pending.extend(message.modifications)
        self.received_query_set = message.new_version

    def authenticate(self, message: Authenticate) -> None:
        """Check an Authenticate's base version (before its token is verified).

        Raises:
            ProtocolError: ``baseVersion`` is not the number of Authenticates
                already applied on this socket.
        """
        if message.base_version != self.received_identity:
            raise ProtocolError(
                f"Base identity version {message.base_version} passed up doesn't "
                f"match the current identity version {self.received_identity}"
            )

    def identity_changed(self) -> None:
        """A verified Authenticate: the next Transition moves the identity by one."""
        self.received_identity += 1

    def take(self) -> Pending:
        """What the next Transition answers; the pending modifications are taken."""
        taken = Pending(
            self.received_query_set, self.received_identity, tuple(self.pending)
        )
        self.pending.clear()
        return taken

    def advance(self, pending: Pending, ts: int) -> tuple[StateVersion, StateVersion]:
        """``(start, end)`` of the Transition answering ``pending`` at ``ts``.

        The end's timestamp never goes below the start's.
        """
        start = self.current
        end = StateVersion(pending.query_set, pending.identity, max(ts, start.ts))
        self.current = end
        return start, end

    @property
    def idle(self) -> bool:
        """Whether the last Transition answered everything received."""
        return (
            not self.pending
            and self.current.query_set == self.received_query_set
            and self.current.identity == self.received_identity
        )


def removed_ids(mods: tuple[QuerySetModification, ...]) -> list[int]:
    """The query IDs that ``mods`` remove, in order."""
    return [m.query_id for m in mods if isinstance(m, Remove)]
