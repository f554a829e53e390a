"""The hidden-test interface: the declarations, cases, the reference answers, judging and run_test.

Besides the interface, this checks that the hidden tests test every clause of the contract
(pairs with different height and width in every position, sizes where floor division and
truncation disagree, empty inputs, ties) and, mutation-style, that an answer which drops one
clause fails a hidden test.
"""

from __future__ import annotations

import contextlib
import inspect
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

import course_lib
from course_lib.grading import checks, reference
from course_lib.grading import exercises as ex
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
from course_lib.grading.diagnoses import explain

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


ALL = {name: f for a in ASSIGNMENTS for name, f in solution_functions(a).items() if callable(f)}


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
    case = ex.hidden_cases("test_relu_backward", np.random.default_rng(0))[0]
    dout, x = (a.copy() for a in case.args)
    assert judge_inputs_unmodified(case, (dout, x), {}) is None
    x[0, 0, 0, 0] += 1.0
    assert "the argument x was modified" in judge_inputs_unmodified(case, (dout, x), {})
    layers_case = ex.hidden_cases("test_layer_output_shapes", np.random.default_rng(0))[0]
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


# --------------------------------------------------------------------------------------------
# the declarations
# --------------------------------------------------------------------------------------------


def test_declarations_are_one_per_function_with_plain_data_policies() -> None:
    from course_lib.grading import guard

    names = [f.name for a in ex.ASSIGNMENTS.values() for f in a.functions]
    assert len(names) == len(set(names)) == len(ex.FUNCTIONS) == 27
    ids = [t for a in ex.ASSIGNMENTS.values() for t in a.test_ids]
    assert len(ids) == len(set(ids))
    for f in ex.FUNCTIONS.values():
        parameters = inspect.signature(f.reference_function()).parameters
        assert set(f.pair_arguments) <= set(parameters), f.name
        assert f.tests and f.summary and f.misconceptions
        for field_name in ("allowed_imports", "forbidden_names", "sandbox_packages", "guards"):
            value = getattr(f, field_name)
            assert isinstance(value, tuple) and all(isinstance(v, str) for v in value)
        assert "numpy" in f.allowed_imports and f.sandbox_packages[0] == "numpy"
        assert set(f.sandbox_packages) <= {"numpy", "torch"}
        assert all(hasattr(guard, g) for g in f.guards)
        assert all("." in name for name in f.forbidden_names)
        assert f"course_lib.grading.reference.{f.name}" == f.reference
    needs_torch = {f.name for f in ex.FUNCTIONS.values() if "torch" in f.sandbox_packages}
    assert needs_torch == {"layer_output_shapes"}
    assert "torchvision.ops.*" in ex.function("nms").forbidden_names
    assert "torch.nn.functional.batch_norm" in ex.function("batchnorm_forward").forbidden_names
    assert "numpy.convolve" in ex.function("corr2d").forbidden_names
    assert ex.policy("detection")["sandbox_packages"] == ("numpy",)


def test_the_compatibility_names_derive_from_the_declarations() -> None:
    assert list(ASSIGNMENTS) == list(ex.ASSIGNMENTS)
    for name, a in ex.ASSIGNMENTS.items():
        assert ASSIGNMENTS[name] == {f.name: f.test_ids for f in a.functions}
        assert sum(POINTS[t] for t in a.test_ids) == a.points
    assert sum(a.points for a in ex.ASSIGNMENTS.values()) == 89
    rng = np.random.default_rng(4)
    cases = make_cases("test_corr2d", rng)
    visible = ex.visible_cases("test_corr2d")
    assert [c.label for c in cases[: len(visible)]] == [c.label for c in visible]
    assert all(c.visible for c in visible) and not any(c.visible for c in cases[len(visible) :])
    assert ex.visible_cases("test_conv2d_forward_stride") == []  # only the first test has them
    with pytest.raises(KeyError, match="unknown test id"):
        ex.visible_cases("test_nothing")


def test_verdicts_are_data_and_the_text_derives_from_them() -> None:
    case = ex.hidden_cases("test_corr2d", np.random.default_rng(0))[0]
    x, k = case.args
    verdict = ex.judge_verdict(case, reference.corr2d(x, k[::-1, ::-1]))
    assert verdict == ex.Verdict(False, verdict.message, "kernel_flipped")
    assert judge(case, reference.corr2d(x, k[::-1, ::-1])) == verdict.feedback
    assert verdict.feedback == f"{verdict.message}\n{explain('kernel_flipped')}"
    assert ex.judge_verdict(case, reference.corr2d(x, k)) == ex.PASS
    assert judge(case, reference.corr2d(x, k)) is None


def test_every_diagnosis_key_has_one_text() -> None:
    seen: dict[str, object] = {}
    for f in ex.FUNCTIONS.values():
        for key, d in f.diagnoses.items():
            assert d.key == key
            assert seen.setdefault(key, d) == d, key
    from course_lib.grading.diagnoses import DIAGNOSES

    assert DIAGNOSES == seen


@pytest.mark.parametrize(
    "module", ["course_lib.grading._case_functions", "course_lib.grading.exercises"]
)
def test_what_the_sandbox_unpickles_imports_only_numpy(module: str) -> None:
    # the process that runs student code holds a bare course_lib package and NumPy
    code = f"""
import importlib.abc, sys, types
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision", "scipy"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
package = types.ModuleType("course_lib")
package.__path__ = [{str(ROOT / "course_lib")!r}]
sys.modules["course_lib"] = package
import {module}
print(sorted({{m.partition(".")[0] for m in sys.modules}} & {{"torch", "scipy", "torchvision"}}))
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_cases_holding_functions_pickle_by_reference_to_the_numpy_only_module() -> None:
    for test_id in ex.function("numerical_gradient").test_ids:
        for case in make_cases(test_id, np.random.default_rng(0)):
            assert case.args[0].__module__ == "course_lib.grading._case_functions"
            assert b"course_lib.grading._case_functions" in pickle.dumps(case)


# --------------------------------------------------------------------------------------------
# the new references agree with PyTorch, torchvision and independent implementations
# --------------------------------------------------------------------------------------------


def test_batchnorm_references_agree_with_course_lib_and_the_formula(
    rng: np.random.Generator,
) -> None:
    x = rng.standard_normal((4, 3, 2, 5)) * 3 + 1
    gamma, beta = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    out, new_mean, new_var = reference.batchnorm_forward(x, gamma, beta, mean, var, True, 0.3, 1e-3)
    m = x.shape[0] * x.shape[2] * x.shape[3]
    batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    x_hat = (x - batch_mean[None, :, None, None]) / np.sqrt(batch_var[None, :, None, None] + 1e-3)
    assert np.allclose(out, gamma[None, :, None, None] * x_hat + beta[None, :, None, None])
    assert np.allclose(new_mean, 0.7 * mean + 0.3 * batch_mean)
    assert np.allclose(new_var, 0.7 * var + 0.3 * batch_var * m / (m - 1))
    out, same_mean, same_var = reference.batchnorm_forward(x, gamma, beta, mean, var, False)
    expected = course_lib.batch_norm(t(x), t(gamma), t(beta), t(mean), t(var), training=False)
    assert np.allclose(out, expected.numpy())
    assert np.array_equal(same_mean, mean) and np.array_equal(same_var, var)
    dout = rng.standard_normal(x.shape)
    dx, dgamma, dbeta = reference.batchnorm_backward(dout, x, gamma, eps=0.1)
    ex_, eg, eb = course_lib.batch_norm_backward(t(dout), t(x), t(gamma), eps=0.1)
    assert np.allclose(dx, ex_.numpy()) and np.allclose(dgamma, eg.numpy())
    assert np.allclose(dbeta, eb.numpy())


def test_fold_reference_gives_a_convolution_equal_to_conv_then_batch_norm(
    rng: np.random.Generator,
) -> None:
    w, b = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), rng.uniform(0.1, 2, 4)
    x = rng.standard_normal((2, 3, 6, 5))
    for bias in (b, None):
        w_f, b_f = reference.fold_batchnorm(w, bias, gamma, beta, mean, var, eps=0.01)
        assert b_f.shape == (4,)
        folded = F.conv2d(t(x), t(w_f), t(b_f)).numpy()
        conv = F.conv2d(t(x), t(w), None if bias is None else t(bias))
        expected = F.batch_norm(conv, t(mean), t(var), t(gamma), t(beta), False, eps=0.01)
        assert np.allclose(folded, expected.numpy())


def test_block_references_agree_with_course_lib_convolutions(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 7, 6))
    w1, w2 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((4, 4, 3, 3))
    w_proj = rng.standard_normal((4, 3, 1, 1))
    h = course_lib.conv2d(t(x), t(w1), None, stride=2, padding=1).clamp(min=0)
    y = course_lib.conv2d(h, t(w2), None, stride=1, padding=1)
    shortcut = course_lib.conv2d(t(x), t(w_proj), None, stride=2, padding=0)
    expected = (y + shortcut).clamp(min=0).numpy()
    assert np.allclose(reference.residual_block_forward(x, w1, w2, 2, w_proj), expected)
    with pytest.raises(ValueError, match="w_proj"):
        reference.residual_block_forward(x[:, :1], w1[:, :1], w2)
    weights = [rng.standard_normal((2, 3 + 2 * i, 3, 3)) for i in range(3)]
    features = t(x)
    for w in weights:
        new = course_lib.conv2d(features.clamp(min=0), t(w), None, padding=1)
        features = torch.cat([features, new], dim=1)
    assert np.allclose(reference.dense_block_forward(x, weights), features.numpy())
    assert np.array_equal(reference.dense_block_forward(x, []), x)


def test_box_references_agree_with_torchvision(rng: np.random.Generator) -> None:
    from torchvision import ops

    corners = rng.uniform(0, 10, (12, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0.5, 4, (12, 2))], axis=1)
    boxes[5] = boxes[4]  # a duplicate
    boxes[7] = [boxes[6, 2], boxes[6, 1], boxes[6, 2] + 1.0, boxes[6, 3]]  # touching edges
    scores = rng.integers(0, 4, 12).astype(np.float64)  # many ties
    labels = rng.integers(0, 3, 12)
    assert np.allclose(reference.box_iou(boxes, boxes[:8]), ops.box_iou(t(boxes), t(boxes[:8])))
    assert reference.box_iou(boxes[:0], boxes).shape == (0, 12)
    for threshold in (0.1, 0.3, 0.6, 1.0):
        assert np.array_equal(
            reference.nms(boxes, scores, threshold), ops.nms(t(boxes), t(scores), threshold)
        )
        expected = ops.batched_nms(t(boxes), t(scores), torch.from_numpy(labels), threshold)
        assert np.array_equal(reference.batched_nms(boxes, scores, labels, threshold), expected)
    empty = reference.nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert empty.dtype == np.int64 and empty.shape == (0,)
    for test_id in ("test_nms", "test_nms_rules", "test_batched_nms"):
        for case in ex.hidden_cases(test_id, rng):
            tensors = [t(a) if a.dtype.kind == "f" else torch.from_numpy(a) for a in case.args[:-1]]
            ready_made = ops.nms if case.function == "nms" else ops.batched_nms
            expected = ready_made(*tensors, case.args[-1]).numpy()
            assert np.array_equal(ex.function(case.function).expected(case), expected), case.label


def test_box_coding_references_agree_with_torchvision_s_box_coder(rng: np.random.Generator) -> None:
    from torchvision.models.detection._utils import BoxCoder

    corners = rng.uniform(0, 10, (6, 2))
    anchors = np.concatenate([corners, corners + rng.uniform(0.5, 4, (6, 2))], axis=1)
    corners = rng.uniform(0, 10, (6, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0.5, 4, (6, 2))], axis=1)
    coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
    deltas = reference.encode_boxes(anchors, boxes)
    assert np.allclose(deltas, coder.encode_single(t(boxes), t(anchors)).numpy())
    assert np.allclose(reference.decode_boxes(anchors, deltas), boxes)
    assert np.allclose(
        reference.decode_boxes(anchors, deltas), coder.decode_single(t(deltas), t(anchors)).numpy()
    )


def _coco_style_matches(preds, scores, gts, threshold):
    """Matching as pycocotools' evaluateImg loops: detections by score, each gt once, the best
    unmatched gt with IoU >= threshold (written here independently of the reference)."""

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    taken = [False] * len(gts)
    flags = [False] * len(preds)
    for d in sorted(range(len(preds)), key=lambda i: -scores[i]):  # sorted() is stable
        best, match = min(threshold, 1 - 1e-10), -1
        for g in range(len(gts)):
            if taken[g]:
                continue
            value = iou(preds[d], gts[g])
            if value < best:
                continue
            if match == -1 or value > best:  # keep the first of equal IoUs
                best, match = value, g
        if match >= 0:
            taken[match] = True
            flags[d] = True
    return np.array(flags, dtype=bool)


def _voc_style_average_precision(scores, hits, num_gt):
    """The PASCAL VOC development kit's all-point AP (sentinels, envelope, recall steps)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = np.cumsum([float(hits[i]) for i in order])
    fp = np.cumsum([1.0 - hits[i] for i in order])
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


@pytest.mark.parametrize("seed", range(20))
def test_matching_and_ap_references_agree_with_independent_implementations(seed: int) -> None:
    for test_id in ex.function("match_detections").test_ids:
        for case in ex.hidden_cases(test_id, np.random.default_rng(seed)):
            threshold = case.kwargs.get("iou_threshold", 0.5)
            expected = _coco_style_matches(*case.args, threshold)
            found = reference.match_detections(*case.args, **case.kwargs)
            assert np.array_equal(found, expected), case.label
    for test_id in ex.function("average_precision").test_ids:
        for case in ex.hidden_cases(test_id, np.random.default_rng(seed)):
            scores, hits, num_gt = case.args
            if num_gt < 1:
                with pytest.raises(ValueError):
                    reference.average_precision(*case.args)
                continue
            expected = _voc_style_average_precision(scores, hits, num_gt) if len(scores) else 0.0
            assert reference.average_precision(*case.args) == pytest.approx(expected), case.label


# --------------------------------------------------------------------------------------------
# the hidden tests test every clause of the contract
# --------------------------------------------------------------------------------------------


def _hidden(function: str, seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [c for test_id in ex.function(function).test_ids for c in ex.hidden_cases(test_id, rng)]


def _pairs_with_h_ne_w(case: Case, name: str) -> bool:
    value = ex.function(case.function).bind(case)[name]
    return isinstance(value, tuple) and value[0] != value[1]


@pytest.mark.parametrize("function", [f.name for f in ex.FUNCTIONS.values() if f.pair_arguments])
def test_every_int_or_pair_argument_gets_different_height_and_width(function: str) -> None:
    exercise = ex.function(function)
    cases = _hidden(function)
    for name in exercise.pair_arguments:
        assert any(_pairs_with_h_ne_w(c, name) for c in cases), (function, name)
        # and once where the others are square or ints, so that a swap in that position alone shows
        alone = [
            c
            for c in cases
            if _pairs_with_h_ne_w(c, name)
            and not any(
                _pairs_with_h_ne_w(c, other) for other in exercise.pair_arguments if other != name
            )
        ]
        assert alone or len(exercise.pair_arguments) == 1, (function, name)


def test_layer_stacks_use_pairs_with_different_height_and_width_in_every_setting() -> None:
    from torch import nn

    cases = _hidden("layer_output_shapes")
    layers = [layer for c in cases for layer in c.args[0]]
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    pools = [m for m in layers if isinstance(m, nn.MaxPool2d | nn.AvgPool2d)]
    for setting in ("kernel_size", "stride", "padding", "dilation"):
        assert any(
            isinstance(getattr(m, setting), tuple)
            and getattr(m, setting)[0] != getattr(m, setting)[1]
            for m in convs
        ), setting
    for setting in ("kernel_size", "stride", "padding"):
        assert any(
            isinstance(getattr(m, setting), tuple)
            and getattr(m, setting)[0] != getattr(m, setting)[1]
            for m in pools
        ), setting
    assert any(isinstance(m, nn.MaxPool2d) and m.dilation != 1 for m in pools)
    assert {m.padding for m in convs if isinstance(m.padding, str)} == {"same", "valid"}


@pytest.mark.parametrize(
    "function",
    [
        "conv2d_forward",
        "max_pool2d_forward",
        "avg_pool2d_forward",
        "max_pool2d_backward",
        "avg_pool2d_backward",
        "conv2d_backward",
        "batchnorm_forward",
        "batchnorm_backward",
        "residual_block_forward",
        "dense_block_forward",
    ],
)
def test_images_are_not_all_square(function: str) -> None:
    cases = _hidden(function)
    names = list(ex.function(function).bind(cases[0]))
    x_index = names.index("x")
    assert any(c.args[x_index].shape[-2] != c.args[x_index].shape[-1] for c in cases)
    assert any(c.args[x_index].shape[0] > 1 and c.args[x_index].shape[1] > 1 for c in cases)


@pytest.mark.parametrize("function", ["conv_output_size", "pool_output_size"])
def test_sizes_are_tried_where_floor_and_truncation_disagree_and_at_the_edge(function: str) -> None:
    exercise = ex.function(function)
    disagree, exactly_one = 0, 0
    for case in _hidden(function):
        a = exercise.bind(case)
        k, p = a["kernel_size"], a["padding"]
        s = a["stride"] if a["stride"] is not None else k
        d = a.get("dilation", 1)
        if min(k, s, d) < 1 or p < 0:
            continue
        span = a["n"] + 2 * p - d * (k - 1) - 1
        disagree += span // s != int(span / s)
        exactly_one += span // s + 1 == 1
    assert disagree >= 2 and exactly_one >= 2


@pytest.mark.parametrize(
    "function",
    [
        "box_iou",
        "nms",
        "batched_nms",
        "match_detections",
        "average_precision",
        "encode_boxes",
        "decode_boxes",
    ],
)
def test_detection_functions_are_tried_on_empty_inputs(function: str) -> None:
    assert any(
        min(len(a) for a in c.args if isinstance(a, np.ndarray)) == 0 for c in _hidden(function)
    )


@pytest.mark.parametrize(
    "function", ["nms", "batched_nms", "match_detections", "average_precision"]
)
def test_score_ties_are_tried_where_the_contract_orders_them(function: str) -> None:
    names = list(ex.function(function).bind(_hidden(function)[0]))
    index = names.index("pred_scores" if function == "match_detections" else "scores")
    assert any(len(np.unique(c.args[index])) < len(c.args[index]) for c in _hidden(function))


def test_a_new_array_is_asked_for_even_when_there_is_nothing_to_do() -> None:
    pads = [c for c in _hidden("pad2d") if np.all(np.array(c.args[1]) == 0)]
    assert pads and ex.function("pad2d").new_arrays
    assert any(len(c.args[1]) == 0 for c in _hidden("dense_block_forward"))
    assert any(c.kwargs.get("training") is False for c in _hidden("batchnorm_forward"))
    assert (
        ex.function("dense_block_forward").new_arrays
        and ex.function("batchnorm_forward").new_arrays
    )


# mutation-style: an answer that drops one clause of the contract fails a hidden test


def pad2d_same_array_when_nothing_to_do(x, padding):
    return x if np.all(np.array(padding) == 0) else ALL["pad2d"](x, padding)


def conv_stride_pair_swapped(x, w, b, stride=1, padding=0):
    stride = stride if np.ndim(stride) == 0 else tuple(stride)[::-1]
    return ALL["conv2d_forward"](x, w, b, stride, padding)


def conv_padding_pair_swapped(x, w, b, stride=1, padding=0):
    padding = padding if np.ndim(padding) == 0 else tuple(padding)[::-1]
    return ALL["conv2d_forward"](x, w, b, stride, padding)


def pool_stride_pair_swapped(x, kernel_size, stride=None):
    stride = stride if stride is None or np.ndim(stride) == 0 else tuple(stride)[::-1]
    return ALL["max_pool2d_forward"](x, kernel_size, stride)


def pool_kernel_pair_swapped(x, kernel_size, stride=None):
    if stride is None:
        stride = kernel_size
    kernel_size = kernel_size if np.ndim(kernel_size) == 0 else tuple(kernel_size)[::-1]
    return ALL["avg_pool2d_forward"](x, kernel_size, stride)


def square_only_pool_backward(dout, x, kernel_size, stride=None):
    k = kernel_size if np.ndim(kernel_size) == 0 else kernel_size[0]
    s = k if stride is None else (stride if np.ndim(stride) == 0 else stride[0])
    return ALL["max_pool2d_backward"](dout, x, k, s)


def size_truncating(n, kernel_size, stride=1, padding=0, dilation=1):
    if kernel_size < 1 or stride < 1 or padding < 0 or dilation < 1:
        raise ValueError("out of range")
    size = int((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    if size < 1:
        raise ValueError("too small")
    return size


def pool_size_truncating(n, kernel_size, stride=None, padding=0):
    stride = kernel_size if stride is None else stride
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError("out of range")
    size = int((n + 2 * padding - kernel_size) / stride) + 1
    if size < 1:
        raise ValueError("too small")
    return size


def output_shape_padding_swapped(input_shape, out_channels, kernel_size, stride=1, padding=0):
    padding = padding if np.ndim(padding) == 0 else tuple(padding)[::-1]
    return ALL["conv2d_output_shape"](input_shape, out_channels, kernel_size, stride, padding)


def layer_shapes_square_pools(layers, input_shape):
    from torch import nn

    squared = []
    for layer in layers:
        if isinstance(layer, nn.MaxPool2d | nn.AvgPool2d) and isinstance(layer.kernel_size, tuple):
            layer = type(layer)(layer.kernel_size[0], layer.stride, layer.padding)
        squared.append(layer)
    return ALL["layer_output_shapes"](squared, input_shape)


def nms_ties_reversed(boxes, scores, iou_threshold):
    keep = ALL["nms"](boxes[::-1], scores[::-1], iou_threshold)  # ties: the higher index first
    return (len(boxes) - 1 - keep).astype(np.int64)


def nms_fails_on_no_boxes(boxes, scores, iou_threshold):
    if len(boxes) == 0:
        return np.array([])
    return ALL["nms"](boxes, scores, iou_threshold)


def iou_fails_on_no_boxes(boxes1, boxes2):
    return np.array([[ALL["box_iou"](a[None], b[None])[0, 0] for b in boxes2] for a in boxes1])


def ap_fails_without_detections(scores, is_true_positive, num_ground_truth):
    if len(scores) == 0:
        return float("nan")
    return ALL["average_precision"](scores, is_true_positive, num_ground_truth)


def match_ties_by_higher_index(pred_boxes, pred_scores, gt_boxes, iou_threshold=0.5):
    flipped = ALL["match_detections"](pred_boxes[::-1], pred_scores[::-1], gt_boxes, iou_threshold)
    return flipped[::-1].copy()


def bn_eval_returns_the_same_arrays(
    x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
):
    out, new_mean, new_var = ALL["batchnorm_forward"](
        x, gamma, beta, running_mean, running_var, training, momentum, eps
    )
    return (out, running_mean, running_var) if not training else (out, new_mean, new_var)


def dense_returns_x_without_layers(x, weights):
    return x if not weights else ALL["dense_block_forward"](x, weights)


def residual_without_the_shape_check(x, w1, w2, stride=1, w_proj=None):
    h = np.maximum(ALL["conv2d"](x, w1, stride, 1), 0.0)
    y = ALL["conv2d"](h, w2, 1, 1)
    shortcut = x if w_proj is None else ALL["conv2d"](x, w_proj, stride, 0)
    return np.maximum(y + shortcut, 0.0)


MUTANTS = [
    ("pad2d", pad2d_same_array_when_nothing_to_do),
    ("conv2d_forward", conv_stride_pair_swapped),
    ("conv2d_forward", conv_padding_pair_swapped),
    ("max_pool2d_forward", pool_stride_pair_swapped),
    ("avg_pool2d_forward", pool_kernel_pair_swapped),
    ("max_pool2d_backward", square_only_pool_backward),
    ("conv_output_size", size_truncating),
    ("pool_output_size", pool_size_truncating),
    ("conv2d_output_shape", output_shape_padding_swapped),
    ("layer_output_shapes", layer_shapes_square_pools),
    ("nms", nms_ties_reversed),
    ("nms", nms_fails_on_no_boxes),
    ("box_iou", iou_fails_on_no_boxes),
    ("average_precision", ap_fails_without_detections),
    ("match_detections", match_ties_by_higher_index),
    ("batchnorm_forward", bn_eval_returns_the_same_arrays),
    ("dense_block_forward", dense_returns_x_without_layers),
    ("residual_block_forward", residual_without_the_shape_check),
]


@pytest.mark.parametrize(("function", "mutant"), MUTANTS, ids=[m.__name__ for _, m in MUTANTS])
def test_an_answer_that_drops_a_clause_fails_a_hidden_test(function: str, mutant) -> None:
    failed = []
    for test_id in ex.function(function).test_ids:
        for seed in (0, 1):
            try:
                run_test(test_id, mutant, seed=seed)
            except AssertionError as error:
                failed.append(str(error))
    assert failed, f"{mutant.__name__} passes every hidden test of {function}"


def test_an_aliased_output_is_named_in_the_student_s_kernel() -> None:
    with pytest.raises(AssertionError, match="shares its memory with the argument x"):
        run_test("test_pad2d", pad2d_same_array_when_nothing_to_do, seed=0)


def test_run_test_reports_forbidden_box_and_batch_norm_operators() -> None:
    def nms(boxes, scores, iou_threshold):
        from torchvision.ops import nms as ready_made

        return ready_made(t(boxes), t(scores), iou_threshold).numpy()

    with pytest.raises(AssertionError, match=r"uses torchvision\.ops\.nms"):
        run_test("test_nms", nms, seed=0)

    def batchnorm_forward(
        x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5
    ):
        out = F.batch_norm(
            t(x), t(running_mean), t(running_var), t(gamma), t(beta), training, momentum, eps
        )
        return out.numpy(), running_mean, running_var

    with pytest.raises(AssertionError, match=r"uses torch\.nn\.functional\.batch_norm"):
        run_test("test_batchnorm_forward", batchnorm_forward, seed=0)
