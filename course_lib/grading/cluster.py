"""Autograding on a Dask distributed cluster: ``course autograde A --scheduler tcp://HOST:PORT``.

Each submission is one Dask task that carries everything it needs
(:class:`~course_lib.grading.submission.SubmissionTask`: the released notebook, the gradebook's
structure, the submission's files, the grading code's version), so the workers need no shared
folder and never see the solutions, the course's gradebook or other students' work. On the
worker the task runs :func:`~course_lib.grading.submission.grade_submission` in a worker process
of its own, with the submission's time budget, so a submission that hangs is stopped and one
that crashes only takes that process with it. What comes back (the verified results, nbgrader's
records, the autograded notebook) is written to the gradebook by the coordinating process alone,
once per student.

A Dask worker that dies mid-batch loses nothing: the scheduler runs its tasks again on another
worker. A task that kills worker after worker is given up by the scheduler and reported with
the reason. Each worker machine needs the course's environment (``pip install`` of this package
with the grading extra, and bubblewrap); start them with ``dask scheduler`` on one machine and
``dask worker tcp://SCHEDULER:8786`` on each (or dask's SSH, SLURM and Kubernetes deployments).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from course_lib.grading.submission import Outcome, SubmissionTask

__all__ = ["DaskExecutor", "grade_on_worker"]


def grade_on_worker(task: SubmissionTask, budget: float) -> Outcome:
    """Run on a Dask worker: grade ``task`` in a worker process, within ``budget`` seconds."""
    from course_lib.grading.autograde import _LocalWorker

    with tempfile.TemporaryDirectory(prefix="course-dask-") as scratch:
        worker = _LocalWorker(Path(scratch))
        try:
            outcome, error, _died = worker.grade(task, budget)
        finally:
            if worker.process.poll() is None:
                worker.kill()
            worker.log.close()
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
