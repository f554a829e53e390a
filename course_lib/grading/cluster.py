"""Autograding on a Dask distributed cluster: ``course autograde A --scheduler tcp://HOST:PORT``.

Each submission is one Dask task that carries everything it needs
(:class:`~course_lib.grading.submission.SubmissionTask`: the released notebook, the gradebook's
structure, the submission's files, the grading code's version), so the workers need no shared
folder and never see the solutions, the course's gradebook or other students' work. On the
worker the task runs :func:`~course_lib.grading.submission.grade_submission` in a grading process
that the Dask worker keeps for the tasks that follow (one per worker thread: nbgrader is imported
once, not once per notebook), with the submission's time budget: a submission that hangs is
stopped, and its grading process with it; one that crashes takes only that process, and the next
task starts a fresh one. What comes back (the verified results, nbgrader's
records, the autograded notebook) is written to the gradebook by the coordinating process alone,
once per student.

A Dask worker that dies mid-batch loses nothing: the scheduler runs its tasks again on another
worker. A task that kills worker after worker is given up by the scheduler and reported with
the reason. Each worker machine needs the course's environment (``pip install`` of this package
with the grading extra, and bubblewrap); start them with ``dask scheduler`` on one machine and
``dask worker tcp://SCHEDULER:8786`` on each (or dask's SSH, SLURM and Kubernetes deployments).
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from course_lib.grading.submission import Outcome, SubmissionTask

__all__ = ["DaskExecutor", "grade_on_worker"]


_kept: dict[int, tuple[object, Path]] = {}  # worker thread -> (grading process, its scratch)
_kept_lock = threading.Lock()


def _drop(worker: object, scratch: Path) -> None:
    with contextlib.suppress(Exception):
        if worker.process.poll() is None:
            worker.kill()
    with contextlib.suppress(Exception):
        worker.log.close()
    shutil.rmtree(scratch, ignore_errors=True)


@atexit.register
def _drop_all() -> None:
    with _kept_lock:
        kept = list(_kept.values())
        _kept.clear()
    for worker, scratch in kept:
        _drop(worker, scratch)


def grade_on_worker(task: SubmissionTask, budget: float) -> Outcome:
    """Run on a Dask worker: grade ``task`` in this thread's grading process (started on first
    use, kept for the next task), within ``budget`` seconds."""
    from course_lib.grading.autograde import _LocalWorker

    thread = threading.get_ident()
    with _kept_lock:
        kept = _kept.pop(thread, None)
    if kept is not None and kept[0].process.poll() is not None:
        _drop(*kept)
        kept = None
    if kept is None:
        scratch = Path(tempfile.mkdtemp(prefix="course-dask-"))
        kept = (_LocalWorker(scratch), scratch)
    worker, scratch = kept
    try:
        outcome, error, died = worker.grade(task, budget)
    except BaseException:
        _drop(worker, scratch)
        raise
    if outcome is None or died:
        _drop(worker, scratch)  # hung (its state is unknown) or dead: the next task starts afresh
    else:
        with _kept_lock:
            _kept[thread] = kept
    if outcome is None:
        outcome = Outcome(student=task.student, error=error)
    return outcome


class DaskExecutor:
    """Send the batch to the Dask scheduler at ``address``; yields results as they finish."""

    name = "dask"

    def __init__(self, address: str, *, connect_timeout: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - the grading extra installs it
            raise SystemExit(
                "autograding on a cluster needs Dask distributed: pip install distributed"
            ) from None
        self.address = address
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise SystemExit(
                f"cannot reach the Dask scheduler at {address} ({type(error).__name__}: "
                f"{error}); start one with `dask scheduler` and workers with "
                f"`dask worker {address}`"
            ) from None
        workers = self.client.scheduler_info().get("workers", {})
        self.jobs = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def run(
        self, tasks: list[SubmissionTask], scratch: Path, budget: float, deadline: float
    ) -> Iterator[tuple[str, Outcome | None, str]]:
        from distributed import as_completed

        batch = uuid.uuid4().hex[:8]
        futures = {}
        for task in tasks:
            future = self.client.submit(
                grade_on_worker,
                task,
                budget,
                key=f"grade-{batch}-{task.student}",
                pure=False,
            )
            futures[future] = task.student
        pending = set(futures)
        left = max(1.0, deadline - time.monotonic())
        try:
            for future in as_completed(list(futures), loop=self.client.loop, timeout=left):
                pending.discard(future)
                student = futures[future]
                try:
                    yield student, future.result(), ""
                except Exception as error:  # KilledWorker, a task that crashed its workers, ...
                    reason = f"{type(error).__name__}: {error}"
                    yield student, None, f"not graded on the cluster: {reason}"[:1000]
        except TimeoutError:
            for future in pending:
                future.cancel()
                yield futures[future], None, "not graded: the batch's time was up"
        finally:
            self.client.close()
