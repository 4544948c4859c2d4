"""The ``--crash-runs`` pytest option of the reliability suite.

A plugin module because pytest reads ``pytest_addoption`` only from plugins and
the initial conftest files; tests/conftest.py lists it in ``pytest_plugins`` so
that ``pytest --crash-runs 1000`` works from the repository root.
"""

from __future__ import annotations

import pytest

DEFAULT_CRASH_RUNS = 50


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--crash-runs N``: how many times the crash test SIGKILLs its writer."""
    parser.addoption(
        "--crash-runs",
        type=int,
        default=DEFAULT_CRASH_RUNS,
        help="how many times the crash-safety test SIGKILLs its writer (default 50)",
    )
