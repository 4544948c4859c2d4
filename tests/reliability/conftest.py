"""Options, Hypothesis profiles and helpers of the reliability suite.

``--crash-runs N`` (defined in ``options.py``) sets how many times the crash test
kills its child (50 by default; 1000 for the long run). ``HYPOTHESIS_PROFILE`` picks ``default``/``ci``
(fast, for every test run) or ``long``; the profiles themselves are registered in
tests/conftest.py, and the tests here size themselves from the loaded one.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability.options import DEFAULT_CRASH_RUNS


def long_run() -> bool:
    """Whether the long Hypothesis profile is selected (``HYPOTHESIS_PROFILE=long``)."""
    return os.environ.get("HYPOTHESIS_PROFILE", "default") == "long"


@pytest.fixture
def crash_runs(request: pytest.FixtureRequest) -> int:
    """How many times the crash test kills its child (``--crash-runs``)."""
    runs = request.config.getoption("--crash-runs", default=DEFAULT_CRASH_RUNS)
    return int(runs)
