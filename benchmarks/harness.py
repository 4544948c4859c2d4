"""Timing machinery: interleaved repetitions, calibrated slices, GC off inside.

Every operation is measured the same way for every store:

1. Arguments are generated up front from a seed shared by all stores (same
   documents, same thread IDs, same positions in the key list), so the timed
   loop only calls the store.
2. A calibration call per store picks how many calls fill one time slice
   (slow stores get fewer calls, never fewer than one).
3. One untimed warm-up slice per store (caches, prepared statements, the
   allocator's pools: a whole slice, not one call).
4. For each repetition the stores take turns (the order rotates every
   repetition) so a drift in machine speed lands on all of them alike; a
   store's ratio to raw sqlite3 is taken per repetition (paired) and reported
   with a bootstrap interval (``benchmarks/stats.py``).
5. Inside a slice the garbage collector is disabled (unless ``TIMING.gc``: the
   ``--gc`` run); long-lived data is frozen (``gc.freeze``) once after loading,
   so the collection between slices is cheap and no full collection lands
   inside one store's slice.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.peers.base import Peer
from benchmarks.workload import (
    N_THREADS,
    SETTINGS,
    WALK_DOCS,
    make_docs,
    patch_fields,
    search_text,
    thread_id,
    token_range,
)

RAW = "raw sqlite3"


@dataclass
class Timing:
    """How slices are timed; ``gc=True`` leaves the garbage collector on (``--gc``)."""

    gc: bool = False


TIMING = Timing()


@dataclass(frozen=True)
class Sizes:
    """How big and how long: one profile per command-line mode."""

    main: int  # documents in the table the operations run on
    reps: int  # interleaved repetitions per operation
    slice_s: float  # target seconds per (store, repetition) slice
    max_iters: int  # cap on calls per slice
    bulk: int  # documents per bulk-insert repetition
    bulk_reps: int
    scale: tuple[int, ...]  # table sizes for the scale section
    open_reps: int


PROFILES = {
    "default": Sizes(
        main=100_000,
        reps=7,
        slice_s=0.15,
        max_iters=2_000,
        bulk=100_000,
        bulk_reps=3,
        scale=(10_000, 100_000),
        open_reps=7,
    ),
    "quick": Sizes(
        main=10_000,
        reps=3,
        slice_s=0.04,
        max_iters=500,
        bulk=10_000,
        bulk_reps=2,
        scale=(10_000, 20_000),
        open_reps=3,
    ),
    "smoke": Sizes(
        main=400,
        reps=2,
        slice_s=0.002,
        max_iters=20,
        bulk=300,
        bulk_reps=1,
        scale=(200, 400),
        open_reps=1,
    ),
}


@dataclass
class Measurement:
    """Per-repetition cost of one operation on one store (µs per op)."""

    op: str
    store: str
    samples: list[float] = field(default_factory=list)
    iters: int = 0
    na: str | None = None  # why the store cannot do it comparably
    error: str | None = None  # the store failed: the exception, shortened

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass
class StoreState:
    """A loaded store plus the keys the operations draw from."""

    peer: Peer
    keys: list[Any]
    inserted: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Op:
    """An operation: how to make its arguments and how to call a store.

    ``make(rng, n, table_size)`` returns store-independent arguments;
    ``bind(state, args)`` turns them into this store's arguments (e.g. a key
    index into the store's own key); ``call(peer, arg)`` is the timed call.
    """

    key: str
    label: str
    make: Callable[[random.Random, int, int], list[Any]]
    call: Callable[[Peer, Any], Any]
    bind: Callable[[StoreState, list[Any]], list[Any]] = lambda _s, a: a
    target: float | None = None


def _indices(rng: random.Random, n: int, _size: int) -> list[Any]:
    return [rng.random() for _ in range(n)]


def _pick(state: StoreState, args: list[Any]) -> list[Any]:
    keys = state.keys
    return [keys[int(x * len(keys))] for x in args]


def _pick_with_patch(state: StoreState, args: list[Any]) -> list[Any]:
    keys = state.keys
    return [(keys[int(x * len(keys))], f) for x, f in args]


def _threads(rng: random.Random, n: int, _size: int) -> list[Any]:
    return [thread_id(rng.randrange(N_THREADS)) for _ in range(n)]


def _pop_inserted(state: StoreState, args: list[Any]) -> list[Any]:
    taken = state.inserted[: len(args)]
    del state.inserted[: len(args)]
    return taken


def _record_insert(peer: Peer, doc: Any) -> Any:
    return peer.insert(doc)


OPS: tuple[Op, ...] = (
    Op(
        "insert",
        "insert (validated mutation)",
        lambda rng, n, _s: make_docs(n, rng.randrange(1 << 30)),
        _record_insert,
        target=1.25,
    ),
    Op(
        "patch",
        "patch (read-modify-write)",
        lambda rng, n, _s: [(rng.random(), patch_fields(rng)) for _ in range(n)],
        lambda p, a: p.patch(*a),
        _pick_with_patch,
        target=1.3,
    ),
    Op(
        "delete",
        "delete",
        lambda _rng, n, _s: [None] * n,
        lambda p, k: p.delete(k),
        _pop_inserted,
        target=1.3,
    ),
    Op("get", "get by id", _indices, lambda p, k: p.get(k), _pick, target=1.5),
    Op(
        "by_thread",
        "indexed eq query, 100 docs",
        _threads,
        lambda p, t: p.by_thread(t),
        target=1.3,
    ),
    Op(
        "range",
        "range query (~100 docs)",
        lambda rng, n, size: [token_range(rng, size) for _ in range(n)],
        lambda p, r: p.token_range(r),
        target=1.3,
    ),
    Op(
        "latest",
        "desc take(10)",
        _threads,
        lambda p, t: p.latest(t),
        target=1.3,
    ),
    Op(
        "walk",
        f"paginate walk of {WALK_DOCS:,} docs (pages of 100)",
        lambda _rng, n, size: [min(WALK_DOCS, size)] * n,
        lambda p, total: p.walk(total),
        target=1.3,
    ),
    Op(
        "search",
        "text search, top 10 (FTS5)",
        lambda rng, n, _s: [search_text(rng) for _ in range(n)],
        lambda p, text: p.search(text),
    ),
    Op(
        "action3",
        "action running 3 mutations",
        lambda rng, n, _s: [
            (d, patch_fields(rng)) for d in make_docs(n, rng.randrange(1 << 30))
        ],
        lambda p, a: p.action3(*a),
        target=1.3,
    ),
)

Progress = Callable[[str], None]


def timed(
    call: Callable[[Peer, Any], Any], peer: Peer, args: Sequence[Any]
) -> tuple[float, list[Any]]:
    """Run ``call`` over ``args`` with the GC off; return (µs per call, results).

    With ``TIMING.gc`` the collector stays on and collects when it would.
    """
    if TIMING.gc:
        start = time.perf_counter_ns()
        out = [call(peer, a) for a in args]
        elapsed = time.perf_counter_ns() - start
        return elapsed / 1000 / max(1, len(args)), out
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        out = [call(peer, a) for a in args]
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return elapsed / 1000 / max(1, len(args)), out


def rotated(names: Sequence[str], rep: int) -> list[str]:
    k = rep % len(names)
    return [*names[k:], *names[:k]]


def _calibrate(op: Op, state: StoreState, sizes: Sizes, table_size: int) -> int:
    rng = random.Random(f"calibrate-{op.key}")
    if op.key == "delete":
        # Deletes draw from the documents the insert operation added.
        available = max(0, len(state.inserted) - 2)
        probe = op.bind(state, [None])
        per_call, _ = timed(op.call, state.peer, probe)
        want = max(1, int(sizes.slice_s * 1e6 / max(per_call, 1e-3)))
        # A slice per repetition and one for the warm-up.
        return max(1, min(want, sizes.max_iters, available // (sizes.reps + 1)))
    warm = op.bind(state, op.make(rng, 1, table_size))
    per_call, out = timed(op.call, state.peer, warm)  # warm-up: caches, statements
    if op.key == "insert":
        state.inserted.extend(out)
    probe = op.bind(state, op.make(rng, 1, table_size))
    per_call, out = timed(op.call, state.peer, probe)
    if op.key == "insert":
        state.inserted.extend(out)
    want = int(sizes.slice_s * 1e6 / max(per_call, 1e-3))
    return max(1, min(want, sizes.max_iters))


def measure_ops(
    states: dict[str, StoreState],
    ops: Sequence[Op],
    sizes: Sizes,
    table_size: int,
    progress: Progress,
) -> list[Measurement]:
    """Measure every op on every store, repetitions interleaved across stores."""
    results: list[Measurement] = []
    names = list(states)
    for op in ops:
        iters: dict[str, int] = {}
        found: dict[str, Measurement] = {}
        for name in names:
            m = Measurement(op.key, name)
            found[name] = m
            reason = states[name].peer.not_comparable.get(op.key)
            if reason is not None:
                m.na = reason
                continue
            try:
                iters[name] = _calibrate(op, states[name], sizes, table_size)
            except Exception as exc:  # one broken store must not sink the run
                m.error = _error_text(exc)
                continue
            m.iters = iters[name]
        warm = op.make(
            random.Random(f"warm-{op.key}"), max(iters.values(), default=1), table_size
        )
        for name in names:  # one untimed slice each: caches, statements, allocator
            if name not in iters or found[name].error is not None:
                continue
            state = states[name]
            try:
                _, out = timed(op.call, state.peer, op.bind(state, warm[: iters[name]]))
            except Exception as exc:
                found[name].error = _error_text(exc)
                continue
            if op.key == "insert":
                state.inserted.extend(out)
        for rep in range(sizes.reps):
            rng = random.Random(f"{op.key}-{rep}")
            args = op.make(rng, max(iters.values(), default=1), table_size)
            for name in rotated(names, rep):
                if name not in iters or found[name].error is not None:
                    continue
                state = states[name]
                bound = op.bind(state, args[: iters[name]])
                try:
                    per_call, out = timed(op.call, state.peer, bound)
                except Exception as exc:
                    found[name].error = _error_text(exc)
                    found[name].samples.clear()
                    continue
                if op.key == "insert":
                    state.inserted.extend(out)
                found[name].samples.append(per_call)
        progress(_summary(op.label, found))
        results.extend(found.values())
    return results


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


def _summary(label: str, found: dict[str, Measurement]) -> str:
    parts = [
        f"{n}={m.median:,.1f}µs"
        if m.samples
        else f"{n}=ERROR ({m.error})"
        if m.error
        else f"{n}=n/a"
        for n, m in found.items()
    ]
    return f"  {label}: " + ", ".join(parts)


def measure_bulk(
    factories: dict[str, Callable[[int, int], Peer]],
    sizes: Sizes,
    progress: Progress,
) -> list[Measurement]:
    """Bulk insert ``sizes.bulk`` docs into a fresh store; µs per document.

    ``factories[name](rep, turn)`` creates a fresh empty store (untimed).
    """
    docs = make_docs(sizes.bulk, seed=777)
    gc.freeze()
    names = list(factories)
    found = {n: Measurement("bulk", n, iters=sizes.bulk) for n in names}
    for rep in range(sizes.bulk_reps):
        for turn, name in enumerate(rotated(names, rep)):
            if found[name].error is not None:
                continue
            try:
                peer = factories[name](rep, turn)
                try:
                    per_call, _ = timed(lambda p, d: p.bulk_insert(d), peer, [docs])
                finally:
                    peer.close()
            except Exception as exc:  # one broken store must not sink the run
                found[name].error = _error_text(exc)
                found[name].samples.clear()
                continue
            found[name].samples.append(per_call / len(docs))
    progress(_summary("bulk insert (µs/doc)", found))
    return list(found.values())


def measure_open(
    paths: dict[str, tuple[type[Peer], Any, Any]],
    sizes: Sizes,
    progress: Progress,
) -> list[Measurement]:
    """Cold start of a 10-table file: open, read one document, close.

    ``paths[name]`` is ``(peer class, file path, key)``; ``key`` may be an
    exception when preparing the file failed.
    """
    names = list(paths)
    found = {n: Measurement("open", n) for n in names}
    iters: dict[str, int] = {}
    for name, (cls, path, key) in paths.items():
        try:
            if isinstance(key, Exception):
                raise key
            if cls.open_ten(path, key) is None:
                raise RuntimeError("open_ten did not find its document")
            per_call, _ = timed(_open_ten(cls), _NO_PEER, [(path, key)])
        except Exception as exc:  # one broken store must not sink the run
            found[name].error = _error_text(exc)
            continue
        iters[name] = max(1, min(int(sizes.slice_s * 1e6 / per_call), sizes.max_iters))
        found[name].iters = iters[name]
    for rep in range(sizes.open_reps):
        for name in rotated(names, rep):
            if name not in iters:
                continue
            cls, path, key = paths[name]
            args = [(path, key)] * iters[name]
            per_call, _ = timed(_open_ten(cls), _NO_PEER, args)
            found[name].samples.append(per_call)
    progress(_summary("open store (10 tables)", found))
    return list(found.values())


def _open_ten(cls: type[Peer]) -> Callable[[Peer, Any], Any]:
    """The timed call of a cold start: ``cls.open_ten(path, key)``."""
    return lambda _peer, args: cls.open_ten(*args)


class _NoPeer:
    """Placeholder first argument for timed calls that open their own store."""


_NO_PEER: Any = _NoPeer()


def _fields(doc: Any) -> Any:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in ("_id", "_creationTime")}


def _answers(peer: Peer, keys: list[Any], table_size: int) -> dict[str, Any]:
    rng = random.Random("verify")
    threads = [thread_id(rng.randrange(N_THREADS)) for _ in range(3)]
    ranges = [token_range(rng, table_size) for _ in range(3)]
    picks = [rng.random() for _ in range(5)]
    texts = [search_text(rng) for _ in range(3)]
    na = dict(peer.not_comparable)
    if not SETTINGS.search:
        na["search"] = "no search index in this workload"
    questions: dict[str, Callable[[], Any]] = {
        "get": lambda: [_fields(peer.get(keys[int(x * len(keys))])) for x in picks],
        "by_thread": lambda: [[_fields(d) for d in peer.by_thread(t)] for t in threads],
        "latest": lambda: [[_fields(d) for d in peer.latest(t)] for t in threads],
        "range": lambda: [[_fields(d) for d in peer.token_range(r)] for r in ranges],
        "walk": lambda: peer.walk(min(WALK_DOCS, table_size)),
        "search": lambda: [[d["content"] for d in peer.search(t)] for t in texts],
    }
    out: dict[str, Any] = {}
    for op, ask in questions.items():
        if op in na:
            continue
        try:
            out[op] = ask()
        except Exception as exc:  # reported, not raised: the run goes on
            out[op] = _Failed(_error_text(exc))
    return out


@dataclass(frozen=True)
class _Failed:
    error: str


def verify(states: dict[str, StoreState], table_size: int) -> list[str]:
    """Check that every store answers the same questions with the same documents.

    Returns notes: a **MISMATCH** note when a store returns different documents
    than raw sqlite3 for an exact operation (its numbers for that operation are
    then not comparable), and for relevance-ranked search how many of the top-10
    hits are shared (ranking ties may differ).
    """
    answers = {n: _answers(s.peer, s.keys, table_size) for n, s in states.items()}
    reference = answers[RAW]
    notes: list[str] = []
    for name, a in answers.items():
        for op, value in a.items():
            ref: Any = reference.get(op)
            if isinstance(value, _Failed):
                notes.append(f"**MISMATCH** {op}, {name}: failed ({value.error})")
            elif isinstance(ref, _Failed) or name == RAW:
                continue
            elif op == "search":
                if [len(x) for x in value] != [len(y) for y in ref]:
                    notes.append(
                        f"**MISMATCH** text search, {name}: a different number of hits"
                    )
                    continue
                same = sum(
                    len(set(x) & set(y)) for x, y in zip(value, ref, strict=True)
                )
                total = sum(len(y) for y in ref)
                if same != total:
                    notes.append(
                        f"text search, {name}: {same} of {total} top-10 hits shared "
                        "with raw FTS5 (ranking ties or scoring differ)"
                    )
            elif value != ref:
                notes.append(
                    f"**MISMATCH** {op}, {name}: different documents than raw sqlite3"
                )
    return notes
