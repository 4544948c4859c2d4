"""A server of the test's own for the suites that stop and start it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from one_store.testing.postgres import PostgresCluster, postgres_cluster


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresCluster]:
    """A throwaway server this module may stop, start and restart."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def shared_server() -> PostgresCluster:
    """The session's server (``ONE_STORE_TEST_POSTGRES``'s, or a throwaway one)."""
    return postgres_cluster()


@pytest.fixture
def dsn(shared_server: PostgresCluster) -> Iterator[str]:
    """A fresh schema of the session's server."""
    with shared_server.fresh() as fresh:
        yield fresh
