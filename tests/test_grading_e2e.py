"""End to end: the real nbgrader and gradebook on simulated classes, through the ``course`` CLI.

A course folder is made in a temporary directory from the repository's nbgrader_config.py and
solutions/; ``course release`` generates exercises/, simulated students hand in (correct in
different styles, typical bugs, broken, hostile), ``course autograde`` grades them in parallel,
and the test checks the verified scores, nbgrader's agreement on honest notebooks, the flags with
their evidence, the gradebook, the feedback pages (no hidden test in them) and the grades CSV.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from grading_fixtures import students as fixtures

from course_lib.cli import main
from course_lib.grading import checks
from course_lib.grading.feedback import hidden_test_lines

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = "5"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    assert main(["--root", str(root), "release"]) == 0
    for assignment in checks.ASSIGNMENTS:
        assert (root / "exercises" / assignment / f"{assignment}.ipynb").is_file()
    assert (root / "gradebook.db").is_file()
    return root


def autograde(course: Path, assignment: str, students: list[fixtures.Student], capsys) -> dict:
    fixtures.write_class(course, assignment, students)
    capsys.readouterr()
    args = ["--root", str(course), "autograde", assignment, "--jobs", "2"]
    assert main([*args, "--timeout", TIMEOUT, "--memory", "512", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for student in students:
        assert student.name in printed  # the summary table
    report = sorted((course / "reports").glob(f"{assignment}-*.json"))[-1]
    assert report.with_suffix(".md").is_file()
    return json.loads(report.read_text())


def kinds(data: dict, student: str) -> set[str]:
    return {flag["kind"] for flag in data["students"][student]["flags"]}


def failed(data: dict, student: str) -> set[str]:
    tests = data["students"][student]["tests"]
    return {test_id for test_id, test in tests.items() if test["message"] is not None}


def gradebook_scores(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(assignment)}


HONEST = ["alice", "bob", "carol", "dan", "erin", "grace"]


def test_convolution_class(course: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = autograde(course, "convolution", fixtures.convolution_class(), capsys)
    scores = {name: s["score"] for name, s in data["students"].items()}
    assert scores == {
        "alice": 20.0,  # loops
        "bob": 20.0,  # sliding_window_view
        "carol": 17.0,  # flipped kernel: corr2d
        "dan": 17.0,  # window sum instead of mean: both avg-pool tests
        "erin": 12.0,  # syntax error: conv2d_forward
        "grace": 0.0,  # nothing answered
        "hank": 0.0,  # wrong answers behind an AST transformer that neuters failures
        "ivy": 0.0,  # wrong answers behind a custom exception handler
        "jack": 0.0,  # wrong answers behind patched checkers
        "kim": 17.0,  # os._exit in corr2d
        "leo": 17.0,  # reads course files, hard-codes the visible answer of corr2d
        "mia": 13.0,  # endless loop in max pool, memory hog in avg pool
        "olga": 20.0,  # right; prints megabytes, warns on stderr
        "pat": 9.0,  # scipy corr2d, torch conv2d
    }
    students = data["students"]
    # honest notebooks: nbgrader's own score agrees with the verified one, nothing flagged
    for name in HONEST:
        assert students[name]["nbgrader_score"] == scores[name], name
        assert name not in data["suspicious"], name
    # a correct answer that warns on stderr keeps its points (nbgrader may zero a test cell)
    assert failed(data, "olga") == set()
    assert "olga" not in data["suspicious"]
    assert failed(data, "carol") == {"test_corr2d"}
    assert students["carol"]["tests"]["test_corr2d"]["diagnosis"] == "kernel_flipped"
    assert failed(data, "dan") == {"test_avg_pool2d_forward", "test_avg_pool2d_forward_overlap"}
    assert "SyntaxError" in students["erin"]["cell_errors"]["conv2d_forward"]

    # hostile notebooks: no point for a wrong answer, and the evidence
    assert {"ipython-transformer", "tamper-suspected"} <= kinds(data, "hank")
    assert students["hank"]["nbgrader_score"] == 20.0  # nbgrader was fooled; the grade was not
    assert "exception-handler" in kinds(data, "ivy")
    assert {"patches-checker", "tamper-suspected"} <= kinds(data, "jack")
    assert "ends-process" in kinds(data, "kim")
    # os is not among the modules an answer may import: the static check names it
    assert "imports os" in students["kim"]["tests"]["test_corr2d"]["message"]
    leo = data["suspicious"]["leo"]
    assert {"reads-course-files", "reads-files"} <= {f["kind"] for f in leo}
    assert any("solutions" in f["evidence"] or "gradebook" in f["evidence"] for f in leo)
    assert failed(data, "mia") == {
        "test_max_pool2d_forward",
        "test_max_pool2d_forward_overlap",
        "test_avg_pool2d_forward",
        "test_avg_pool2d_forward_overlap",
    }
    assert any("timed out after 5 s" in i for i in students["mia"]["incidents"])
    assert "MemoryError" in students["mia"]["tests"]["test_avg_pool2d_forward"]["message"]
    assert "forbidden-call" in kinds(data, "pat")
    evidence = {f["evidence"] for f in data["suspicious"]["pat"]}
    assert {"import scipy", "import torch"} <= evidence
    assert data["misconceptions"]["kernel_flipped"][0]["student"] == "carol"
    assert not data["gradebook_tampered"]

    # the gradebook holds the verified scores
    assert gradebook_scores(course, "convolution") == scores

    # feedback: every test with its points and diagnosis, never a hidden test's source
    capsys.readouterr()
    assert main(["--root", str(course), "feedback", "convolution"]) == 0
    assert "feedback for 14 students" in capsys.readouterr().out
    hidden = hidden_test_lines(course / "solutions" / "convolution" / "convolution.ipynb")
    assert any("run_test(" in line for line in hidden)
    for name in scores:
        for suffix in (".md", ".html"):
            page = (course / "feedback" / name / "convolution" / f"convolution{suffix}").read_text()
            assert not [line for line in hidden if line in page], name
            assert f"{scores[name]:g} / 20" in page
    carol = (course / "feedback" / "carol" / "convolution" / "convolution.md").read_text()
    assert "`test_corr2d`: failed, 0 / 3 points" in carol
    assert "flipped" in carol


def test_output_shapes_and_backprop_classes(
    course: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shapes = autograde(course, "output_shapes", fixtures.output_shapes_class(), capsys)
    assert {n: s["score"] for n, s in shapes["students"].items()} == {
        "alice": 14.0,
        "bob": 6.0,  # dilation forgotten; runs the modules (forbidden)
        "carol": 0.0,  # wrong answers behind patched checkers
    }
    assert shapes["students"]["alice"]["nbgrader_score"] == 14.0
    assert failed(shapes, "bob") == {
        "test_conv_output_size",
        "test_conv_output_size_errors",
        "test_layer_output_shapes",
        "test_layer_output_shapes_padding",
    }
    assert "forbidden-call" in kinds(shapes, "bob")
    assert {"patches-checker", "tamper-suspected"} <= kinds(shapes, "carol")

    backprop = autograde(course, "backprop", fixtures.backprop_class(), capsys)
    assert {n: s["score"] for n, s in backprop["students"].items()} == {
        "alice": 15.0,
        "bob": 11.0,  # gradient to every tied maximum (fails a visible check too)
        "carol": 0.0,  # wrong answers behind an input transformer
    }
    assert backprop["students"]["alice"]["nbgrader_score"] == 15.0
    assert backprop["students"]["bob"]["nbgrader_score"] == 11.0
    assert backprop["students"]["bob"]["tests"]["test_max_pool2d_backward_ties"]["diagnosis"]
    assert {"ipython-transformer", "tamper-suspected"} <= kinds(backprop, "carol")

    # grades: one row per student and assignment, per-function points and the total
    out = course / "grades.csv"
    assert main(["--root", str(course), "grades", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    by_key = {(r["student"], r["assignment"]): r for r in rows}
    assert float(by_key[("bob", "backprop")]["max_pool2d_backward"]) == 0.0
    assert float(by_key[("bob", "backprop")]["conv2d_backward"]) == 6.0
    assert float(by_key[("bob", "backprop")]["total"]) == 11.0
    assert float(by_key[("bob", "output_shapes")]["conv_output_size"]) == 0.0
    assert float(by_key[("bob", "output_shapes")]["conv2d_num_params"]) == 2.0
    assert float(by_key[("alice", "output_shapes")]["total"]) == 14.0
    assert len([r for r in rows if r["assignment"] == "backprop"]) == 3
