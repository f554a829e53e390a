"""``nbgrader validate`` on the released exercises, as a student runs it before submitting.

A notebook with correct answers validates; an untouched one, and one with a typical bug that the
visible tests catch, do not, and the output says which cell failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from grading_fixtures.students import solution_answers

from course_lib.grading.checks import ASSIGNMENTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

# A bug per assignment that the visible tests under the function already catch.
VISIBLE_BUGS = {
    # a flipped kernel: true convolution instead of cross-correlation
    "convolution": (
        "corr2d",
        "def corr2d(x, k):\n"
        "    k = k[::-1, ::-1]\n"
        "    kh, kw = k.shape\n"
        "    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))\n"
        "    for i in range(out.shape[0]):\n"
        "        for j in range(out.shape[1]):\n"
        "            out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)\n"
        "    return out\n",
    ),
    # dilation and the final + 1 forgotten
    "output_shapes": (
        "conv_output_size",
        "def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):\n"
        "    return (n + 2 * padding - kernel_size) // stride\n",
    ),
    # the gradient passed through where x <= 0 too
    "backprop": ("relu_backward", "def relu_backward(dout, x):\n    return dout.copy()\n"),
    # the running statistics never updated
    "architectures": (
        "batchnorm_forward",
        "def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True,\n"
        "                      momentum=0.1, eps=1e-5):\n"
        "    mean = x.mean(axis=(0, 2, 3), keepdims=True)\n"
        "    var = x.var(axis=(0, 2, 3), keepdims=True)\n"
        "    out = gamma.reshape(1, -1, 1, 1) * (x - mean) / np.sqrt(var + eps)\n"
        "    return out + beta.reshape(1, -1, 1, 1), running_mean.copy(), running_var.copy()\n",
    ),
    # the "+ 1" pixel convention
    "detection": (
        "box_iou",
        "def box_iou(boxes1, boxes2):\n"
        "    out = np.zeros((len(boxes1), len(boxes2)))\n"
        "    for i, a in enumerate(boxes1):\n"
        "        for j, b in enumerate(boxes2):\n"
        "            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)\n"
        "            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)\n"
        "            area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)\n"
        "            area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)\n"
        "            out[i, j] = w * h / (area_a + area_b - w * h)\n"
        "    return out\n",
    ),
}


def _student_copy(tmp_path: Path, assignment: str, answers: dict[str, str]) -> Path:
    nb = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
    path = tmp_path / f"{assignment}.ipynb"
    nbformat.write(nb, path)
    return path


def _validate(path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", path.name],
        cwd=path.parent,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_correct_answers_validate(tmp_path: Path, assignment: str) -> None:
    answers = solution_answers(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    output = _validate(_student_copy(tmp_path, assignment, answers))
    assert "Success! Your notebook passes all the tests." in output, output[-3000:]


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_untouched_exercise_does_not_validate(tmp_path: Path, assignment: str) -> None:
    output = _validate(_student_copy(tmp_path, assignment, {}))
    assert "Success" not in output
    assert "VALIDATION FAILED" in output and "NotImplementedError" in output, output[-3000:]


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_a_visible_bug_does_not_validate(tmp_path: Path, assignment: str) -> None:
    answers = solution_answers(ROOT / "solutions" / assignment / f"{assignment}.ipynb")
    function, buggy = VISIBLE_BUGS[assignment]
    answers[function] = buggy
    output = _validate(_student_copy(tmp_path, assignment, answers))
    assert "Success" not in output
    # a later function that builds on this one may fail too
    assert "VALIDATION FAILED ON" in output, output[-3000:]
    assert function in output
