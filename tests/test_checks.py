"""The hidden-test interface: cases, the reference answers, judging and run_test."""

from __future__ import annotations

import contextlib
import io
import pickle
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.grading import checks, reference
from course_lib.grading.checks import (
    ASSIGNMENTS,
    POINTS,
    Case,
    Raised,
    judge,
    judge_inputs_unmodified,
    make_cases,
    run_test,
    test_ids,
)

ROOT = Path(__file__).resolve().parents[1]


def solution_functions(assignment: str) -> dict:
    """The functions defined by the answer cells of a solution notebook."""
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    namespace: dict = {}
    exec("import numpy as np", namespace)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, namespace)
    return namespace


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# the interface matches the notebooks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_notebook_cells_match_assignments_and_points(assignment: str) -> None:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    answers, tests = [], []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers.append(meta["grade_id"])
            assert f"def {meta['grade_id']}(" in cell.source
        if meta.get("grade"):
            tests.append(meta["grade_id"])
            assert meta["points"] == POINTS[meta["grade_id"]]
            function = checks._FUNCTION_OF[meta["grade_id"]]
            assert f'run_test("{meta["grade_id"]}", {function})' in cell.source
    assert answers == list(ASSIGNMENTS[assignment])
    assert tests == test_ids(assignment)
    for test_id in tests:
        function = checks._FUNCTION_OF[test_id]
        assert re.fullmatch(rf"test_{function}(_[a-z0-9_]+)?", test_id)


def test_points_cover_exactly_the_test_ids() -> None:
    assert sorted(POINTS) == sorted(test_ids())
    assert all(p > 0 for p in POINTS.values())


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test_id", test_ids())
def test_cases_are_picklable_labelled_and_fresh_per_seed(test_id: str) -> None:
    cases = make_cases(test_id, np.random.default_rng(1))
    again = make_cases(test_id, np.random.default_rng(1))
    assert cases
    for case in cases:
        assert isinstance(case, Case)
        assert case.test_id == test_id
        assert case.function == checks._FUNCTION_OF[test_id]
        assert case.label
        copy = pickle.loads(pickle.dumps(case))
        assert copy.label == case.label
    assert [c.label for c in again] == [c.label for c in cases]
    arrays = [a for c in cases for a in c.args if isinstance(a, np.ndarray)]
    if arrays:
        other = make_cases(test_id, np.random.default_rng(2))
        other_arrays = [a for c in other for a in c.args if isinstance(a, np.ndarray)]
        assert any(not np.array_equal(a, b) for a, b in zip(arrays, other_arrays, strict=True))


def test_cases_cover_the_hard_settings() -> None:
    rng = np.random.default_rng(0)
    conv = [
        c for t_id in ASSIGNMENTS["convolution"]["conv2d_forward"] for c in make_cases(t_id, rng)
    ]
    strides = {str(c.kwargs.get("stride", 1)) for c in conv}
    paddings = {str(c.kwargs.get("padding", 0)) for c in conv}
    assert {"2", "3", "(2, 3)", "(3, 1)"} <= strides
    assert {"0", "1", "(2, 1)", "(1, 2)"} <= paddings
    assert any(c.args[2] is None for c in conv) and any(c.args[2] is not None for c in conv)
    assert any(c.args[0].shape[0] > 1 and c.args[0].shape[1] > 1 for c in conv)
    assert any(c.args[1].shape[2] != c.args[1].shape[3] for c in conv)
    # a size that doesn't divide: (H + 2p - k) % s != 0
    assert any(
        (
            c.args[0].shape[2]
            + 2 * reference.pair(c.kwargs.get("padding", 0))[0]
            - c.args[1].shape[2]
        )
        % reference.pair(c.kwargs.get("stride", 1))[0]
        for c in conv
    )
    ties = make_cases("test_max_pool2d_backward_ties", rng)
    for case in ties:
        x = case.args[1]
        assert np.array_equal(x, np.round(x))
    errors = make_cases("test_conv_output_size_errors", rng)
    assert all(isinstance(judge(c, Raised("ValueError", "")), type(None)) for c in errors)


# --------------------------------------------------------------------------------------------
# the reference answers agree with PyTorch
# --------------------------------------------------------------------------------------------


def test_reference_forward_agrees_with_torch(rng: np.random.Generator) -> None:
    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.random(4)
    out = reference.conv2d_forward(x, w, b, (2, 3), (1, 2))
    assert out.dtype == np.float64
    assert np.allclose(out, F.conv2d(t(x), t(w), t(b), (2, 3), (1, 2)).numpy())
    assert np.allclose(reference.conv2d_forward(x, w, None), F.conv2d(t(x), t(w)).numpy())
    image, kernel = rng.standard_normal((6, 7)), rng.standard_normal((3, 2))
    expected = F.conv2d(t(image)[None, None], t(kernel)[None, None])[0, 0].numpy()
    assert np.allclose(reference.corr2d(image, kernel), expected)
    assert np.array_equal(reference.pad2d(image, (1, 2)), np.pad(image, ((1, 1), (2, 2))))
    assert np.allclose(
        reference.max_pool2d_forward(x, (3, 2), (2, 1)), F.max_pool2d(t(x), (3, 2), (2, 1)).numpy()
    )
    assert np.allclose(reference.avg_pool2d_forward(x, 3), F.avg_pool2d(t(x), 3).numpy())


def _autograd(fn, dout: np.ndarray, *inputs: np.ndarray):
    tensors = [t(a).requires_grad_(True) for a in inputs]
    fn(*tensors).backward(t(dout))
    return [tensor.grad.numpy() for tensor in tensors]


def test_reference_backward_agrees_with_autograd(rng: np.random.Generator) -> None:
    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.random(4)
    dout = rng.standard_normal((2, 4, 5, 4))
    dx, dw, db = reference.conv2d_backward(dout, x, w, b, (2, 3), (1, 2))
    ex, ew, eb = _autograd(lambda a, k, c: F.conv2d(a, k, c, (2, 3), (1, 2)), dout, x, w, b)
    assert np.allclose(dx, ex) and np.allclose(dw, ew) and np.allclose(db, eb)
    assert reference.conv2d_backward(dout, x, w, None, (2, 3), (1, 2))[2] is None

    ties = rng.integers(0, 3, (2, 2, 6, 7)).astype(np.float64)
    dout = rng.standard_normal((2, 2, 5, 6))
    (expected,) = _autograd(lambda a: F.max_pool2d(a, 2, 1), dout, ties)
    assert np.allclose(reference.max_pool2d_backward(dout, ties, 2, 1), expected)
    (expected,) = _autograd(lambda a: F.avg_pool2d(a, 2, 1), dout, ties)
    assert np.allclose(reference.avg_pool2d_backward(dout, ties, 2, 1), expected)
    x = rng.integers(-2, 3, (3, 4)).astype(np.float64)
    dout = rng.standard_normal((3, 4))
    assert np.array_equal(reference.relu_backward(dout, x), np.where(x > 0, dout, 0.0))


def test_reference_numerical_gradient_and_shapes() -> None:
    x = np.array([[1.0, -2.0, 0.5]])
    h = 1e-2
    assert np.allclose(reference.numerical_gradient(checks.cubic_sum, x, h=h), 3 * x**2 + h**2)
    assert reference.conv_output_size(7, 3, 2, 1) == 4
    assert reference.pool_output_size(7, 2) == 3
    with pytest.raises(ValueError):
        reference.conv_output_size(3, 5)
    with pytest.raises(ValueError):
        reference.pool_output_size(5, 2, stride=0)
    assert reference.conv2d_output_shape((3, 9, 14), 4, (3, 2), (2, 3), (1, 0)) == (4, 5, 5)
    assert reference.conv2d_num_params(6, 16, (5, 3)) == 16 * 6 * 15 + 16
    layers = [nn.Conv2d(3, 4, 3, padding="same"), nn.MaxPool2d(2), nn.Flatten()]
    assert reference.layer_output_shapes(layers, (3, 9, 10)) == [(4, 9, 10), (4, 4, 5), (80,)]


# --------------------------------------------------------------------------------------------
# judge, judge_inputs_unmodified and run_test
# --------------------------------------------------------------------------------------------


def test_judge_accepts_the_reference_and_names_what_is_wrong() -> None:
    case = make_cases("test_conv2d_forward_stride", np.random.default_rng(3))[0]
    expected = reference.conv2d_forward(*case.args, **case.kwargs)
    assert judge(case, expected) is None
    wrong = expected.copy()
    wrong[0, 0, 0, 0] += 1.0
    message = judge(case, wrong)
    assert message.startswith(f"conv2d_forward, case {case.label}")
    assert "1 of" in message and "values differ" in message
    assert "not written yet" in judge(case, Raised("NotImplementedError", ""))
    assert "raised IndexError: boom" in judge(case, Raised("IndexError", "boom"))


def test_judge_inputs_unmodified_names_the_argument() -> None:
    case = make_cases("test_relu_backward", np.random.default_rng(0))[0]
    dout, x = (a.copy() for a in case.args)
    assert judge_inputs_unmodified(case, (dout, x), {}) is None
    x[0, 0, 0, 0] += 1.0
    assert "the argument x was modified" in judge_inputs_unmodified(case, (dout, x), {})
    layers_case = make_cases("test_layer_output_shapes", np.random.default_rng(0))[0]
    layers = [pickle.loads(pickle.dumps(m)) for m in layers_case.args[0]]
    assert judge_inputs_unmodified(layers_case, (layers, layers_case.args[1]), {}) is None
    with torch.no_grad():
        layers[0].weight.add_(1.0)
    assert "modified" in judge_inputs_unmodified(layers_case, (layers, layers_case.args[1]), {})


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_run_test_passes_the_solutions_silently(assignment: str) -> None:
    functions = solution_functions(assignment)
    stderr = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(stderr):
        for test_id in test_ids(assignment):
            run_test(test_id, functions[checks._FUNCTION_OF[test_id]])
    elapsed = time.perf_counter() - start
    assert stderr.getvalue() == ""
    print(f"{assignment}: hidden tests of the solutions took {elapsed:.2f} s")


def test_run_test_raises_assertion_error_for_wrong_code() -> None:
    def pad2d(x, padding):
        return x

    with pytest.raises(AssertionError, match="pad2d, case"):
        run_test("test_pad2d", pad2d, seed=0)


def test_run_test_is_silent_when_correct_code_warns() -> None:
    functions = solution_functions("backprop")

    def relu_backward(dout, x):
        np.log(np.zeros(1))  # RuntimeWarning: divide by zero
        print("a note", file=__import__("sys").stderr)
        return functions["relu_backward"](dout, x)

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        run_test("test_relu_backward", relu_backward)
    assert stderr.getvalue() == ""


def test_run_test_reports_a_forbidden_call() -> None:
    def corr2d(x, k):
        from scipy.signal import correlate2d

        return correlate2d(x, k, mode="valid")

    with pytest.raises(AssertionError) as caught:
        run_test("test_corr2d", corr2d, seed=0)
    message = str(caught.value)
    assert (
        "uses scipy.signal.correlate2d, which is not allowed: write the loops with NumPy" in message
    )
    from scipy.signal import correlate2d

    assert correlate2d(np.ones((2, 2)), np.ones((1, 1))).shape == (2, 2)


def test_run_test_catches_a_swallowed_forbidden_call() -> None:
    functions = solution_functions("convolution")

    def corr2d(x, k):
        try:
            return np.array(F.conv2d(t(x)[None, None], t(k)[None, None])[0, 0])
        except Exception:
            return functions["corr2d"](x, k)

    with pytest.raises(AssertionError, match=r"uses torch\.nn\.functional\.conv2d"):
        run_test("test_corr2d", corr2d, seed=0)


def test_run_test_stops_an_endless_loop() -> None:
    def corr2d(x, k):
        while True:
            pass

    start = time.perf_counter()
    with pytest.raises(AssertionError, match=r"did not finish within 0\.3 s"):
        run_test("test_corr2d", corr2d, seed=0, time_limit=0.3)
    assert time.perf_counter() - start < 5


def test_run_test_forbids_running_the_layers() -> None:
    def layer_output_shapes(layers, input_shape):
        x = torch.zeros(1, *input_shape)
        shapes = []
        for layer in layers:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
        return shapes

    with pytest.raises(AssertionError, match=r"runs a torch.nn module"):
        run_test("test_layer_output_shapes", layer_output_shapes, seed=0)


@pytest.mark.parametrize("test_id", ASSIGNMENTS["output_shapes"]["layer_output_shapes"])
def test_random_layer_stacks_always_fit_their_input(test_id: str) -> None:
    from course_lib.grading.diagnoses import layer_shapes

    for seed in range(300):
        for case in make_cases(test_id, np.random.default_rng(seed)):
            shapes = layer_shapes(*case.args)
            assert min(min(shape) for shape in shapes) >= 1, (seed, case.label, shapes)
