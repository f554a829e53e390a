"""A Sphinx extension for the book.

- **MathJax served with the website**, not from a CDN, so the math typesets with no network at
  all (a classroom without internet, a laptop on a train, the browser tests). MathJax 3's files
  come from the Python package ``django-static-mathjax`` (only a carrier of MathJax's static
  files). When that package is missing, Sphinx's default, MathJax from a CDN, stays in place.
- **Buttons that work or are not shown.** The repository's address is one setting,
  ``repository.url`` in ``_config.yml``. While it is empty, the repository, issues and launch
  buttons are left out; once it is set they appear, Binder opens the chapter's notebook (which
  ``binder/postBuild`` writes), and the downloadable notebooks install ``course_lib`` from that
  repository where it is missing (Colab, Binder, a JupyterHub).
- **Notebooks that read well in JupyterLab.** Each chapter's downloadable ``.ipynb`` is converted
  by :func:`course_lib.notebook.for_jupyterlab`: its glued numbers become inline expressions
  that ``jupyterlab-myst`` renders (with the values of this build until the code runs).

Enabled in ``_config.yml`` with ``sphinx.extra_extensions: [course_lib.book_ext]``.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib.util import find_spec
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The parts of MathJax's ``es5`` folder the website needs: the TeX-to-HTML component, the TeX
#: extensions it loads on demand, its fonts, the context menu and the accessibility tools.
_MATHJAX_PARTS = ("tex-chtml.js", "input", "output/chtml", "ui", "a11y", "sre", "adaptors")
_TARGET = "mathjax"


def mathjax_source() -> Path | None:
    """The folder holding MathJax 3's ``es5`` build, or None when it is not installed."""
    spec = find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        es5 = Path(location) / "static" / "mathjax" / "es5"
        if (es5 / "tex-chtml.js").is_file():
            return es5
    return None


def _use_local_mathjax(app: Sphinx, config: Config) -> None:
    if mathjax_source() is None:
        logger.info("book_ext: MathJax package not found; the website loads MathJax from a CDN")
        return
    # Relative to the website's _static folder.
    config.mathjax_path = f"{_TARGET}/tex-chtml.js"


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    source = mathjax_source()
    if exception is not None or source is None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / _TARGET
    for part in _MATHJAX_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        elif src.is_file():
            (target / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)


def repository_requirement(repository_url: str, branch: str) -> str | None:
    """The pip requirement that installs the course from its repository, or None without one."""
    url = (repository_url or "").strip().rstrip("/")
    if not url:
        return None
    if not url.startswith(("https://", "http://", "file://", "ssh://")):
        raise ValueError(
            f"repository.url must be an address such as https://host/owner/course, got {url!r}"
        )
    return f"course-lib[book] @ git+{url}@{branch or 'main'}"


def _buttons_only_with_a_repository(app: Sphinx, config: Config) -> None:
    options = dict(config.html_theme_options or {})
    if (options.get("repository_url") or "").strip():
        options["use_repository_button"] = options["use_issues_button"] = True
    else:
        for key in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
            options[key] = False
        options["launch_buttons"] = {}
        logger.info("book_ext: repository.url is empty; repository and launch buttons left out")
    config.html_theme_options = options


def _offer_the_notebook(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Put the executed notebook of a MyST page where the download button finds it.

    sphinx-book-theme does this only when launch buttons are configured; the .ipynb download
    must work without them too. (Runs before the theme's handlers, priority 501.)"""
    source = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not source.is_file() or not str(context.get("sourcename", "")).endswith((".md", ".md.txt")):
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def binder_notebook_url(url: str) -> str:
    """A Binder launch link to ``book/<chapter>.md`` turned into one to the notebook that
    ``binder/postBuild`` writes for it, ``notebooks/<chapter>.ipynb``; other links unchanged."""
    marker = "urlpath=lab/tree/book/"
    if "/v2/" not in url or marker not in url or not url.endswith(".md"):
        return url
    return url.replace(marker, "urlpath=lab/tree/notebooks/", 1)[: -len(".md")] + ".ipynb"


def _binder_opens_the_notebook(app: Sphinx, pagename, templatename, context, doctree) -> None:
    """Binder opens the chapter's notebook: its MyST file would show glue keys, not numbers."""

    def patch(buttons: list) -> None:
        for button in buttons:
            if isinstance(button, dict):
                if "url" in button:
                    button["url"] = binder_notebook_url(button["url"])
                patch(button.get("buttons", []))

    patch(context.get("header_buttons", []))


def _notebooks_for_jupyterlab(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from course_lib.notebook import for_jupyterlab, glue_values

    options = app.config.html_theme_options or {}
    requirement = repository_requirement(
        options.get("repository_url", ""), options.get("repository_branch", "main")
    )
    sources = Path(app.outdir) / "_sources"
    executed = Path(app.outdir).parent / "jupyter_execute"
    converted = 0
    for notebook_path in sorted(sources.rglob("*.ipynb")):
        relative = notebook_path.relative_to(sources)
        if relative.parts[0] == "exercises":  # nbgrader's notebooks stay exactly as released
            continue
        glue_file = (executed / relative).with_suffix(".glue.json")
        values = glue_values(json.loads(glue_file.read_text())) if glue_file.is_file() else {}
        notebook = json.loads(notebook_path.read_text())
        notebook_path.write_text(
            json.dumps(for_jupyterlab(notebook, values, requirement), indent=1, ensure_ascii=False)
        )
        converted += 1
    logger.info(f"book_ext: {converted} downloadable notebooks converted for JupyterLab")


#: Where Debian and Ubuntu install Chromium (``apt-get install chromium``; the tests use it too).
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")

_PRINT_CSS = """
div.cell_input, div.cell_output { break-inside: avoid; }
div.cell_output img { max-width: 100%; }
"""


def html_to_pdf(html_file: str | Path, pdf_file: str | Path) -> None:
    """Print a page of the website to PDF with the system's Chromium (headless).

    Jupyter Book's ``pdfhtml`` builder calls this (see :func:`setup`) instead of its own version,
    which needs a browser downloaded by Playwright. The page's MathJax finishes typesetting
    before it is printed."""
    from playwright.sync_api import sync_playwright

    html_path, links = _follow_redirect(Path(html_file).resolve())
    executable = shutil.which("chromium") or (
        str(SYSTEM_CHROMIUM) if SYSTEM_CHROMIUM.exists() else None
    )
    if executable is None:
        raise RuntimeError(
            "printing the book to PDF needs Chromium: apt-get install chromium (make setup-test)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            page = browser.new_page()
            page.goto(html_path.as_uri(), wait_until="load")
            page.wait_for_function(
                "() => !window.MathJax || (window.MathJax.startup"
                " && window.MathJax.startup.promise !== undefined)",
                timeout=120_000,
            )
            page.evaluate("() => window.MathJax ? window.MathJax.startup.promise : null")
            page.wait_for_function(
                "() => Array.from(document.images).every(i => i.complete)", timeout=120_000
            )
            page.add_style_tag(content=_PRINT_CSS)
            page.pdf(
                path=str(pdf_file),
                print_background=True,
                margin={"top": "0.5in", "bottom": "0.5in", "left": "0.4in", "right": "0.4in"},
            )
        finally:
            browser.close()
            for link in links:
                link.unlink()


def _follow_redirect(html_path: Path) -> tuple[Path, list[Path]]:
    """The page that ``html_path`` redirects to (the book's ``index.html`` is a redirect), with
    the site's ``_static`` and ``_images`` reachable from its folder.

    Sphinx's single-page builder writes the book's root page where its source lies
    (``book/intro.html``) but links the assets as if it lay at the top: without them the page
    would print unstyled and without math. Returns the page and the links made for it."""
    if not html_path.is_file():
        raise FileNotFoundError(f"no HTML page to print at {html_path}")
    refresh = re.search(r'http-equiv="Refresh" content="0; url=([^"]+)"', html_path.read_text())
    if refresh is None:
        return html_path, []
    target = (html_path.parent / refresh.group(1)).resolve()
    if not target.is_file():
        raise FileNotFoundError(f"{html_path} redirects to {target}, which does not exist")
    links = []
    for assets in ("_static", "_images"):
        source, link = html_path.parent / assets, target.parent / assets
        if source.is_dir() and not link.exists():
            link.symlink_to(source.resolve(), target_is_directory=True)
            links.append(link)
    return target, links


def _print_with_system_chromium() -> None:
    """Make ``jupyter-book build --builder pdfhtml`` print with :func:`html_to_pdf`."""
    try:
        import jupyter_book.pdf
    except ImportError:  # Sphinx run without Jupyter Book
        return
    jupyter_book.pdf.html_to_pdf = html_to_pdf


def setup(app: Sphinx) -> dict[str, object]:
    _print_with_system_chromium()
    app.connect("config-inited", _use_local_mathjax)
    app.connect("config-inited", _buttons_only_with_a_repository)
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _notebooks_for_jupyterlab)
    app.connect("html-page-context", _offer_the_notebook, priority=500)
    # after sphinx-book-theme's handlers (priority 501), which build the launch buttons
    app.connect("html-page-context", _binder_opens_the_notebook, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
