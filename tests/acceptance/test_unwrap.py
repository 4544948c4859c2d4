"""A script that crashes through ``.unwrap()`` shows why, as a Python user expects.

Runs a real ``python -c`` process: its stderr must name the Problem (code and
message) and show the handler's own traceback as the direct cause.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """\
    from one_store import Store, define_schema, define_table, mutation, v

    schema = define_schema({"agents": define_table({"name": v.string()})})


    @mutation(args={"name": v.string()})
    def rename_first(ctx, args):
        agent = ctx.db.query("agents").first()
        return agent["name"]


    store = Store.memory(schema)
    store.mutation(rename_first, {"name": "Ada"}).unwrap()
    """
)


def run_script(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_script_crashing_on_unwrap_shows_the_problem_and_its_cause():
    done = run_script(SCRIPT)
    assert done.returncode == 1
    err = done.stderr
    # The handler's own frame, then the chain, then the named Problem.
    assert 'File "<string>", line 9, in rename_first' in err
    assert "TypeError: 'NoneType' object is not subscriptable" in err
    assert "The above exception was the direct cause of the following exception" in err
    last = err.strip().splitlines()[-1]
    assert last.endswith(
        "UnwrapError: HandlerError: TypeError: 'NoneType' object is not "
        "subscriptable in 'rename_first'"
    )
    assert err.index("line 9, in rename_first") < err.index("direct cause")


def test_a_script_crashing_on_a_bad_argument_names_the_path():
    code = SCRIPT.replace('{"name": "Ada"}', '{"name": 7}')
    done = run_script(code)
    assert done.returncode == 1
    assert "UnwrapError: ArgsInvalid: Value does not match validator." in done.stderr
    assert "Path: .name" in done.stderr
    assert "direct cause" not in done.stderr
