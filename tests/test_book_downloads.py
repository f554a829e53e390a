"""What a one-page book built with the repository's configuration offers its readers: the
downloads (.ipynb converted for JupyterLab, .md, print to PDF), the buttons that appear only
once the repository's address is set, and the whole book as one PDF (pdfhtml, printed by the
system's Chromium).

Each build runs the real ``jupyter-book`` in a temporary folder (slow)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
REPOSITORY = "https://github.com/course-owner/cnn-course"  # any GitHub-style address

PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
:tags: [remove-stderr, hide-input]

from myst_nb import glue
```

The answer is {glue:text}`answer` and its share {glue:text}`share:.1%`, $a^2 + b^2 = c^2$.

```{code-cell} ipython3
glue("answer", 42, display=False)
glue("share", 0.1234, display=False)
print("computed")
```

```{dropdown} A question
An answer.
```
"""


def make_book(folder: Path, repository_url: str) -> Path:
    """The repository's ``_config.yml`` with ``repository.url`` set, and one page."""
    folder.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["title"] = "Downloads test"
    config["execute"]["cache"] = str(folder / "_build" / ".jupyter_cache")
    config["repository"]["url"] = repository_url
    for bib in config.get("bibtex_bibfiles", []):
        shutil.copy(ROOT / bib, folder / bib)
    (folder / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    # laid out like the course: chapters under book/ (binder/postBuild converts book/ to notebooks/)
    (folder / "_toc.yml").write_text("format: jb-book\nroot: book/page\n")
    (folder / "book").mkdir()
    (folder / "book" / "page.md").write_text(PAGE)
    return folder


def build(folder: Path, builder: str = "html") -> None:
    result = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(folder), "--builder", builder, "--warningiserror"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


@pytest.fixture(scope="module")
def without_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_book(tmp_path_factory.mktemp("book") / "plain", "")
    build(folder)
    return folder


@pytest.fixture(scope="module")
def with_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_book(tmp_path_factory.mktemp("book") / "hosted", REPOSITORY)
    build(folder)
    return folder


def _links(page: Path) -> list[str]:
    return re.findall(r'href="([^"]+)"', page.read_text())


def test_downloads_work_without_a_repository(without_repository: Path) -> None:
    site = without_repository / "_build" / "html"
    page = site / "book" / "page.html"
    html = page.read_text()
    links = _links(page)
    for suffix in (".ipynb", ".md"):
        (link,) = [h for h in links if h.endswith(f"_sources/book/page{suffix}")]
        assert (page.parent / link).resolve().is_file(), f"the {suffix} download is missing"
    assert "window.print()" in html, "the PDF download (print) button is missing"
    # no button that would lead nowhere
    assert not [h for h in links if "mybinder" in h or "colab" in h or "course-owner" in h]
    assert "repository-button" not in html

    notebook = json.loads((site / "_sources" / "book" / "page.ipynb").read_text())
    markdown = "".join(
        "".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"
    )
    assert '{eval}`glued("answer", "", "42")`' in markdown
    assert '{eval}`glued("share", ".1%", "12.3%")`' in markdown
    stored = [
        e["result"]["data"]["text/plain"]
        for c in notebook["cells"]
        for e in c.get("metadata", {}).get("user_expressions", [])
    ]
    assert stored == ["'42'", "'12.3%'"]
    code = "".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "from course_lib.notebook import glue, glued" in code
    assert "Installs course_lib" not in code, "no repository, so nothing to install from"
    assert "computed" in json.dumps(notebook), "the download lost the executed outputs"


def test_a_repository_address_brings_the_buttons_and_the_install_cell(
    with_repository: Path,
) -> None:
    site = with_repository / "_build" / "html"
    links = _links(site / "book" / "page.html")
    binder = [h for h in links if "mybinder.org/v2/" in h]
    assert binder and all(h.endswith("urlpath=lab/tree/notebooks/page.ipynb") for h in binder), (
        binder
    )
    assert any(h.startswith(REPOSITORY) for h in links), "no repository button"
    assert not [h for h in links if "colab" in h]
    notebook = json.loads((site / "_sources" / "book" / "page.ipynb").read_text())
    first_code = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    source = "".join(first_code["source"])
    assert "Installs course_lib" in source
    assert f"course-lib[book] @ git+{REPOSITORY}@main" in source


def test_the_whole_book_prints_to_one_pdf(without_repository: Path) -> None:
    if not Path("/usr/bin/chromium").exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; `make test` does it)")
    build(without_repository, builder="pdfhtml")
    pdf = without_repository / "_build" / "pdf" / "book.pdf"
    assert pdf.is_file(), "pdfhtml wrote no PDF"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 10_000
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 1
