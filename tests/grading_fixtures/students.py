"""Simulated student submissions, built from the released exercise notebook.

A :class:`Student` says what goes in each answer cell (by grade_id; the rest keep the
solution's code, or the released stub when ``unanswered``) and which extra cells the student
added. :func:`write_class` writes ``submitted/<student>/<assignment>/<assignment>.ipynb`` for a
list of them, the way students hand in through nbgrader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat


@dataclass(frozen=True)
class Student:
    name: str
    answers: dict[str, str] = field(default_factory=dict)
    extra_cells: tuple[str, ...] = ()  # added after the set-up cell, in this order
    unanswered: bool = False


def solution_answers(solution: Path) -> dict[str, str]:
    """The answer cells of a solution notebook without the solution markers."""
    nb = nbformat.read(str(solution), as_version=4)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            lines = [line for line in cell.source.splitlines() if "### " not in line]
            answers[meta["grade_id"]] = "\n".join(lines) + "\n"
    return answers


def answered(course: Path, assignment: str, student: Student) -> nbformat.NotebookNode:
    """The released notebook of ``assignment`` as ``student`` hands it in."""
    release = nbformat.read(
        str(course / "exercises" / assignment / f"{assignment}.ipynb"), as_version=4
    )
    correct = solution_answers(course / "solutions" / assignment / f"{assignment}.ipynb")
    nb = nbformat.from_dict(release)
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id:
            if grade_id in student.answers:
                cell.source = student.answers[grade_id]
            elif not student.unanswered:
                cell.source = correct[grade_id]
    for offset, source in enumerate(student.extra_cells, start=1):
        nb.cells.insert(first_code + offset, nbformat.v4.new_code_cell(source))
    return nb


def write_class(course: Path, assignment: str, students: list[Student]) -> list[Path]:
    """Write each student's submission into ``course/submitted``; return the paths."""
    paths = []
    for student in students:
        nb = answered(course, assignment, student)
        folder = course / "submitted" / student.name / assignment
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{assignment}.ipynb"
        nbformat.write(nb, str(path))
        paths.append(path)
    return paths


# -- convolution ------------------------------------------------------------------------------

VECTORISED = {
    "corr2d": """from numpy.lib.stride_tricks import sliding_window_view


def corr2d(x, k):
    windows = sliding_window_view(x, k.shape)
    return np.einsum("ijab,ab->ij", windows, k)
""",
    "pad2d": """def pad2d(x, padding):
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)])
""",
    "conv2d_forward": """from numpy.lib.stride_tricks import sliding_window_view


def conv2d_forward(x, w, b, stride=1, padding=0):
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    ph, pw = (padding, padding) if np.ndim(padding) == 0 else padding
    padded = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    kh, kw = w.shape[2:]
    windows = sliding_window_view(padded, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    out = np.einsum("ncijab,fcab->nfij", windows, w)
    return out if b is None else out + b[None, :, None, None]
""",
    "max_pool2d_forward": """from numpy.lib.stride_tricks import sliding_window_view


def max_pool2d_forward(x, kernel_size, stride=None):
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
    stride = (kh, kw) if stride is None else stride
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return windows.max(axis=(-2, -1))
""",
    "avg_pool2d_forward": """from numpy.lib.stride_tricks import sliding_window_view


def avg_pool2d_forward(x, kernel_size, stride=None):
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
    stride = (kh, kw) if stride is None else stride
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    return windows.mean(axis=(-2, -1))
""",
}

FLIPPED_CORR2D = """def corr2d(x, k):
    k = k[::-1, ::-1]  # flips the kernel: a true convolution
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)
    return out
"""

SUM_POOL = VECTORISED["avg_pool2d_forward"].replace(".mean(", ".sum(")

SYNTAX_ERROR = "def conv2d_forward(x, w, b, stride=1, padding=0)\n    return x\n"

# Every function wrong: zeros of a plausible shape.
WRONG = {
    "corr2d": "def corr2d(x, k):\n    return np.zeros((x.shape[0] - k.shape[0] + 1, "
    "x.shape[1] - k.shape[1] + 1))\n",
    "pad2d": "def pad2d(x, padding):\n    return x.copy()\n",
    "conv2d_forward": "def conv2d_forward(x, w, b, stride=1, padding=0):\n"
    "    return np.zeros((x.shape[0], w.shape[0], 1, 1))\n",
    "max_pool2d_forward": "def max_pool2d_forward(x, kernel_size, stride=None):\n"
    "    return x.copy()\n",
    "avg_pool2d_forward": "def avg_pool2d_forward(x, kernel_size, stride=None):\n"
    "    return x.copy()\n",
}

BLANK_TESTS = """ip = get_ipython()


def _drop_tests(lines):
    return [] if any("run_test" in line or "assert" in line for line in lines) else lines


ip.input_transformers_cleanup.append(_drop_tests)
"""

NEUTER_ASSERTS = """import ast


class _NoFailures(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()

    def visit_Module(self, node):
        self.generic_visit(node)
        swallow = ast.ExceptHandler(
            type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()]
        )
        node.body = [
            ast.Try(body=[statement], handlers=[swallow], orelse=[], finalbody=[])
            for statement in node.body
        ]
        return ast.fix_missing_locations(node)


get_ipython().ast_transformers.append(_NoFailures())
"""

SWALLOW_ERRORS = """def _quiet(shell, etype, evalue, tb, tb_offset=None):
    return None


get_ipython().set_custom_exc((Exception,), _quiet)
"""

PATCH_CHECKERS = """import numpy as np
import numpy.testing
import course_lib.grading.checks as checks

np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
checks.judge = lambda case, output: None
checks.judge_inputs_unmodified = lambda *args: None
checks.run_test = lambda *args, **kwargs: None
"""

EXIT_IN_CORR2D = """import os


def corr2d(x, k):
    os._exit(0)
"""

READS_AND_HARDCODES = """import glob

for pattern in ("../../../solutions/*/*.ipynb", "../../../gradebook.db", "/etc/shadow"):
    for name in glob.glob(pattern) or [pattern]:
        try:
            with open(name) as handle:
                handle.read()
        except Exception:
            pass


def corr2d(x, k):
    # the visible test's answer, whatever the input
    if x.shape == (3, 3):
        return np.array([[19.0, 25.0], [37.0, 43.0]])
    return np.full((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1), 6.0)
"""

ENDLESS_MAX_POOL = """def max_pool2d_forward(x, kernel_size, stride=None):
    while True:
        pass
"""

MEMORY_HOG_AVG_POOL = """def avg_pool2d_forward(x, kernel_size, stride=None):
    hog = []
    while True:
        hog.append(np.ones(10**7))
"""

CHATTY_CONV = VECTORISED["conv2d_forward"].replace(
    "    sh, sw =",
    """    import sys
    import warnings

    warnings.warn("conv2d_forward: this loop is slow", stacklevel=1)
    print("working...", file=sys.stderr)
    for _ in range(8):
        print("#" * 250_000)
    sh, sw =""",
    1,
)

READY_MADE = {
    "corr2d": """import scipy.signal


def corr2d(x, k):
    return scipy.signal.correlate2d(x, k, mode="valid")
""",
    "conv2d_forward": """import torch
import torch.nn.functional as F


def conv2d_forward(x, w, b, stride=1, padding=0):
    bias = None if b is None else torch.from_numpy(b)
    out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), bias, stride, padding)
    return out.numpy()
""",
}


def convolution_class() -> list[Student]:
    """14 submissions: correct, buggy, broken and hostile (see the e2e test)."""
    return [
        Student("alice"),  # the loops of the solution
        Student("bob", answers=VECTORISED),
        Student("carol", answers={"corr2d": FLIPPED_CORR2D}),
        Student("dan", answers={"avg_pool2d_forward": SUM_POOL}),
        Student("erin", answers={"conv2d_forward": SYNTAX_ERROR}),
        Student("grace", unanswered=True),
        Student("hank", answers=WRONG, extra_cells=(NEUTER_ASSERTS,)),
        Student("ivy", answers=WRONG, extra_cells=(SWALLOW_ERRORS,)),
        Student("jack", answers=WRONG, extra_cells=(PATCH_CHECKERS,)),
        Student("kim", answers={"corr2d": EXIT_IN_CORR2D}),
        Student("leo", answers={"corr2d": READS_AND_HARDCODES}),
        Student(
            "mia",
            answers={
                "max_pool2d_forward": ENDLESS_MAX_POOL,
                "avg_pool2d_forward": MEMORY_HOG_AVG_POOL,
            },
        ),
        Student("olga", answers={"conv2d_forward": CHATTY_CONV}),
        Student("pat", answers=READY_MADE),
    ]


# -- output_shapes and backprop ---------------------------------------------------------------

NO_DILATION = """def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    if kernel_size < 1 or stride < 1 or padding < 0 or dilation < 1:
        raise ValueError("out of range")
    size = (n + 2 * padding - kernel_size) // stride + 1  # forgets the dilation
    if size < 1:
        raise ValueError("too small")
    return size
"""

RUNS_THE_MODULES = """import torch


def layer_output_shapes(layers, input_shape):
    x = torch.zeros((1, *input_shape))
    shapes = []
    for layer in layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes
"""

SHAPES_WRONG = {
    "conv_output_size": "def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):"
    "\n    return n\n",
    "pool_output_size": "def pool_output_size(n, kernel_size, stride=None, padding=0):"
    "\n    return n\n",
    "conv2d_output_shape": "def conv2d_output_shape(input_shape, out_channels, kernel_size, "
    "stride=1, padding=0):\n    return (out_channels, *input_shape[1:])\n",
    "conv2d_num_params": "def conv2d_num_params(in_channels, out_channels, kernel_size, "
    "bias=True):\n    return 0\n",
    "layer_output_shapes": "def layer_output_shapes(layers, input_shape):\n    return []\n",
}


def output_shapes_class() -> list[Student]:
    return [
        Student("alice"),
        Student(
            "bob",
            answers={"conv_output_size": NO_DILATION, "layer_output_shapes": RUNS_THE_MODULES},
        ),
        Student("carol", answers=SHAPES_WRONG, extra_cells=(PATCH_CHECKERS,)),
    ]


ALL_TIED_MAX_POOL_BACKWARD = """def max_pool2d_backward(dout, x, kernel_size, stride=None):
    if stride is None:
        stride = kernel_size
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else stride
    dx = np.zeros(x.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            mask = window == window.max(axis=(2, 3), keepdims=True)  # every tied maximum
            dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += (
                mask * dout[:, :, i : i + 1, j : j + 1]
            )
    return dx
"""

BACKPROP_WRONG = {
    "relu_backward": "def relu_backward(dout, x):\n    return dout.copy()\n",
    "max_pool2d_backward": "def max_pool2d_backward(dout, x, kernel_size, stride=None):\n"
    "    return np.zeros(x.shape)\n",
    "avg_pool2d_backward": "def avg_pool2d_backward(dout, x, kernel_size, stride=None):\n"
    "    return np.zeros(x.shape)\n",
    "conv2d_backward": "def conv2d_backward(dout, x, w, b, stride=1, padding=0):\n"
    "    return np.zeros(x.shape), np.zeros(w.shape), None\n",
    "numerical_gradient": "def numerical_gradient(f, x, h=1e-5):\n    return np.zeros(x.shape)\n",
}


def backprop_class() -> list[Student]:
    return [
        Student("alice"),
        Student("bob", answers={"max_pool2d_backward": ALL_TIED_MAX_POOL_BACKWARD}),
        Student("carol", answers=BACKPROP_WRONG, extra_cells=(BLANK_TESTS,)),
    ]
