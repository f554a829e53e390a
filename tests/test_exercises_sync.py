"""exercises/ is what nbgrader generates from solutions/, and both notebooks run as intended."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.grading.checks import ASSIGNMENTS, POINTS, test_ids

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT_IDS = list(ASSIGNMENTS)


def exercise_path(root: Path, assignment: str) -> Path:
    return root / "exercises" / assignment / f"{assignment}.ipynb"


def solution_path(assignment: str) -> Path:
    return ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def comparable(nb: nbformat.NotebookNode) -> list[tuple]:
    """What must agree between two generated notebooks: cell type, id, source and nbgrader
    metadata (checksums included); outputs, execution counts and other metadata are ignored."""
    return [
        (cell.cell_type, cell.get("id"), cell.source, dict(cell.metadata.get("nbgrader", {})))
        for cell in nb.cells
    ]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh course directory with the exercises generated from the current solutions."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions", course / "solutions")
    # "*" generates every assignment in one run; --no-db leaves the gradebook alone
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force", "--no-db"],
        cwd=course,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return course


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_committed_exercises_match_a_fresh_generation(regenerated: Path, assignment: str) -> None:
    fresh = nbformat.read(exercise_path(regenerated, assignment), as_version=4)
    committed_path = exercise_path(ROOT, assignment)
    hint = (
        f"exercises/{assignment} is out of date with solutions/{assignment}: run "
        f"`nbgrader generate_assignment {assignment} --force` from the repository root"
    )
    assert committed_path.exists(), hint
    committed = nbformat.read(committed_path, as_version=4)
    assert comparable(committed) == comparable(fresh), hint


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_exercises_hold_no_solution_and_no_hidden_test(assignment: str) -> None:
    nb = nbformat.read(exercise_path(ROOT, assignment), as_version=4)
    text = "\n".join(cell.source for cell in nb.cells)
    for secret in ("### BEGIN SOLUTION", "### END SOLUTION", "BEGIN HIDDEN TESTS", "run_test("):
        assert secret not in text
    answers = {}
    tests = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = cell.source
        if meta.get("grade"):
            tests[meta["grade_id"]] = meta["points"]
            assert meta["locked"]
    assert list(answers) == list(ASSIGNMENTS[assignment])
    for function, source in answers.items():
        assert f"def {function}(" in source
        assert "# YOUR CODE HERE\n    raise NotImplementedError()" in source
    assert tests == {test_id: POINTS[test_id] for test_id in test_ids(assignment)}


def execute(path: Path, allow_errors: bool) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def errors(nb: nbformat.NotebookNode) -> dict[int, str]:
    """Index of each cell that raised -> the exception's name."""
    found = {}
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                found[index] = output.ename
    return found


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_solution_notebook_runs_and_passes_every_test(assignment: str) -> None:
    nb = execute(solution_path(assignment), allow_errors=False)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            # nbgrader gives 0 to a test cell that writes to stderr
            streams = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
            assert not streams, (cell.metadata["nbgrader"]["grade_id"], streams)
    printed = "".join(
        o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []) if "text" in o
    )
    for function in ASSIGNMENTS[assignment]:
        assert f"{function}: visible tests passed" in printed


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_exercise_notebook_fails_only_where_code_is_missing(assignment: str) -> None:
    nb = execute(exercise_path(ROOT, assignment), allow_errors=True)
    visible_tests = {
        i for i, cell in enumerate(nb.cells) if cell.source.startswith("# Visible tests")
    }
    assert len(visible_tests) == len(ASSIGNMENTS[assignment])
    found = errors(nb)
    assert set(found) == visible_tests
    assert set(found.values()) == {"NotImplementedError"}
