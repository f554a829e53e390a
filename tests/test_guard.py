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


def test_an_import_in_a_thread_without_the_guard_leaves_the_profile_alone(monkeypatch) -> None:
    # The kernel's own threads import lazily while a student's cell runs (pyzmq does). A
    # sys.setprofile from such a thread can race with the guarded thread's, and CPython then
    # raises an error that the kernel prints on stderr, into the student's cell.
    import sys
    import threading

    calls: list[str] = []
    real_setprofile = sys.setprofile

    def recording_setprofile(function):
        calls.append(threading.current_thread().name)
        real_setprofile(function)

    with forbid_ready_made():
        guarded = sys.getprofile()
        assert guarded is not None
        monkeypatch.setattr(sys, "setprofile", recording_setprofile)
        worker = threading.Thread(target=lambda: __import__("json.decoder"), name="kernel-thread")
        worker.start()
        worker.join()
        __import__("json.encoder")  # the guarded thread still suspends its profile and restores it
        assert sys.getprofile() is guarded
        monkeypatch.setattr(sys, "setprofile", real_setprofile)
    assert "kernel-thread" not in calls
    assert calls and set(calls) == {threading.current_thread().name}
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


def test_the_lists_of_names_derive_from_the_exercise_declarations() -> None:
    from course_lib.grading.exercises import FUNCTIONS, ready_made_by_module

    assert guard_module.READY_MADE == ready_made_by_module()
    declared = {name for f in FUNCTIONS.values() for name in f.forbidden_names}
    listed = {
        f"{module}.{name}" for module, names in guard_module.READY_MADE.items() for name in names
    }
    assert listed == declared


def test_without_the_declarations_the_policy_file_gives_the_same_names(tmp_path) -> None:
    # a process that holds guard.py and exercises/_policy.py but not the declarations
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    grading = Path(guard_module.__file__).parent
    (tmp_path / "exercises").mkdir()
    shutil.copy(grading / "guard.py", tmp_path / "guard.py")
    shutil.copy(grading / "exercises" / "_policy.py", tmp_path / "exercises" / "_policy.py")
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('g', {str(tmp_path / 'guard.py')!r})\n"
        "g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)\n"
        "print(json.dumps({k: sorted(v) for k, v in g.READY_MADE.items()}, sort_keys=True))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    expected = {k: sorted(v) for k, v in guard_module.READY_MADE.items()}
    assert json.loads(done.stdout) == expected


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (
            lambda: __import__("torchvision").ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5),
            "torchvision.ops.nms",
        ),
        (
            lambda: __import__("torchvision").ops.box_iou(torch.zeros(1, 4), torch.zeros(1, 4)),
            "torchvision.ops.box_iou",
        ),
        (
            lambda: F.batch_norm(torch.ones(2, 1, 1, 1), None, None, training=True),
            "torch.nn.functional.batch_norm",
        ),
        (
            lambda: nn.BatchNorm2d(1)(torch.ones(2, 1, 1, 1)),
            "torch.nn.functional.batch_norm",
        ),
        (
            lambda: __import__("course_lib.detection").detection.box_area(torch.zeros(1, 4)),
            "course_lib.detection.box_area",
        ),
    ],
)
def test_box_operators_and_batch_norm_are_switched_off(call, name: str) -> None:
    import torchvision.ops  # noqa: F401  (imported before the guard: patched when it starts)

    import course_lib.detection  # noqa: F401

    with forbid_ready_made() as guard:
        with pytest.raises(ForbiddenCallError, match="not allowed"):
            call()
    assert guard.attempts[0] == name
    call()  # works again afterwards


def test_torchvision_imported_inside_the_guard_is_switched_off_too() -> None:
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from course_lib.grading.guard import forbid_ready_made, ForbiddenCallError\n"
        "with forbid_ready_made() as g:\n"
        "    from torchvision.ops import nms\n"
        "    try:\n"
        "        nms(torch.zeros(1, 4), torch.ones(1), 0.5)\n"
        "    except ForbiddenCallError:\n"
        "        pass\n"
        "print(g.attempts)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torchvision.ops.nms" in done.stdout
