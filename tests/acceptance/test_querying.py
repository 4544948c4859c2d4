"""The query layer through the public API, on the app in apps/querying (convex-test's
``queries.test.ts`` shape): index ranges, order, filters, first/unique, pagination
while messages arrive, text search, and the Failures of bad queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure

from one_store import (
    ArgsInvalid,
    InvalidCursor,
    InvalidIndexRange,
    NotUnique,
    Rejected,
    Store,
)
from one_store.testing import FakeClock

APP = Path(__file__).parent / "apps" / "querying"


@pytest.fixture
def forum() -> Iterator[Store]:
    with Store.memory(app=APP, clock=FakeClock(1_000_000.0), seed=0) as store:
        yield store


def thread(store: Store, title: str = "general") -> str:
    return str(store.mutation("messages:start", {"title": title}).unwrap())


def post(store: Store, tid: str, author: str, body: str, likes: int = 0) -> str:
    args = {"threadId": tid, "author": author, "body": body, "likes": likes}
    return str(store.mutation("messages:send", args).unwrap())


def bodies(docs: Any) -> list[str]:
    return [d["body"] for d in docs]


def test_recent_messages_newest_first_since_a_time(forum: Store) -> None:
    tid, other = thread(forum), thread(forum, "other")
    for i in range(6):
        post(forum, tid, "ann", f"m{i}")
        post(forum, other, "bob", f"x{i}")
    everything = forum.query(
        "messages:page",
        {"threadId": tid, "paginationOpts": {"numItems": 100, "cursor": None}},
    ).unwrap()["page"]
    since = everything[2]["_creationTime"]
    got = forum.query(
        "messages:recent", {"threadId": tid, "since": since, "limit": 3}
    ).unwrap()
    assert bodies(got) == ["m5", "m4", "m3"]
    got = forum.query(
        "messages:recent", {"threadId": tid, "since": since, "limit": 50}
    ).unwrap()
    assert bodies(got) == ["m5", "m4", "m3", "m2"]


def test_an_equality_prefix_then_a_range_most_liked_first(forum: Store) -> None:
    tid, other = thread(forum), thread(forum)
    for likes in [3, 10, 0, 7, 10]:
        post(forum, tid, "ann", f"{likes} likes", likes)
    post(forum, other, "bob", "elsewhere", 99)
    got = forum.query("messages:popular", {"threadId": tid, "minLikes": 5}).unwrap()
    # Equal likes: _creationTime breaks the tie (desc: the later one first).
    assert [d["likes"] for d in got] == [10, 10, 7]
    assert got[0]["_creationTime"] > got[1]["_creationTime"]


def test_filter_first_and_unique(forum: Store) -> None:
    tid = thread(forum)
    assert forum.query("messages:first_post", {"threadId": tid}).unwrap() is None
    assert (
        forum.query("messages:only_post", {"threadId": tid, "author": "ann"}).unwrap()
        is None
    )
    post(forum, tid, "ann", "hello")
    post(forum, tid, "bob", "hi")
    post(forum, tid, "bob", "again")
    assert (
        forum.query("messages:first_post", {"threadId": tid}).unwrap()["body"]
        == "hello"
    )
    assert bodies(
        forum.query("messages:by_author", {"threadId": tid, "author": "bob"}).unwrap()
    ) == ["hi", "again"]
    assert (
        forum.query("messages:only_post", {"threadId": tid, "author": "ann"}).unwrap()[
            "body"
        ]
        == "hello"
    )
    outcome = forum.query("messages:only_post", {"threadId": tid, "author": "bob"})
    assert isinstance(outcome, Failure)
    assert isinstance(outcome.failure(), NotUnique)


def test_paging_through_a_thread_while_messages_arrive(forum: Store) -> None:
    tid = thread(forum)
    ids = [post(forum, tid, "ann", f"m{i}") for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        result = forum.query(
            "messages:page",
            {"threadId": tid, "paginationOpts": {"numItems": 3, "cursor": cursor}},
        ).unwrap()
        seen += bodies(result["page"])
        pages += 1
        if result["isDone"]:
            break
        cursor = result["continueCursor"]
        if pages == 1:
            forum.mutation("messages:remove", {"messageId": ids[5]}).unwrap()
            post(forum, tid, "bob", "late")  # after the cursor: shows up later
    assert seen == ["m0", "m1", "m2", "m3", "m4", "m6", "late"]


def test_text_search_in_a_thread(forum: Store) -> None:
    tid, other = thread(forum), thread(forum)
    post(forum, tid, "ann", "The deploy failed at midnight")
    post(forum, tid, "bob", "deploy went fine")
    post(forum, tid, "bob", "lunch plans")
    post(forum, other, "ann", "deploy failed elsewhere")
    got = forum.query(
        "messages:search", {"threadId": tid, "text": "deploy fail"}
    ).unwrap()
    assert bodies(got) == ["The deploy failed at midnight", "deploy went fine"]
    got = forum.query("messages:search", {"threadId": tid, "text": "lun"}).unwrap()
    assert bodies(got) == ["lunch plans"]  # the last term matches as a prefix
    got = forum.query(
        "messages:search", {"threadId": tid, "text": "deploy", "author": "bob"}
    ).unwrap()
    assert bodies(got) == ["deploy went fine"]


def test_a_refused_mutation_leaves_nothing_to_find(forum: Store) -> None:
    tid = thread(forum)
    outcome = forum.mutation(
        "messages:send", {"threadId": tid, "author": "eve", "body": "forbidden secret"}
    )
    assert outcome.failure() == Rejected("forbidden words")
    assert (
        forum.query("messages:search", {"threadId": tid, "text": "secret"}).unwrap()
        == []
    )
    assert forum.query("messages:first_post", {"threadId": tid}).unwrap() is None


@pytest.mark.parametrize(
    ("index", "field", "named_field"),
    [
        ("by_nothing", "threadId", None),
        ("by_thread", "author", "author"),
        ("by_thread_likes", "likes", "likes"),
    ],
)
def test_bad_index_queries_fail_naming_index_and_field(
    forum: Store, index: str, field: str, named_field: str | None
) -> None:
    outcome = forum.query("messages:by_any_index", {"index": index, "field": field})
    problem = outcome.failure()
    assert isinstance(problem, InvalidIndexRange)
    assert problem.index == f"messages.{index}"
    assert problem.field == named_field


def test_bad_pagination_options_fail(forum: Store) -> None:
    tid, other = thread(forum), thread(forum)
    post(forum, tid, "ann", "a")
    post(forum, tid, "ann", "b")
    zero = forum.query(
        "messages:page",
        {"threadId": tid, "paginationOpts": {"numItems": 0, "cursor": None}},
    )
    assert isinstance(zero.failure(), ArgsInvalid)
    garbage = forum.query(
        "messages:page",
        {"threadId": tid, "paginationOpts": {"numItems": 1, "cursor": "nonsense"}},
    )
    assert isinstance(garbage.failure(), InvalidCursor)
    cursor = forum.query(
        "messages:page",
        {"threadId": tid, "paginationOpts": {"numItems": 1, "cursor": None}},
    ).unwrap()["continueCursor"]
    foreign = forum.query(
        "messages:page",
        {"threadId": other, "paginationOpts": {"numItems": 1, "cursor": cursor}},
    )
    assert isinstance(foreign.failure(), InvalidCursor)


def test_a_cursor_outlives_the_process_that_made_it(tmp_path: Path) -> None:
    path = tmp_path / "forum.db"
    with Store.open(path, app=APP, seed=0) as store:
        tid = thread(store)
        for i in range(5):
            post(store, tid, "ann", f"m{i}")
        first = store.query(
            "messages:page",
            {"threadId": tid, "paginationOpts": {"numItems": 2, "cursor": None}},
        ).unwrap()
    with Store.open(path, app=APP, seed=0) as store:
        rest = store.query(
            "messages:page",
            {
                "threadId": tid,
                "paginationOpts": {"numItems": 10, "cursor": first["continueCursor"]},
            },
        ).unwrap()
    assert bodies(first["page"]) + bodies(rest["page"]) == [
        "m0",
        "m1",
        "m2",
        "m3",
        "m4",
    ]
