"""The PostgreSQL engine: the same tables, keys and order as the SQLite engine, shared.

:class:`~one_store.engine.postgres.storage.PgStorage` implements
:class:`~one_store.engine.backend.Backend`; psycopg is imported only when a
``postgresql://`` (or ``postgres://``) DSN is opened.
"""
