"""The in-memory index of one vector index: a normalized float32 matrix, ranked exactly.

NumPy holds the vectors as one ``(capacity, dimensions)`` float32 matrix of
unit rows (each stored vector divided by its norm, in float64, then rounded),
with the filter fields' values as small integer codes beside it. A search is
one matrix-vector product and an ``argpartition``, as a hand-written NumPy
brute force would do it, then an exact pass over the few candidates:

- **Exact ranking.** A float32 product is not the same number for two equal
  rows: BLAS sums a row differently depending on where it sits in the matrix
  (measured: identical rows scoring 27.267221 and 27.267219). So the product
  only selects candidates: every row whose float32 score is within
  ``2 (d + 2) 2^-24`` of the ``limit``-th best (a bound on the product's
  rounding for unit vectors, so no row of the true top ``limit`` is missed).
  Each candidate is then scored with ``math.fsum`` over its row times the
  normalized query (float64): correctly rounded, so equal vectors get equal
  scores wherever they sit. That score is ``_score``.
- **Ties** go to the higher internal ID first (the 16 bytes inside ``_id``),
  as Convex's ``compile_search_and_truncate`` orders them (score, then
  internal ID, both descending).
- A zero vector (stored or queried) scores 0 against everything.

Updates are incremental: :meth:`VectorMatrix.apply` takes the changed rows of
the vector table (see :mod:`one_store.engine.sqlite.vectors`), frees the slot
of a replaced or deleted document and fills free slots first, so the matrix
stays near the number of indexed vectors (growth is by a quarter).

NumPy is imported here only, when a store first searches; ``import one_store``
does not load it.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..model.ids import decode_id
from .backend import Row

if TYPE_CHECKING:
    from .vectors import VectorQuery

_U = 2.0**-24  # float32's unit roundoff
_EXACT_CANDIDATES = (
    4096  # above this many near-ties, candidates are rescored in float64
)
_CHUNK = 4096


class VectorMatrix:
    """The vectors of one index, in memory, with their IDs and filter codes."""

    def __init__(self, dimensions: int, filters: int) -> None:
        import numpy as np

        self._np = np
        self.dimensions = dimensions
        self._data = np.zeros((0, dimensions), dtype=np.float32)
        self._codes = np.zeros((filters, 0), dtype=np.int32)
        self._ids: list[str] = []
        self._slot: dict[int, int] = {}  # document rowid -> slot
        self._free: list[int] = []  # slots of removed documents, reused first
        self._size = 0  # slots in use or freed (the matrix's rows [0, size))
        self._values: list[dict[bytes, int]] = [{} for _ in range(filters)]

    def __len__(self) -> int:
        """How many vectors are indexed."""
        return self._size - len(self._free)

    @property
    def nbytes(self) -> int:
        """Bytes held by the matrix and the filter codes (not the Python lists)."""
        return int(self._data.nbytes + self._codes.nbytes)

    # ------------------------------------------------------------------ updates

    def reserve(self, count: int) -> None:
        """Make room for ``count`` vectors in all (before a first, full load)."""
        if count > self._data.shape[0]:
            self._grow(count)

    def _grow(self, capacity: int) -> None:
        np = self._np
        data = np.zeros((capacity, self.dimensions), dtype=np.float32)
        data[: self._size] = self._data[: self._size]
        codes = np.zeros((self._codes.shape[0], capacity), dtype=np.int32)
        codes[:, : self._size] = self._codes[:, : self._size]
        self._data, self._codes = data, codes

    def apply(self, rows: Iterable[Row]) -> None:
        """Apply changed rows ``(doc rowid, _id, vector bytes | None, *filter keys)``."""
        iterator = iter(rows)
        while chunk := list(itertools.islice(iterator, _CHUNK)):
            added = []
            for row in chunk:
                slot = self._slot.pop(row[0], None)
                if slot is not None:
                    self._free.append(slot)
                if row[2] is not None:
                    added.append(row)
            if added:
                self._add(added)

    def _add(self, rows: list[Row]) -> None:
        np = self._np
        needed = self._size + max(0, len(rows) - len(self._free))
        if needed > self._data.shape[0]:
            self._grow(max(needed, self._data.shape[0] * 5 // 4 + 16))
        index: Any
        if not self._free:  # appended: one slice (a first load is all this)
            start = self._size
            index = slice(start, start + len(rows))
            self._size += len(rows)
            self._ids.extend(r[1] for r in rows)
            docs = [r[0] for r in rows]
            self._slot.update(zip(docs, range(start, self._size), strict=True))
        else:
            slots = []
            for row in rows:
                if self._free:
                    slot = self._free.pop()
                    self._ids[slot] = row[1]
                else:
                    slot = self._size
                    self._size += 1
                    self._ids.append(row[1])
                self._slot[row[0]] = slot
                slots.append(slot)
            index = np.asarray(slots)
        raw = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4")
        block = raw.reshape(len(rows), self.dimensions).astype(np.float64)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        norms[norms == 0.0] = 1.0  # a zero vector stays zero: it scores 0
        block /= norms[:, None]
        self._data[index] = block
        for position, values in enumerate(self._values):
            codes = [values.setdefault(r[3 + position], len(values)) for r in rows]
            self._codes[position, index] = codes

    # ------------------------------------------------------------------ search

    def top(self, query: VectorQuery) -> list[tuple[str, float]]:
        """``(_id, score)`` of the best ``query.limit`` matches, best first."""
        np = self._np
        q = np.asarray(query.vector, dtype=np.float64)
        norm = math.sqrt(math.fsum(x * x for x in query.vector))
        unit = q / norm if norm > 0.0 else q * 0.0
        unit32 = unit.astype(np.float32)
        size = self._size
        rows = self._rows(query.filters, size)
        if rows is None:  # every live slot
            scores = self._data[:size] @ unit32
            if self._free:
                scores[self._free] = -np.inf
            live = len(self)
        elif rows.size == 0:
            return []
        else:
            if rows.size * 2 < size:  # few rows: multiply only those
                scores = self._data[rows] @ unit32
            else:
                scores = (self._data[:size] @ unit32)[rows]
            live = int(rows.size)
        k = min(query.limit, live)
        if k == 0:
            return []
        count = scores.size
        if count > k:
            kth = scores[np.argpartition(scores, count - k)[count - k]]
            margin = 2.0 * (self.dimensions + 2) * _U
            picked = np.flatnonzero(scores >= kth - margin)
        else:
            picked = np.arange(count)
        slots = picked if rows is None else rows[picked]
        if rows is None and self._free:
            free = set(self._free)
            slots = np.asarray([s for s in slots.tolist() if s not in free], dtype=int)
        return self._ranked(slots, unit, k)

    def _rows(self, filters: tuple[tuple[int, bytes], ...], size: int) -> Any:
        """The slots a filter keeps (None: no filter, every live slot)."""
        if not filters:
            return None
        np = self._np
        keep = np.zeros(size, dtype=bool)
        for position, key in filters:
            code = self._values[position].get(key)
            if code is not None:
                keep |= self._codes[position, :size] == code
        if self._free:
            keep[self._free] = False
        return np.flatnonzero(keep)

    def _ranked(self, slots: Any, unit: Any, k: int) -> list[tuple[str, float]]:
        """Score ``slots`` exactly; the best ``k``, ties by internal ID, highest first."""
        picked: list[int] = slots.tolist()
        if len(picked) <= _EXACT_CANDIDATES:
            query = unit.tolist()
            scores = [
                math.fsum(map(operator.mul, row, query))
                for row in self._data[picked].tolist()
            ]
        else:
            scores = (self._data[picked].astype(self._np.float64) @ unit).tolist()
        ids = self._ids
        # The internal IDs are decoded here, for the few candidates only.
        order = sorted(
            zip(scores, picked, strict=True),
            key=lambda pair: (pair[0], _tie(ids[pair[1]])),
            reverse=True,
        )
        # float32 rounding of the rows can put a score a hair outside [-1, 1].
        return [(self._ids[slot], min(1.0, max(-1.0, s))) for s, slot in order[:k]]


def _tie(doc_id: str) -> bytes:
    """The internal ID inside ``doc_id`` (ties are broken on it, highest first)."""
    decoded = decode_id(doc_id)
    return b"" if decoded is None else decoded[1]
