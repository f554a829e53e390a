"""The book's build: a chapter that raises must fail it, and the configuration must stay safe.

The slow test builds a one-page book in a temporary folder with the repository's own
``_config.yml`` (so a change there that hides execution errors is caught), once with a page whose
code cell raises and once with the page fixed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "_config.yml"
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")

PAGE_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A one-page book

Some math, $a^2 + b^2 = c^2$, and a code cell:

```{{code-cell}} ipython3
{code}
```
"""
BROKEN_CODE = 'raise RuntimeError("this chapter is deliberately broken")'
FIXED_CODE = 'print("this chapter" + " works")'


def load_config() -> dict:
    if not CONFIG.exists():
        pytest.fail(f"{CONFIG.name} is missing from the repository root")
    return yaml.safe_load(CONFIG.read_text())


def make_book(folder: Path, code: str) -> None:
    """A copy of the repository's configuration with one page in the table of contents."""
    config = load_config()
    config["title"] = "Build test"
    config["execute"]["cache"] = str(folder / "_build" / ".jupyter_cache")
    config.pop("repository", None)
    config.pop("launch_buttons", None)
    html = config.setdefault("html", {})
    for key in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
        html.pop(key, None)
    for bib in config.get("bibtex_bibfiles", []):
        shutil.copy(ROOT / bib, folder / bib)
    (folder / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (folder / "page.md").write_text(PAGE_HEADER.format(code=code))


def build(folder: Path) -> tuple[int, str]:
    """Run ``jupyter-book build --warningiserror``; return the exit code and everything it said,
    including the execution reports it wrote."""
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(folder), "--warningiserror"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )
    reports = folder / "_build" / "html" / "reports"
    logs = (
        "".join(p.read_text() for p in sorted(reports.rglob("*.log"))) if reports.exists() else ""
    )
    return result.returncode, result.stdout + result.stderr + logs


def test_config_caches_execution_and_skips_exercises() -> None:
    execute = load_config()["execute"]
    assert execute["execute_notebooks"] == "cache", "chapters must be executed once and cached"
    assert execute.get("allow_errors", False) is False, "a raising cell must fail the build"
    timeout = execute.get("timeout")
    assert isinstance(timeout, int) and 0 < timeout <= 1800, f"bad cell timeout {timeout!r}"
    patterns = execute.get("exclude_patterns", [])
    assert any(p.startswith("exercises/") or "/exercises/" in p for p in patterns), (
        f"the exercise notebooks must never be executed; exclude_patterns is {patterns}"
    )


def test_config_keeps_solutions_out_of_the_book() -> None:
    patterns = load_config().get("sphinx", {}).get("config", {}).get("exclude_patterns", [])
    assert "solutions" in patterns, f"solutions/ must be excluded from Sphinx; got {patterns}"
    assert "solutions" not in (ROOT / "_toc.yml").read_text()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_broken_chapter_fails_the_build_and_a_fixed_one_builds(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    make_book(broken, BROKEN_CODE)
    code, output = build(broken)
    assert code != 0, f"the build of a raising chapter succeeded:\n{output[-3000:]}"
    assert "deliberately broken" in output and "RuntimeError" in output, (
        f"the failed build does not name the error:\n{output[-3000:]}"
    )

    fixed = tmp_path / "fixed"
    fixed.mkdir()
    make_book(fixed, FIXED_CODE)
    code, output = build(fixed)
    assert code == 0, f"the build of a working chapter failed:\n{output[-3000:]}"
    page = (fixed / "_build" / "html" / "page.html").read_text()
    assert "this chapter works" in page, "the executed output is missing from the page"
