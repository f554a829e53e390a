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


# --------------------------------------------------------------------------------------------
# the notebooks, the README and the declarations agree
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_solution_notebook_agrees_with_its_declaration(assignment: str) -> None:
    from course_lib.grading.exercises import ASSIGNMENTS as DECLARED
    from course_lib.grading.exercises.notebook import check_notebook

    nb = nbformat.read(solution_path(assignment), as_version=4)
    problems = check_notebook(nb, DECLARED[assignment])
    assert not problems, (
        f"{problems}: run `python scripts/check_solutions.py --fix {assignment}` and regenerate"
    )


def test_check_solutions_finds_and_fixes_a_drift(tmp_path: Path) -> None:
    from course_lib.grading.exercises import ASSIGNMENTS as DECLARED
    from course_lib.grading.exercises.notebook import check_notebook, sync_notebook

    nb = nbformat.read(solution_path("backprop"), as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    test_cell.metadata["nbgrader"]["points"] = 7.0
    test_cell.source = test_cell.source.replace("run_test(", "run_test_renamed(")
    problems = check_notebook(nb, DECLARED["backprop"])
    assert any("7.0 points" in p for p in problems)
    assert any("hidden-test block" in p for p in problems)
    assert sync_notebook(nb, DECLARED["backprop"])
    assert check_notebook(nb, DECLARED["backprop"]) == []
    assert "Visible tests" in test_cell.source  # the visible part is kept


def test_readme_tables_are_the_declarations() -> None:
    from course_lib.grading.exercises import ASSIGNMENTS as DECLARED
    from course_lib.grading.exercises.notebook import readme_tables

    readme = (ROOT / "README.md").read_text()
    students, instructors = readme_tables(DECLARED)
    hint = "the README's tables differ: paste `python scripts/check_solutions.py --readme`"
    assert students in readme, hint
    assert instructors in readme, hint


def _same_argument(a: object, b: object) -> bool:
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and np.allclose(a, b)
        )
    if isinstance(a, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same_argument(x, y) for x, y in zip(a, b, strict=True))
        )
    if callable(a) and callable(b):  # the same scalar function: compare some values
        if type(a).__module__.startswith("torch"):
            return repr(a) == repr(b)
        rng = np.random.default_rng(0)
        points = [rng.standard_normal(2), rng.standard_normal(2)]
        return all(np.isclose(a(p), b(p)) for p in points)
    return a == b


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_visible_tests_call_exactly_the_declared_visible_examples(assignment: str) -> None:
    import numpy as np

    from course_lib.grading import exercises as ex
    from course_lib.grading.exercises.notebook import HIDDEN_BEGIN

    nb = nbformat.read(solution_path(assignment), as_version=4)
    namespace: dict = {}
    exec("import numpy as np\nfrom torch import nn", namespace)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        exercise = ex.exercise_of(meta["grade_id"])
        calls: list[tuple[tuple, dict]] = []
        original = namespace[exercise.name]

        def recorder(*args, _original=original, _calls=calls, **kwargs):
            _calls.append((args, kwargs))
            return _original(*args, **kwargs)

        namespace[exercise.name] = recorder
        exec(cell.source.split(HIDDEN_BEGIN)[0], namespace)
        namespace[exercise.name] = original
        declared = ex.visible_cases(meta["grade_id"])
        assert len(calls) == len(declared), (meta["grade_id"], len(calls), len(declared))
        for (args, kwargs), case in zip(calls, declared, strict=True):
            assert _same_argument(args, case.args), (case.label, args)
            assert kwargs.keys() == case.kwargs.keys(), case.label
            assert all(_same_argument(kwargs[k], case.kwargs[k]) for k in kwargs), case.label
    del np


@pytest.mark.parametrize("assignment", ASSIGNMENT_IDS)
def test_declared_visible_answers_are_the_reference_s(assignment: str) -> None:
    import numpy as np

    from course_lib.grading import exercises as ex

    def close(a: object, b: object) -> bool:
        if isinstance(a, tuple | list) and not isinstance(b, np.ndarray):
            return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
        if a is ex.NO_LITERAL:
            return True
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            b = np.asarray(b)
            return np.shape(a) == b.shape and np.allclose(a, b, atol=1e-4)
        return bool(np.isclose(a, b))

    for f in ex.assignment(assignment).functions:
        judged = 0
        for visible, case in zip(f.visible, f.visible_cases(), strict=True):
            expected = f.expected(case)
            if isinstance(visible.expected, ex.Raised):
                assert isinstance(expected, ex.Raised), case.label
            else:
                assert close(visible.expected, expected), case.label
            judged += visible.expected is not ex.NO_LITERAL
        assert judged, f"{f.name}: no visible example with its answer"
