"""Paired ratios with a bootstrap interval: how a target is judged.

Every repetition runs every store once, interleaved, so repetition ``i`` of
one_store and repetition ``i`` of raw sqlite3 saw the same machine. The ratio
is taken per repetition (paired), its median is the reported figure, and a
percentile bootstrap over the repetitions gives a 95% interval of that median.
A target counts as met only when the whole interval is at or below it.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RESAMPLES = 2_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Ratio:
    """The median of paired per-repetition ratios and its bootstrap interval."""

    median: float
    low: float
    high: float
    pairs: int

    def verdict(self, target: float) -> str:
        """``met`` only when the interval clears ``target``."""
        if self.high <= target:
            return "met"
        if self.low > target:
            return "**missed**"
        return "**not met** (interval straddles)"


def paired(samples: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Per-repetition ratios ``samples[i] / reference[i]`` (as many as both have)."""
    return [a / b for a, b in zip(samples, reference, strict=False) if b > 0]


def interval(ratios: Sequence[float], seed: str = "bootstrap") -> Ratio | None:
    """Median of ``ratios`` with a percentile-bootstrap 95% interval."""
    if not ratios:
        return None
    point = statistics.median(ratios)
    if len(ratios) == 1:
        return Ratio(point, point, point, 1)
    rng = random.Random(seed)
    n = len(ratios)
    medians = sorted(
        statistics.median(rng.choices(ratios, k=n)) for _ in range(RESAMPLES)
    )
    tail = (1 - CONFIDENCE) / 2
    low = medians[int(tail * RESAMPLES)]
    high = medians[min(RESAMPLES - 1, int((1 - tail) * RESAMPLES))]
    return Ratio(point, low, high, n)


def paired_ratio(
    samples: Sequence[float], reference: Sequence[float], seed: str = "bootstrap"
) -> Ratio | None:
    """:func:`interval` of the paired ratios of two stores' repetitions."""
    return interval(paired(samples, reference), seed)
