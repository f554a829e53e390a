"""One worker of ``course autograde``: runs ``nbgrader autograde`` in its own course copy.

Started by :mod:`course_lib.grading.autograde` as ``python _autograde_worker.py SETTINGS.json``.
The settings name the worker's course directory and gradebook (a copy holding only the
assignment's structure), the execution timeout and the kernel's audit policy. It reads one
student id a line on stdin, autogrades that student with nbgrader's own API (one nbgrader
import for many notebooks), and answers one JSON line per student on stdout. Only the parent
process writes to the real gradebook.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def main() -> None:
    with open(sys.argv[1]) as f:
        settings = json.load(f)
    memory = settings["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))  # inherited by the kernels
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # nbgrader and the kernels print to the log, never to the replies

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = settings["root"]
    config.CourseDirectory.db_url = settings["db_url"]
    config.CourseDirectory.course_id = settings["course_id"]
    config.CourseDirectory.source_directory = "source"
    config.Execute.timeout = settings["timeout"]
    config.Execute.extra_arguments = [
        "--HistoryManager.hist_file=:memory:",
        "--IPKernelApp.exec_lines=" + json.dumps(settings["exec_lines"]),
    ]
    config.Autograde.force = True
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)

    for line in sys.stdin:
        student = line.strip()
        if not student:
            continue
        started = time.perf_counter()
        try:
            result = api.autograde(settings["assignment"], student, force=True, create=True)
        except BaseException as exc:  # the batch goes on
            result = {"success": False, "error": f"{type(exc).__name__}: {exc}", "log": ""}
        reply = {
            "student": student,
            "success": bool(result.get("success")),
            "error": str(result.get("error") or "")[-4000:],
            "log": str(result.get("log") or "")[-4000:],
            "seconds": time.perf_counter() - started,
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
