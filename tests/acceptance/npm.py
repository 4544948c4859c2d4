"""The npm packages of the real-client tests, installed once from the lock file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

JS = Path(__file__).resolve().parent / "js"
PACKAGES = ("convex", "ws", "react", "react-dom", "esbuild")


def ensure_packages() -> Path:
    """``tests/acceptance/js`` with its ``node_modules`` (``npm ci`` when one is missing).

    ``.ci/run`` installs them first; this covers a plain ``pytest`` on a fresh clone.
    """
    assert shutil.which("node") is not None, "node is needed for the npm client tests"
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed to install the npm convex package"
    missing = [
        p for p in PACKAGES if not (JS / "node_modules" / p / "package.json").is_file()
    ]
    if missing:
        # --ignore-scripts: esbuild finds its binary in @esbuild/<platform> anyway.
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=JS,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return JS
