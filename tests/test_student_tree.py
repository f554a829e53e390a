"""The students' copy of the course holds no instructor material and still works."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat

from course_lib.grading.feedback import hidden_test_lines

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from student_tree import student_tree  # noqa: E402


def test_the_student_tree_has_no_solutions_hidden_tests_or_grader(tmp_path: Path) -> None:
    dest = tmp_path / "students"
    student_tree(dest)
    names = {p.relative_to(dest).as_posix() for p in dest.rglob("*")}
    assert not [n for n in names if n.startswith(("solutions", "tests", "submitted"))]
    assert not [n for n in names if "grading" in n or n.endswith(("gradebook.db", "cli.py"))]
    assert "exercises/convolution/convolution.ipynb" in names
    assert "course_lib/ops/conv.py" in names and "book/part1/convolution.md" in names
    # not a line of a solution or a hidden test in what the students get
    for solution in sorted((REPO / "solutions").glob("*/*.ipynb")):
        hidden = hidden_test_lines(solution)
        for notebook in dest.rglob("*.ipynb"):
            text = "\n".join(c.source for c in nbformat.read(str(notebook), as_version=4).cells)
            assert not [line for line in hidden if line in text], notebook


def test_course_lib_works_without_its_grading_code(tmp_path: Path) -> None:
    dest = tmp_path / "students"
    student_tree(dest)
    code = (
        "import importlib.util, numpy as np, course_lib\n"
        "import torch\n"
        "from course_lib import conv2d\n"
        "assert conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 2, 2)).shape == (1, 1, 2, 2)\n"
        "assert importlib.util.find_spec('course_lib.grading') is None\n"
        "print(course_lib.__file__)\n"
    )
    # without site's .pth files: the course's own editable install would map
    # course_lib.grading back to this repository
    site = sysconfig.get_paths()["purelib"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dest), site])}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=dest,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(dest))
