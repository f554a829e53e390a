"""End to end on the assignments of Parts II and III: ``course release``, ``autograde`` and
``feedback`` on simulated classes of the ``architectures`` and ``detection`` assignments.

Like ``test_grading_e2e.py``: a course folder in a temporary directory, the real nbgrader and
gradebook, submissions correct in two styles (the solution's loops, vectorised NumPy), typical
bugs, broken and hostile ones; the verified scores are asserted exactly, with the misconception
each bug is reported under, and the feedback pages name it without showing a hidden test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from grading_fixtures import students as fixtures

from course_lib.cli import main
from course_lib.grading.feedback import hidden_test_lines

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = "5"


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course")
    shutil.copy(REPO / "nbgrader_config.py", root)
    for assignment in ("architectures", "detection"):
        shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    assert main(["--root", str(root), "release"]) == 0
    for assignment in ("architectures", "detection"):
        assert (root / "exercises" / assignment / f"{assignment}.ipynb").is_file()
    return root


def autograde(course: Path, assignment: str, students: list[fixtures.Student], capsys) -> dict:
    fixtures.write_class(course, assignment, students)
    capsys.readouterr()
    args = ["--root", str(course), "autograde", assignment, "--jobs", "2"]
    assert main([*args, "--timeout", TIMEOUT, "--memory", "512", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for student in students:
        assert student.name in printed
    report = sorted((course / "reports").glob(f"{assignment}-*.json"))[-1]
    return json.loads(report.read_text())


def failed(data: dict, student: str) -> dict[str, str | None]:
    """Failed test id -> the misconception it was reported under."""
    tests = data["students"][student]["tests"]
    return {t: test["diagnosis"] for t, test in tests.items() if test["message"] is not None}


def kinds(data: dict, student: str) -> set[str]:
    return {flag["kind"] for flag in data["students"][student]["flags"]}


def check_feedback(course: Path, assignment: str, scores: dict[str, float], capsys) -> None:
    capsys.readouterr()
    assert main(["--root", str(course), "feedback", assignment]) == 0
    assert f"feedback for {len(scores)} students" in capsys.readouterr().out
    hidden = hidden_test_lines(course / "solutions" / assignment / f"{assignment}.ipynb")
    assert any("run_test(" in line for line in hidden)
    for name, score in scores.items():
        for suffix in (".md", ".html"):
            page = (course / "feedback" / name / assignment / f"{assignment}{suffix}").read_text()
            assert not [line for line in hidden if line in page], name
            assert f"{score:g} / 20" in page


def test_architectures_class(course: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = autograde(course, "architectures", fixtures.architectures_class(), capsys)
    scores = {name: s["score"] for name, s in data["students"].items()}
    assert scores == {
        "alice": 20.0,  # loops
        "bob": 20.0,  # vectorised, sliding_window_view and einsum
        "carol": 16.0,  # momentum reversed in the running statistics
        "dan": 16.0,  # no ReLU after the addition (the shape check still raises)
        "erin": 0.0,  # wrong answers behind patched checkers
        "frank": 16.0,  # eps outside the square root in the backward pass
        "grace": 0.0,  # nothing answered
        "hank": 15.0,  # PyTorch's batch norm
    }
    students = data["students"]
    for name in ("alice", "bob", "carol", "dan", "frank", "grace"):
        assert students[name]["nbgrader_score"] == scores[name], name
        assert name not in data["suspicious"], name
    assert failed(data, "carol") == {
        "test_batchnorm_forward": "momentum_reversed",
        "test_batchnorm_forward_running": "momentum_reversed",
    }
    assert failed(data, "dan") == {
        "test_residual_block_forward": "final_relu_missing",
        "test_residual_block_forward_projection": "final_relu_missing",
    }
    assert failed(data, "frank") == {
        "test_batchnorm_backward": "eps_outside_sqrt",
        "test_batchnorm_backward_eps": "eps_outside_sqrt",
    }
    assert {"patches-checker", "tamper-suspected"} <= kinds(data, "erin")
    assert "forbidden-call" in kinds(data, "hank")
    assert set(failed(data, "hank")) == {
        "test_batchnorm_forward",
        "test_batchnorm_forward_running",
        "test_batchnorm_forward_eval",
    }
    assert {e["student"] for e in data["misconceptions"]["momentum_reversed"]} == {"carol"}

    check_feedback(course, "architectures", scores, capsys)
    carol = (course / "feedback" / "carol" / "architectures" / "architectures.md").read_text()
    assert "`test_batchnorm_forward_running`: failed, 0 / 2 points" in carol
    assert "momentum weighs the old running statistics" in carol
    assert "fails the visible checks" not in carol


def test_detection_class(course: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = autograde(course, "detection", fixtures.detection_class(), capsys)
    scores = {name: s["score"] for name, s in data["students"].items()}
    assert scores == {
        "alice": 20.0,  # loops
        "bob": 20.0,  # vectorised; batched NMS by offsetting each label's boxes
        "carol": 16.0,  # NMS suppresses at IoU == threshold
        "dan": 17.0,  # AP without the precision envelope
        "erin": 14.0,  # torchvision.ops.nms and batched_nms
        "frank": 0.0,  # wrong answers behind an AST transformer that neuters failures
        "grace": 16.0,  # an endless loop in match_detections
    }
    students = data["students"]
    for name in ("alice", "bob", "carol", "dan"):
        assert students[name]["nbgrader_score"] == scores[name], name
        assert name not in data["suspicious"], name
    assert failed(data, "carol") == {
        "test_nms": "nms_greater_equal",
        "test_nms_rules": "nms_greater_equal",
    }
    assert failed(data, "dan") == {
        "test_average_precision": "ap_no_envelope",
        "test_average_precision_rules": "ap_no_envelope",
    }
    assert "forbidden-call" in kinds(data, "erin")
    assert set(failed(data, "erin")) == {"test_nms", "test_nms_rules", "test_batched_nms"}
    assert {"ipython-transformer", "tamper-suspected"} <= kinds(data, "frank")
    assert students["frank"]["nbgrader_score"] == 20.0  # nbgrader was fooled; the grade was not
    assert set(failed(data, "grace")) == {"test_match_detections", "test_match_detections_rules"}
    assert any("timed out after 5 s" in i for i in students["grace"]["incidents"])

    check_feedback(course, "detection", scores, capsys)
    carol = (course / "feedback" / "carol" / "detection" / "detection.md").read_text()
    assert "`test_nms`: failed, 0 / 2 points" in carol
    assert "(>= instead of >)" in carol
    assert "fails the visible checks" not in carol
