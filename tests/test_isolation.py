"""The operating system as the barrier: what a student's code sees and can do in the sandbox.

Each test runs real student code in the real container (bubblewrap namespaces, an unprivileged
user, limits) and asserts what it could not do: see the grader's files, other processes or the
network, keep privileges, import what the exercise forbids, or bend the grader's protocol.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from course_lib.grading import isolation, sandbox
from course_lib.grading.sandbox import Call, Limits, run_functions

FAST = Limits(call_timeout=3.0, cells_timeout=10.0, memory_mb=512)
REPO = Path(__file__).resolve().parents[1]


def run(source: str, *calls: Call, limits: Limits = FAST, **options):
    cells = [("setup", "import numpy as np"), ("answer", source)]
    return run_functions(cells, list(calls), limits, **options)


def value(source: str, **options) -> object:
    """What ``f`` returned, run in the container without the audit hook (the second layer):
    what these tests show is what the operating system allows."""
    options.setdefault("audit", False)
    result = run(source, Call("a", "f", (), {}), **options).results["a"]
    assert result.failure is None, result.failure
    assert result.raised is None, result.raised
    return result.output


# -- who the code runs as, what it sees -----------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="the drop to nobody happens when grading as root")
def test_the_code_runs_as_nobody_without_capabilities() -> None:
    source = (
        "import os\n"
        "def f():\n"
        "    status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
        "    return os.getuid(), os.getgid(), os.getgroups(), status['CapEff'].strip(), "
        "status['CapPrm'].strip()\n"
    )
    uid, gid, groups, effective, permitted = value(source)
    assert (uid, gid, groups) == (65534, 65534, [])
    assert int(effective, 16) == 0 and int(permitted, 16) == 0


def test_the_view_holds_the_interpreter_and_numpy_only() -> None:
    source = (
        "import os, importlib.util\n"
        "def f():\n"
        "    found = {m: importlib.util.find_spec(m) is not None\n"
        "             for m in ('numpy', 'scipy', 'torch', 'course_lib', 'nbgrader', 'pip')}\n"
        f"    return found, os.path.exists({str(REPO)!r}), os.path.exists('/etc/passwd'), "
        "sorted(os.listdir('/'))\n"
    )
    # the import blocker is a second layer: take it away and look for the modules themselves
    source = source.replace(
        "def f():\n", "import sys\ndef f():\n    sys.meta_path[:] = sys.meta_path[1:]\n", 1
    )
    found, repo_there, passwd_there, top = value(source)
    assert found == {
        "numpy": True,
        "scipy": False,
        "torch": False,
        "course_lib": False,
        "nbgrader": False,
        "pip": False,
    }
    assert not repo_there and not passwd_there
    assert "home" not in top and "etc" in top  # /etc holds only the linker's cache


def test_other_processes_and_their_environment_are_out_of_sight(monkeypatch) -> None:
    monkeypatch.setenv("COURSE_GRADER_SECRET", "hunter2")
    source = (
        "import os\n"
        "def f():\n"
        "    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "    seen = []\n"
        "    for pid in pids:\n"
        "        try:\n"
        "            seen.append(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "        except OSError as error:\n"
        "            seen.append(type(error).__name__.encode())\n"
        "    return pids, os.getpid(), b'hunter2' in b''.join(seen)\n"
    )
    pids, own, leaked = value(source)
    assert len(pids) <= 3 and own in pids  # its own pid namespace: the container and itself
    assert not leaked
    assert os.environ["COURSE_GRADER_SECRET"] == "hunter2"


def test_there_is_no_network() -> None:
    source = (
        "import _socket\n"  # below the audited socket module
        "def f():\n"
        "    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
        "    try:\n"
        "        s.connect(('127.0.0.1', 22))\n"
        "    except OSError as error:\n"
        "        return error.errno\n"
        "    return 'connected'\n"
    )
    result = run(source, Call("a", "f", (), {})).results["a"]
    # refused by the audit hook, or by the empty network namespace (no route, refused)
    assert result.output != "connected"


# -- escapes around path checks (class 1 of the security review) -------------------------------


@pytest.mark.parametrize(
    "attack",
    [
        # change the working directory, then use a relative path
        "os.chdir('/')\n    return open('work/main/nbgrader_config.py').read()",
        # a path relative to a directory descriptor
        "fd = os.open('/', os.O_RDONLY)\n"
        "    return os.open('work/main/nbgrader_config.py', os.O_RDONLY, dir_fd=fd)",
        # the grader's files through another process's view
        "return open('/proc/1/cwd/nbgrader_config.py').read()",
        "return os.listdir('/proc/1/root/work')",
        # removing files with a directory descriptor (shutil.rmtree does this)
        "fd = os.open('/', os.O_RDONLY)\n    return os.rmdir('work', dir_fd=fd)",
    ],
)
@pytest.mark.parametrize("audit", [True, False], ids=["both-layers", "container-alone"])
def test_path_tricks_reach_nothing_of_the_grader(attack: str, audit: bool) -> None:
    marker = REPO / "nbgrader_config.py"
    before = marker.read_bytes()
    source = f"import os\ndef f():\n    {attack}\n"
    result = run(source, Call("a", "f", (), {}), audit=audit).results["a"]
    assert result.raised is not None, result.output
    assert result.raised[0] in ("PermissionError", "FileNotFoundError", "OSError")
    assert marker.read_bytes() == before


@pytest.mark.parametrize("audit", [True, False], ids=["both-layers", "container-alone"])
def test_file_operations_beyond_open_cannot_touch_the_grader(tmp_path: Path, audit: bool) -> None:
    victim = tmp_path / "submission.ipynb"
    victim.write_text("{}")
    attacks = [
        f"os.truncate({str(victim)!r}, 0)",
        f"os.link({str(victim)!r}, 'x')",
        f"os.symlink('/', 'root'); return open('root' + {str(victim)!r}).read()",
        f"os.chmod({str(victim)!r}, 0o777)",
        f"os.utime({str(victim)!r}, (0, 0))",
        f"os.rename({str(victim)!r}, 'stolen')",
        f"import shutil; shutil.rmtree({str(tmp_path)!r})",
    ]
    calls = [Call(str(i), f"f{i}", (), {}, group=str(i)) for i in range(len(attacks))]
    source = "import os\n" + "".join(
        f"def f{i}():\n    {attack}\n" for i, attack in enumerate(attacks)
    )
    result = run(source, *calls, audit=audit)
    for i, attack in enumerate(attacks):
        assert result.results[str(i)].raised is not None, attack
    assert victim.read_text() == "{}"
    assert oct(victim.stat().st_mode)[-3:] != "777"


# -- what the exercise forbids is not there (class 3) --------------------------------------------


def test_ready_made_numpy_operators_and_their_c_functions_are_gone() -> None:
    from course_lib.grading.static import CodePolicy
    from course_lib.grading.verify import removed_names

    source = (
        "def f():\n"
        "    import numpy\n"
        "    gone = []\n"
        "    for owner, name in [(numpy, 'convolve'), (numpy, 'correlate'),\n"
        "                        (numpy._core.multiarray, 'correlate'),\n"
        "                        (numpy._core.multiarray, 'correlate2'),\n"
        "                        (numpy._core._multiarray_umath, 'correlate2')]:\n"
        "        gone.append(not hasattr(owner, name))\n"
        "    return gone, float(numpy.dot([1.0, 2.0], [3.0, 4.0]))\n"
    )
    gone, dot = value(source, remove=removed_names([CodePolicy()]))
    assert gone == [True] * 5
    assert dot == 11.0  # the rest of NumPy works


def test_exec_of_readable_library_source_finds_no_convolution() -> None:
    from course_lib.grading.static import CodePolicy
    from course_lib.grading.verify import removed_names

    # numeric.py's convolve calls the C function, which is not there any more
    source = (
        "def f():\n"
        "    import numpy, os\n"
        "    path = os.path.join(os.path.dirname(numpy.__file__), '_core', 'numeric.py')\n"
        "    space = {'__name__': 'numpy._core.numeric', '__package__': 'numpy._core'}\n"
        "    exec(open(path).read(), space)\n"
        "    return space['convolve']([1.0, 2.0], [1.0, 1.0])\n"
    )
    result = run(source, Call("a", "f", (), {}), remove=removed_names([CodePolicy()]))
    assert result.results["a"].raised is not None


# -- the grader trusts nothing the child says (class 4) ------------------------------------------


def test_a_forged_answer_on_the_result_channel_breaks_the_protocol() -> None:
    # the student writes a well-formed frame of their own to the grader's result descriptor
    source = (
        "import os, sys, struct\n"
        "def f():\n"
        "    fd = int(sys.argv[1])\n"
        "    body = bytes([5]) + b'junk'\n"
        "    os.write(fd, struct.pack('!I', len(body)) + body)\n"
        "    return 1\n"
        "def ok():\n"
        "    return 2\n"
    )
    calls = [Call("a", "f", (), {}, group="g1"), Call("b", "ok", (), {}, group="g2")]
    result = run(source, *calls)
    assert "broke the grader's protocol" in result.results["a"].failure
    assert result.violations and result.results["b"].output == 2


def test_a_huge_frame_is_refused_without_reading_it() -> None:
    source = (
        "import os, sys, struct\n"
        "def f():\n"
        "    os.write(int(sys.argv[1]), struct.pack('!I', 2**31))\n"
        "    while True:\n"
        "        os.write(int(sys.argv[1]), b'x' * 65536)\n"
    )
    result = run(source, Call("a", "f", (), {}))
    assert "a message of 2147483648 bytes" in result.results["a"].failure


def test_a_decode_bomb_is_refused() -> None:
    # a frame of nested lists far deeper than any answer
    source = (
        "import os, sys, struct\n"
        "def f():\n"
        "    body = bytes([5]) + b'l' + struct.pack('!I', 1)\n"
        "    body += (b'l' + struct.pack('!I', 1)) * 100000 + b'N'\n"
        "    os.write(int(sys.argv[1]), struct.pack('!I', len(body)) + body)\n"
        "    import time; time.sleep(30)\n"
    )
    started = time.monotonic()
    result = run(source, Call("a", "f", (), {}))
    assert "nested deeper than" in result.results["a"].failure
    assert time.monotonic() - started < 20


def test_messages_do_not_move_the_deadline() -> None:
    # a call that keeps sending well-formed messages (cell results) while it runs
    source = (
        "import os, sys, struct, time\n"
        "w = sys.modules['course_wire']  # the child's own encoder\n"
        "def f():\n"
        "    fd = int(sys.argv[1])\n"
        "    while True:\n"
        "        os.write(fd, w.frame(w.encode_message(w.CellsDone([], []))))\n"
        "        time.sleep(0.1)\n"
    )
    started = time.monotonic()
    result = run(source, Call("a", "f", (), {}), limits=Limits(call_timeout=2.0))
    assert "broke the grader's protocol" in result.results["a"].failure
    assert time.monotonic() - started < 15


def test_the_whole_submission_has_one_time_budget() -> None:
    source = "import time\ndef slow():\n    time.sleep(1.5)\n    return 1\n"
    calls = [Call(str(i), "slow", (), {}, group=str(i)) for i in range(8)]
    limits = Limits(call_timeout=2.0, total_seconds=4.0)
    started = time.monotonic()
    result = run(source, *calls, limits=limits)
    elapsed = time.monotonic() - started
    answered = [k for k, r in result.results.items() if r.failure is None]
    budget = [k for k, r in result.results.items() if r.failure and "time budget" in r.failure]
    assert 1 <= len(answered) <= 4 and budget
    assert elapsed < 10


# -- fail closed ---------------------------------------------------------------------------------


def test_without_bubblewrap_nothing_runs_and_the_error_says_what_to_install(monkeypatch) -> None:
    isolation.check_isolation.cache_clear()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os.path, "exists", lambda path: False)
    try:
        with pytest.raises(isolation.IsolationError, match="apt-get install bubblewrap"):
            run("def f():\n    return 1\n", Call("a", "f", (), {}))
    finally:
        monkeypatch.undo()
        isolation.check_isolation.cache_clear()


@pytest.mark.skipif(os.geteuid() != 0, reason="the drop to nobody happens when grading as root")
def test_a_child_that_does_not_drop_root_is_refused(monkeypatch) -> None:
    # the grader expects the drop; a child told nothing stays root and must be refused
    monkeypatch.setattr(sandbox, "_child_env", lambda drop: {"HOME": isolation.WORK})
    with pytest.raises(isolation.IsolationError, match="did not drop root"):
        run("def f():\n    return 1\n", Call("a", "f", (np.ones(1),), {}))
