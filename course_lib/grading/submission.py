"""Grading one submission, on any machine: a :class:`SubmissionTask` in, a :class:`Outcome` out.

A task carries everything one submission needs as plain data: the released notebook, a copy of
the gradebook with only the assignment's structure (no student, no solution), the submission's
files, read once from the course folder before any student code ran (:func:`snapshot`), and the
version of the grading code. :func:`grade_submission` then, in a private folder of its own:

1. runs the real ``nbgrader autograde`` on it, with the notebook kernel in a container of
   :mod:`isolation` (its own kernel spec: the kernel sees the Python environment and the one
   folder of this submission, no network, an unprivileged user, a memory limit, and the audit
   hook of :mod:`policy`), so that nbgrader's records and the autograded notebook exist;
2. grades the same notebook with :func:`course_lib.grading.verify.verify_notebook`, where the
   student's code runs in the verification sandbox and is judged by the grader.

The outcome holds nbgrader's records (read from the private gradebook, which no student code
could reach), the verification, and the autograded folder's files. The task never touches the
course folder: only the coordinating process (``autograde.py``) writes the real gradebook,
``autograded/`` and the reports. The same function runs in the local worker processes and on the
workers of a Dask cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import isolation
from course_lib.grading.sandbox import Limits

__all__ = [
    "Outcome",
    "SubmissionRefused",
    "SubmissionTask",
    "check_student_id",
    "grade_submission",
    "grading_version",
    "snapshot",
]

#: What a student id may look like before it becomes a path or a gradebook row.
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")

#: Limits of one submission folder.
MAX_FILES = 200
MAX_BYTES = 64 * 1024 * 1024


class SubmissionRefused(ValueError):
    """A submission that is not graded, with the reason (a symbolic link, too large, ...)."""


def check_student_id(student: str) -> str:
    """``student`` when it is a safe id (letters, digits and ``._@+-``, not starting with a
    dot); ValueError naming it otherwise."""
    if not isinstance(student, str) or not STUDENT_ID.fullmatch(student) or student in (".", ".."):
        raise ValueError(
            f"invalid student id {student!r}: use 1-64 letters, digits and . _ @ + -, "
            "starting with a letter or digit"
        )
    return student


def snapshot(folder: Path) -> dict[str, bytes]:
    """The files of a submission folder (relative path -> bytes), read without following links.

    Raises :class:`SubmissionRefused` for a folder that is a symbolic link or holds one, holds
    anything but plain files and folders, or is larger than the limits.
    """
    folder = Path(folder)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        raise SubmissionRefused(f"{folder.name} is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise SubmissionRefused(f"{folder.name} is not a folder")
    files: dict[str, bytes] = {}
    total = 0
    for here, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs):
            if os.path.islink(os.path.join(here, name)):
                raise SubmissionRefused(f"it contains a symbolic link: {name}")
        for name in sorted(names):
            path = os.path.join(here, name)
            relative = os.path.relpath(path, folder)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                raise SubmissionRefused(f"it contains a symbolic link: {relative}")
            if not stat.S_ISREG(info.st_mode):
                raise SubmissionRefused(f"it contains something that is not a file: {relative}")
            if len(files) >= MAX_FILES:
                raise SubmissionRefused(f"it has more than {MAX_FILES} files")
            total += info.st_size
            if total > MAX_BYTES:
                raise SubmissionRefused(f"it is larger than {MAX_BYTES // 2**20} MB")
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                files[relative] = f.read(MAX_BYTES + 1)
    return files


def grading_version() -> str:
    """course_lib's version and a digest of the grading code (tasks and outcomes carry it, so a
    worker running other grading code is noticed)."""
    import course_lib

    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in sorted(here.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{getattr(course_lib, '__version__', '0')}+{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class SubmissionTask:
    """Everything one submission's grading needs (plain data: it travels to other machines)."""

    assignment: str
    student: str
    files: dict[str, bytes]
    release: bytes
    template_db: bytes
    course_id: str
    timeout: int = 30
    memory_mb: int = 2048
    limits: Limits = field(default_factory=Limits)
    seed: int | None = None
    version: str = ""


@dataclass
class Outcome:
    """What grading one submission produced."""

    student: str
    nbgrader_success: bool = False
    nbgrader_error: str = ""
    records: dict | None = None
    verification: object = None  # a verify.Verification
    autograded: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    version: str = ""
    worker: str = ""
    error: str = ""


def _safe_relative(relative: str) -> str:
    path = Path(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise SubmissionRefused(f"a file name that leaves its folder: {relative!r}")
    return str(path)


def _kernel_spec(folder: Path, work: Path, runtime: Path, memory_mb: int) -> None:
    """A kernel spec ``course-sandboxed`` whose kernel runs in a container (see the module doc)."""
    import course_lib

    here = Path(__file__).resolve().parent
    view = isolation.View()
    isolation._system_libraries(view)
    exe = isolation.interpreter()
    for root in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}):
        view.ro(root)
    if not any(exe.startswith(t.rstrip("/") + "/") for t in view.targets()):
        view.ro(exe)
    package = Path(course_lib.__file__).resolve().parent
    if not any(str(package).startswith(t.rstrip("/") + "/") for t in view.targets()):
        view.ro(package)
    for name in ("_kernel_launch.py", "_kernel_hook.py", "policy.py"):
        view.ro(here / name, f"{isolation.LIB}/{name}")
    settings = {
        "readable": [*view.targets(), isolation.LIB, str(work), str(runtime)],
        "writable": [str(work), "/tmp", str(runtime)],
        "preload": ["numpy", "course_lib.grading.checks"],
    }
    policy_file = folder / "kernel_policy.json"
    policy_file.write_text(json.dumps(settings))
    view.ro(policy_file, f"{isolation.LIB}/kernel_policy.json")
    view.rw(work)
    view.rw(runtime)
    drop = isolation.drop_target()
    env = {
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "IPYTHONDIR": "/tmp/ipython",
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
        # address space of the kernel: the interpreter with NumPy and PyTorch maps ~3 GB
        "COURSE_KERNEL_MEMORY": str((memory_mb + 4096) * 1024 * 1024),
    }
    if drop is not None:
        env["COURSE_SANDBOX_DROP"] = f"{drop[0]}:{drop[1]}"
    argv = [sys.executable, "-I", f"{isolation.LIB}/_kernel_launch.py", "{connection_file}"]
    command = isolation.bwrap_command(argv, view, chdir=str(work), env=env)
    spec_dir = folder / "kernels" / "course-sandboxed"
    spec_dir.mkdir(parents=True)
    spec = {"argv": command, "display_name": "Python 3 (graded)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def _run_nbgrader(task: SubmissionTask, base: Path) -> tuple[bool, str, dict | None, dict]:
    """nbgrader autograde in ``base``; (success, error, records, autograded files)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    course = base / "course"
    submitted = course / "submitted" / task.student / task.assignment
    submitted.mkdir(parents=True)
    (course / "source" / task.assignment).mkdir(parents=True)
    for relative, data in task.files.items():
        target = submitted / _safe_relative(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    db = base / "db" / "gradebook.db"
    db.parent.mkdir()
    db.write_bytes(task.template_db)
    work = course / "autograded" / task.student / task.assignment
    work.mkdir(parents=True)
    os.chmod(work, 0o1777)
    runtime = base / "runtime"
    runtime.mkdir()
    os.chmod(runtime, 0o1777)
    jupyter = base / "jupyter"
    jupyter.mkdir()
    _kernel_spec(jupyter, work, runtime, task.memory_mb)

    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{db}"
    config.CourseDirectory.course_id = task.course_id
    config.CourseDirectory.source_directory = "source"
    config.Execute.timeout = int(task.timeout)
    config.Execute.kernel_name = "course-sandboxed"
    config.Execute.extra_arguments = []
    # Unix sockets in the runtime folder, which the kernel's container shares (it has no network)
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(runtime / "kernel-ipc")
    config.KernelManager.connection_file = str(runtime / "kernel.json")
    config.Autograde.force = True
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR")}
    os.environ["JUPYTER_PATH"] = str(jupyter)
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)
    try:
        coursedir = CourseDirectory(config=config)
        api = NbGraderAPI(coursedir=coursedir, config=config)
        try:
            result = api.autograde(task.assignment, task.student, force=True, create=True)
        except BaseException as exc:  # this submission only
            result = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    records = _records(db, task.assignment, task.student)
    files: dict[str, bytes] = {}
    if work.is_dir():
        for here, _dirs, names in os.walk(work, followlinks=False):
            for name in names:
                path = Path(here) / name
                if path.is_file() and not path.is_symlink() and len(files) < MAX_FILES:
                    files[str(path.relative_to(work))] = path.read_bytes()[:MAX_BYTES]
    error = str(result.get("error") or "")[-4000:]
    return bool(result.get("success")), error, records, files


def _records(db: Path, assignment: str, student: str) -> dict | None:
    """nbgrader's view of the submission in the private gradebook (None when it has none)."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with warnings.catch_warnings(), Gradebook(f"sqlite:///{db}") as gb:
            warnings.simplefilter("ignore")
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                return None
            notebooks = {}
            for notebook in submission.notebooks:
                notebooks[notebook.name] = {
                    grade.name: {
                        "auto_score": grade.auto_score,
                        "manual_score": grade.manual_score,
                        "needs_manual_grade": grade.needs_manual_grade,
                        "cell_type": grade.cell.cell_type,
                    }
                    for grade in notebook.grades
                }
            return {
                "timestamp": submission.timestamp,
                "late_penalty": float(submission.late_submission_penalty or 0.0),
                "notebooks": notebooks,
            }
    except Exception:  # a gradebook nbgrader left unusable: the verified scores only
        return None


def grade_submission(task: SubmissionTask, scratch: str | Path | None = None) -> Outcome:
    """Grade one submission (see the module docstring); never raises for the submission's sake."""
    from course_lib.grading.verify import verify_notebook

    started = time.perf_counter()
    outcome = Outcome(student=task.student, version=grading_version(), worker=_worker_name())
    base = Path(tempfile.mkdtemp(prefix="submission-", dir=scratch))
    try:
        notebook_name = f"{task.assignment}.ipynb"
        release = base / "release.ipynb"
        release.write_bytes(task.release)
        if notebook_name in task.files:
            notebook = base / "submitted.ipynb"
            notebook.write_bytes(task.files[notebook_name])
            try:
                outcome.verification = verify_notebook(
                    notebook,
                    task.assignment,
                    student=task.student,
                    release=release,
                    seed=task.seed,
                    limits=task.limits,
                )
            except isolation.IsolationError:
                raise
            except Exception as exc:  # a notebook that is not a notebook, ...
                outcome.error = f"the notebook could not be read: {type(exc).__name__}: {exc}"
        else:
            outcome.error = f"no {notebook_name} in the submission"
        try:
            success, error, records, files = _run_nbgrader(task, base)
        except SubmissionRefused as refused:
            success, error, records, files = False, str(refused), None, {}
        outcome.nbgrader_success, outcome.nbgrader_error = success, error
        outcome.records, outcome.autograded = records, files
    finally:
        with contextlib.suppress(Exception):
            _make_removable(base)
        shutil.rmtree(base, ignore_errors=True)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _make_removable(base: Path) -> None:
    """Files the kernel (as nobody) made are the grader's to remove: nothing to do as root;
    as another user they are the user's own."""
    for here, dirs, names in os.walk(base):
        for name in dirs + names:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(here, name), 0o700, follow_symlinks=False)


def _worker_name() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
