"""one_store.testing.postgres: a throwaway server, fresh schemas, stop and start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_store.testing.postgres import (
    PostgresCluster,
    PostgresClusterError,
    PostgresNotFoundError,
    find_bindir,
    search_path_of,
    with_options,
)


def tables_of(cluster: PostgresCluster, dsn: str) -> list[str]:
    with cluster.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_each_database_is_an_empty_schema_of_its_own(shared_server):
    with shared_server.fresh() as a, shared_server.fresh() as b:
        assert a != b
        with shared_server.connect(a) as conn:
            conn.execute("CREATE TABLE t (x int)")
            schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None
        assert schema[0] == search_path_of(a)
        assert tables_of(shared_server, a) == ["t"]
        assert tables_of(shared_server, b) == []


def test_drop_removes_the_schema_and_what_it_holds(shared_server):
    made = shared_server.database()
    with shared_server.connect(made) as conn:
        conn.execute("CREATE TABLE t (x int)")
    shared_server.drop(made)
    with shared_server.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s",
            [search_path_of(made)],
        ).fetchone()
    assert left == (0,)


def test_a_separate_database_is_a_database_of_its_own(shared_server):
    made = shared_server.separate_database()
    try:
        with shared_server.connect(made) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        assert row[0].startswith("one_store_db_")
        assert tables_of(shared_server, made) == []
    finally:
        shared_server.drop(made)


def test_stop_start_and_restart_keep_the_data_and_the_address(own_server):
    made = own_server.database()
    with own_server.connect(made) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (7)")
    own_server.stop()
    assert not own_server.running
    with pytest.raises(psycopg.OperationalError):
        own_server.connect(made, connect_timeout=2)
    own_server.start()
    assert own_server.running
    own_server.restart()
    with own_server.connect(made) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(7,)]
    # The kept admin connection reconnects after a restart.
    assert tables_of(own_server, own_server.database()) == []


def test_an_existing_server_is_used_and_cannot_be_stopped_by_the_test(own_server):
    existing = PostgresCluster(own_server.dsn)
    assert not existing.owned
    made = existing.database()
    assert tables_of(existing, made) == []
    with pytest.raises(PostgresClusterError, match="ONE_STORE_TEST_POSTGRES"):
        existing.stop()
    existing.close()  # drops what it made, leaves the server running
    assert own_server.running
    with own_server.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s",
            [search_path_of(made)],
        ).fetchone()
    assert left == (0,)


def test_close_stops_the_server_and_removes_its_folder():
    cluster = PostgresCluster()
    folder = Path(cluster.dsn.split("host=")[1].split("&")[0])
    assert (folder / "data" / "postmaster.pid").exists()
    cluster.close()
    assert not folder.exists()
    assert not cluster.running


def test_no_binaries_is_a_clear_error_saying_how_to_install(tmp_path):
    with pytest.raises(PostgresNotFoundError) as raised:
        find_bindir(path=str(tmp_path), debian=tmp_path / "none")
    message = str(raised.value)
    assert "apt-get install postgresql" in message
    assert "ONE_STORE_TEST_POSTGRES" in message


def test_the_binaries_are_found_here():
    assert (find_bindir() / "initdb").is_file()


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1)


@given(name=names, other=st.sampled_from(["", "-cstatement_timeout=5s"]))
def test_options_keep_what_the_dsn_had_and_name_the_schema(name, other):
    base = "postgresql://u@h:5/db?sslmode=disable"
    if other:
        base = with_options(base, statement_timeout="5s")
    made = with_options(base, search_path=name)
    assert search_path_of(made) == name
    assert "sslmode=disable" in made
    assert ("statement_timeout" in made) == bool(other)


def test_the_environment_variable_names_the_server_every_process_uses(own_server):
    code = (
        "from one_store.testing.postgres import postgres_cluster\n"
        "c = postgres_cluster()\n"
        "print(c.owned, c.dsn == c.__class__(c.dsn).dsn, c.database())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ONE_STORE_TEST_POSTGRES": own_server.dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    owned, same, made = done.stdout.split()
    assert (owned, same) == ("False", "True")
    assert made.startswith(own_server.dsn.split("?")[0])
    # The child dropped the schema it made when it exited.
    with own_server.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s",
            [search_path_of(made)],
        ).fetchone()
    assert left == (0,)


def test_a_killed_process_leaves_no_server_behind():
    # os._exit skips atexit, as a test run killed by its timeout does.
    code = (
        "import os\n"
        "from one_store.testing.postgres import PostgresCluster\n"
        "c = PostgresCluster()\n"
        "print(c.dsn.split('host=')[1].split('&')[0], flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    folder = Path(unquote(done.stdout.strip()))
    deadline = time.monotonic() + 60
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not folder.exists()  # the watchdog stopped the server and removed it
