"""The guard switches ready-made operators off while student code runs, and back on after."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_lib
from course_lib.grading import guard as guard_module
from course_lib.grading.guard import ForbiddenCallError, forbid_ready_made, forbid_running_modules


def test_numpy_convolve_raises_with_the_message_and_is_recorded() -> None:
    with forbid_ready_made() as guard:
        with pytest.raises(ForbiddenCallError, match=r"uses numpy\.convolve, which is not allowed"):
            np.convolve([1.0, 2.0], [1.0, 1.0])
    assert guard.attempts == ["numpy.convolve"]
    assert guard_module.attempts is guard.attempts
    assert np.allclose(np.convolve([1.0, 2.0], [1.0, 1.0]), [1.0, 3.0, 2.0])


def test_scipy_imported_inside_the_guard_is_switched_off_and_restored() -> None:
    with forbid_ready_made() as guard:
        from scipy.signal import correlate2d

        with pytest.raises(ForbiddenCallError) as caught:
            correlate2d(np.ones((3, 3)), np.ones((2, 2)), mode="valid")
        import scipy.ndimage

        with pytest.raises(ForbiddenCallError):
            scipy.ndimage.convolve(np.ones((3, 3)), np.ones((2, 2)))
    assert str(caught.value) == (
        "uses scipy.signal.correlate2d, which is not allowed: write the loops with NumPy"
    )
    assert guard.attempts == ["scipy.signal.correlate2d", "scipy.ndimage.convolve"]
    from scipy.signal import correlate2d

    assert np.allclose(correlate2d(np.ones((3, 3)), np.ones((2, 2)), mode="valid"), 4.0)
    assert getattr(builtins.__import__, "__module__", "builtins") == "builtins"


def test_a_name_bound_before_the_guard_is_recorded() -> None:
    from scipy.signal import correlate2d  # bound before: the module patch can't reach it

    def student() -> np.ndarray:
        return correlate2d(np.ones((3, 3)), np.ones((2, 2)), mode="valid")

    with forbid_ready_made() as guard:
        student()
    assert guard.attempts == ["scipy.signal.correlate2d"]


def test_a_caught_forbidden_call_still_counts() -> None:
    with forbid_ready_made() as guard:
        try:
            F.conv2d(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 2, 2))
        except Exception:
            pass
    assert guard.attempts == ["torch.nn.functional.conv2d"]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: torch.conv2d(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 2, 2)), "torch.conv2d"),
        (lambda: F.max_pool2d(torch.zeros(1, 1, 4, 4), 2), "torch.nn.functional.max_pool2d"),
        (lambda: F.avg_pool2d(torch.zeros(1, 1, 4, 4), 2), "torch.nn.functional.avg_pool2d"),
        (lambda: F.unfold(torch.zeros(1, 1, 4, 4), 2), "torch.nn.functional.unfold"),
        (lambda: torch.zeros(4, 4).unfold(0, 2, 1), "torch.Tensor.unfold"),
        (lambda: nn.Conv2d(1, 1, 2)(torch.zeros(1, 1, 3, 3)), "torch.nn.functional.conv2d"),
        (lambda: np.correlate([1.0, 2.0], [1.0]), "numpy.correlate"),
    ],
)
def test_torch_and_numpy_ready_made_operators_raise(call, name: str) -> None:
    with forbid_ready_made() as guard:
        with pytest.raises(ForbiddenCallError, match="not allowed: write the loops with NumPy"):
            call()
    assert guard.attempts[0] == name
    call()  # works again afterwards


def test_course_lib_and_the_reference_answers_are_switched_off() -> None:
    from course_lib.grading import reference

    with forbid_ready_made() as guard:
        with pytest.raises(ForbiddenCallError):
            reference.corr2d(np.ones((3, 3)), np.ones((2, 2)))
        with pytest.raises(ForbiddenCallError):
            course_lib.conv_output_size(7, 3)
    assert guard.attempts == ["course_lib.grading.reference.corr2d", "course_lib.conv_output_size"]
    assert course_lib.conv_output_size(7, 3) == 5
    naive = [n for n in dir(course_lib) if n.endswith("_naive")]
    assert naive  # the loop versions beside the fast ones are switched off too
    with forbid_ready_made() as guard:
        with pytest.raises(ForbiddenCallError):
            getattr(course_lib, naive[0])()
    assert guard.attempts == [f"course_lib.{naive[0]}"]


def test_running_modules_is_switched_off_and_restored() -> None:
    conv = nn.Conv2d(1, 2, 3)
    x = torch.zeros(1, 1, 5, 5)
    with forbid_running_modules() as guard:
        with pytest.raises(ForbiddenCallError, match="work the shape out"):
            conv(x)
        with pytest.raises(ForbiddenCallError):
            conv.forward(x)
        with pytest.raises(ForbiddenCallError):
            nn.ReLU().forward(x)
        assert conv.kernel_size == (3, 3)  # reading the settings is fine
    assert guard.attempts == ["torch.nn.Module.__call__", "Conv2d.forward", "ReLU.forward"]
    assert conv(x).shape == (1, 2, 3, 3)
    assert "forward" not in vars(nn.Sigmoid) or vars(nn.Sigmoid)["forward"].__name__ == "forward"


def test_everything_is_restored_after_an_error_inside_the_guard() -> None:
    before = (np.convolve, F.conv2d, torch.Tensor.unfold, nn.Module.__call__, builtins.__import__)
    with pytest.raises(RuntimeError), forbid_ready_made():
        raise RuntimeError("student code failed")
    after = (np.convolve, F.conv2d, torch.Tensor.unfold, nn.Module.__call__, builtins.__import__)
    assert before == after
    assert "unfold" not in vars(torch.Tensor)


def test_nested_guards_both_record() -> None:
    from scipy.signal import correlate2d

    conv = nn.Conv2d(1, 1, 2)
    with forbid_ready_made() as outer, forbid_running_modules() as inner:
        correlate2d(np.ones((3, 3)), np.ones((2, 2)))
        with pytest.raises(ForbiddenCallError):
            conv(torch.zeros(1, 1, 3, 3))
    assert outer.attempts == ["scipy.signal.correlate2d"]
    assert inner.attempts == ["torch.nn.Module.__call__"]
