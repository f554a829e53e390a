"""Red team: hostile submissions against real ``course autograde`` and ``course feedback``.

One simulated class of the ``convolution`` assignment: three honest students (whose grades and
feedback are the reference) and attackers of every class the security review found: escapes
around path checks (working directory, directory descriptors, /proc), file operations beyond
open, switching off the in-process guards, NumPy's C entry points, exec of readable library
source, forged and flooding messages and decode bombs on the grader's channel, forged reports,
feedback that trips the leak check, symbolic links, hostile student ids, other students' files
as the target, and notebooks that are empty, not notebooks, or hang. For each, the test asserts
that the attacker scores nothing for what they attacked or is flagged with evidence, that every
honest student's grade and feedback are exactly what they would be without the attackers, that
the gradebook and the other submissions are intact, and that the batch completes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import nbformat
import pytest
from grading_fixtures import students as fixtures

from course_lib.cli import main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "convolution"

# Cells the student adds: they run only in nbgrader's kernel (which the grade does not trust).
SEARCH_AND_DESTROY = """import os, shutil
victims = []
os.chdir("/")
for here, dirs, files in os.walk("."):
    for name in dirs:
        if name in ("submitted", "reports", "autograded", "feedback", "solutions"):
            victims.append(os.path.join(here, name))
    for name in files:
        if name.endswith((".db", ".json", ".ipynb")):
            victims.append(os.path.join(here, name))
for path in victims:
    try:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.truncate(path, 0)
    except Exception:
        pass
"""

DIR_FD_ESCAPE = """import os
try:
    root = os.open("/", os.O_RDONLY)
    for name in os.listdir(root):
        try:
            os.rmdir(name, dir_fd=root)
        except Exception:
            pass
except Exception:
    pass
"""

PROC_SPY = """import os
found = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for what in ("environ", "cmdline"):
            try:
                found.append(open(f"/proc/{pid}/{what}", "rb").read())
            except Exception:
                pass
        try:
            for name in os.listdir(f"/proc/{pid}/cwd"):
                os.remove(os.path.join(f"/proc/{pid}/cwd", name))
        except Exception:
            pass
"""

FILE_OPS = """import os, glob
for path in glob.glob("/**/*.db", recursive=True) + glob.glob("/**/*.ipynb", recursive=True):
    for attack in (lambda: os.truncate(path, 0), lambda: os.chmod(path, 0),
                   lambda: os.utime(path, (0, 0)), lambda: os.link(path, "x"),
                   lambda: os.symlink(path, "y")):
        try:
            attack()
        except Exception:
            pass
"""

FORGED_REPORT = """import json, os
fake = {"assignment": "convolution", "students": {"alice": {"score": 0.0}}}
for up in ("", "../", "../../", "../../../", "../../../../"):
    try:
        os.makedirs(up + "reports", exist_ok=True)
        with open(up + "reports/convolution-99999999T999999.999999Z.json", "w") as f:
            json.dump(fake, f)
    except Exception:
        pass
"""

FORK_AND_SLEEP = """import os, time
for _ in range(50):
    try:
        if os.fork() == 0:
            time.sleep(3600)
    except Exception:
        pass
"""

# Answers: attacks that run where the verification runs (the sandbox) and in the kernel.
GUARD_OFF_CORR2D = """import sys
sys.setprofile(None)
sys.meta_path.clear()
import scipy.signal


def corr2d(x, k):
    return scipy.signal.correlate2d(x, k, mode="valid")
"""

C_ENTRY_CORR2D = """def corr2d(x, k):
    correlate = np.core.multiarray.correlate2
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for a in range(kh):
            out[i] += correlate(x[i + a], k[a], 0)
    return out
"""

EXEC_SOURCE_CORR2D = """def corr2d(x, k):
    import os
    source = open(os.path.join(os.path.dirname(np.__file__), "_core", "numeric.py")).read()
    space = {"__name__": "numpy._core.numeric", "__package__": "numpy._core"}
    exec(source, space)
    rows = [space["convolve"](x[i], k[0][::-1], "valid") for i in range(x.shape[0])]
    return np.array(rows)
"""

FORGED_FRAME_CORR2D = """import sys, os, struct


def corr2d(x, k):
    wire = sys.modules["course_wire"]
    answer = np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))
    message = wire.CallDone("forged", answer, None, (), {}, 0.0, [], [])
    os.write(int(sys.argv[1]), wire.frame(wire.encode_message(message)))
    return answer
"""

DECODE_BOMB_CORR2D = """import sys, os, struct


def corr2d(x, k):
    body = bytes([5]) + (b"l" + struct.pack("!I", 1)) * 200000 + b"N"
    os.write(int(sys.argv[1]), struct.pack("!I", len(body)) + body)
    return np.zeros((1, 1))
"""

FLOOD_CORR2D = """import sys, os, time


def corr2d(x, k):
    wire = sys.modules["course_wire"]
    while True:
        os.write(int(sys.argv[1]), wire.frame(wire.encode_message(wire.CellsDone([], []))))
"""

LEAKY_CORR2D = """def corr2d(x, k):
    raise ValueError('run_test("test_corr2d", corr2d)')
"""


def _student(name: str, **kwargs) -> fixtures.Student:
    return fixtures.Student(name, **kwargs)


def roster() -> list[fixtures.Student]:
    return [
        # the honest reference
        _student("alice"),
        _student("bob", answers=fixtures.VECTORISED),
        _student("carol", answers={"corr2d": fixtures.FLIPPED_CORR2D}),
        # class 1 and 2: paths, descriptors, /proc, file operations, from the kernel
        _student("a1-destroyer", extra_cells=(SEARCH_AND_DESTROY,)),
        _student("a2-dirfd", extra_cells=(DIR_FD_ESCAPE,)),
        _student("a3-proc", extra_cells=(PROC_SPY,)),
        _student("a4-fileops", extra_cells=(FILE_OPS,)),
        _student("a5-report", extra_cells=(FORGED_REPORT,)),
        _student("a6-fork", extra_cells=(FORK_AND_SLEEP,)),
        # class 3: forbidden code the in-process guards would not see
        _student("b1-guardoff", answers={"corr2d": GUARD_OFF_CORR2D}),
        _student("b2-centry", answers={"corr2d": C_ENTRY_CORR2D}),
        _student("b3-exec", answers={"corr2d": EXEC_SOURCE_CORR2D}),
        # class 4: the channel
        _student("c1-forged", answers={"corr2d": FORGED_FRAME_CORR2D}),
        _student("c2-bomb", answers={"corr2d": DECODE_BOMB_CORR2D}),
        _student("c3-flood", answers={"corr2d": FLOOD_CORR2D}),
        # class 5: feedback
        _student("d1-leak", answers={"corr2d": LEAKY_CORR2D}),
    ]


HONEST = {"alice": 20.0, "bob": 20.0, "carol": 17.0}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("redteam")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    assert main(["--root", str(root), "release", ASSIGNMENT]) == 0
    fixtures.write_class(root, ASSIGNMENT, roster())
    submitted = root / "submitted"
    alice = submitted / "alice" / ASSIGNMENT
    # class 2: a submission that is a symbolic link, and one that holds one
    (submitted / "e1-symlink").mkdir()
    (submitted / "e1-symlink" / ASSIGNMENT).symlink_to(alice)
    (submitted / "e2-inner" / ASSIGNMENT).mkdir(parents=True)
    (submitted / "e2-inner" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").symlink_to(
        alice / f"{ASSIGNMENT}.ipynb"
    )
    # hostile ids: folder names that must not become paths or gradebook rows
    for name in ("-rf", "a b", "x;rm -rf ~", ".hidden", "é" * 3, "n" * 80):
        shutil.copytree(alice, submitted / name / ASSIGNMENT)
    # notebooks that are empty, or not notebooks at all
    (submitted / "f1-empty" / ASSIGNMENT).mkdir(parents=True)
    nbformat.write(
        nbformat.v4.new_notebook(), str(submitted / "f1-empty" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    )
    (submitted / "f2-garbage" / ASSIGNMENT).mkdir(parents=True)
    (submitted / "f2-garbage" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(b"\x00{not json")

    protected = {
        p: _digest(p)
        for p in [
            root / "gradebook.db",
            root / "nbgrader_config.py",
            *sorted((root / "solutions").rglob("*.ipynb")),
            *sorted(p for p in submitted.rglob("*.ipynb") if not p.is_symlink()),
        ]
    }
    started = time.monotonic()
    args = ["--root", str(root), "autograde", ASSIGNMENT, "--jobs", "2", "--timeout", "5"]
    assert main([*args, "--memory", "512", "--quiet"]) == 0
    seconds = time.monotonic() - started
    manifest = json.loads((root / "reports" / "runs.json").read_text())
    report = json.loads((root / "reports" / manifest[-1]["report"]).read_text())
    feedback_status = main(["--root", str(root), "feedback", ASSIGNMENT])
    return {
        "root": root,
        "report": report,
        "seconds": seconds,
        "protected": protected,
        "feedback_status": feedback_status,
    }


def _kinds(report: dict, student: str) -> set[str]:
    return {flag["kind"] for flag in report["students"][student]["flags"]}


def _gradebook(root: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {s.student.id: s.score for s in gb.assignment_submissions(ASSIGNMENT)}


def test_honest_students_keep_their_grades_and_the_batch_completes(graded: dict) -> None:
    report = graded["report"]
    for name, score in HONEST.items():
        assert report["students"][name]["score"] == score, name
        assert not _kinds(report, name) & {"tamper-suspected", "suspicious-code"}, name
    gradebook = _gradebook(graded["root"])
    for name, score in HONEST.items():
        assert gradebook[name] == score
    assert graded["seconds"] < 900


def test_nothing_of_the_course_was_changed_by_student_code(graded: dict) -> None:
    root = graded["root"]
    for path, digest in graded["protected"].items():
        if path.name == "gradebook.db":
            continue  # the grader itself wrote the grades into it
        assert path.exists(), path
        assert _digest(path) == digest, path
    with sqlite3.connect(root / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not graded["report"]["gradebook_tampered"]
    reports = sorted(p.name for p in (root / "reports").iterdir())
    assert not [n for n in reports if "99999999" in n]  # no forged report reached the course


@pytest.mark.parametrize(
    "student",
    ["a1-destroyer", "a2-dirfd", "a3-proc", "a4-fileops", "a5-report", "a6-fork"],
)
def test_kernel_attacks_change_nothing_and_are_flagged(graded: dict, student: str) -> None:
    report = graded["report"]
    s = report["students"][student]
    assert s["score"] == 20.0  # their answers are right; the attack gained and broke nothing
    flags = [f for f in s["flags"] if f["kind"] == "suspicious-code"]
    assert flags and all(f["evidence"].startswith("cell ") for f in flags)
    assert student in report["suspicious"]


@pytest.mark.parametrize(
    ("student", "evidence"),
    [
        ("b1-guardoff", "imports scipy.signal"),
        ("b2-centry", "uses numpy.core"),
        ("b3-exec", "runs code built at run time"),
    ],
)
def test_forbidden_code_is_decided_outside_the_student_process(
    graded: dict, student: str, evidence: str
) -> None:
    s = graded["report"]["students"][student]
    assert s["score"] == 17.0  # corr2d's 3 points, nothing else
    assert s["tests"]["test_corr2d"]["points"] == 0.0
    assert "not allowed in this exercise" in s["tests"]["test_corr2d"]["message"]
    assert s["tests"]["test_corr2d"]["diagnosis"] == "forbidden_call"
    assert evidence in {flag["detail"] for flag in s["flags"]}
    assert student in graded["report"]["suspicious"]


@pytest.mark.parametrize("student", ["c1-forged", "c2-bomb", "c3-flood"])
def test_the_channel_cannot_be_forged_flooded_or_bombed(graded: dict, student: str) -> None:
    s = graded["report"]["students"][student]
    assert s["tests"]["test_corr2d"]["points"] == 0.0
    assert s["score"] == 17.0
    assert "protocol-violation" in _kinds(graded["report"], student)
    assert any("broke the grader's protocol" in i for i in s["incidents"])


def test_symbolic_links_and_hostile_ids_are_refused(graded: dict) -> None:
    report = graded["report"]
    for name in ("e1-symlink", "e2-inner"):
        assert report["students"][name]["score"] == 0.0
        assert "refused-submission" in _kinds(report, name)
        assert "symbolic link" in report["students"][name]["error"]
    hostile = {"-rf", "a b", "x;rm -rf ~", ".hidden", "é" * 3, "n" * 80}
    assert hostile <= set(report["refused"])
    assert not hostile & set(report["students"])
    assert not hostile & set(_gradebook(graded["root"]))
    assert not [p for p in (graded["root"] / "feedback").iterdir() if p.name in hostile]


def test_broken_notebooks_get_nothing(graded: dict) -> None:
    report = graded["report"]
    assert report["students"]["f1-empty"]["score"] == 0.0
    assert report["students"]["f2-garbage"]["score"] == 0.0
    assert "could not be read" in report["students"]["f2-garbage"]["error"]


def test_feedback_that_would_leak_is_withheld_for_that_student_only(graded: dict) -> None:
    root = graded["root"]
    assert graded["feedback_status"] == 1  # said: a page was withheld
    assert not (root / "feedback" / "d1-leak").exists()
    for name, score in HONEST.items():
        page = (root / "feedback" / name / ASSIGNMENT / f"{ASSIGNMENT}.md").read_text()
        assert f"**Score: {score:g} / 20**" in page
        assert "run_test(" not in page
    for student in graded["report"]["students"]:
        if student != "d1-leak":
            assert (root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()


def test_no_temporary_folder_is_left_behind(graded: dict) -> None:
    import tempfile

    runs = Path(tempfile.gettempdir()) / "course-autograde"
    mine = [p for p in runs.glob(f"run-{os.getpid()}-*")]
    assert mine == []
