"""Waiting for a watch in tests: :func:`wait_for`.

Writes through the watched store need no waiting: when ``store.mutation``
returns, the watches it touched have re-run. Writes from another process, a
thread with its own ``Store``, or a scheduler running in the background arrive
on the watch's own time; :func:`wait_for` blocks until the watch's result
satisfies a predicate, or fails the test after ``timeout`` seconds. It never
sleeps: it wakes on each delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from returns.result import Result

from ..model.errors import Problem
from ..runtime.watch import Watch


def wait_for(
    watch: Watch,
    predicate: Callable[[Result[Any, Problem]], bool],
    timeout: float = 5.0,
) -> Result[Any, Problem]:
    """Block until ``predicate(watch.result)`` holds; return that Result.

    Args:
        watch: the watch (``store.watch(...)``).
        predicate: called with the current Result, then with each delivered one.
        timeout: seconds to wait in all.

    Raises:
        TimeoutError: the predicate did not hold within ``timeout`` seconds
            (the message shows the last Result), or the watch closed first.

    Example:
        >>> from returns.result import Success
        >>> from one_store import Store, define_schema, define_table, query, v
        >>> schema = define_schema({"notes": define_table({"text": v.string()})})
        >>> @query(args={})
        ... def count(ctx, args):
        ...     return len(ctx.db.query("notes").collect())
        >>> with Store.memory(schema) as store, store.watch(count, {}) as w:
        ...     wait_for(w, lambda r: r == Success(0), timeout=1.0)
        <Success: 0>
    """
    import time  # a deadline, not a sleep

    deadline = time.monotonic() + timeout
    updates = watch.updates(timeout=timeout)  # listening before the first look
    current = watch.result
    try:
        while not predicate(current):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                delivered = updates.wait(left)
            except TimeoutError:
                break
            if delivered is None:
                raise TimeoutError(f"the watch closed; its last result: {current!r}")
            current = delivered
        else:
            return current
    finally:
        updates.close()
    raise TimeoutError(
        f"the watch's result did not satisfy the predicate within {timeout} s; "
        f"its last result: {current!r}"
    )
