"""Fixtures for the PostgreSQL engine's own modules: the test server and a schema per test.

The server is :func:`one_store.testing.postgres.postgres_cluster`'s (a throwaway
cluster, or ``ONE_STORE_TEST_POSTGRES``'s server). Every test gets a fresh
schema, dropped afterwards, and connections whose ``search_path`` is that
schema, so tests never see one another's tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The DSN of the test server's ``postgres`` database."""
    from one_store.testing.postgres import postgres_cluster

    return postgres_cluster().dsn


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema's name, dropped after the test."""
    from one_store.testing.postgres import postgres_cluster, search_path_of

    with postgres_cluster().fresh() as dsn:
        name = search_path_of(dsn)
        assert name is not None
        yield name


def connect(dsn: str, schema: str, **options: Any) -> Any:
    """A connection to ``dsn`` whose tables live in ``schema``."""
    import psycopg

    return psycopg.connect(dsn, options=f"-c search_path={schema}", **options)


@pytest.fixture
def pg(postgres_dsn: str, pg_schema: str) -> Iterator[Any]:
    """An autocommit connection to the test's schema."""
    with connect(postgres_dsn, pg_schema, autocommit=True) as connection:
        yield connection
