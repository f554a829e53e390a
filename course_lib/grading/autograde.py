"""``course autograde``: nbgrader's autograde in parallel, then the verified grade, one writer.

For each student with ``submitted/<student>/<assignment>/``:

1. a worker process runs the real ``nbgrader autograde`` for that student in its own temporary
   course copy, with its own gradebook copy that holds only the assignment's structure (no other
   student, no solution notebook), so that nbgrader's records, cells, scores and the autograded
   notebook exist; the kernel starts with an audit hook (``_kernel_hook.py``) that keeps it away
   from the real course files;
2. :func:`course_lib.grading.verify.verify_notebook` grades the same submission where the
   student's code never runs in the grader's process;
3. the parent process alone merges nbgrader's records into the real ``gradebook.db`` through
   nbgrader's ``Gradebook`` API, writes the verified points as the authoritative auto scores of
   the test cells, and copies the autograded notebook into ``autograded/``.

nbgrader's score is kept in the report for comparison; where it disagrees with the verified one,
the submission is flagged. A kernel that dies, loops or floods costs only what it did not
finish, with the reason in the report; the batch goes on.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import checks
from course_lib.grading.sandbox import Limits
from course_lib.grading.verify import Flag, Verification, verify_notebook

__all__ = [
    "AutogradeRun",
    "StudentResult",
    "autograde",
    "find_course_root",
    "submitted_students",
]


@dataclass
class StudentResult:
    """One student's grading: nbgrader's view, the verified one, and what looked wrong."""

    student: str
    nbgrader_success: bool = False
    nbgrader_error: str = ""
    nbgrader_scores: dict[str, float | None] = field(default_factory=dict)
    verification: Verification | None = None
    flags: list[Flag] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return self.verification.score if self.verification else 0.0

    @property
    def nbgrader_score(self) -> float:
        return sum(v or 0.0 for v in self.nbgrader_scores.values())


@dataclass
class AutogradeRun:
    assignment: str
    started: str
    jobs: int
    results: dict[str, StudentResult] = field(default_factory=dict)
    seconds: float = 0.0
    gradebook_tampered: bool = False  # changed by something else during the run (restored)


def find_course_root(start: str | Path | None = None) -> Path:
    """The nearest folder, from ``start`` (default: the working directory) up, with an
    ``nbgrader_config.py``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    raise FileNotFoundError(
        f"no nbgrader_config.py in {here} or above: run course commands in the course folder"
    )


def submitted_students(root: Path, assignment: str) -> list[str]:
    """Students with a ``submitted/<student>/<assignment>/`` folder, sorted."""
    base = root / "submitted"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / assignment).is_dir())


def _db_path(root: Path) -> Path:
    return root / "gradebook.db"


def _course_id(root: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    loader = PyFileConfigLoader("nbgrader_config.py", path=str(root))
    with contextlib.suppress(Exception):
        config = loader.load_config()
        return str(config.CourseDirectory.get("course_id", "default_course"))
    return "default_course"


def _template_gradebook(root: Path, assignment: str, target: Path, course_id: str) -> None:
    """A copy of the gradebook with the assignment's structure and no student."""
    from nbgrader.api import Gradebook, MissingEntry

    shutil.copy2(_db_path(root), target)
    with Gradebook(f"sqlite:///{target}", course_id) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise SystemExit(
                f"assignment {assignment!r} is not in the gradebook: run `course release "
                f"{assignment}` first"
            ) from None
        for student in list(gb.students):
            gb.remove_student(student.id)
        for other in list(gb.assignments):
            if other.name != assignment:
                gb.remove_assignment(other.name)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Worker:
    """A worker process with its own course copy; grades one student at a time."""

    def __init__(
        self,
        index: int,
        root: Path,
        assignment: str,
        template: Path,
        course_id: str,
        timeout: int,
        memory_mb: int,
        private: Path,
    ) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"course-autograde-{index}-"))
        self.course = self.base / "course"
        self.db_dir = self.base / "db"
        self.scratch = self.base / "scratch"
        for folder in (self.course / "submitted", self.course / "source", self.db_dir):
            folder.mkdir(parents=True)
        self.scratch.mkdir()
        self.assignment = assignment
        self.db = self.db_dir / "gradebook.db"
        shutil.copy2(template, self.db)
        # data files of the assignment, never its notebooks (they hold the hidden tests)
        source = root / "solutions" / assignment
        target = self.course / "source" / assignment
        target.mkdir(parents=True)
        if source.is_dir():
            for item in source.rglob("*"):
                relative = item.relative_to(source)
                if item.is_file() and item.suffix != ".ipynb" and "checkpoints" not in str(item):
                    (target / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(item, target / relative)
        import course_lib

        readable = sorted({sys.prefix, sys.base_prefix, str(Path(course_lib.__file__).parent)})
        policy = {
            "deny": [str(root), str(self.db_dir), str(private)],
            "allow": readable,
            "write": [str(self.course), str(self.scratch)],
            "preload": ["numpy", "course_lib.grading.checks"],
        }
        hook = Path(__file__).with_name("_kernel_hook.py")
        settings = {
            "root": str(self.course),
            "db_url": f"sqlite:///{self.db}",
            "course_id": course_id,
            "assignment": assignment,
            "timeout": int(timeout),
            "exec_lines": [f"import runpy; runpy.run_path({str(hook)!r}, run_name='_course_hook')"],
            # address space of the worker and its kernels: the kernel maps PyTorch (~3 GB)
            "memory_bytes": (memory_mb + 4096) * 1024 * 1024,
        }
        settings_file = self.base / "settings.json"
        settings_file.write_text(json.dumps(settings))
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
            "HOME": str(self.scratch),
            "TMPDIR": str(self.scratch),
            "LANG": "C.UTF-8",
            "JUPYTER_RUNTIME_DIR": str(self.scratch / "runtime"),
            "JUPYTER_DATA_DIR": str(self.scratch / "data"),
            "JUPYTER_CONFIG_DIR": str(self.scratch / "config"),
            "IPYTHONDIR": str(self.scratch / "ipython"),
            "MPLCONFIGDIR": str(self.scratch / "mpl"),
            "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore",
            "COURSE_KERNEL_POLICY": json.dumps(policy),
        }
        self.log = open(self.base / "worker.log", "wb")  # closed in close()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_autograde_worker.py")), settings_file],
            cwd=self.scratch,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,
        )

    def grade(self, root: Path, student: str, budget: float) -> dict:
        """Copy the submission in, let nbgrader autograde it, return the worker's reply."""
        source = root / "submitted" / student / self.assignment
        target = self.course / "submitted" / student / self.assignment
        shutil.copytree(source, target)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(student + "\n")
        self.process.stdin.flush()
        answer: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: answer.put(self.process.stdout.readline()))
        reader.daemon = True
        reader.start()
        try:
            line = answer.get(timeout=budget)
        except queue.Empty:
            return {
                "student": student,
                "success": False,
                "error": f"nbgrader did not finish in {budget:.0f} s",
                "restart": True,
            }
        if not line:
            return {
                "student": student,
                "success": False,
                "error": "the nbgrader worker died",
                "restart": True,
            }
        return json.loads(line)

    def forget(self, student: str) -> None:
        """Remove the student from the worker's copy (the next kernel must not see them)."""
        from nbgrader.api import Gradebook

        with contextlib.suppress(Exception), Gradebook(f"sqlite:///{self.db}") as gb:
            gb.remove_student(student)
        for folder in ("submitted", "autograded", "feedback"):
            shutil.rmtree(self.course / folder / student, ignore_errors=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)


def _nbgrader_records(db: Path, assignment: str, student: str) -> dict | None:
    """nbgrader's view of one submission in a worker's gradebook (None if it has none)."""
    try:
        return _read_records(db, assignment, student)
    except Exception:  # a worker killed mid-write leaves nothing usable: verified scores only
        return None


def _read_records(db: Path, assignment: str, student: str) -> dict | None:
    from nbgrader.api import Gradebook, MissingEntry

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
        return {"timestamp": submission.timestamp, "notebooks": notebooks}


def _merge(
    root: Path,
    course_id: str,
    assignment: str,
    student: str,
    records: dict | None,
    verification: Verification | None,
) -> None:
    """The one writer: nbgrader's records and the verified points into the real gradebook."""
    from nbgrader.api import Gradebook

    verified = verification.tests if verification else {}
    with (
        warnings.catch_warnings(),  # SQLAlchemy's notes on nbgrader's own session handling
        Gradebook(f"sqlite:///{_db_path(root)}", course_id) as gb,
    ):
        warnings.simplefilter("ignore")
        gb.update_or_create_student(student)
        timestamp = (records or {}).get("timestamp")
        kwargs = {"timestamp": timestamp} if timestamp else {}
        submission = gb.update_or_create_submission(assignment, student, **kwargs)
        for notebook in submission.notebooks:
            recorded = (records or {}).get("notebooks", {}).get(notebook.name, {})
            for grade in notebook.grades:
                if grade.name in verified:
                    grade.auto_score = verified[grade.name].points
                    grade.needs_manual_grade = False
                elif grade.name in recorded:
                    grade.auto_score = recorded[grade.name]["auto_score"]
                    grade.needs_manual_grade = recorded[grade.name]["needs_manual_grade"]
                elif grade.cell.cell_type == "code" and grade.auto_score is None:
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
        gb.db.commit()


def _disagreements(result: StudentResult) -> list[Flag]:
    flags = []
    if result.verification is None:
        return flags
    for test_id, test in result.verification.tests.items():
        if test_id not in result.nbgrader_scores:
            continue
        theirs = result.nbgrader_scores[test_id] or 0.0
        if theirs > test.points + 1e-9:
            flags.append(
                Flag(
                    "tamper-suspected",
                    "nbgrader's kernel gave points the verified run did not",
                    f"{test_id}: nbgrader {theirs:g}, verified {test.points:g} "
                    f"({test.message or 'passed'})"[:400],
                )
            )
        elif theirs + 1e-9 < test.points:
            flags.append(
                Flag(
                    "kernel-lost-points",
                    "nbgrader's kernel gave fewer points than the verified run "
                    "(a dead or looping kernel, output on stderr, or tampering)",
                    f"{test_id}: nbgrader {theirs:g}, verified {test.points:g}",
                )
            )
    return flags


def autograde(
    assignment: str,
    root: str | Path | None = None,
    *,
    jobs: int = 2,
    timeout: int = 30,
    memory_mb: int = 2048,
    students: list[str] | None = None,
    progress: bool = True,
    verify_limits: Limits | None = None,
) -> AutogradeRun:
    """Autograde every submission of ``assignment`` (see the module docstring).

    ``timeout`` is nbgrader's limit per cell and the sandbox's per call (seconds);
    ``memory_mb`` the memory a submission may use. Returns the run, for the report.
    """
    from tqdm.auto import tqdm

    root = find_course_root(root)
    if assignment not in checks.ASSIGNMENTS:
        raise SystemExit(
            f"unknown assignment {assignment!r}; known: {', '.join(checks.ASSIGNMENTS)}"
        )
    students = students if students is not None else submitted_students(root, assignment)
    started = time.perf_counter()
    run = AutogradeRun(
        assignment=assignment,
        started=datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ"),
        jobs=jobs,
    )
    if not students:
        return run
    course_id = _course_id(root)
    release = root / "exercises" / assignment / f"{assignment}.ipynb"
    limits = verify_limits or Limits(call_timeout=float(timeout), memory_mb=memory_mb)
    private = Path(tempfile.mkdtemp(prefix="course-autograde-"))
    template = private / "template.db"
    _template_gradebook(root, assignment, template, course_id)
    backup = private / "gradebook.backup.db"
    shutil.copy2(_db_path(root), backup)
    expected = _file_digest(_db_path(root))
    todo: queue.Queue[str] = queue.Queue()
    for student in students:
        todo.put(student)
    finished: queue.Queue[tuple[str, dict | None, Verification | None, dict]] = queue.Queue()
    budget = max(120.0, 20.0 * timeout)

    def work(index: int) -> None:
        worker = None
        try:
            while True:
                try:
                    student = todo.get_nowait()
                except queue.Empty:
                    return
                if worker is None:
                    worker = _Worker(
                        index, root, assignment, template, course_id, timeout, memory_mb, private
                    )
                t0 = time.perf_counter()
                try:
                    reply = worker.grade(root, student, budget)
                    records = _nbgrader_records(worker.db, assignment, student)
                    autograded = worker.course / "autograded" / student / assignment
                    target = private / "autograded" / student
                    if autograded.is_dir():
                        shutil.copytree(autograded, target, dirs_exist_ok=True)
                    if reply.get("restart"):
                        worker.close()
                        worker = None
                    else:
                        worker.forget(student)
                    notebook = root / "submitted" / student / assignment / f"{assignment}.ipynb"
                    verification = None
                    if notebook.is_file():
                        verification = verify_notebook(
                            notebook,
                            assignment,
                            student=student,
                            release=release if release.is_file() else None,
                            limits=limits,
                        )
                    reply["seconds"] = time.perf_counter() - t0
                    finished.put((student, records, verification, reply))
                except Exception as exc:  # this student only; the batch goes on
                    error = {
                        "error": f"grading failed: {exc!r}",
                        "seconds": time.perf_counter() - t0,
                    }
                    finished.put((student, None, None, error))
                    if worker is not None:
                        worker.close()
                        worker = None
        except BaseException as exc:  # keep the batch going: report and stop this worker
            finished.put(("", None, None, {"error": f"worker {index}: {exc!r}"}))
        finally:
            if worker is not None:
                worker.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    bar = tqdm(total=len(students), desc=f"autograde {assignment}", unit="nb", disable=not progress)
    try:
        done = 0
        while done < len(students):
            try:
                student, records, verification, reply = finished.get(timeout=1.0)
            except queue.Empty:
                if not any(t.is_alive() for t in threads):
                    break
                continue
            if not student:
                print(reply.get("error"), file=sys.stderr)
                continue
            done += 1
            result = _collect(student, records, verification, reply)
            if _file_digest(_db_path(root)) != expected:
                # written by something other than this process: put back the last good copy
                run.gradebook_tampered = True
                shutil.copy2(backup, _db_path(root))
            _merge(root, course_id, assignment, student, records, verification)
            shutil.copy2(_db_path(root), backup)
            expected = _file_digest(_db_path(root))
            _copy_autograded(root, private, assignment, student)
            run.results[student] = result
            bar.update(1)
            bar.set_postfix_str(f"{student}: {result.score:g}")
    finally:
        bar.close()
        for thread in threads:
            thread.join(timeout=5)
        shutil.rmtree(private, ignore_errors=True)
    missing = [s for s in students if s not in run.results]
    for student in missing:
        run.results[student] = StudentResult(student, nbgrader_error="not graded: worker failed")
    if _file_digest(_db_path(root)) != expected:
        run.gradebook_tampered = True
        shutil.copy2(backup, _db_path(root))
    run.seconds = time.perf_counter() - started
    return run


def _collect(
    student: str, records: dict | None, verification: Verification | None, reply: dict
) -> StudentResult:
    result = StudentResult(
        student=student,
        nbgrader_success=bool(reply.get("success")),
        nbgrader_error=str(reply.get("error") or ""),
        verification=verification,
        seconds=float(reply.get("seconds", 0.0)),
    )
    if records:
        for grades in records["notebooks"].values():
            for name, grade in grades.items():
                if grade["cell_type"] == "code" and name.startswith("test_"):
                    result.nbgrader_scores[name] = grade["auto_score"]
    if verification is not None:
        result.flags = list(verification.flags) + _disagreements(result)
    return result


def _copy_autograded(root: Path, private: Path, assignment: str, student: str) -> None:
    source = private / "autograded" / student
    if source.is_dir():
        target = root / "autograded" / student / assignment
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target)
        shutil.rmtree(source, ignore_errors=True)
