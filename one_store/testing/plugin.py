"""The pytest plugin: ``fake_clock``, ``one_store_app``, ``one_store_http``, ``app_store``.

Registered through the ``pytest11`` entry point, so installing one_store is enough.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..store import Store
from .clock import DEFAULT_START_MS, FakeClock

if TYPE_CHECKING:
    import httpx


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``one_store_app`` ini option: the app folder ``app_store`` loads."""
    parser.addini(
        "one_store_app",
        "app folder (relative to the rootdir) for the one_store app_store fixture",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``one_store_app`` marker."""
    config.addinivalue_line(
        "markers",
        "one_store_app(path): the app folder the app_store fixture loads for this test",
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` at 2023-11-14T22:13:20Z that moves only when told."""
    return FakeClock(DEFAULT_START_MS)


@pytest.fixture
def one_store_app(request: pytest.FixtureRequest) -> str | None:
    """The app folder ``app_store`` loads: the ``one_store_app`` marker, else the ini option.

    A relative path is taken from pytest's rootdir. Override this fixture in a
    ``conftest.py`` to choose the app in code.
    """
    marker = request.node.get_closest_marker("one_store_app")
    chosen = marker.args[0] if marker is not None else None
    if chosen is None:
        chosen = str(request.config.getini("one_store_app") or "") or None
    if chosen is None:
        return None
    path = Path(os.fspath(chosen))
    if not path.is_absolute():
        path = Path(request.config.rootpath) / path
    return str(path)


@pytest.fixture
def one_store_http() -> httpx.Client | None:
    """The ``httpx.Client`` actions get as ``ctx.http`` in ``app_store`` (None: a real one).

    Override it to answer outbound HTTP in tests, e.g. with
    ``httpx.Client(transport=httpx.MockTransport(handler))``.
    """
    return None


@pytest.fixture
def app_store(
    one_store_app: str | None,
    fake_clock: FakeClock,
    one_store_http: httpx.Client | None,
) -> Iterator[Store]:
    """An in-memory store of the app, on ``fake_clock``, seeded (``seed=0``).

    Limits are enforced exactly as in production. Without an app (no marker,
    no ini option) it is an empty store without a schema.
    """
    with Store.memory(
        app=one_store_app, clock=fake_clock, seed=0, http=one_store_http
    ) as store:
        yield store
