"""The wheel users install holds what the installed commands need."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_the_demo_apps_and_the_type_marker(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("one_store-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "one_store/py.typed" in names
    for app in ("one", "chat"):
        shipped = {
            n.rsplit("/", 1)[1]
            for n in names
            if n.startswith(f"one_store/_apps/{app}/")
        }
        in_checkout = {p.name for p in (ROOT / "schema" / app).glob("*.py")}
        assert in_checkout <= shipped, f"{app}: {in_checkout - shipped} missing"
