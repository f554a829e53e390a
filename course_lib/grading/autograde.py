"""``course autograde``: every submission graded once, in isolation, with one gradebook writer.

The coordinating process (this module):

1. takes an immutable snapshot of the submissions before any student code runs: each
   ``submitted/<student>/<assignment>/`` folder is read into memory without following links
   (a submission that is a symbolic link or holds one is refused, with the reason); student ids
   are checked before they become paths or gradebook rows;
2. makes one :class:`~course_lib.grading.submission.SubmissionTask` per submission (the released
   notebook, a gradebook copy with only the assignment's structure, the submission's files) and
   hands the tasks to an executor: local worker processes (``--jobs``), or the workers of a
   Dask cluster (``--scheduler``, :mod:`course_lib.grading.cluster`);
3. as each outcome arrives, writes it into the real ``gradebook.db`` through nbgrader's
   ``Gradebook`` API (the verified points are the auto scores of the test cells; nbgrader's own
   score is kept for comparison and a disagreement is flagged) and copies the autograded
   notebook into ``autograded/``. It is the only writer of the course folder.

Each submission has a time budget and the batch has one: a submission that hangs or kills its
worker is reported with the reason (a worker that dies is replaced and its task tried once more)
and the batch goes on. Temporary folders live under one folder per run, removed at the end and,
for runs that were killed, by the next run.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import checks, isolation
from course_lib.grading.sandbox import Limits
from course_lib.grading.submission import (
    Outcome,
    SubmissionTask,
    check_student_id,
    grading_version,
    snapshot,
)
from course_lib.grading.verify import SUSPICIOUS, Flag, Verification

__all__ = [
    "AutogradeRun",
    "LocalPool",
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
    error: str = ""  # why it was not (fully) graded
    worker: str = ""

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
    refused: dict[str, str] = field(default_factory=dict)  # folder name -> why not graded
    seconds: float = 0.0
    gradebook_tampered: bool = False  # the gradebook did not hold the verified scores after
    executor: str = "local"
    run_id: str = ""


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
    """Names of the folders in ``submitted/`` with an ``<assignment>`` entry, sorted (not yet
    checked: see :func:`autograde`)."""
    base = root / "submitted"
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if os.path.lexists(p / assignment))


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
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{target}", course_id) as gb:
        warnings.simplefilter("ignore")
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


# -- the run's own temporary folder -----------------------------------------------------------


def _runs_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / "course-autograde"
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _processes_inside(run: Path) -> list[int]:
    """Processes whose working folder lies in ``run``: what a killed run left running (its
    workers, their nbgrader and kernels all work inside the run folder)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if cwd == run or run in cwd.parents:
            found.append(int(entry.name))
    return found


def _clean_stale_runs(folder: Path) -> None:
    """Remove the folders of earlier runs whose process is gone (killed runs leave them), after
    stopping whatever those runs left running in them."""
    for run in folder.glob("run-*"):
        try:
            pid = int((run / "pid").read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and _alive(pid):
            continue
        where = run.resolve()
        for _ in range(20):
            for process in _processes_inside(where):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(process, signal.SIGKILL)
            shutil.rmtree(run, ignore_errors=True)
            if not run.exists():
                break
            time.sleep(0.1)


@contextlib.contextmanager
def _run_folder() -> Iterator[Path]:
    folder = _runs_folder()
    _clean_stale_runs(folder)
    run = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=folder))
    (run / "pid").write_text(str(os.getpid()))
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt("terminated")

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, stop)
    try:
        yield run
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(run, ignore_errors=True)


# -- executors -------------------------------------------------------------------------------

#: What an executor yields per task: the student and the outcome, or why there is none.
Finished = tuple[str, Outcome | None, str]


class _LocalWorker:
    """A worker process (``_autograde_worker.py``) that grades one task at a time."""

    def __init__(self, scratch: Path) -> None:
        self.log = open(scratch / f"worker-{id(self)}.log", "wb")  # closed in close()
        env = dict(os.environ)
        env["PYTHONWARNINGS"] = "ignore"
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_autograde_worker.py")), str(scratch)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
            env=env,
            cwd=scratch,  # no course folder: nbgrader finds no configuration file there
        )

    def grade(self, task: SubmissionTask, budget: float) -> tuple[Outcome | None, str, bool]:
        """(outcome, error, the worker died) for one task, within ``budget`` seconds."""
        assert self.process.stdin is not None and self.process.stdout is not None
        body = pickle.dumps(task, protocol=4)
        try:
            self.process.stdin.write(struct.pack("!I", len(body)) + body)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None, "the grading worker died", True
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + budget
        data = bytearray()
        need = 4
        while len(data) < need:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None, f"grading did not finish in {budget:.0f} s", False
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None, "the grading worker died", True
            data += chunk
            if need == 4 and len(data) >= 4:
                need = 4 + struct.unpack("!I", data[:4])[0]
        return pickle.loads(bytes(data[4:need])), "", False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.process.stdin:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


class LocalPool:
    """``jobs`` local worker processes; a dead worker is replaced, its task tried once more."""

    name = "local"

    def __init__(self, jobs: int = 2, retries: int = 1) -> None:
        self.jobs = max(1, int(jobs))
        self.retries = retries

    def run(
        self, tasks: list[SubmissionTask], scratch: Path, budget: float, deadline: float
    ) -> Iterator[Finished]:
        import queue

        todo: queue.Queue[tuple[SubmissionTask, int]] = queue.Queue()
        for task in tasks:
            todo.put((task, 0))
        done: queue.Queue[Finished] = queue.Queue()
        stop = threading.Event()

        def work() -> None:
            worker: _LocalWorker | None = None
            try:
                while not stop.is_set():
                    try:
                        task, tries = todo.get_nowait()
                    except queue.Empty:
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        done.put((task.student, None, "not graded: the batch's time was up"))
                        continue
                    worker = worker or _LocalWorker(scratch)
                    outcome, error, died = worker.grade(task, min(budget, left))
                    if outcome is not None:
                        done.put((task.student, outcome, ""))
                        continue
                    worker.kill()
                    worker.log.close()
                    worker = None
                    if died and tries < self.retries:
                        todo.put((task, tries + 1))
                    else:
                        if died:
                            error += f" ({tries + 1} times)"
                        done.put((task.student, None, error))
            finally:
                if worker is not None:
                    worker.close()

        threads = [threading.Thread(target=work, daemon=True) for _ in range(self.jobs)]
        for thread in threads:
            thread.start()
        remaining = len(tasks)
        try:
            while remaining:
                try:
                    item = done.get(timeout=0.5)
                except queue.Empty:
                    if not any(t.is_alive() for t in threads):
                        break
                    continue
                remaining -= 1
                yield item
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=budget + 15)


# -- the gradebook --------------------------------------------------------------------------


def _late_plugin(root: Path) -> object:
    """The course's late-submission plugin, configured as in its nbgrader_config.py."""
    from nbgrader.preprocessors import AssignLatePenalties
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    with contextlib.suppress(Exception):
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    return assigner.plugin_inst


def _merge(
    root: Path,
    course_id: str,
    assignment: str,
    student: str,
    records: dict | None,
    verification: Verification | None,
    *,
    suspicious: bool = False,
    late_plugin: object | None = None,
) -> list[str]:
    """The one writer: nbgrader's records and the verified points into the real gradebook.

    The auto score of every autograded test cell is the verified one (0 when there is no
    verification: nbgrader's own score is never written as the grade). A manual score a grader
    set in the formgrader stays; when the submission is new or its verified score changed since,
    the cell is marked as needing a manual grade again (nbgrader's ``needs_manual_grade``), and
    its id is returned. A suspicious submission gets nbgrader's ``flagged``. The late penalty is
    computed from the verified score with the course's late-submission plugin.
    """
    from nbgrader.api import Gradebook, MissingEntry

    verified = verification.tests if verification else {}
    stale: list[str] = []
    with (
        warnings.catch_warnings(),  # SQLAlchemy's notes on nbgrader's own session handling
        Gradebook(f"sqlite:///{_db_path(root)}", course_id) as gb,
    ):
        warnings.simplefilter("ignore")
        gb.update_or_create_student(student)
        try:
            previous = gb.find_submission(assignment, student).timestamp
        except MissingEntry:
            previous = None
        timestamp = (records or {}).get("timestamp")
        kwargs = {"timestamp": timestamp} if timestamp else {}
        submission = gb.update_or_create_submission(assignment, student, **kwargs)
        resubmitted = previous is not None and timestamp is not None and previous != timestamp
        for notebook in submission.notebooks:
            recorded = (records or {}).get("notebooks", {}).get(notebook.name, {})
            for grade in notebook.grades:
                if grade.cell.cell_type == "code" and grade.name.startswith("test_"):
                    test = verified.get(grade.name)
                    points = test.points if test is not None else 0.0
                    if grade.manual_score is not None:
                        changed = grade.auto_score is None or abs(grade.auto_score - points) > 1e-9
                        if resubmitted or changed:
                            grade.needs_manual_grade = True
                            stale.append(grade.name)
                    else:
                        grade.needs_manual_grade = False
                    grade.auto_score = points
                elif grade.name in recorded:
                    grade.auto_score = recorded[grade.name]["auto_score"]
                    if grade.manual_score is None:
                        grade.needs_manual_grade = recorded[grade.name]["needs_manual_grade"]
                elif grade.cell.cell_type == "code" and grade.auto_score is None:
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
            if suspicious:
                notebook.flagged = True
        gb.db.commit()
        late = float(submission.total_seconds_late or 0.0)
        for notebook in submission.notebooks:
            penalty = None
            if late > 0 and late_plugin is not None:
                penalty = late_plugin.late_submission_penalty(  # type: ignore[attr-defined]
                    student, notebook.score, late
                )
                if penalty is not None:
                    penalty = min(max(float(penalty), 0.0), float(notebook.score))
            notebook.late_submission_penalty = penalty
        gb.db.commit()
    return stale


def _gradebook_holds(root: Path, assignment: str, results: dict[str, StudentResult]) -> bool:
    """Whether the gradebook holds each graded student's verified auto scores."""
    from nbgrader.api import Gradebook, MissingEntry

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{_db_path(root)}") as gb:
        warnings.simplefilter("ignore")
        for student, result in results.items():
            if result.verification is None:
                continue
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                return False
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    test = result.verification.tests.get(grade.name)
                    if test is not None and abs((grade.auto_score or 0.0) - test.points) > 1e-9:
                        return False
    return True


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


def _collect(student: str, outcome: Outcome | None, error: str) -> StudentResult:
    result = StudentResult(student=student, error=error)
    if outcome is None:
        result.nbgrader_error = error
        return result
    result.nbgrader_success = outcome.nbgrader_success
    result.nbgrader_error = outcome.nbgrader_error
    result.verification = outcome.verification  # type: ignore[assignment]
    result.seconds = outcome.seconds
    result.worker = outcome.worker
    result.error = outcome.error
    if outcome.records:
        for grades in outcome.records["notebooks"].values():
            for name, grade in grades.items():
                if grade["cell_type"] == "code" and name.startswith("test_"):
                    result.nbgrader_scores[name] = grade["auto_score"]
    if result.verification is not None:
        result.flags = list(result.verification.flags) + _disagreements(result)
    if outcome.version and outcome.version != grading_version():
        result.flags.append(
            Flag(
                "grader-version",
                "graded by a worker running other grading code",
                f"worker {outcome.worker}: {outcome.version}, here {grading_version()}",
            )
        )
    return result


def _write_autograded(root: Path, assignment: str, student: str, files: dict[str, bytes]) -> None:
    target = root / "autograded" / check_student_id(student) / assignment
    if target.is_symlink():
        target.unlink()
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for relative, data in files.items():
        path = Path(relative)
        if path.is_absolute() or ".." in path.parts:
            continue
        (target / path).parent.mkdir(parents=True, exist_ok=True)
        (target / path).write_bytes(data)


# -- the run ----------------------------------------------------------------------------------


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
    executor: object | None = None,
    batch_timeout: float | None = None,
    submission_budget: float | None = None,
    on_result: Callable[[StudentResult], None] | None = None,
) -> AutogradeRun:
    """Autograde the submissions of ``assignment`` (see the module docstring).

    ``students`` limits the run to those students (a regrade); ``timeout`` is nbgrader's limit
    per cell and the sandbox's per call (seconds); ``memory_mb`` the memory a submission may
    use; ``executor`` a :class:`LocalPool` (default, ``jobs`` workers) or a Dask executor;
    ``submission_budget`` the seconds one submission may take in all (default: enough for
    nbgrader's timeouts and the sandbox's budget); ``batch_timeout`` the whole run's limit
    (default: enough for every submission's budget); ``on_result`` is called with each result
    as it is written.
    """
    from tqdm.auto import tqdm

    root = find_course_root(root)
    if assignment not in checks.ASSIGNMENTS:
        raise SystemExit(
            f"unknown assignment {assignment!r}; known: {', '.join(checks.ASSIGNMENTS)}"
        )
    isolation.check_isolation()  # fail closed, before anything is read
    started = time.perf_counter()
    executor = executor or LocalPool(jobs)
    run = AutogradeRun(
        assignment=assignment,
        started=datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ"),
        jobs=getattr(executor, "jobs", jobs),
        executor=getattr(executor, "name", type(executor).__name__),
    )
    run.run_id = f"{run.started}-{os.getpid()}"
    names = submitted_students(root, assignment)
    if students is not None:
        unknown = [s for s in students if s not in names]
        if unknown:
            raise SystemExit(
                f"no submission of {assignment!r} for {', '.join(map(repr, unknown))} in "
                f"submitted/ (found: {', '.join(names) or 'none'})"
            )
        names = [n for n in names if n in students]
    if not names:
        return run
    course_id = _course_id(root)
    release_path = root / "exercises" / assignment / f"{assignment}.ipynb"
    release = release_path.read_bytes() if release_path.is_file() else b""
    limits = verify_limits or Limits(call_timeout=float(timeout), memory_mb=memory_mb)
    version = grading_version()
    budget = submission_budget or max(120.0, 20.0 * timeout) + limits.total_seconds
    late_plugin = _late_plugin(root)
    with _run_folder() as scratch:
        template = scratch / "template.db"
        _template_gradebook(root, assignment, template, course_id)
        template_db = template.read_bytes()
        # the snapshot: every submission read before any student code runs
        tasks = []
        for name in names:
            try:
                check_student_id(name)
                files = snapshot(root / "submitted" / name / assignment)
            except (ValueError, OSError) as error:
                run.refused[name] = str(error)
                continue
            tasks.append(
                SubmissionTask(
                    assignment=assignment,
                    student=name,
                    files=files,
                    release=release,
                    template_db=template_db,
                    course_id=course_id,
                    timeout=int(timeout),
                    memory_mb=int(memory_mb),
                    limits=limits,
                    version=version,
                )
            )
        for name, reason in run.refused.items():
            with contextlib.suppress(ValueError):
                check_student_id(name)  # a valid id gets a row with 0 and the reason
                result = StudentResult(student=name, error=f"refused: {reason}")
                result.flags.append(Flag("refused-submission", "not graded", reason))
                _merge(root, course_id, assignment, name, None, None, suspicious=True)
                run.results[name] = result
        slots = max(1, getattr(executor, "jobs", 1))
        waves = -(-len(tasks) // slots)
        limit = batch_timeout if batch_timeout is not None else budget * waves + 60.0
        deadline = time.monotonic() + limit
        bar = tqdm(
            total=len(tasks), desc=f"autograde {assignment}", unit="nb", disable=not progress
        )
        try:
            for student, outcome, error in executor.run(tasks, scratch, budget, deadline):  # type: ignore[attr-defined]
                if student in run.results:  # graded once: a repeated outcome is ignored
                    continue
                if outcome is not None and "IsolationError" in outcome.error:
                    raise isolation.IsolationError(outcome.error)
                result = _collect(student, outcome, error)
                stale = _merge(
                    root,
                    course_id,
                    assignment,
                    student,
                    outcome.records if outcome else None,
                    result.verification,
                    suspicious=any(f.kind in SUSPICIOUS for f in result.flags),
                    late_plugin=late_plugin,
                )
                if stale:
                    result.flags.append(
                        Flag(
                            "manual-grade-review",
                            "a grader's manual score is kept, but the submission or its "
                            "verified score changed since: review it in the formgrader",
                            ", ".join(stale),
                        )
                    )
                if outcome is not None and outcome.autograded:
                    _write_autograded(root, assignment, student, outcome.autograded)
                run.results[student] = result
                if on_result is not None:
                    on_result(result)
                bar.update(1)
                bar.set_postfix_str(f"{student}: {result.score:g}")
        finally:
            bar.close()
    for task in tasks:
        if task.student not in run.results:
            result = StudentResult(task.student, error="not graded: the batch's time was up")
            result.nbgrader_error = result.error
            _merge(root, course_id, assignment, task.student, None, None, late_plugin=late_plugin)
            run.results[task.student] = result
    run.gradebook_tampered = not _gradebook_holds(root, assignment, run.results)
    run.seconds = time.perf_counter() - started
    return run
