"""The wheel users install holds what the installed commands need."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(tmp_path: Path) -> Path:
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
    return wheel


def test_the_wheel_ships_the_demo_apps_and_the_type_marker(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
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


def test_from_the_wheel_the_apps_and_the_demo_point_at_the_installed_copy(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"  # an unpacked wheel is what pip installs
    zipfile.ZipFile(build_wheel(tmp_path)).extractall(site)
    apps = site / "one_store" / "_apps"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=elsewhere,
            env={**os.environ, "PYTHONPATH": str(site), "COLUMNS": "300"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    found = run(
        "-c",
        "import one_store; print(one_store.__file__); "
        "print(one_store.bundled_app('one')); print(one_store.bundled_app('chat'))",
    )
    assert found.split() == [
        str(site / "one_store" / "__init__.py"),
        str(apps / "one"),
        str(apps / "chat"),
    ]
    demo = " ".join(run("-m", "one_store.cli.main", "demo").split())
    assert (
        f"one_store_demo.db: the ONE agent/human system (app folder {apps / 'one'})"
        in demo
    )
    assert (
        f"one_store_demo.chat.db: the agent chat app (app folder {apps / 'chat'})"
        in demo
    )
    assert "schema/one" not in demo
