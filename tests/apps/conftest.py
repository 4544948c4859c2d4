"""Fixtures for the tests of the two spec apps: a fresh in-memory store per app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from one_store import Store
from one_store.testing import FakeClock

ROOT = Path(__file__).resolve().parents[2]
ONE_APP = ROOT / "schema" / "one"
CHAT_APP = ROOT / "schema" / "chat"


@pytest.fixture
def one(engine: str, clock: FakeClock) -> Iterator[Store]:
    """The ONE agent/human system (schema/one), fresh, on each engine."""
    with Store.memory(app=ONE_APP, clock=clock, seed=0) as store:
        yield store


@pytest.fixture
def chat(engine: str, clock: FakeClock) -> Iterator[Store]:
    """The agent chat app (schema/chat), fresh, on each engine."""
    with Store.memory(app=CHAT_APP, clock=clock, seed=0) as store:
        yield store
