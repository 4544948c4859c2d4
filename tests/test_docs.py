"""Every ```python fence in README.md and docs/*.md runs (in file order, one namespace per file).

They run from an empty folder outside the repository, as a reader's script would:
an example that needs a file of the checkout finds it through ``bundled_app``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def fences(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


def test_docs_have_examples():
    assert any(fences(page) for page in PAGES)


@pytest.mark.parametrize("page", [p for p in PAGES if fences(p)], ids=lambda p: p.name)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # Run where the examples can write files freely, away from the checkout.
    assert not tmp_path.is_relative_to(ROOT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for number, code in enumerate(fences(page), start=1):
        try:
            exec(compile(code, f"{page.name}[{number}]", "exec"), namespace)
        except Exception as e:
            raise AssertionError(
                f"{page.name} example {number} failed: {e!r}\n{code}"
            ) from e
