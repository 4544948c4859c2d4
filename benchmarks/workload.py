"""The workload every store runs: chat-message documents over 100 threads.

A document looks like what an agent chat app stores for each message (~350 bytes
of JSON)::

    {"threadId": "thread-042", "role": "assistant", "content": "<~200 chars>",
     "tags": ["t17", "t3", "t88"], "meta": {"tokens": 4711, "model": "gpt-x"}}

Generation is seeded so every store gets exactly the same documents, arguments
and query terms in the same order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]

N_THREADS = 100
ROLES = ("user", "assistant", "system", "tool")
MODELS = ("gpt-4o", "claude-3", "llama-3", "mistral")
MAX_TOKENS = 10_000
PAGE_SIZE = 100
EQ_LIMIT = 100
LATEST_LIMIT = 10
SEARCH_LIMIT = 10
WALK_DOCS = 10_000

_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "ta",
    "po",
    "se",
    "vi",
    "da",
    "fu",
    "ge",
    "ho",
    "ji",
    "ku",
    "la",
    "ma",
    "no",
    "pe",
    "qui",
    "ro",
    "su",
    "te",
    "va",
    "wo",
    "xe",
    "yu",
    "za",
    "ba",
    "ce",
    "di",
    "fo",
    "gu",
]


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


VOCABULARY = _vocabulary(random.Random(1234))


@dataclass
class Settings:
    """What one run's workload is: set once from the command line, read by every peer.

    ``search``: the table has a search index on ``content`` (an FTS5 table every
    write keeps); without it every store drops its FTS5 table and the text
    search operation. ``notes_kb``: each document also carries a ``notes``
    string of this many KB (a ``(low, high)`` range, drawn per document; the
    10-100 KB documents of the "large" workload). ``synchronous``: the SQLite
    setting every store runs with. ``cache_mib``: every store's page cache
    (one_store opens with 64 MiB, so every store gets it).
    """

    search: bool = True
    notes_kb: tuple[int, int] | None = None
    synchronous: str = "NORMAL"
    cache_mib: int = 64

    def pragmas(self) -> dict[str, str]:
        """The pragmas every SQL store sets (as peewee's ``pragmas=`` takes them)."""
        return {
            "journal_mode": "wal",
            "synchronous": self.synchronous.lower(),
            "cache_size": str(-self.cache_mib * 1024),
        }


SETTINGS = Settings()


def thread_id(i: int) -> str:
    return f"thread-{i:03d}"


def make_doc(rng: random.Random) -> Doc:
    """One chat message; ~350 bytes as JSON."""
    words: list[str] = []
    length = 0
    target = rng.randint(190, 210)
    while length < target:
        word = rng.choice(VOCABULARY)
        words.append(word)
        length += len(word) + 1
    doc: Doc = {
        "threadId": thread_id(rng.randrange(N_THREADS)),
        "role": rng.choice(ROLES),
        "content": " ".join(words),
        "tags": [f"tag{rng.randrange(100)}" for _ in range(3)],
        "meta": {"tokens": rng.randrange(MAX_TOKENS), "model": rng.choice(MODELS)},
    }
    if SETTINGS.notes_kb is not None:
        low, high = SETTINGS.notes_kb
        doc["notes"] = _notes(rng, rng.randint(low * 1024, high * 1024))
    return doc


def _notes(rng: random.Random, size: int) -> str:
    """``size`` characters of vocabulary words (a long tool output, say)."""
    # Whole runs of 64 words, picked per run: cheap to make at 100 KB.
    runs = []
    length = 0
    while length < size:
        run = " ".join(rng.choices(VOCABULARY, k=64))
        runs.append(run)
        length += len(run) + 1
    return " ".join(runs)[:size]


def make_docs(n: int, seed: int) -> list[Doc]:
    rng = random.Random(seed)
    return [make_doc(rng) for _ in range(n)]


def patch_fields(rng: random.Random) -> Doc:
    """A patch that moves a message in the second index (role, meta.tokens)."""
    return {
        "role": rng.choice(ROLES),
        "meta": {"tokens": rng.randrange(MAX_TOKENS), "model": rng.choice(MODELS)},
    }


def search_text(rng: random.Random) -> str:
    """Two vocabulary words; the last is prefix-matched by every store."""
    return f"{rng.choice(VOCABULARY)} {rng.choice(VOCABULARY)[:4]}"


@dataclass(frozen=True)
class TokenRange:
    """A `role == r and lo <= meta.tokens < hi` range holding ~100 documents."""

    role: str
    lo: int
    hi: int


def token_range(rng: random.Random, table_size: int) -> TokenRange:
    per_role = max(table_size / len(ROLES), 1.0)
    width = max(1, round(EQ_LIMIT * MAX_TOKENS / per_role))
    lo = rng.randrange(max(1, MAX_TOKENS - width))
    return TokenRange(rng.choice(ROLES), lo, lo + width)


def doc_json_size(docs: list[Doc]) -> float:
    return sum(len(json.dumps(d)) for d in docs) / max(1, len(docs))
