"""Properties of file storage that hold for every input.

- Whatever bytes are stored, in whatever pieces, ``get`` and a streamed ``open``
  give them back, and ``_storage`` holds their size and base64 SHA-256 (Convex's
  metadata).
- A failed mutation that deleted any subset of the files leaves every file as it
  was; a committed one removes exactly that subset, rows and bodies.
- ``Range: bytes=a-b`` selects what RFC 9110 says: ``data[a:b+1]`` with the end
  clamped, the last N bytes for ``-N``, and nothing (416) from a start past the end.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure

from one_store import ConvexError, Store, mutation, v
from one_store.server.files import byte_range


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    with Store.memory() as s:
        yield s


@settings(max_examples=60, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=3000), max_size=8),
    content_type=st.none() | st.sampled_from(["text/plain", "image/png", "a/b; q=1"]),
)
def test_stored_bytes_come_back_with_their_metadata(store, pieces, content_type):
    data = b"".join(pieces)
    sid = store.files.store(iter(pieces), content_type).unwrap()
    assert store.files.get(sid).unwrap() == data
    with store.files.open(sid).unwrap() as body:
        assert body.read() == data
    meta = store.files.metadata(sid).unwrap()
    assert meta is not None
    assert meta["size"] == float(len(data))
    assert meta["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert meta.get("contentType") == content_type
    store.files.delete(sid).unwrap()


@mutation(args={"ids": v.array(v.string()), "fail": v.boolean()})
def delete_some(ctx, args):
    for sid in args["ids"]:
        ctx.storage.delete(sid)
    if args["fail"]:
        raise ConvexError("no")


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 5),
    chosen=st.sets(st.integers(0, 4)),
    fail=st.booleans(),
)
def test_deletes_in_a_mutation_are_all_or_nothing(store, count, chosen, fail):
    ids = [store.files.store(f"file {i}".encode()).unwrap() for i in range(count)]
    doomed = [ids[i] for i in sorted(chosen) if i < count]
    result = store.mutation(delete_some, {"ids": doomed, "fail": fail})
    assert isinstance(result, Failure) == fail
    gone = set() if fail else set(doomed)
    for i, sid in enumerate(ids):
        expected = None if sid in gone else f"file {i}".encode()
        assert store.files.get(sid).unwrap() == expected
    assert set(store.storage.blobs.names()) == set(ids) - gone
    for sid in set(ids) - gone:
        store.files.delete(sid).unwrap()


@given(size=st.integers(0, 3000), a=st.integers(0, 4000), b=st.integers(0, 4000))
def test_a_single_range_is_the_rfc_slice(size, a, b):
    got = byte_range(f"bytes={a}-{b}", size)
    if size == 0:
        assert got is None  # an empty file is sent whole (200), as Convex
    elif a >= size or a > b:
        assert got == "unsatisfiable"
    else:
        assert got == (a, min(b, size - 1))


@given(size=st.integers(1, 3000), n=st.integers(0, 4000), a=st.integers(0, 4000))
def test_open_and_suffix_ranges(size, n, a):
    assert byte_range(f"bytes=-{n}", size) == (
        (max(size - n, 0), size - 1) if n else "unsatisfiable"
    )
    assert byte_range(f"bytes={a}-", size) == (
        (a, size - 1) if a < size else "unsatisfiable"
    )
    assert byte_range(f"bytes={a}-1,2-3", size) == "multi"
    assert byte_range(f"items={a}-", size) is None
