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


# -- architectures ----------------------------------------------------------------------------

ARCHITECTURES_VECTORISED = {
    "batchnorm_forward": """def batchnorm_forward(
    x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
):
    shape = (1, -1, 1, 1)
    if training:
        m = x.size // x.shape[1]
        mean = x.mean(axis=(0, 2, 3))
        var = ((x - mean.reshape(shape)) ** 2).mean(axis=(0, 2, 3))
        running = (
            running_mean + momentum * (mean - running_mean),
            running_var + momentum * (var * m / (m - 1) - running_var),
        )
    else:
        mean, var = running_mean, running_var
        running = (np.array(running_mean), np.array(running_var))
    scale = gamma / np.sqrt(var + eps)
    out = x * scale.reshape(shape) + (beta - mean * scale).reshape(shape)
    return (out, *running)
""",
    "batchnorm_backward": """def batchnorm_backward(dout, x, gamma, eps=1e-5):
    axes = (0, 2, 3)
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    inv_std = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    dx_hat = dout * gamma[None, :, None, None]
    dx = inv_std * (
        dx_hat
        - dx_hat.mean(axis=axes, keepdims=True)
        - x_hat * (dx_hat * x_hat).mean(axis=axes, keepdims=True)
    )
    return dx, np.einsum("nchw,nchw->c", dout, x_hat), np.einsum("nchw->c", dout)
""",
    "fold_batchnorm": """def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    scale = gamma / np.sqrt(running_var + eps)
    b = np.zeros_like(gamma) if b is None else b
    return np.einsum("f,fckl->fckl", scale, w), beta + scale * (b - running_mean)
""",
    "residual_block_forward": """from numpy.lib.stride_tricks import sliding_window_view


def conv2d(x, w, stride=1, padding=0):
    padded = np.pad(x, [(0, 0), (0, 0), (padding, padding), (padding, padding)])
    windows = sliding_window_view(padded, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("ncijab,fcab->nfij", windows, w)


def residual_block_forward(x, w1, w2, stride=1, w_proj=None):
    y = conv2d(np.maximum(conv2d(x, w1, stride, 1), 0), w2, 1, 1)
    shortcut = x if w_proj is None else conv2d(x, w_proj, stride)
    if shortcut.shape != y.shape:
        raise ValueError("shortcut and output differ in shape")
    return np.maximum(y + shortcut, 0)
""",
    "dense_block_forward": """def dense_block_forward(x, weights):
    features = [x]
    for w in weights:
        features.append(conv2d(np.maximum(np.concatenate(features, axis=1), 0), w, 1, 1))
    return np.concatenate(features, axis=1)
""",
}

MOMENTUM_REVERSED = """def batchnorm_forward(
    x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
):
    axes = (0, 2, 3)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        m = x.shape[0] * x.shape[2] * x.shape[3]
        new_mean = momentum * running_mean + (1 - momentum) * mean
        new_var = momentum * running_var + (1 - momentum) * var * m / (m - 1)
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    x_hat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None], new_mean, new_var
"""

NO_FINAL_RELU = """def conv2d(x, w, stride=1, padding=0):
    kh, kw = w.shape[2:]
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out_h = (padded.shape[2] - kh) // stride + 1
    out_w = (padded.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", window, w)
    return out


def residual_block_forward(x, w1, w2, stride=1, w_proj=None):
    y = conv2d(np.maximum(conv2d(x, w1, stride, 1), 0.0), w2, 1, 1)
    shortcut = x if w_proj is None else conv2d(x, w_proj, stride, 0)
    if shortcut.shape != y.shape:
        raise ValueError("the shortcut does not fit")
    return y + shortcut  # the ReLU after the addition is missing
"""

EPS_OUTSIDE = """def batchnorm_backward(dout, x, gamma, eps=1e-5):
    axes = (0, 2, 3)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    std = np.sqrt(x.var(axis=axes, keepdims=True)) + eps
    x_hat = (x - x.mean(axis=axes, keepdims=True)) / std
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * x_hat).sum(axis=axes)
    dx = gamma[None, :, None, None] / std * (
        dout - dbeta[None, :, None, None] / m - x_hat * dgamma[None, :, None, None] / m
    )
    return dx, dgamma, dbeta
"""

TORCH_BATCH_NORM = """import torch
import torch.nn.functional as F


def batchnorm_forward(
    x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
):
    mean, var = torch.tensor(running_mean), torch.tensor(running_var)
    out = F.batch_norm(
        torch.tensor(x), mean, var, torch.tensor(gamma), torch.tensor(beta), training, momentum, eps
    )
    return out.numpy(), mean.numpy(), var.numpy()
"""

ARCHITECTURES_WRONG = {
    "batchnorm_forward": "def batchnorm_forward(x, gamma, beta, running_mean, running_var, "
    "training=True, momentum=0.1, eps=1e-5):\n    return x.copy(), running_mean.copy(), "
    "running_var.copy()\n",
    "batchnorm_backward": "def batchnorm_backward(dout, x, gamma, eps=1e-5):\n"
    "    return dout.copy(), gamma.copy(), gamma.copy()\n",
    "fold_batchnorm": "def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, "
    "eps=1e-5):\n    return w.copy(), beta.copy()\n",
    "residual_block_forward": "def residual_block_forward(x, w1, w2, stride=1, w_proj=None):\n"
    "    return np.maximum(x, 0.0)\n",
    "dense_block_forward": "def dense_block_forward(x, weights):\n    return x.copy()\n",
}


def architectures_class() -> list[Student]:
    return [
        Student("alice"),  # the solution's loops
        Student("bob", answers=ARCHITECTURES_VECTORISED),
        Student("carol", answers={"batchnorm_forward": MOMENTUM_REVERSED}),
        Student("dan", answers={"residual_block_forward": NO_FINAL_RELU}),
        Student("erin", answers=ARCHITECTURES_WRONG, extra_cells=(PATCH_CHECKERS,)),
        Student("frank", answers={"batchnorm_backward": EPS_OUTSIDE}),
        Student("grace", unanswered=True),
        Student("hank", answers={"batchnorm_forward": TORCH_BATCH_NORM}),
    ]


# -- detection --------------------------------------------------------------------------------

DETECTION_VECTORISED = {
    "box_iou": """def box_iou(boxes1, boxes2):
    top_left = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area1 = np.prod(boxes1[:, 2:] - boxes1[:, :2], axis=1)
    area2 = np.prod(boxes2[:, 2:] - boxes2[:, :2], axis=1)
    return inter / (area1[:, None] + area2[None, :] - inter)
""",
    "nms": """def nms(boxes, scores, iou_threshold):
    remaining = list(np.argsort(-scores, kind="stable"))
    keep = []
    while remaining:
        best, rest = remaining[0], np.array(remaining[1:], dtype=np.int64)
        keep.append(best)
        if len(rest) == 0:
            break
        overlaps = box_iou(boxes[best : best + 1], boxes[rest])[0]
        remaining = list(rest[overlaps <= iou_threshold])
    return np.array(keep, dtype=np.int64)
""",
    "batched_nms": """def batched_nms(boxes, scores, labels, iou_threshold):
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    # move each label's boxes far away from the others: one nms for all labels
    offsets = labels.astype(np.float64) * (boxes.max() - boxes.min() + 1.0)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
""",
    "match_detections": """\
def match_detections(pred_boxes, pred_scores, gt_boxes, iou_threshold=0.5):
    flags = np.zeros(len(pred_boxes), dtype=bool)
    free = np.ones(len(gt_boxes), dtype=bool)
    overlaps = box_iou(pred_boxes, gt_boxes)
    for p in sorted(range(len(pred_boxes)), key=lambda i: -pred_scores[i]):
        if not free.any():
            break
        candidates = np.flatnonzero(free)
        g = candidates[np.argmax(overlaps[p, candidates])]
        if overlaps[p, g] >= iou_threshold:
            free[g] = False
            flags[p] = True
    return flags
""",
    "average_precision": """def average_precision(scores, is_true_positive, num_ground_truth):
    if num_ground_truth < 1:
        raise ValueError("no objects to find")
    ranked = np.asarray(is_true_positive)[np.argsort(-scores, kind="stable")]
    ap, best = 0.0, 0.0
    tp = np.cumsum(ranked)
    precision = tp / np.arange(1, len(ranked) + 1)
    for k in range(len(ranked) - 1, -1, -1):  # from the last detection back
        best = max(best, precision[k])
        if ranked[k]:
            ap += best / num_ground_truth
    return float(ap)
""",
    "encode_boxes": """def encode_boxes(anchors, boxes):
    size_a = anchors[:, 2:] - anchors[:, :2]
    size = boxes[:, 2:] - boxes[:, :2]
    centre_a = anchors[:, :2] + size_a / 2
    centre = boxes[:, :2] + size / 2
    return np.concatenate([(centre - centre_a) / size_a, np.log(size / size_a)], axis=1)
""",
    "decode_boxes": """def decode_boxes(anchors, deltas):
    size_a = anchors[:, 2:] - anchors[:, :2]
    centre = anchors[:, :2] + size_a / 2 + deltas[:, :2] * size_a
    size = size_a * np.exp(deltas[:, 2:])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)
""",
}

NMS_GREATER_EQUAL = """def nms(boxes, scores, iou_threshold):
    order = np.argsort(-scores, kind="stable")
    overlaps = box_iou(boxes, boxes)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for i in order:
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i] >= iou_threshold
    return np.array(keep, dtype=np.int64)
"""

AP_NO_ENVELOPE = """def average_precision(scores, is_true_positive, num_ground_truth):
    if num_ground_truth < 1:
        raise ValueError("no objects")
    hits = np.asarray(is_true_positive)[np.argsort(-scores, kind="stable")]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return float(np.sum(precision[hits]) / num_ground_truth)
"""

TORCHVISION_NMS = {
    "nms": """import torch
from torchvision.ops import nms as tv_nms


def nms(boxes, scores, iou_threshold):
    return tv_nms(torch.tensor(boxes), torch.tensor(scores), iou_threshold).numpy()
""",
    "batched_nms": """import torch
import torchvision


def batched_nms(boxes, scores, labels, iou_threshold):
    keep = torchvision.ops.batched_nms(
        torch.tensor(boxes), torch.tensor(scores), torch.tensor(labels), iou_threshold
    )
    return keep.numpy()
""",
}

ENDLESS_MATCH = """def match_detections(pred_boxes, pred_scores, gt_boxes, iou_threshold=0.5):
    flags = np.zeros(len(pred_boxes), dtype=bool)
    p = 0
    while p < len(pred_boxes):  # p is never increased
        flags[p] = True
    return flags
"""

DETECTION_WRONG = {
    "box_iou": "def box_iou(boxes1, boxes2):\n    return np.zeros((len(boxes1), len(boxes2)))\n",
    "nms": "def nms(boxes, scores, iou_threshold):\n    return np.arange(len(boxes))\n",
    "batched_nms": "def batched_nms(boxes, scores, labels, iou_threshold):\n"
    "    return np.arange(len(boxes))\n",
    "match_detections": "def match_detections(pred_boxes, pred_scores, gt_boxes, "
    "iou_threshold=0.5):\n    return np.ones(len(pred_boxes), dtype=bool)\n",
    "average_precision": "def average_precision(scores, is_true_positive, num_ground_truth):\n"
    "    return 1.0\n",
    "encode_boxes": "def encode_boxes(anchors, boxes):\n    return boxes - anchors\n",
    "decode_boxes": "def decode_boxes(anchors, deltas):\n    return anchors + deltas\n",
}


def detection_class() -> list[Student]:
    return [
        Student("alice"),  # the solution's loops
        Student("bob", answers=DETECTION_VECTORISED),
        Student("carol", answers={"nms": NMS_GREATER_EQUAL}),
        Student("dan", answers={"average_precision": AP_NO_ENVELOPE}),
        Student("erin", answers=TORCHVISION_NMS),
        Student("frank", answers=DETECTION_WRONG, extra_cells=(NEUTER_ASSERTS,)),
        Student("grace", answers={"match_detections": ENDLESS_MATCH}),
    ]
