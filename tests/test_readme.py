"""The README's example is a script a newcomer runs more than once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_docs import ROOT, fences


def test_the_readme_example_runs_twice_in_the_same_folder(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text("\n".join(fences(ROOT / "README.md")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for run in (1, 2):
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 0, f"run {run}:\n{done.stdout}{done.stderr}"
        assert "bad argument at .name" in done.stdout
    assert (tmp_path / "agents.db").exists()
