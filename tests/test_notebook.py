"""Chapters as notebooks outside the website: glued numbers, the install cell, the wheel of
course_lib, and the files that set up JupyterLab, conda and Binder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import jupytext
import pytest
import yaml
from myst_nb.core.variables import format_plain_text
from packaging.requirements import Requirement

from course_lib import notebook
from course_lib.book_ext import binder_notebook_url, repository_requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CHAPTER = ROOT / "book" / "part1" / "padding-stride.md"


@pytest.fixture(autouse=True)
def _fresh_glue_store():
    notebook._glued_here.clear()
    yield
    notebook._glued_here.clear()


def _chapter_notebook(path: Path = CHAPTER) -> dict:
    """The chapter as nbformat 4 JSON, every cell's source one string."""
    chapter = json.loads(jupytext.writes(jupytext.read(path), fmt="ipynb"))
    for cell in chapter["cells"]:
        cell["source"] = "".join(cell["source"])
    return chapter


# ---------------------------------------------------------------------------------------------
# glued values, formatted as on the website
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("8", ""),
        ("'1,236'", ""),
        ("'1,236'", "s"),
        ("0.123456", ".1%"),
        ("0.123456", ".2f"),
        ("12", "d"),
        ("3.0", "g"),
        ("1e-05", ".0e"),
        ("'stride'", ""),
        ("(0.485, 0.456, 0.406)", ""),
        ("not python", ""),
    ],
)
def test_format_text_agrees_with_the_website(text: str, spec: str) -> None:
    assert notebook.format_text(text, spec) == format_plain_text(text, spec)


def test_glued_returns_the_kernels_value_or_the_builds() -> None:
    assert notebook.glued("ratio", ".1f", "8.7") == "8.7"  # not glued yet: the build's value
    assert notebook.glued("ratio") == "…"
    notebook.glue("ratio", 10.24, display=False)
    notebook.glue("name", "VGG-16", display=False)
    assert notebook.glued("ratio", ".1f", "8.7") == "10.2"
    assert notebook.glued("name", "", "x") == "VGG-16"
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        notebook.glue("", 1)


def test_glue_values_read_a_notebook_and_a_glue_file() -> None:
    output = {
        "output_type": "display_data",
        "metadata": {"scrapbook": {"name": "k", "mime_prefix": "application/papermill.record/"}},
        "data": {"application/papermill.record/text/plain": "3"},
    }
    executed = {"cells": [{"cell_type": "code", "outputs": [output], "source": ""}]}
    assert notebook.glue_values(executed) == {"k": "3"}
    glue_file = {"k": {**output, "data": {"text/plain": "'3,000'"}}}
    assert notebook.glue_values(glue_file) == {"k": "'3,000'"}


# ---------------------------------------------------------------------------------------------
# the conversion for JupyterLab
# ---------------------------------------------------------------------------------------------


def test_for_jupyterlab_turns_every_glue_role_into_an_inline_expression() -> None:
    chapter = _chapter_notebook()
    roles = sum(
        len(notebook.GLUE_ROLE.findall(c["source"]))
        for c in chapter["cells"]
        if c["cell_type"] == "markdown"
    )
    assert roles > 5
    converted = notebook.for_jupyterlab(chapter, {"stride3_unused": "2"})
    markdown = [c for c in converted["cells"] if c["cell_type"] == "markdown"]
    assert not any(notebook.GLUE_ROLE.search(c["source"]) for c in markdown)
    expressions = [e for c in markdown for e in c["metadata"].get("user_expressions", [])]
    assert len(expressions) == roles
    for cell in markdown:  # every expression in the text has its stored result
        stored = {e["expression"] for e in cell["metadata"].get("user_expressions", [])}
        assert stored == set(m.group(1) for m in re.finditer(r"\{eval\}`([^`]+)`", cell["source"]))
    unused = next(e for e in expressions if '"stride3_unused"' in e["expression"])
    assert unused["expression"] == 'glued("stride3_unused", "", "2")'
    assert unused["result"]["data"]["text/plain"] == "'2'"
    code = "\n".join(c["source"] for c in converted["cells"] if c["cell_type"] == "code")
    assert "from course_lib.notebook import glue, glued" in code
    assert "from myst_nb import glue" not in code
    assert notebook.INSTALL_MARKER not in code  # no requirement, no install cell
    assert chapter["cells"][0]["source"] == _chapter_notebook()["cells"][0]["source"]  # a copy


def test_the_expressions_evaluate_to_the_glued_values() -> None:
    """What jupyterlab-myst asks the kernel, evaluated here after the chapter's glue calls."""
    converted = notebook.for_jupyterlab(_chapter_notebook())
    notebook.glue("stride3_unused", 2, display=False)
    notebook.glue("notes_stride3", "1.67", display=False)
    cell = next(
        c
        for c in converted["cells"]
        if c["cell_type"] == "markdown" and "never used" in c["source"]
    )
    values = [
        eval(e["expression"], {"glued": notebook.glued})
        for e in cell["metadata"]["user_expressions"]
    ]
    assert values[:2] == ["2", "2"]


def test_install_cell_comes_first_once_and_conversion_is_idempotent() -> None:
    requirement = "course-lib[book] @ git+https://example.org/owner/course@main"
    once = notebook.for_jupyterlab(_chapter_notebook(), requirement=requirement)
    code_cells = [c for c in once["cells"] if c["cell_type"] == "code"]
    assert code_cells[0]["source"] == notebook.install_cell_source(requirement)
    assert code_cells[0]["metadata"]["tags"] == ["remove-cell"]
    twice = notebook.for_jupyterlab(once, requirement=requirement)
    assert twice == once
    compile(code_cells[0]["source"], "install cell", "exec")
    with pytest.raises(ValueError, match="non-empty pip requirement"):
        notebook.install_cell_source(" ")


def test_the_command_converts_a_folder_of_chapters(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.notebook", str(ROOT / "book" / "part1"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in tmp_path.rglob("*.ipynb"))
    assert written == sorted(
        p.with_suffix(".ipynb").name for p in (ROOT / "book/part1").glob("*.md")
    )
    converted = json.loads((tmp_path / "padding-stride.ipynb").read_text())
    assert any("{eval}`glued(" in c["source"] for c in converted["cells"])


# ---------------------------------------------------------------------------------------------
# the one repository setting
# ---------------------------------------------------------------------------------------------


def test_repository_requirement_and_binder_links() -> None:
    assert repository_requirement("", "main") is None
    assert (
        repository_requirement("https://example.org/owner/course/", "dev")
        == "course-lib[book] @ git+https://example.org/owner/course@dev"
    )
    Requirement(repository_requirement("https://example.org/owner/course", "main"))  # valid
    with pytest.raises(ValueError, match=r"repository\.url must be an address"):
        repository_requirement("owner/course", "main")
    link = "https://mybinder.org/v2/gh/o/c/main?urlpath=lab/tree/book/part1/pooling.md"
    assert binder_notebook_url(link).endswith("urlpath=lab/tree/notebooks/part1/pooling.ipynb")
    other = "https://example.org/hub/user-redirect/git-pull?urlpath=lab/tree/c/book/x.md"
    assert binder_notebook_url(other) == other


def test_the_config_shows_no_button_that_cannot_work() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"].get("colab_url", "") == "", "Colab cannot open MyST files"
    assert "binder" in config["sphinx"]["config"]["exclude_patterns"]
    assert "notebooks" in config["sphinx"]["config"]["exclude_patterns"]


# ---------------------------------------------------------------------------------------------
# environment files
# ---------------------------------------------------------------------------------------------


def _pins() -> dict[str, str]:
    return {
        Requirement(r).name: str(Requirement(r).specifier)
        for r in PYPROJECT["project"]["dependencies"]
    }


def test_pyproject_installs_jupyterlab_myst_with_jupyterlab() -> None:
    grading = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["grading"]]
    names = {r.name for r in grading}
    assert {"jupyterlab", "jupyterlab-myst"} <= names
    assert any(
        Requirement(r).name == "jupytext"
        for r in PYPROJECT["project"]["optional-dependencies"]["book"]
    )


def test_environment_yml_is_valid_and_pins_what_pyproject_pins() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] and "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = {
        Requirement(r).name: str(Requirement(r).specifier) for r in pip if not r.startswith("-")
    }
    for name in ("torch", "torchvision"):
        assert pinned[name] == _pins()[name]
    assert any(r.startswith("-e .[") and "dev" in r for r in pip), "the course itself, with dev"


def test_binder_files_are_valid() -> None:
    binder = ROOT / "binder"
    runtime = (binder / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11"
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11")
    for line in (binder / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            Requirement(line)
    overrides = json.loads((binder / "overrides.json").read_text())
    viewers = overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook"
    post_build = binder / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs postBuild only if it is executable"
    subprocess.run(["bash", "-n", str(post_build)], check=True)
    script = post_build.read_text()
    assert 'pip install --no-cache-dir -e ".[book,grading]"' in script
    assert "python -m course_lib.notebook book notebooks" in script


# ---------------------------------------------------------------------------------------------
# the wheel, installed into a fresh environment, and the install cell
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True, timeout=300,
    )  # fmt: skip
    (found,) = out.glob("course_lib-*.whl")
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_install_cell_installs_the_wheel_only_where_course_lib_is_missing(
    wheel: Path, tmp_path: Path
) -> None:
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    offline = {
        **os.environ,
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    offline.pop("PYTHONPATH", None)
    found = [
        str(python),
        "-c",
        "import importlib.util; print(importlib.util.find_spec('course_lib') is not None)",
    ]
    assert (
        subprocess.run(
            found, capture_output=True, text=True, env=offline, cwd=tmp_path
        ).stdout.strip()
        == "False"
    )

    cell = notebook.install_cell_source(str(wheel))
    first = subprocess.run(
        [str(python), "-c", cell],
        capture_output=True,
        text=True,
        env=offline,
        cwd=tmp_path,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    assert (
        subprocess.run(
            found, capture_output=True, text=True, env=offline, cwd=tmp_path
        ).stdout.strip()
        == "True"
    )
    # with course_lib there, the cell must not call pip: a requirement that cannot install proves it
    again = subprocess.run(
        [str(python), "-c", notebook.install_cell_source(str(tmp_path / "missing.whl"))],
        capture_output=True, text=True, env=offline, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr

    # the wheel holds the whole package and the command, and its pure parts import without torch
    listing = subprocess.run(
        [str(python), "-c",
         "import importlib.metadata as m; print(*m.files('course-lib'), sep='\\n')"],
        capture_output=True, text=True, env=offline, cwd=tmp_path, check=True,
    ).stdout.split()  # fmt: skip
    for part in ("course_lib/diagrams.py", "course_lib/notebook.py", "course_lib/models/resnet.py",
                 "course_lib/grading/__init__.py", "course_lib/book_ext.py"):  # fmt: skip
        assert part in listing, f"{part} is missing from the wheel"
    assert (env_dir / "bin" / "course").exists(), "the course command was not installed"
    pure = (
        "import importlib.util, sys, sysconfig; from pathlib import Path\n"
        "path = Path(sysconfig.get_paths()['purelib']) / 'course_lib' / 'notebook.py'\n"
        "spec = importlib.util.spec_from_file_location('standalone_notebook', path)\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "assert 'torch' not in sys.modules\n"
        "print(module.format_text('0.5', '.0%'))"
    )
    result = subprocess.run(
        [str(python), "-c", pure], capture_output=True, text=True, env=offline, cwd=tmp_path
    )
    assert result.returncode == 0 and result.stdout.strip() == "50%", result.stderr
