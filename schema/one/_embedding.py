"""A stand-in embedding model: deterministic, offline, 64 numbers per text.

A real deployment calls an embedding model from an action (OpenAI's
``text-embedding-3-small``, a local sentence-transformer, ...) and stores what it
returns; the vector index's ``dimensions`` then match that model. This one hashes
words into 64 buckets with a sign (the "hashing trick"), so texts that share
words point in similar directions: enough to show retrieval working, with no
download and the same numbers on every machine.
"""

import hashlib
import math
import re

DIMENSIONS = 64

_WORD = re.compile(r"[a-z0-9]+")
# Words that carry no topic: left out, so that "the" does not make texts similar.
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "should",
        "the",
        "to",
        "what",
        "when",
        "with",
    ]
)


def embed(text: str) -> list[float]:
    """The unit vector of ``text``: each word adds +1 or -1 to its hashed bucket."""
    vector = [0.0] * DIMENSIONS
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "big") % DIMENSIONS
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
