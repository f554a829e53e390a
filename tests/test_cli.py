"""The ``course`` command and its pieces that need no notebook kernel: verify, release checks,
tamper scanning, reports and feedback (hidden tests never shown)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from grading_fixtures import students as fixtures

from course_lib.cli import check_release, main
from course_lib.grading.autograde import AutogradeRun, StudentResult
from course_lib.grading.feedback import write_feedback
from course_lib.grading.report import ReportError, report_data, summary_table, write_report
from course_lib.grading.verify import TestResult, Verification, scan_source

REPO = Path(__file__).resolve().parents[1]


def _course(tmp_path: Path, assignment: str = "convolution") -> Path:
    """A course folder whose exercise is the solution with the answers replaced by stubs."""
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    source = REPO / "solutions" / assignment / f"{assignment}.ipynb"
    (tmp_path / "solutions" / assignment).mkdir(parents=True)
    shutil.copy(source, tmp_path / "solutions" / assignment)
    nb = nbformat.read(str(source), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = "# YOUR CODE HERE\nraise NotImplementedError()"
        elif meta.get("grade"):
            cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0]
    (tmp_path / "exercises" / assignment).mkdir(parents=True)
    nbformat.write(nb, str(tmp_path / "exercises" / assignment / f"{assignment}.ipynb"))
    return tmp_path


def test_verify_grades_a_notebook_in_the_sandbox(tmp_path: Path, capsys) -> None:
    course = _course(tmp_path)
    vectorised = fixtures.Student("bob", answers=fixtures.VECTORISED)
    flipped = fixtures.Student("carol", answers={"corr2d": fixtures.FLIPPED_CORR2D})
    bob, carol = fixtures.write_class(course, "convolution", [vectorised, flipped])
    assert main(["--root", str(course), "verify", str(bob), "convolution", "--seed", "3"]) == 0
    assert "total 20/20 (seed 3)" in capsys.readouterr().out
    assert main(["--root", str(course), "verify", str(carol), "convolution"]) == 0
    out = capsys.readouterr().out
    assert "test_corr2d                          FAILED 0/3" in out
    assert "flipped" in out and "total 17/20" in out


def test_release_check_finds_solution_and_hidden_test_lines(tmp_path: Path) -> None:
    course = _course(tmp_path)
    assert check_release(course, "convolution") == []
    release = course / "exercises" / "convolution" / "convolution.ipynb"
    nb = nbformat.read(str(release), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('run_test("test_corr2d", corr2d)'))
    nb.cells.append(nbformat.v4.new_code_cell("out = np.zeros((out_h, out_w))"))
    nbformat.write(nb, str(release))
    problems = check_release(course, "convolution")
    assert "solution/hidden line in the exercise: 'run_test(\"test_corr2d\", corr2d)'" in problems
    assert "solution/hidden line in the exercise: 'out = np.zeros((out_h, out_w))'" in problems


def test_commands_outside_a_course_say_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["grades"]) == 2
    assert "no nbgrader_config.py" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("get_ipython().ast_transformers.append(T())", "ipython-transformer"),
        ("ip.input_transformers_cleanup.append(f)", "ipython-transformer"),
        ("get_ipython().set_custom_exc((Exception,), h)", "exception-handler"),
        ("sys.excepthook = hook", "exception-handler"),
        ("np.allclose = lambda *a, **k: True", "patches-checker"),
        ("numpy.testing.assert_allclose = ok", "patches-checker"),
        ("checks.judge = lambda c, o: None", "patches-checker"),
        ("setattr(np, 'allclose', ok)", "patches-checker"),
        ("os._exit(0)", "ends-process"),
        ("open('../../gradebook.db')", "reads-course-files"),
        ("glob.glob('/srv/course/solutions/*')", "reads-course-files"),
    ],
)
def test_scan_source_flags_tampering_with_the_line(source: str, kind: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\n" + source)])
    flags = [f for f in scan_source(nb) if f.kind != "suspicious-code"]
    assert [f.kind for f in flags] == [kind]
    assert flags[0].evidence == f"cell 1, line 2: {source}"


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("import os\nos.walk('/')", "imports os"),
        ("import shutil as s", "imports shutil"),
        ("from pathlib import Path", "imports pathlib"),
        ("exec(code)", "runs code built at run time"),
        ("x = ().__class__.__base__", "reaches the internals of an object (__base__)"),
    ],
)
def test_cells_the_student_added_are_read_as_code(source: str, what: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    flags = [f for f in scan_source(nb) if f.kind == "suspicious-code"]
    assert what in [f.detail for f in flags]
    assert flags[0].evidence.startswith("cell 1, line 1: ")


def test_scan_source_leaves_honest_code_alone() -> None:
    answers = fixtures.solution_answers(REPO / "solutions" / "convolution" / "convolution.ipynb")
    cells = [
        nbformat.v4.new_code_cell(s) for s in [*answers.values(), *fixtures.VECTORISED.values()]
    ]
    assert scan_source(nbformat.v4.new_notebook(cells=cells)) == []


def _run() -> AutogradeRun:
    run = AutogradeRun(assignment="convolution", started="20250101T000000Z", jobs=2)
    verification = Verification(assignment="convolution", student="carol", seed=1)
    message = (
        "corr2d on x (5, 7), k (2, 3): values differ. Likely misconception: the kernel is "
        "flipped (true convolution instead of cross-correlation)."
    )
    verification.tests["test_corr2d"] = TestResult(
        "test_corr2d", "corr2d", 0.0, 3.0, 4, message, "kernel_flipped"
    )
    verification.tests["test_pad2d"] = TestResult("test_pad2d", "pad2d", 1.0, 1.0, 3)
    run.results["carol"] = StudentResult(
        "carol", True, "", {"test_corr2d": 3.0, "test_pad2d": 1.0}, verification
    )
    return run


def test_report_groups_failures_and_compares_with_nbgrader(tmp_path: Path) -> None:
    data = report_data(_run())
    assert data["misconceptions"]["kernel_flipped"][0]["student"] == "carol"
    assert data["students"]["carol"]["score"] == 1.0
    assert data["students"]["carol"]["nbgrader_score"] == 4.0
    table = summary_table(data)
    assert table.splitlines()[0].split() == ["student", "verified", "nbgrader", "flags"]
    assert table.splitlines()[2].split() == ["carol", "1/20", "4", "-"]
    json_path, md_path = write_report(_run(), tmp_path)
    assert json.loads(json_path.read_text())["assignment"] == "convolution"
    assert "### kernel_flipped (1)" in md_path.read_text()


def test_feedback_shows_results_and_withholds_only_a_page_that_would_leak(tmp_path: Path) -> None:
    course = _course(tmp_path)
    run = _run()
    verification = Verification(assignment="convolution", student="dave", seed=2)
    verification.tests["test_corr2d"] = TestResult("test_corr2d", "corr2d", 3.0, 3.0, 4)
    run.results["dave"] = StudentResult("dave", True, "", {"test_corr2d": 3.0}, verification)
    write_report(run, course)
    done = write_feedback(course, "convolution")
    md = (course / "feedback" / "carol" / "convolution" / "convolution.md").read_text()
    assert len(done.pages) == 4 and not done.withheld
    assert "- `test_corr2d`: failed, 0 / 3 points" in md
    assert "kernel is flipped" in md and "**Score: 1 / 20**" in md
    # a message that quotes a hidden test line: carol's page is withheld, dave's is written
    run.results["carol"].verification.tests[
        "test_pad2d"
    ].message = 'failed in run_test("test_pad2d", pad2d)'
    run.started = "20250101T000001Z"
    write_report(run, course)
    (course / "feedback").rename(course / "feedback-before")
    done = write_feedback(course, "convolution")
    assert set(done.withheld) == {"carol"} and "hidden test line" in done.withheld["carol"]
    assert done.students == ["dave"]
    assert not (course / "feedback" / "carol").exists()


def test_feedback_reads_the_reports_its_runs_recorded_not_the_newest_file_name(
    tmp_path: Path,
) -> None:
    course = _course(tmp_path)
    json_path, _ = write_report(_run(), course)
    # a forged report that sorts after every real one is not read
    forged = json.loads(json_path.read_text())
    forged["students"]["carol"]["score"] = 20.0
    (course / "reports" / "convolution-99999999T999999Z.json").write_text(json.dumps(forged))
    write_feedback(course, "convolution")
    md = (course / "feedback" / "carol" / "convolution" / "convolution.md").read_text()
    assert "**Score: 1 / 20**" in md
    # a recorded report whose content changed is refused
    json_path.write_text(json.dumps(forged))
    with pytest.raises(ReportError, match="not the report its run wrote"):
        write_feedback(course, "convolution")
