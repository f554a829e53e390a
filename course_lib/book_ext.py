"""A Sphinx extension for the book: MathJax served with the website, not from a CDN.

The website then typesets its math with no network at all (a classroom without internet, a
laptop on a train, the browser tests). MathJax 3's files come from the Python package
``django-static-mathjax`` (the package is only a carrier of MathJax's static files). When that
package is missing, Sphinx's default, MathJax from a CDN, stays in place.

Enabled in ``_config.yml`` with ``sphinx.extra_extensions: [course_lib.book_ext]``.
"""

from __future__ import annotations

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


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
