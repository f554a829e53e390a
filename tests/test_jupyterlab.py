"""A student's session in real JupyterLab, driven in headless Chromium.

A JupyterLab server (with nbgrader's extensions) serves a copy of an exercise notebook. The
student types an answer into each answer cell, saves, runs every cell and presses nbgrader's
*Validate* button; the dialog must report success. An untouched exercise must fail validation and
say why. Screenshots go to ``artifacts/jupyterlab/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from grading_fixtures.students import solution_answers

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "convolution"
TOKEN = "course-test-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(workdir: Path) -> Iterator[tuple[str, Path]]:
    """Run a JupyterLab server on 127.0.0.1 rooted at ``workdir`` until the generator closes."""
    port = _free_port()
    log = workdir.with_name(f"{workdir.name}-jupyterlab.log").open("w")
    # JupyterLab 4's windowed notebook renders only the cells in view and throws from its own
    # code when a cell is scrolled to while it re-measures (seen now and then as "Cannot read
    # properties of undefined (reading 'node')"). The tests read every cell, so every cell is
    # rendered: windowing off, in this server's own settings folder.
    settings = workdir.with_name(f"{workdir.name}-settings")
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(workdir.with_name(f"{workdir.name}-config")),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
    }
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={TOKEN}",
            f"--ServerApp.root_dir={workdir}", "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=None", "--allow-root",
        ],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; see {log.name}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", workdir
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server on 127.0.0.1 whose root holds two copies of the exercise."""
    workdir = tmp_path_factory.mktemp("student")
    exercise = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    shutil.copy(exercise, workdir / "answered.ipynb")
    shutil.copy(exercise, workdir / "untouched.ipynb")
    yield from _serve(workdir)


def _new_page(browser):
    """A page of the session's Chromium and the list its uncaught JavaScript errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc} {exc.stack}"))
    return page, errors


def _open_notebook(browser, base_url: str, name: str):
    page, errors = _new_page(browser)
    # `reset` starts from an empty workspace, so only this notebook is open.
    page.goto(f"{base_url}/lab/tree/{name}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_function("window.jupyterapp !== undefined", timeout=60_000)
    # Wait until the kernel is connected and idle before the student starts working.
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    mode = page.evaluate(
        "window.jupyterapp.shell.currentWidget.content.notebookConfig.windowingMode"
    )
    assert mode == "none", f"the server's settings were not applied (windowing mode {mode!r})"
    return page, errors


def _answer_cell_indices(page) -> dict[str, int]:
    """grade_id -> index of each answer cell, once the notebook's cells have loaded."""
    handle = page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            if (!panel || !panel.content || !panel.context || !panel.context.isReady) {
                return null;
            }
            const found = {};
            panel.content.widgets.forEach((cell, index) => {
                const meta = cell.model.getMetadata('nbgrader');
                if (meta && meta.solution) { found[meta.grade_id] = index; }
            });
            return Object.keys(found).length ? found : null;
        }""",
        timeout=60_000,
    )
    return handle.json_value()


def _wait_for_ready_kernel(page) -> None:
    """Wait until the notebook's document and kernel session are ready and the kernel has
    answered ``kernel_info`` on this page's connection.

    On a loaded machine a new connection now and then never gets that answer: its status reads
    idle and connected, but nothing sent on it reaches the kernel, so a Run All runs no cell.
    What a student does then, the test does: Kernel > Reconnect to Kernel, and if that does not
    help, restart the kernel (nothing has run yet, so nothing is lost)."""
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            return Boolean(panel && panel.context && panel.context.isReady
                           && panel.content.activeCell && panel.sessionContext
                           && panel.sessionContext.isReady
                           && panel.sessionContext.session?.kernel);
        }""",
        timeout=90_000,
    )
    answered = """async () => {
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        const timeout = new Promise(resolve => setTimeout(() => resolve(false), 20000));
        return Promise.race([kernel.info.then(() => true), timeout]);
    }"""
    remedy = "m => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel[m]()"
    for method in ["reconnect", "restart", None]:
        if page.evaluate(answered):
            break
        assert method is not None, "the kernel never answered kernel_info on this connection"
        print(f"no kernel_info reply in 20 s; trying {method}", file=sys.stderr)
        page.evaluate(remedy, method)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)


def _run_all_cells(page, timeout_ms: int) -> None:
    """Run -> Run All Cells, then wait until every code cell has run and the kernel is idle."""
    state = """() => {
        const panel = window.jupyterapp.shell.currentWidget;
        const cells = panel.content.widgets.filter(c => c.model.type === 'code');
        const failed = cells.findIndex(c => Array.from({length: c.model.outputs.length},
            (_, i) => c.model.outputs.get(i).type).includes('error'));
        return {total: cells.length, failed,
                waiting: cells.filter(c => c.model.executionCount === null).length};
    }"""
    _wait_for_ready_kernel(page)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    try:
        page.wait_for_function(
            f"() => {{ const s = ({state})(); return s.waiting === 0 || s.failed >= 0; }}",
            timeout=timeout_ms,
        )
    except Exception as error:  # say how far Run All got, and what the kernel was doing
        kernel = page.evaluate(
            """() => {
                const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel;
                return kernel ? {status: kernel.status, connection: kernel.connectionStatus}
                              : 'no kernel';
            }"""
        )
        raise AssertionError(
            f"Run All did not finish: {page.evaluate(state)}; kernel: {kernel}"
        ) from error
    result = page.evaluate(state)
    assert result["failed"] < 0, f"code cell {result['failed']} raised an error: {result}"
    page.wait_for_selector(
        ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_ms
    )


def _validate(page, artifacts: Path, name: str) -> str:
    """Press nbgrader's Validate button and return the text of the dialog it opens."""
    # Earlier notebooks may stay open in hidden tabs: press the button of the visible one.
    page.get_by_role("button", name="Validate").locator("visible=true").first.click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=180_000)
    # The dialog first says that validation is running; wait for the verdict.
    page.wait_for_function(
        "() => { const d = document.querySelector('.jp-Dialog');"
        " return d && /Success|fail|error/i.test(d.innerText); }",
        timeout=180_000,
    )
    page.screenshot(path=str(artifacts / f"{name}-validate.png"))
    return dialog.inner_text()


def test_student_answers_runs_and_validates(lab, browser, artifacts_dir: Path) -> None:
    base_url, workdir = lab
    shots = artifacts_dir / "jupyterlab"
    shots.mkdir(exist_ok=True)
    answers = solution_answers(ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    page, errors = _open_notebook(browser, base_url, "answered.ipynb")
    cells = _answer_cell_indices(page)
    assert set(cells) == set(answers), "the exercise's answer cells differ from the solution's"

    # Type each answer the way a student does: click into the cell, select its stub, type.
    for grade_id, index in cells.items():
        editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        page.keyboard.press("Control+A")
        page.keyboard.insert_text(answers[grade_id])
    page.keyboard.press("Escape")
    page.keyboard.press("Control+S")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
    )

    # Run every cell; no cell may show an error.
    _run_all_cells(page, timeout_ms=180_000)
    page.screenshot(path=str(shots / "answered-run.png"))
    assert (
        page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
        ).count()
        == 0
    )
    assert not errors, f"JavaScript errors in JupyterLab: {errors}"

    saved = json.loads((workdir / "answered.ipynb").read_text())
    saved_sources = {
        c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"])
        for c in saved["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution")
    }
    assert all("NotImplementedError" not in src for src in saved_sources.values())

    verdict = _validate(page, shots, "answered")
    assert re.search(r"Success", verdict), verdict
    page.close()


def test_untouched_exercise_fails_validation(lab, browser, artifacts_dir: Path) -> None:
    base_url, _ = lab
    shots = artifacts_dir / "jupyterlab"
    shots.mkdir(exist_ok=True)
    page, errors = _open_notebook(browser, base_url, "untouched.ipynb")
    verdict = _validate(page, shots, "untouched")
    assert not re.search(r"Success", verdict), verdict
    assert "NotImplementedError" in verdict or re.search(r"fail", verdict, re.I), verdict
    assert not errors, f"JavaScript errors in JupyterLab: {errors}"
    page.close()


CHAPTER = "padding-stride"


@pytest.fixture(scope="module")
def chapter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server whose root holds a copy of a chapter of the book."""
    workdir = tmp_path_factory.mktemp("reader")
    shutil.copy(ROOT / "book" / "part1" / f"{CHAPTER}.md", workdir / f"{CHAPTER}.md")
    yield from _serve(workdir)


def test_reader_runs_a_chapter_and_moves_its_explorer(chapter_lab, browser, artifacts_dir) -> None:
    """A chapter opened as a notebook runs top to bottom, and its explorer answers the sliders."""
    base_url, _ = chapter_lab
    shots = artifacts_dir / "jupyterlab"
    shots.mkdir(exist_ok=True)
    page, errors = _new_page(browser)
    page.goto(f"{base_url}/lab?reset&token={TOKEN}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.wait_for_selector(".jp-DirListing-item", timeout=60_000)
    # What a reader does with right-click > Open With > Jupytext Notebook.
    page.evaluate(
        f"window.jupyterapp.commands.execute('docmanager:open',"
        f" {{path: '{CHAPTER}.md', factory: 'Jupytext Notebook'}})"
    )
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    _run_all_cells(page, timeout_ms=300_000)
    error_outputs = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
    )
    assert error_outputs.count() == 0, error_outputs.first.inner_text()

    # The explorer: its label writes the output-size formula with the sliders' numbers.
    slider = page.locator(".widget-slider", has_text="stride s").first
    slider.scroll_into_view_if_needed()
    formula_text = (
        "() => Array.from(document.querySelectorAll('.jupyter-widgets'))"
        ".map(e => e.textContent).filter(t => t.includes('⌊(') && t.length < 200)"
    )
    before = page.evaluate(formula_text)
    assert before and all("/ 1⌋" in text for text in before), before
    page.screenshot(path=str(shots / "explorer-before.png"))
    slider.locator(".noUi-handle, .slider-handle, [role=slider]").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.jupyter-widgets'))"
        ".some(e => e.textContent.includes('/ 2⌋'))",
        timeout=30_000,
    )
    page.screenshot(path=str(shots / "explorer-after.png"))
    assert not errors, f"JavaScript errors in JupyterLab: {errors}"
    page.close()


@pytest.fixture(scope="module")
def converted_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A JupyterLab server whose root holds a chapter converted for JupyterLab, the way
    ``binder/postBuild`` and the website's download button make it."""
    workdir = tmp_path_factory.mktemp("converted")
    subprocess.run(
        [sys.executable, "-m", "course_lib.notebook",
         str(ROOT / "book" / "part1" / f"{CHAPTER}.md"), str(workdir)],
        check=True, timeout=120,
    )  # fmt: skip
    yield from _serve(workdir)


def test_a_converted_chapter_renders_myst_and_its_glued_numbers(
    converted_lab, browser, artifacts_dir
) -> None:
    """With jupyterlab-myst, dropdowns and math render, and after Run All the glued
    numbers stand in the text (not their keys)."""
    base_url, _ = converted_lab
    shots = artifacts_dir / "jupyterlab"
    shots.mkdir(exist_ok=True)
    page, errors = _open_notebook(browser, base_url, f"{CHAPTER}.ipynb")
    plugins = page.evaluate("window.jupyterapp.listPlugins().filter(p => p.includes('myst'))")
    assert any("jupyterlab-myst" in p for p in plugins), plugins
    _run_all_cells(page, timeout_ms=300_000)

    def rendered(needle: str) -> str:
        """The rendered text of the markdown cell whose source contains ``needle``."""
        index = page.evaluate(
            "n => window.jupyterapp.shell.currentWidget.content.widgets"
            ".findIndex(c => c.model.type === 'markdown'"
            " && c.model.sharedModel.getSource().includes(n))",
            needle,
        )
        assert index >= 0, f"no markdown cell with {needle!r}"
        page.evaluate(
            "async i => { const nb = window.jupyterapp.shell.currentWidget.content;"
            " nb.activeCellIndex = i; await nb.scrollToItem(i, 'center'); }",
            index,
        )
        page.wait_for_function(
            "i => { const c = window.jupyterapp.shell.currentWidget.content.widgets[i];"
            " return c.rendered && !c.node.innerText.includes('glued('); }",
            arg=index,
            timeout=60_000,
        )
        return page.evaluate(
            "i => window.jupyterapp.shell.currentWidget.content.widgets[i].node.innerText", index
        )

    text = rendered("never used")
    page.screenshot(path=str(shots / "converted-glue.png"))
    assert "The last 2 rows and the last 2 columns" in text, text
    assert "stride3_unused" not in text and "{glue" not in text
    # the notes' formula with the number the next cell computes
    assert "1.67" in rendered("without the floor")
    # dropdowns of the questions render as MyST dropdowns, not as code
    questions = rendered("Check your understanding")
    assert "{dropdown}" not in questions
    dropdowns = page.locator(".jp-MarkdownCell details")
    assert dropdowns.count() >= 3, "the questions did not render as dropdowns"
    # math renders as typeset math, not as dollar signs
    assert page.locator(".jp-MarkdownCell .katex, .jp-MarkdownCell mjx-container").count() > 0
    assert not errors, f"JavaScript errors in JupyterLab: {errors}"
    page.close()
