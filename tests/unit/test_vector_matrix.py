"""Tests for one_store.engine.vector_matrix: exact ranking over a float32 matrix."""

from __future__ import annotations

import random
import struct

import numpy as np

from one_store.engine.vector_matrix import VectorMatrix
from one_store.engine.vectors import VectorQuery
from one_store.model.ids import decode_id, encode_id


def row(rowid: int, vector: list[float], *keys: bytes) -> tuple[object, ...]:
    doc_id = encode_id(10001, rowid.to_bytes(16, "big"))
    return (rowid, doc_id, struct.pack(f"<{len(vector)}f", *vector), *keys)


def test_equal_vectors_tie_wherever_they_sit_in_the_matrix():
    # BLAS sums a row differently by its position (a float32 product of equal
    # rows differs in the last bits: measured at 768 dimensions, 13 rows), so a
    # ranking on the product alone would order these by position, not by ID.
    rng = random.Random(7)
    same = [rng.uniform(-1, 1) for _ in range(768)]
    matrix = VectorMatrix(768, 0)
    matrix.apply(row(i, same) for i in range(13))
    query = VectorQuery(tuple(rng.uniform(-1, 1) for _ in range(768)), 13, ())
    hits = matrix.top(query)
    assert len({score for _, score in hits}) == 1
    ids = [doc_id for doc_id, _ in hits]
    assert ids == sorted(ids, key=lambda i: decode_id(i)[1], reverse=True)  # type: ignore[index]


def test_removed_slots_are_reused_so_the_matrix_does_not_grow():
    matrix = VectorMatrix(4, 0)
    matrix.reserve(100)
    matrix.apply(row(i, [1.0, float(i), 0.0, 0.0]) for i in range(100))
    before = matrix.nbytes
    for round_ in range(5):
        gone = [(i, "", None) for i in range(round_ * 20, round_ * 20 + 20)]
        matrix.apply(gone)
        matrix.apply(
            row(1000 + round_ * 20 + i, [0.0, 1.0, 0.0, 0.0]) for i in range(20)
        )
    assert len(matrix) == 100
    assert matrix.nbytes == before
    assert matrix.nbytes == 100 * 4 * 4  # float32, no slack after reserve()


def test_deleted_vectors_are_never_returned():
    matrix = VectorMatrix(2, 0)
    matrix.apply([row(1, [1.0, 0.0]), row(2, [0.9, 0.1]), row(3, [0.0, 1.0])])
    matrix.apply([(1, "", None)])
    hits = matrix.top(VectorQuery((1.0, 0.0), 3, ()))
    assert [decode_id(i)[1][-1] for i, _ in hits] == [2, 3]  # type: ignore[index]


def test_a_filter_keeps_rows_whose_code_matches_any_condition():
    matrix = VectorMatrix(2, 2)
    matrix.apply(
        [
            row(1, [1.0, 0.0], b"a", b"x"),
            row(2, [0.9, 0.1], b"b", b"x"),
            row(3, [0.8, 0.2], b"b", b"y"),
        ]
    )
    top = matrix.top
    assert len(top(VectorQuery((1.0, 0.0), 5, ((0, b"b"),)))) == 2
    assert len(top(VectorQuery((1.0, 0.0), 5, ((0, b"a"), (1, b"y"))))) == 2
    assert top(VectorQuery((1.0, 0.0), 5, ((0, b"zzz"),))) == []


def test_scores_match_float64_cosine_of_the_stored_float32_vectors():
    rng = np.random.default_rng(3)
    data = rng.standard_normal((300, 16)).astype(np.float32)
    matrix = VectorMatrix(16, 0)
    matrix.apply(row(i, data[i].tolist()) for i in range(300))
    query = rng.standard_normal(16)
    hits = matrix.top(VectorQuery(tuple(query.tolist()), 20, ()))
    raw = data.astype(np.float64)
    cosines = raw @ query / (np.linalg.norm(raw, axis=1) * np.linalg.norm(query))
    best = np.argsort(-cosines)[:20]
    assert [int(decode_id(i)[1][-1] + 256 * decode_id(i)[1][-2]) for i, _ in hits] == (  # type: ignore[index]
        best.tolist()
    )
    assert np.allclose([s for _, s in hits], cosines[best], atol=1e-6)
