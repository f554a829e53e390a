"""What the built website contains: no solution ever, and every chapter's promised parts.

Reads ``_build/html`` (build it first with ``make book``) and the nbgrader source notebooks in
``solutions/``. The solution code (between ``### BEGIN SOLUTION`` and ``### END SOLUTION``) and
the hidden tests (between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``) must not appear
in any file of the website: not in a page, not in a downloadable notebook, not in a page's
source copy.
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from pathlib import Path

import pytest
from book_site import ROOT, SITE, require_site, toc_pages

SOLUTIONS = ROOT / "solutions"
TEXT_SUFFIXES = {".html", ".ipynb", ".md", ".txt", ".py", ".json"}
MIN_LINE_LENGTH = 20  # shorter lines ("return out", "pass") are common to any code
LONG_LINE = 40  # lines this long are distinctive enough to be looked for inside other lines

# chapter page -> the exercise notebooks it promises to link (assignment names)
EXERCISE_LINKS = {
    "book/part1/fc-to-conv": ["output_shapes"],
    "book/part1/convolution": ["convolution"],
    "book/part1/padding-stride": ["convolution", "output_shapes"],
    "book/part1/pooling": ["convolution"],
    "book/part1/backprop": ["backprop"],
    "book/part2/batch-norm": ["architectures"],
    "book/part2/resnet-densenet": ["architectures"],
    "book/part3/detection": ["detection"],
}
MARKERS = [
    ("### BEGIN SOLUTION", "### END SOLUTION"),
    ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"),
]


def normalise(line: str) -> str:
    """One code line with its whitespace collapsed, so indentation and wrapping don't matter."""
    return " ".join(line.split())


def is_trivial(line: str) -> bool:
    """Lines too short or too generic to identify a solution (``stride = kernel_size``)."""
    return (
        len(line) < MIN_LINE_LENGTH
        or line.startswith("#")
        or line.startswith(("import ", "from "))
        or not re.search(r"[A-Za-z]", line)
        or re.fullmatch(r"(return )?[\w.]+( = [\w.]+)?", line) is not None
    )


def split_lines(source: str) -> tuple[list[str], list[str]]:
    """``(hidden, public)``: the non-trivial lines of ``source`` inside solution or hidden-test
    markers, and those outside them (code the students are given)."""
    hidden: list[str] = []
    public: list[str] = []
    inside: str | None = None
    for raw in source.splitlines():
        stripped = raw.strip()
        if inside is None:
            for begin, end in MARKERS:
                if stripped.startswith(begin):
                    inside = end
            if inside is None and not is_trivial(normalise(raw)):
                public.append(normalise(raw))
            continue
        if stripped.startswith(inside):
            inside = None
            continue
        line = normalise(raw)
        if not is_trivial(line):
            hidden.append(line)
    return hidden, public


def hidden_lines(source: str) -> list[str]:
    """The non-trivial lines of ``source`` inside solution or hidden-test markers."""
    return split_lines(source)[0]


@cache
def solution_lines() -> dict[str, list[str]]:
    """Normalised secret line -> the notebooks it comes from.

    A line that the source notebooks also show outside the markers (a helper the students are
    given, a line of the starter code) is public and not a secret.
    """
    found: dict[str, list[str]] = {}
    public: set[str] = set()
    for notebook in sorted(SOLUTIONS.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in notebook.parts:
            continue
        cells = json.loads(notebook.read_text())["cells"]
        for cell in cells:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            hidden, shown = split_lines(source)
            public.update(shown)
            for line in hidden:
                found.setdefault(line, []).append(str(notebook.relative_to(ROOT)))
    return {line: notebooks for line, notebooks in found.items() if line not in public}


def site_text(path: Path) -> str:
    """A website file as plain text: tags dropped and entities decoded for HTML, JSON strings
    joined for notebooks, whitespace collapsed line by line."""
    text = path.read_text(errors="replace")
    if path.suffix == ".html":
        text = re.sub(r"<[^>]+>", "", text)
        text = html.unescape(text)
    elif path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
            text = "\n".join(
                "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                for c in cells
            )
        except (json.JSONDecodeError, AttributeError, KeyError):
            pass
    return "\n".join(normalise(line) for line in text.splitlines())


CHAPTERS = [p for p in toc_pages() if p.startswith("book/part")]


# ----------------------------------------------------------------------------------------------
# The scanner itself
# ----------------------------------------------------------------------------------------------


def test_split_lines_separates_secret_from_given_code() -> None:
    source = "\n".join(
        [
            "def relu(x):",
            "    ### BEGIN SOLUTION",
            "    return np.maximum(x, 0.0)  # the answer",
            "    out = x",
            "    ### END SOLUTION",
            "assert relu(np.array([-1.0])).item() == 0.0",
            "### BEGIN HIDDEN TESTS",
            "assert np.allclose(relu(np.array([2.0, -3.0])), [2.0, 0.0])",
            "### END HIDDEN TESTS",
        ]
    )
    hidden, public = split_lines(source)
    assert hidden == [
        "return np.maximum(x, 0.0) # the answer",
        "assert np.allclose(relu(np.array([2.0, -3.0])), [2.0, 0.0])",
    ]
    assert public == ["assert relu(np.array([-1.0])).item() == 0.0"]


def test_generic_lines_are_not_secrets() -> None:
    assert is_trivial("stride = kernel_size")
    assert is_trivial("return out")
    assert not is_trivial("out = np.maximum(x, 0.0) * scale")


def test_site_text_sees_code_through_syntax_highlighting(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<pre><span class="k">return</span> <span class="n">np</span>.<span class="n">'
        'maximum</span>(<span class="n">x</span>, <span class="mf">0.0</span>)'
        "  <span># the answer</span>\n    &gt;&gt;&gt; x</pre>"
    )
    text = site_text(page)
    assert "return np.maximum(x, 0.0) # the answer" in text
    assert ">>> x" in text


# ----------------------------------------------------------------------------------------------
# The website
# ----------------------------------------------------------------------------------------------


def test_there_are_solutions_to_check() -> None:
    notebooks = list(SOLUTIONS.rglob("*.ipynb"))
    assert notebooks, f"{SOLUTIONS} holds no notebooks: nothing to check the website against"
    assert solution_lines(), (
        "the solution notebooks have no lines between ### BEGIN SOLUTION / ### END SOLUTION "
        "or ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS"
    )


def test_no_solution_or_hidden_test_reaches_the_website() -> None:
    require_site()
    secrets = solution_lines()
    if not secrets:
        pytest.fail(f"no solution lines found in {SOLUTIONS}: nothing to check the website against")
    leaks = []
    for path in sorted(SITE.rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        text = site_text(path)
        lines = set(text.splitlines())
        for line, notebooks in secrets.items():
            # a short line must be a whole line of the page; a long one may sit inside a line
            if line in lines or (len(line) >= LONG_LINE and line in text):
                leaks.append(f"{path.relative_to(SITE)}: {line!r} (from {notebooks[0]})")
    assert not leaks, "solution code on the website:\n" + "\n".join(leaks[:50])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_check_your_understanding_with_dropdowns(chapter: str) -> None:
    require_site()
    page = SITE / f"{chapter}.html"
    assert page.exists(), f"{chapter} is in the table of contents but {page.name} was not built"
    content = page.read_text()
    start = content.find('id="check-your-understanding"')
    assert start >= 0, f"{chapter}: no 'Check your understanding' section"
    section = content[start:]
    dropdowns = len(re.findall(r'<details[^>]*class="[^"]*sd-dropdown', section)) + len(
        re.findall(r'class="admonition[^"]*dropdown', section)
    )
    assert dropdowns >= 3, f"{chapter}: {dropdowns} dropdown answers, expected at least 3"


@pytest.mark.parametrize("chapter", sorted(EXERCISE_LINKS))
def test_chapter_links_its_exercise(chapter: str) -> None:
    require_site()
    page = SITE / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    hrefs = re.findall(r'<a[^>]+href="([^"#]+)', page.read_text())
    for assignment in EXERCISE_LINKS[chapter]:
        links = [h for h in hrefs if re.search(rf"exercises/{assignment}/{assignment}\.", h)]
        assert links, f"{chapter} does not link the {assignment} exercise"
        for href in links:
            target = (page.parent / href).resolve()
            assert target.exists(), f"{chapter} links {href}, which is not on the website"


# ----------------------------------------------------------------------------------------------
# Clean pages
# ----------------------------------------------------------------------------------------------

LONG_CHAPTER_WORDS = 3500  # words of prose (markdown cells), code left out


def prose_words(chapter: str) -> int:
    import jupytext

    notebook = jupytext.read(ROOT / f"{chapter}.md")
    return sum(
        len(re.findall(r"\w+", c.source)) for c in notebook.cells if c.cell_type == "markdown"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_long_chapters_open_with_a_summary_box(chapter: str) -> None:
    if prose_words(chapter) <= LONG_CHAPTER_WORDS:
        return
    require_site()
    page = (SITE / f"{chapter}.html").read_text()
    # The chapter itself: the page also holds a print-only table of contents (its own <h2>)
    # before the article.
    article = page.find("<article")
    assert article >= 0, f"{chapter}: no <article> in the page"
    content = page[article:]
    summary = content.find("chapter-summary")
    first_section = content.find('<section id="', content.find("<h1"))
    assert summary >= 0, f"{chapter}: a long chapter without a summary box (class chapter-summary)"
    first_h2 = content.find("<h2")
    assert first_h2 < 0 or summary < first_h2, f"{chapter}: the summary box is not at the top"
    assert first_section < 0 or summary < content.find("<h2", first_section)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_import_cell_is_folded_and_no_output_is_noise(chapter: str) -> None:
    require_site()
    content = (SITE / f"{chapter}.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", content))
    for noise in ("Warning:", "UserWarning", "DeprecationWarning", "Traceback (most recent"):
        assert noise not in text, f"{chapter}: the page shows {noise!r}"
    assert 'class="output stderr"' not in content, f"{chapter}: a cell writes to stderr"
    first_cell = re.search(r'<div class="cell([^"]*)"', content)
    assert first_cell, f"{chapter}: no code cell"
    assert "tag_hide-input" in first_cell.group(1) or "tag_remove-input" in first_cell.group(1), (
        f"{chapter}: the import cell is shown (tag it hide-input)"
    )
