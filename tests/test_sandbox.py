"""The grader's sandbox: limits, denials and the plain data that comes back."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from course_lib.grading.sandbox import Call, Limits, Unsupported, run_functions

FAST = Limits(call_timeout=1.5, cells_timeout=10.0, memory_mb=512)


def run(source: str, *calls: Call, limits: Limits = FAST):
    return run_functions([("setup", "import numpy as np"), ("answer", source)], list(calls), limits)


def test_outputs_come_back_as_plain_data_with_the_inputs_after_the_call() -> None:
    source = (
        "def f(x, scale=1):\n"
        "    x[0] = 99.0\n"
        "    return x * scale, (x.shape, int(x.size)), np.float32(2.5)\n"
    )
    x = np.arange(4.0)
    result = run(source, Call("a", "f", (x,), {"scale": 2})).results["a"]
    assert result.failure is None and result.raised is None
    doubled, (shape, size), scalar = result.output
    np.testing.assert_array_equal(doubled, [198.0, 2.0, 4.0, 6.0])
    assert shape == (4,) and size == 4 and scalar.dtype == np.float32
    np.testing.assert_array_equal(result.args_after[0], [99.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x, np.arange(4.0))  # the grader's copy is untouched


def test_an_object_with_its_own_eq_does_not_come_back() -> None:
    source = (
        "class Yes:\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "class Arr(np.ndarray):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "def f():\n"
        "    return Yes(), np.zeros(2).view(Arr)\n"
    )
    yes, array = run(source, Call("a", "f", (), {})).results["a"].output
    assert isinstance(yes, Unsupported) and yes.type_name == "__main__.Yes"
    assert type(array) is np.ndarray


def test_an_endless_loop_times_out_and_the_other_tests_still_run() -> None:
    source = "def loop():\n    while True:\n        pass\n\ndef ok():\n    return 7\n"
    calls = [
        Call("loop#0", "loop", (), {}, group="test_loop"),
        Call("loop#1", "loop", (), {}, group="test_loop"),
        Call("ok#0", "ok", (), {}, group="test_ok"),
    ]
    result = run(source, *calls)
    assert result.results["loop#0"].failure == "timed out after 1.5 s while running loop#0"
    assert result.results["loop#1"].failure.startswith("not run: an earlier case of test_loop")
    assert result.results["ok#0"].output == 7
    assert result.processes == 2


def test_a_memory_hog_gets_a_memory_error() -> None:
    source = "def hog():\n    return bytearray(2 * 1024**3)\n"
    result = run(source, Call("a", "hog", (), {})).results["a"]
    assert result.raised == ("MemoryError", "")


def test_an_output_flood_is_stopped_with_the_reason() -> None:
    source = "import os\ndef flood():\n    while True:\n        os.write(1, b'x' * 65536)\n"
    limits = Limits(call_timeout=5.0, flood_bytes=2 * 1024 * 1024)
    result = run(source, Call("a", "flood", (), {}), limits=limits)
    assert result.results["a"].failure == "stopped: wrote more than 2 MB of output while running a"
    assert len(result.output) == limits.output_chars


def test_printing_megabytes_costs_nothing_and_is_cut() -> None:
    source = "def chatty():\n    for _ in range(50):\n        print('y' * 100_000)\n    return 1\n"
    result = run(source, Call("a", "chatty", (), {}))
    assert result.results["a"].output == 1
    assert result.output_bytes == 0  # print() never reached the pipe beyond the cap


@pytest.mark.parametrize("mode", ["r", "w"])
def test_files_of_the_grader_are_not_there_to_open(tmp_path, mode) -> None:
    secret = tmp_path / "gradebook.db"
    secret.write_text("grades")
    source = (
        f"def peek():\n    with open({str(secret)!r}, {mode!r}) as f:\n        return f.read()\n"
    )
    result = run(source, Call("a", "peek", (), {}))
    # /tmp in the container is its own empty folder: the grader's file does not exist there,
    # and writing creates a file in the container's /tmp, not the grader's
    assert result.results["a"].raised[0] in ("FileNotFoundError", "PermissionError")
    assert secret.read_text() == "grades"


def test_files_next_to_the_grader_are_denied_even_on_its_import_path() -> None:
    here = str(Path(__file__).resolve())
    assert str(Path(here).parent) in sys.path  # pytest put the tests folder there
    source = f"def peek():\n    return open({here!r}).read()\n"
    result = run(source, Call("a", "peek", (), {}))
    if Path(here).is_relative_to(tempfile.gettempdir()):
        # a checkout in the temporary folder: the container's /tmp is its own empty folder, so
        # the first layer (the view) already hides the file from the answer
        assert result.results["a"].raised[0] == "FileNotFoundError"
        return
    assert result.results["a"].raised[0] == "PermissionError"  # the audit hook, second layer
    assert result.denials == [("open", f"{here} (read)")]


def test_course_folders_are_not_in_the_view(tmp_path) -> None:
    (tmp_path / "submitted").mkdir()
    source = f"import os\ndef ls():\n    return os.path.exists({str(tmp_path)!r})\n"
    result = run(source, Call("a", "ls", (), {}))
    assert result.results["a"].output is False


def test_os_exit_ends_only_that_test() -> None:
    source = "import os\ndef bye():\n    os._exit(0)\n\ndef ok():\n    return 'ok'\n"
    calls = [Call("bye", "bye", (), {}, group="t1"), Call("ok", "ok", (), {}, group="t2")]
    result = run(source, *calls)
    assert result.results["bye"].failure.startswith("the process exited with status 0")
    assert result.results["ok"].output == "ok"


@pytest.mark.parametrize(
    ("code", "event"),
    [
        ("import subprocess\n    subprocess.run(['true'])", "subprocess.Popen"),
        ("import os\n    os.system('true')", "os.system"),
        ("import socket\n    socket.socket()", "socket.__new__"),
        ("import ctypes\n    ctypes.CDLL('libc.so.6')", "ctypes.dlopen"),
        ("import os\n    os.kill(1, 0)", "os.kill"),
        ("import resource\n    resource.setrlimit(resource.RLIMIT_CPU, (-1, -1))", "resource."),
    ],
)
def test_processes_sockets_ctypes_and_limits_are_denied(code: str, event: str) -> None:
    result = run(f"def f():\n    {code}\n", Call("a", "f", (), {}))
    assert result.results["a"].raised[0] == "PermissionError"
    assert result.denials[0][0].startswith(event)


def test_ready_made_operators_and_libraries_are_refused_and_recorded() -> None:
    source = (
        "def conv(x):\n    return np.convolve(x, x)\n\n"
        "def torchy(x):\n    import torch\n    return x\n"
    )
    calls = [Call("c", "conv", (np.ones(3),), {}), Call("t", "torchy", (np.ones(3),), {})]
    result = run(source, *calls)
    assert result.results["c"].raised[0] == "ForbiddenCallError"
    assert result.results["c"].forbidden == ["numpy.convolve"]
    assert result.results["t"].raised[0] == "ImportError"
    assert result.results["t"].forbidden == ["import torch"]


def test_the_environment_is_scrubbed(monkeypatch) -> None:
    monkeypatch.setenv("COURSE_SECRET_TOKEN", "hunter2")
    source = "import os\ndef env():\n    return sorted(os.environ)\n"
    names = run(source, Call("a", "env", (), {})).results["a"].output
    assert "COURSE_SECRET_TOKEN" not in names and "HOME" in names


def test_a_cell_that_raises_does_not_stop_the_others() -> None:
    cells = [("broken", "def f(:\n"), ("fine", "def g():\n    return 3\n")]
    result = run_functions(cells, [Call("a", "f", (), {}), Call("b", "g", (), {})], FAST)
    assert "SyntaxError" in result.cell_errors["broken"]
    assert result.results["a"].raised == ("NameError", "name 'f' is not defined")
    assert result.results["b"].output == 3


def test_visible_checks_run_in_the_cells_namespace() -> None:
    source = "def double(x):\n    return 2 * x\n"
    calls = [
        Call("ok", "double", (), {}, source="assert double(2) == 4\nseen = True"),
        Call("bad", "double", (), {}, source="assert seen and double(2) == 5, 'double(2)'"),
    ]
    result = run(source, *calls)
    assert result.results["ok"].raised is None and result.results["ok"].output is None
    assert result.results["bad"].raised == ("AssertionError", "double(2)")
