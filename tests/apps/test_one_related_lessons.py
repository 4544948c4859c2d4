"""Tests for schema/one's vector search: ``lessons:learn`` and ``lessons:relatedLessons``."""

from __future__ import annotations

from one_store import Rejected, Store

from .helpers import make_agent, problem_of

LESSONS = [
    ("Cite sources", "Every claim in a draft links its source."),
    ("Short sentences", "Keep sentences under twenty words."),
    ("Check dates", "Verify every date and time zone before publishing."),
]


def learn(one: Store, title: str, content: str, **more: str) -> str:
    return str(
        one.action(
            "lessons:learn", {"title": title, "content": content, **more}
        ).unwrap()
    )


def titles(one: Store, text: str, **more: object) -> list[str]:
    found = one.action("lessons:relatedLessons", {"text": text, **more}).unwrap()
    return [lesson["title"] for lesson in found]


def test_learn_stores_a_64_number_embedding_that_related_lessons_ranks(one: Store):
    made = [learn(one, title, content) for title, content in LESSONS]
    lesson = one.run(lambda ctx: ctx.db.get(made[0])).unwrap()
    assert len(lesson["embedding"]) == 64
    assert titles(one, "which sources should a draft cite?")[0] == "Cite sources"
    assert titles(one, "what time zone is the date in?")[0] == "Check dates"
    found = one.action("lessons:relatedLessons", {"text": "sources", "limit": 2})
    hits = found.unwrap()
    assert len(hits) == 2
    assert "embedding" not in hits[0]
    assert hits[0]["score"] >= hits[1]["score"]


def test_related_lessons_of_one_agent_only(one: Store):
    writer = make_agent(one, name="Writer")
    critic = make_agent(one, name="Critic")
    learn(one, "Cite sources", "Every claim links its source.", agentId=writer)
    learn(
        one, "Cite sources too", "Check that every claim has a source.", agentId=critic
    )
    assert titles(one, "cite sources", agentId=critic) == ["Cite sources too"]


def test_lessons_without_an_embedding_or_deleted_are_not_found(one: Store):
    plain = one.mutation(
        "lessons:createLesson", {"title": "Cite sources", "content": "no embedding"}
    ).unwrap()
    gone = learn(one, "Sources", "Cite every source.")
    kept = learn(one, "Dates", "Check dates.")
    one.mutation("lessons:deleteLesson", {"lessonId": gone}).unwrap()
    found = one.action("lessons:relatedLessons", {"text": "cite sources"}).unwrap()
    assert [lesson["_id"] for lesson in found] == [kept]
    assert plain not in [lesson["_id"] for lesson in found]


def test_an_embedding_of_the_wrong_length_is_rejected(one: Store):
    bad = one.mutation(
        "lessons:createLesson",
        {"title": "T", "content": "C", "embedding": [0.1, 0.2, 0.3]},
    )
    assert problem_of(bad) == Rejected("A lesson's embedding has 64 numbers, got 3")
