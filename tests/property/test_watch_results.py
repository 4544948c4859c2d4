"""A watch's result always equals running its query afresh, whatever the writes.

Hypothesis draws runs of inserts, patches (moving documents between index
ranges, editing searched text and filtered fields) and deletes; after every
write each open watch, on each kind of read (an index range, ``take(2)``,
``first()`` in descending order, a full-table scan, a filter, a text search, a
page, a document by ID), must hold exactly what ``store.query`` returns now. A
precise read set that missed a write would show here as a stale result.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from one_store import Store
from tests.unit.test_watch import (
    SCHEMA,
    by_id,
    everything,
    first_n,
    in_thread,
    long_ones,
    newest,
    page_of_two,
    search,
)

THREADS = st.sampled_from(["a", "b", "c"])
BODIES = st.sampled_from(["hello", "hello world", "help", "bye", "goodbye hello"])
FIELDS = st.fixed_dictionaries(
    {}, optional={"thread": THREADS, "body": BODIES, "n": st.integers(0, 1)}
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), THREADS, BODIES, st.integers(0, 1)),
        st.tuples(st.just("patch"), st.integers(0, 20), FIELDS),
        st.tuples(st.just("delete"), st.integers(0, 20)),
    ),
    max_size=25,
)

WATCHED: list[tuple[Any, dict[str, Any]]] = [
    (in_thread, {"thread": "a"}),
    (first_n, {"thread": "a", "n": 2}),
    (newest, {"thread": "b"}),
    (everything, {}),
    (long_ones, {"thread": "a"}),
    (search, {"text": "hel", "thread": "a"}),
    (page_of_two, {"thread": "c"}),
]


def insert(store: Store, thread: str, body: str, n: int = 0) -> str:
    doc = {"thread": thread, "body": body, "n": n}
    return str(store.run(lambda ctx: ctx.db.insert("msgs", doc)).unwrap())


def apply(store: Store, ids: list[str], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "insert":
        _, thread, body, n = op
        ids.append(insert(store, thread, body, n))
    elif ids:
        doc_id = ids[op[1] % len(ids)]
        if kind == "patch":
            store.run(lambda ctx: ctx.db.patch(doc_id, op[2])).unwrap()
        else:
            store.run(lambda ctx: ctx.db.delete(doc_id)).unwrap()
            ids.remove(doc_id)


@given(seed=st.lists(st.tuples(THREADS, BODIES), min_size=1, max_size=6), ops=OPS)
def test_every_watch_equals_a_fresh_run_after_every_write(
    seed: list[tuple[str, str]], ops: list[tuple[Any, ...]]
) -> None:
    with Store.memory(SCHEMA) as store:
        ids = [insert(store, thread, body) for thread, body in seed]
        watches = [(fn, args, store.watch(fn, args)) for fn, args in WATCHED]
        watches.append((by_id, {"id": ids[0]}, store.watch(by_id, {"id": ids[0]})))
        for op in ops:
            apply(store, ids, op)
            for fn, args, w in watches:
                assert w.result == store.query(fn, args), (fn, args, op)
