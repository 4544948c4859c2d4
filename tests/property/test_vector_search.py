"""Vector search equals a brute-force cosine ranking, for any vectors, filters and limit.

The brute force is written from Convex's definition, not from the engine: the
cosine of each stored vector (as float32, the precision Convex indexes) with the
query, over the documents a filter keeps (any of its ``(field, value)`` pairs
equal, compared as Convex values), best first, ties by internal ID highest
first, cut at ``limit``. The engine's float32 matrix only pre-selects; the two
must agree up to float rounding: same length, every score within 1e-6 of its
brute-force cosine, nothing left out that beats the last hit, and equal scores
in internal-ID order. Small integer components make exact ties and duplicate
vectors common, so the tie rule is exercised, and writes (patches, deletes)
run between searches so the in-memory matrix is tested as it changes.
"""

from __future__ import annotations

import itertools
import math
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from one_store import UNSET, Store, action, define_schema, define_table, v
from one_store.model.ids import decode_id
from one_store.model.keys import sort_key

DIMS = 3
SCHEMA = define_schema(
    {
        "items": define_table(
            {"vec": v.optional(v.any()), "group": v.optional(v.any())}
        ).vector_index(
            "by_vec", vector_field="vec", dimensions=DIMS, filter_fields=["group"]
        )
    }
)
COMPONENT = st.one_of(
    st.integers(-3, 3).map(float),
    st.floats(-10.0, 10.0, allow_nan=False, width=32),
)
VECTOR = st.lists(COMPONENT, min_size=DIMS, max_size=DIMS)
STORED = st.one_of(
    VECTOR, VECTOR, VECTOR, st.lists(COMPONENT, min_size=1, max_size=4), st.none()
)
GROUP = st.sampled_from(["a", "b", 1, 1.0, None, UNSET])
DOC = st.fixed_dictionaries({"vec": STORED, "group": GROUP})
FILTER = st.one_of(st.none(), st.lists(GROUP, min_size=0, max_size=4))


def f32(vector: list[float]) -> list[float]:
    return [struct.unpack("f", struct.pack("f", x))[0] for x in vector]


def brute_cosine(stored: list[float], query: list[float]) -> float:
    a = f32(stored)
    na = math.sqrt(math.fsum(x * x for x in a))
    nq = math.sqrt(math.fsum(x * x for x in query))
    if na == 0.0 or nq == 0.0:
        return 0.0
    return math.fsum(x * y for x, y in zip(a, query, strict=True)) / (na * nq)


def indexed(doc: dict[str, Any]) -> bool:
    vec = doc.get("vec")
    return isinstance(vec, list) and len(vec) == DIMS


def kept(doc: dict[str, Any], groups: list[Any] | None) -> bool:
    if groups is None or not groups:
        return True
    value = doc.get("group", UNSET)
    return any(sort_key(value) == sort_key(g) for g in groups)


def run(store: Store, query: list[float], limit: int, groups: list[Any] | None):
    request: dict[str, Any] = {"vector": query, "limit": limit}
    if groups is not None:
        request["filter"] = lambda q: q.or_(*(q.eq("group", g) for g in groups))

    @action(args={})
    def search(ctx, args):
        return ctx.vector_search("items", "by_vec", request)

    return store.action(search, {}).unwrap()


def check(
    hits: list[dict[str, Any]],
    docs: dict[str, dict[str, Any]],
    query: list[float],
    limit: int,
    groups: list[Any] | None,
) -> None:
    matching = {i: d for i, d in docs.items() if indexed(d) and kept(d, groups)}
    brute = {i: brute_cosine(d["vec"], query) for i, d in matching.items()}
    returned = [h["_id"] for h in hits]
    assert len(returned) == len(set(returned)) == min(limit, len(matching))
    assert set(returned) <= set(matching)
    for hit in hits:
        assert abs(hit["_score"] - brute[hit["_id"]]) <= 1e-6
    for first, second in itertools.pairwise(hits):
        assert first["_score"] >= second["_score"]
        if first["_score"] == second["_score"]:
            assert decode_id(first["_id"])[1] > decode_id(second["_id"])[1]  # type: ignore[index]
    if hits:
        last = hits[-1]["_score"]
        for doc_id, score in brute.items():
            if doc_id not in returned:
                assert score <= last + 1e-6


def write(store: Store, method: str, *args: Any) -> Any:
    return store.run(lambda ctx: getattr(ctx.db, method)(*args)).unwrap()


@given(
    docs=st.lists(DOC, max_size=30),
    changes=st.lists(
        st.tuples(st.integers(0, 29), st.one_of(st.none(), DOC)), max_size=6
    ),
    query=VECTOR,
    limit=st.integers(1, 12),
    groups=FILTER,
)
def test_results_equal_a_brute_force_ranking(docs, changes, query, limit, groups):
    with Store.memory(SCHEMA, seed=3) as store:
        held: dict[str, dict[str, Any]] = {}
        for doc in docs:
            body = {k: x for k, x in doc.items() if x is not UNSET}
            doc_id = write(store, "insert", "items", body)
            held[doc_id] = body
        check(run(store, query, limit, groups), held, query, limit, groups)
        order = list(held)
        for position, change in changes:
            if not order:
                break
            doc_id = order[position % len(order)]
            if change is None:
                write(store, "delete", doc_id)
                del held[doc_id]
                order.remove(doc_id)
            else:
                body = {k: x for k, x in change.items() if x is not UNSET}
                write(store, "replace", doc_id, body)
                held[doc_id] = body
        check(run(store, query, limit, groups), held, query, limit, groups)
