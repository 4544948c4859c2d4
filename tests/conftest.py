"""Shared fixtures: a fresh in-memory store, a WAL file store, Hypothesis profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from one_store import Store, define_schema, define_table, v
from one_store.testing import FakeClock

# The reliability suite's --crash-runs option (pytest reads options only from plugins);
# the PostgreSQL server and per-test schemas of the PostgreSQL engine's tests; the
# --engine option and its ``engine`` fixture (the suite on both engines).
pytest_plugins = ["tests.reliability.options", "tests.postgres_server", "tests.engines"]

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", parent=settings.get_profile("default"))
settings.register_profile(
    "long",
    max_examples=2_000,
    stateful_step_count=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SCHEMA = define_schema(
    {
        "agents": define_table(
            {
                "name": v.string(),
                "tags": v.optional(v.array(v.string())),
                "score": v.optional(v.number()),
            }
        ).index("by_name", ["name"]),
        "notes": define_table(),
    }
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000_000.0)


@pytest.fixture
def store(engine: str, clock: FakeClock) -> Iterator[Store]:
    """A fresh store with a small schema (sqlite-utils' fresh_db), on each engine.

    SQLite: in memory; PostgreSQL: a fresh schema of the test server (tests/engines.py).
    """
    with Store.memory(SCHEMA, clock=clock, seed=0) as s:
        yield s


@pytest.fixture
def file_store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """A store in a WAL file."""
    with Store.open(tmp_path / "test.db", schema=SCHEMA, clock=clock, seed=0) as s:
        yield s
