"""One local worker of ``course autograde``: grades the submissions the coordinator sends it.

Started by :mod:`course_lib.grading.autograde` as ``python _autograde_worker.py SCRATCH``. It reads
tasks (:class:`~course_lib.grading.submission.SubmissionTask`) from standard input and answers
each with its :class:`~course_lib.grading.submission.Outcome`, both as length-prefixed pickles;
one nbgrader import serves many submissions. The worker is the grader's own code: student code
runs only in the containers it starts (the notebook kernel, the verification sandbox), never in
it. It never writes the course folder.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
import time


def _read_exactly(stream, n: int) -> bytes | None:
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read(stream) -> bytes | None:
    head = _read_exactly(stream, 4)
    if head is None:
        return None
    (size,) = struct.unpack("!I", head)
    return _read_exactly(stream, size)


def _die_with_coordinator() -> None:
    """When the coordinator is gone (killed with SIGKILL, say), stop this worker and what it
    started in its own process group at once, instead of finishing a submission no one will
    record and writing into a run folder the next run is about to remove."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="coordinator-watch", daemon=True).start()


def main() -> None:
    scratch = sys.argv[1]
    _die_with_coordinator()
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nbgrader and kernels log to stderr
    sys.stdout = sys.stderr
    requests = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())

    from course_lib.grading.submission import Outcome, grade_submission

    while True:
        data = _read(requests)
        if data is None:
            return
        task = pickle.loads(data)
        try:
            outcome = grade_submission(task, scratch)
        except BaseException as exc:  # the grader's own failure, for this submission only
            outcome = Outcome(student=task.student, error=f"{type(exc).__name__}: {exc}")
            if exc.__class__.__name__ == "IsolationError":
                outcome.error = f"IsolationError: {exc}"
        body = pickle.dumps(outcome, protocol=4)
        replies.write(struct.pack("!I", len(body)) + body)


if __name__ == "__main__":
    main()
