"""What ``import one_store`` loads: not the HTTP server, the CLI stack or httpx.

Each check runs a fresh interpreter (``python -X importtime``), because the test
process itself has long since imported everything. The import time is measured,
not tested (docs/performance.md, "Import time").
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The server (starlette, uvicorn), the CLI (typer, rich), the actions' HTTP client
# (httpx), sqlite-utils (~75 ms, for DDL and introspection only) and the `data`
# extra's DataFrame libraries (loaded by the first conversion).
HEAVY = (
    *("starlette", "uvicorn", "typer", "rich", "httpx", "sqlite_utils"),
    *("pyarrow", "pandas", "polars", "IPython"),
)


def imported_by(code: str) -> set[str]:
    """Top-level names of the modules loaded by ``code`` in a fresh interpreter."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    shown = "import sys; print('\\n'.join(sys.modules))"
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"{code}\n{shown}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    from_sys_modules = set(ran.stdout.split())
    # -X importtime lists every module it imported on stderr: a second witness.
    from_importtime = {
        line.rsplit("|", 1)[1].strip()
        for line in ran.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return {name.split(".")[0] for name in from_sys_modules | from_importtime}


def test_import_one_store_loads_no_server_cli_or_http_client():
    loaded = imported_by("import one_store")
    assert "one_store" in loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_the_json_parser_loads_when_a_store_opens_not_at_import():
    # pydantic-core's import (~20 ms) is paid by Store.open, so that the first
    # read of a store costs what every later one does (docs/performance.md).
    assert "pydantic_core" not in imported_by("import one_store")
    opened = imported_by(
        "from one_store import Store, define_schema\n"
        "Store.memory(define_schema({})).close()\n"
    )
    assert "pydantic_core" in opened


def test_running_functions_loads_httpx_only_when_an_action_uses_ctx_http():
    store = (
        "from one_store import Store, action, define_schema, define_table, v\n"
        "store = Store.memory(define_schema({'t': define_table({'n': v.int64()})}))\n"
        "store.run(lambda ctx: ctx.db.insert('t', {'n': 1})).unwrap()\n"
        "@action\n"
        "def quiet(ctx, args):\n"
        "    return 1\n"
        "@action\n"
        "def online(ctx, args):\n"
        "    return type(ctx.http).__module__\n"
    )
    without = imported_by(store + "assert store.action(quiet).unwrap() == 1\n")
    # sqlite-utils loads here because the new store's tables are created (DDL);
    # the server, the CLI stack and httpx do not.
    assert sorted(without & (set(HEAVY) - {"sqlite_utils"})) == []
    using = imported_by(store + "assert store.action(online).unwrap() == 'httpx'\n")
    assert "httpx" in using


def test_numpy_loads_at_the_first_vector_search_not_at_open(tmp_path: Path):
    # Vector search's matrix (one_store/engine/vector_matrix.py) is NumPy's.
    # (Creating tables may load it anyway: sqlite-utils, which runs the DDL,
    # imports NumPy when it is installed; reopening a file runs no DDL.)
    setup = (
        "from one_store import Store, action, define_schema, define_table, v\n"
        "schema = define_schema({'t': define_table().vector_index("
        "'i', vector_field='e', dimensions=2)})\n"
        f"store = Store.open({str(tmp_path / 'v.db')!r}, schema=schema)\n"
    )
    imported_by(setup + "store.run(lambda ctx: ctx.db.insert('t', {'e': [1.0, 0.0]}))")
    assert "numpy" not in imported_by(setup + "store.close()")
    searched = imported_by(
        setup + "search = action(args={})(lambda ctx, args: "
        "ctx.vector_search('t', 'i', {'vector': [1.0, 0.0]}))\n"
        "assert len(store.action(search, {}).unwrap()) == 1\n"
    )
    assert "numpy" in searched


def test_a_table_view_loads_no_dataframe_library_until_a_conversion():
    code = (
        "from one_store import Store, define_schema, define_table, v\n"
        "store = Store.memory(define_schema({'t': define_table({'n': v.int64()})}))\n"
        "store.run(lambda ctx: ctx.db.insert('t', {'n': 1})).unwrap()\n"
        "view = store.table('t')\n"
        "assert len(view) == 1 and view.head()[0]['n'] == 1\n"
        "repr(view), view._repr_html_(), repr(store)\n"
    )
    assert sorted(imported_by(code) & {"pyarrow", "pandas", "polars"}) == []
    converted = imported_by(code + "view.to_pandas()\n")
    assert {"pyarrow", "pandas"} <= converted
