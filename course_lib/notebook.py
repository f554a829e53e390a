"""The chapters as notebooks that read well outside the website.

On the website, a chapter's numbers reach its text through MyST-NB's ``{glue:text}`` role, which
Jupyter Book fills in when it builds the page. JupyterLab does not know that role: with the
``jupyterlab-myst`` extension it renders admonitions, dropdowns and math, but shows a glued
number as its bare key. This module turns a chapter into a notebook for JupyterLab:

- each ``{glue:text}`key:format``` becomes an inline expression ``{eval}`glued("key", "format",
  "value")```, which jupyterlab-myst evaluates in the kernel when the markdown cell runs;
  :func:`glued` returns the value the chapter's code glued in *this* kernel, or the value of the
  website's build until the code that glues it has run;
- the value of the build is also stored in the cell's ``user_expressions`` metadata, so the
  numbers show as soon as the notebook opens, before anything runs;
- the chapter's ``from myst_nb import glue`` becomes ``from course_lib.notebook import glue,
  glued`` (the same ``glue``, which also remembers the value for :func:`glued`);
- optionally, a first code cell installs ``course_lib`` where it is missing (Colab, Binder, an
  institution's JupyterHub) and does nothing anywhere else.

The website's download button offers these notebooks (``course_lib.book_ext`` converts them when
the book is built); ``python -m course_lib.notebook SOURCE OUT`` converts the chapters' MyST files
without running them.

This module imports only the standard library at the top, so that the install cell's logic and
the conversion can be used before the rest of ``course_lib`` (and PyTorch) is installed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "GLUE_ROLE",
    "INSTALL_MARKER",
    "for_jupyterlab",
    "format_text",
    "glue",
    "glue_values",
    "glued",
    "install_cell_source",
    "main",
]

#: ``{glue:text}`key``` or ``{glue:text}`key:format```, as the chapters write it.
GLUE_ROLE = re.compile(r"\{glue:text\}`([^`]+)`")
#: The first line of the install cell, by which a converted notebook is recognised.
INSTALL_MARKER = "# Installs course_lib where it is missing"
#: The MIME prefix under which MyST-NB stores a value glued with ``display=False``.
_GLUE_PREFIX = "application/papermill.record/"
_MISSING = "…"

_glued_here: dict[str, Any] = {}


def glue(name: str, variable: Any, display: bool = True) -> None:
    """``myst_nb.glue``, and remember ``variable`` under ``name`` for :func:`glued`.

    Without MyST-NB installed (on Colab, say) the value is only remembered, and shown when
    ``display`` is true."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    _glued_here[name] = variable
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(variable)
        return
    myst_glue(name, variable, display=display)


def _plain_text(variable: Any) -> str:
    """The ``text/plain`` form of a value, the one the website pastes into the text."""
    try:
        from IPython.core.formatters import format_display_data
    except ImportError:
        return repr(variable)
    return format_display_data(variable)[0].get("text/plain", repr(variable))


def format_text(text_plain: str, format_spec: str = "") -> str:
    """Format a glued value's ``text/plain`` form the way the website does.

    A quoted string loses its quotes; with a format spec, its last character decides whether the
    value is formatted as a str (``s``), an int (``d``, ``x``, ...) or a float (``f``, ``%``,
    ``g``, ...). ``format_text("0.1234", ".1%") == "12.3%"``."""
    try:
        value: Any = ast.literal_eval(text_plain)
    except (SyntaxError, ValueError):
        value = text_plain
    if not format_spec:
        return str(value)
    kind = format_spec[-1]
    if kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    else:
        value = str(value)
    return format(value, format_spec)


def glued(name: str, format_spec: str = "", fallback: str = _MISSING) -> str:
    """The value glued under ``name`` in this kernel, formatted as on the website; ``fallback``
    (the value of the website's build) while the code that glues it has not run yet."""
    if name not in _glued_here:
        return fallback
    return format_text(_plain_text(_glued_here[name]), format_spec)


def glue_values(source: Mapping[str, Any]) -> dict[str, str]:
    """``{key: text/plain}`` of every glued value, from an executed notebook (nbformat 4 JSON)
    or from the ``<page>.glue.json`` that MyST-NB writes beside it (``{key: output}``)."""
    if "cells" in source:
        outputs = [
            output
            for cell in source["cells"]
            if cell.get("cell_type") == "code"
            for output in cell.get("outputs", [])
        ]
    else:
        outputs = list(source.values())
    values: dict[str, str] = {}
    for output in outputs:
        if not isinstance(output, dict):
            continue
        scrapbook = output.get("metadata", {}).get("scrapbook")
        if not scrapbook or "name" not in scrapbook:
            continue
        data = output.get("data", {})
        text = data.get("text/plain", data.get(scrapbook.get("mime_prefix", "") + "text/plain"))
        if text is not None:
            values[scrapbook["name"]] = "".join(text) if isinstance(text, list) else text
    return values


def install_cell_source(requirement: str) -> str:
    """The code of a cell that installs ``requirement`` with pip only if ``course_lib`` cannot
    be imported, e.g. ``"course-lib[book] @ git+https://example.org/course.git@main"``."""
    if not isinstance(requirement, str) or not requirement.strip():
        raise ValueError(f"requirement must be a non-empty pip requirement, got {requirement!r}")
    return (
        f"{INSTALL_MARKER} (Colab, Binder, a JupyterHub); it does nothing\n"
        "# where the course is installed. Restart the kernel after it has installed something.\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if importlib.util.find_spec("course_lib") is None:\n'
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "--quiet", {json.dumps(requirement)}],\n'
        "        check=True,\n"
        "    )"
    )


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _expression(key: str, format_spec: str, fallback: str) -> str:
    return f"glued({json.dumps(key)}, {json.dumps(format_spec)}, {json.dumps(fallback)})"


def for_jupyterlab(
    notebook: Mapping[str, Any],
    values: Mapping[str, str] | None = None,
    requirement: str | None = None,
) -> dict[str, Any]:
    """A copy of a chapter notebook (nbformat 4 JSON) whose glued numbers JupyterLab renders.

    values: ``{key: text/plain}`` from the website's build (:func:`glue_values` of the executed
    notebook); keys without a value show "…" until their code runs. requirement: if given, a
    first code cell installs it where ``course_lib`` is missing (:func:`install_cell_source`).
    Converting a converted notebook changes nothing.
    """
    values = dict(values or {})
    result = copy.deepcopy(dict(notebook))
    cells = result.setdefault("cells", [])
    if any(INSTALL_MARKER in _source(c) for c in cells if c.get("cell_type") == "code"):
        requirement = None  # already converted
    for cell in cells:
        text = _source(cell)
        if cell.get("cell_type") == "markdown" and GLUE_ROLE.search(text):
            expressions = []

            def to_eval(match: re.Match[str], expressions: list = expressions) -> str:
                key, _, format_spec = match.group(1).partition(":")
                try:
                    fallback = format_text(values[key], format_spec) if key in values else _MISSING
                except (TypeError, ValueError):
                    fallback = _MISSING
                expression = _expression(key, format_spec, fallback)
                expressions.append(
                    {
                        "expression": expression,
                        "result": {
                            "status": "ok",
                            "data": {"text/plain": repr(fallback)},
                            "metadata": {},
                        },
                    }
                )
                return f"{{eval}}`{expression}`"

            cell["source"] = GLUE_ROLE.sub(to_eval, text)
            cell.setdefault("metadata", {})["user_expressions"] = expressions
        elif cell.get("cell_type") == "code" and "from myst_nb import glue" in text:
            cell["source"] = re.sub(
                r"^from myst_nb import glue$",
                "from course_lib.notebook import glue, glued",
                text,
                flags=re.M,
            )
    if requirement is not None:
        first_code = next(
            (i for i, c in enumerate(cells) if c.get("cell_type") == "code"), len(cells)
        )
        cells.insert(
            first_code,
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "install-course-lib",
                "metadata": {"tags": ["remove-cell"]},
                "outputs": [],
                "source": install_cell_source(requirement),
            },
        )
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.notebook SOURCE OUT``: every MyST chapter under SOURCE becomes a
    notebook for JupyterLab under OUT (same relative path, ``.ipynb``), without running it."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.notebook", description=main.__doc__)
    parser.add_argument("source", type=Path, help="a chapter (.md) or a folder of chapters")
    parser.add_argument("out", type=Path, help="the folder for the notebooks")
    parser.add_argument("--requirement", help="add an install cell for this pip requirement")
    args = parser.parse_args(argv)
    import jupytext

    if not args.source.exists():
        parser.error(f"{args.source} does not exist")
    chapters = [args.source] if args.source.is_file() else sorted(args.source.rglob("*.md"))
    root = args.source.parent if args.source.is_file() else args.source
    written = 0
    for chapter in chapters:
        text = chapter.read_text()
        if "format_name: myst" not in text:
            continue  # a plain page (the preface), not a notebook
        notebook = json.loads(jupytext.writes(jupytext.reads(text, fmt="md:myst"), fmt="ipynb"))
        target = (args.out / chapter.relative_to(root)).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        converted = for_jupyterlab(notebook, requirement=args.requirement)
        target.write_text(json.dumps(converted, indent=1, ensure_ascii=False) + "\n")
        written += 1
    print(f"{written} notebooks written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
