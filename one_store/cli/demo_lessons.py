"""The demo's retrieval step: the ONE app's lessons found by vector search.

The agents learn a few lessons (``lessons:learn``, an action that embeds each
one with the app's deterministic stand-in model, 64 numbers, no download), then
``lessons:relatedLessons`` asks which lessons answer a question: a vector search
over the lessons' embeddings, best first, with each lesson's cosine score. The
lessons are learned once per file, so a second run finds the same ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from returns.result import Result
from rich.table import Table
from rich.text import Text

from ..model.errors import Problem
from ..store import Store

Ok = Callable[[Result[Any, Problem], str], Any]

LESSONS = [
    (
        "Writer",
        "Link every source",
        "Each claim in a draft links the source it comes from.",
    ),
    ("Writer", "Short sentences", "Keep sentences under twenty words."),
    (
        "Critic",
        "Check dates twice",
        "Verify every date and time zone before publishing.",
    ),
    (
        "Critic",
        "Trust primary sources",
        "Prefer primary sources over blogs when a claim needs a source.",
    ),
    ("Planner", "Three steps at most", "Break a launch into no more than three steps."),
]
QUESTION = "Which source should a claim in the draft link?"


def related_lessons_table(store: Store, agents: Mapping[str, str], ok: Ok) -> Table:
    """Learn the demo's lessons (once per file) and show those nearest :data:`QUESTION`."""
    known = {
        lesson["title"]
        for lesson in ok(store.query("lessons:listLessons", {}), "list lessons")
    }
    for agent, title, content in LESSONS:
        if title not in known:
            args = {"title": title, "content": content, "agentId": agents[agent]}
            ok(store.action("lessons:learn", args), "learn lesson")
    found = ok(
        store.action("lessons:relatedLessons", {"text": QUESTION, "limit": 3}),
        "related lessons",
    )
    names = {agent_id: name for name, agent_id in agents.items()}
    table = Table(
        title=f"lessons:relatedLessons — vector search for {QUESTION!r}",
        title_justify="left",
        header_style="bold",
    )
    for column in ("score", "lesson", "agent", "content"):
        table.add_column(column, overflow="fold")
    for lesson in found:
        cells = (
            f"{lesson['score']:.3f}",
            lesson["title"],
            names.get(lesson.get("agentId", ""), "—"),
            lesson["content"],
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table
