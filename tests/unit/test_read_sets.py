"""Tests for one_store.runtime.read_sets: which read sets a committed write touches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from one_store.engine.backend import Change, SearchScan
from one_store.engine.search import search_entry_matches
from one_store.runtime.read_sets import Intervals, ReadIndex, ReadSet

KEYS = st.binary(min_size=0, max_size=3) | st.sampled_from([b"\xff", b"\xff\xff\x00"])
SPANS = st.lists(
    st.tuples(st.integers(0, 9), KEYS, st.one_of(st.none(), KEYS)), max_size=30
)


@given(
    spans=SPANS, keys=st.lists(KEYS, max_size=10), dropped=st.sets(st.integers(0, 9))
)
def test_containing_finds_exactly_the_intervals_that_hold_a_key(
    spans: list[tuple[int, bytes, bytes | None]],
    keys: list[bytes],
    dropped: set[int],
) -> None:
    intervals: Intervals[int] = Intervals()
    for owner, low, high in spans:
        intervals.add(owner, low, high)
    for owner in dropped:
        intervals.discard(owner)
    for key in keys:
        found: set[int] = set()
        intervals.containing(key, found)
        expected = {
            owner
            for owner, low, high in spans
            if owner not in dropped and low <= key and (high is None or key < high)
        }
        assert found == expected


def reads(ids=(), ranges=(), searches=()) -> ReadSet:
    r = ReadSet()
    r.ids.update(ids)
    r.ranges.extend(ranges)
    r.searches.extend(searches)
    return r


def write(table="t", doc_id="d", keys=(), search=()) -> Change:
    return Change(1, table, doc_id, tuple(keys), tuple(search))


def test_a_write_touches_by_id_by_old_or_new_key_and_by_search() -> None:
    index: ReadIndex[str] = ReadIndex()
    index.add("by_id", reads(ids={"d"}))
    index.add("range", reads(ranges=[("t", "i", b"b", b"d")]))
    scan = SearchScan("t", "s", ("hello",), ((0, b"k"),))
    index.add("search", reads(searches=[scan]))
    assert index.touched([write(doc_id="d")]) == {"by_id"}
    assert index.touched([write(doc_id="x", keys=[("i", b"c", b"z")])]) == {"range"}
    assert index.touched([write(doc_id="x", keys=[("i", b"a", b"bb")])]) == {"range"}
    assert index.touched([write(doc_id="x", keys=[("i", b"a", b"d")])]) == set()
    assert index.touched([write(doc_id="x", keys=[("j", b"c", b"c")])]) == set()
    assert (
        index.touched([write(table="u", doc_id="x", keys=[("i", b"c", b"c")])]) == set()
    )
    matching = ("s", None, ("hello world", (b"k",)))
    assert index.touched([write(doc_id="x", search=[matching])]) == {"search"}
    other_filter = ("s", None, ("hello world", (b"q",)))
    assert index.touched([write(doc_id="x", search=[other_filter])]) == set()


def test_an_unreadable_entry_touches_every_reader_of_its_table() -> None:
    index: ReadIndex[str] = ReadIndex()
    index.add("range", reads(ranges=[("t", "i", b"b", b"d")]))
    index.add("elsewhere", reads(ranges=[("u", "i", b"", None)]))
    assert index.touched([Change(1, "t", "x", None, ())]) == {"range"}


def test_a_re_run_replaces_the_read_set_and_discard_forgets_it() -> None:
    index: ReadIndex[str] = ReadIndex()
    index.add("w", reads(ids={"a"}, ranges=[("t", "i", b"a", b"b")]))
    index.add("w", reads(ids={"b"}, ranges=[("t", "i", b"a", b"b")]))
    assert index.touched([write(doc_id="a")]) == set()
    assert index.touched([write(doc_id="b")]) == {"w"}
    index.add("w", reads(ranges=[("t", "i", b"x", b"y")]))
    assert index.touched([write(doc_id="z", keys=[("i", b"a", b"a")])]) == set()
    index.discard("w")
    assert len(index) == 0
    assert index.touched([write(doc_id="b", keys=[("i", b"x", b"x")])]) == set()


def test_search_entries_match_any_term_the_last_as_a_prefix_and_every_filter() -> None:
    scan = SearchScan("t", "s", ("big", "cat"), ((1, b"k"),))
    assert search_entry_matches(scan, ("a big dog", (b"z", b"k")))
    assert search_entry_matches(scan, ("catalog", (b"z", b"k")))
    assert not search_entry_matches(scan, ("bigger", (b"z", b"k")))  # not the last
    assert not search_entry_matches(scan, ("big", (b"z", b"q")))
    assert not search_entry_matches(scan, None)
    assert not search_entry_matches(SearchScan("t", "s", ()), ("big", ()))
