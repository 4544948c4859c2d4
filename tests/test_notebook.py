"""docs/notebook.ipynb runs top to bottom in a real Jupyter kernel (nbclient, ipykernel).

The notebook is documentation: it must not rot. Each code cell runs in order in a
fresh ``python3`` kernel, with this checkout on the kernel's path; an error in any
cell fails the test with that cell's traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    client = nbclient.NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", path)  # the kernel, a child process, inherits it
        client.execute()
    return notebook


def outputs(notebook):
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def test_every_cell_runs_without_an_error_or_a_warning(ran):
    errors = [o for o in outputs(ran) if o.output_type == "error"]
    assert errors == []
    stderr = [o.text for o in outputs(ran) if o.get("name") == "stderr"]
    assert stderr == []


def test_the_store_the_table_and_a_failure_render_as_html(ran):
    html = [
        o.data["text/html"] for o in outputs(ran) if "text/html" in o.get("data", {})
    ]
    assert any(
        h.startswith('<table class="one-store"><caption') and "Store" in h for h in html
    )
    assert any("messages: " in h and "<th>_creationTime</th>" in h for h in html)
    assert any("one-store-problem" in h and "ArgsInvalid" in h for h in html)
    # A call's Success and a paginate page (a plain dict) are not one_store's
    # classes: IPython's formatters show them as tables.
    assert any("Success: first 10 of 16 items" in h for h in html)  # 3 + 13 sent
    assert any("Watch list (version" in h for h in html)
    assert any("page: 5 documents, more after it; continueCursor" in h for h in html)


def test_the_plot_is_drawn(ran):
    assert any("image/png" in o.get("data", {}) for o in outputs(ran))
