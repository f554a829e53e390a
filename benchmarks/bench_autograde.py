"""Autograding a class: plain serial nbgrader against ``course autograde``, locally and on Dask.

Builds a course in a temporary folder (the repository's nbgrader_config.py and solutions) and,
in one run:

1. for one assignment (``BENCH_AUTOGRADE_ASSIGNMENT``, default convolution), a class of
   ``BENCH_AUTOGRADE_STUDENTS`` submissions (default 24: loops, vectorised, two typical bugs),
   graded by plain serial ``nbgrader autograde`` (its kernels run with the grader's rights and
   nothing is verified), by ``course autograde`` with 1 and 2 local workers, and on a loopback
   Dask ``LocalCluster`` of 1 and 2 worker processes; prints each total, seconds per notebook
   and the ratio to serial nbgrader, and what the Dask path adds over the local pool;
2. the fixed costs every notebook pays: starting a plain kernel, starting the course's
   sandboxed kernel, importing what the hidden tests import, starting the verification sandbox;
3. for every assignment, the seconds per notebook of ``course autograde --jobs 2`` on a small
   class of correct submissions (``BENCH_AUTOGRADE_EACH``, default 4).

All figures are ratios or seconds measured in the same run on the same machine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = "# nbgrader's own autograde"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _fixtures():
    sys.path.insert(0, str(REPO / "tests"))
    from grading_fixtures import students as fixtures

    return fixtures


def _course(base: Path, name: str, assignments: list[str]) -> Path:
    course = base / name
    (course / "solutions").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course)
    for assignment in assignments:
        shutil.copytree(REPO / "solutions" / assignment, course / "solutions" / assignment)
    for assignment in assignments:
        subprocess.run(
            [sys.executable, "-m", "course_lib.cli", "--root", str(course), "release", assignment],
            check=True,
            env=_env(),
            capture_output=True,
        )
    return course


def _class(course: Path, assignment: str, size: int, styles: list[dict]) -> None:
    fixtures = _fixtures()
    students = [fixtures.Student(f"s{i:03d}", answers=styles[i % len(styles)]) for i in range(size)]
    fixtures.write_class(course, assignment, students)


def _copy(course: Path, target: Path) -> Path:
    shutil.copytree(course, target)
    config = target / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(course), str(target)))
    return target


def _plain_nbgrader(course: Path) -> None:
    """The course without its grading switches: what plain nbgrader does."""
    config = course / "nbgrader_config.py"
    text = config.read_text()
    config.write_text(text.split(MARKER)[0])


def _kernel_costs() -> dict[str, float]:
    from jupyter_client.manager import start_new_kernel

    costs = {}
    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name="python3")
    costs["plain kernel start"] = time.perf_counter() - started
    try:
        started = time.perf_counter()
        client.execute_interactive("import numpy\nimport course_lib.grading.checks", timeout=120)
        costs["hidden tests' imports"] = time.perf_counter() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    from course_lib.grading.sandbox import Call, run_functions

    started = time.perf_counter()
    run_functions([("a", "def f():\n    return 1\n")], [Call("k", "f", (), {})])
    costs["verification sandbox (start, one call)"] = time.perf_counter() - started
    return costs


def _time(label: str, action) -> tuple[str, float, object]:
    started = time.perf_counter()
    result = action()
    return label, time.perf_counter() - started, result


def main() -> None:
    from distributed import LocalCluster

    from course_lib.grading import checks
    from course_lib.grading.autograde import LocalPool, autograde
    from course_lib.grading.cluster import DaskExecutor

    fixtures = _fixtures()
    assignment = os.environ.get("BENCH_AUTOGRADE_ASSIGNMENT", "convolution")
    size = int(os.environ.get("BENCH_AUTOGRADE_STUDENTS", "24"))
    each = int(os.environ.get("BENCH_AUTOGRADE_EACH", "4"))
    base = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        course = _course(base, "course", list(checks.ASSIGNMENTS))
        per_assignment = _copy(course, base / "each")
        styles: list[dict] = [{}]
        if assignment == "convolution":
            styles = [
                {},
                fixtures.VECTORISED,
                {"corr2d": fixtures.FLIPPED_CORR2D},
                {"avg_pool2d_forward": fixtures.SUM_POOL},
            ]
        _class(course, assignment, size, styles)
        copies = {
            name: _copy(course, base / name)
            for name in ("serial", "local1", "local2", "dask1", "dask2")
        }
        _plain_nbgrader(copies["serial"])

        rows = []
        rows.append(
            _time(
                "nbgrader autograde (serial)",
                lambda: subprocess.run(
                    [sys.executable, "-m", "nbgrader", "autograde", assignment, "--force"],
                    cwd=copies["serial"],
                    env=_env(),
                    check=True,
                    capture_output=True,
                ),
            )
        )
        for jobs in (1, 2):
            rows.append(
                _time(
                    f"course autograde, {jobs} local worker{'s' * (jobs > 1)}",
                    lambda jobs=jobs: autograde(
                        assignment, copies[f"local{jobs}"], executor=LocalPool(jobs),
                        progress=False,
                    ),
                )
            )  # fmt: skip
        for workers in (1, 2):
            with LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster:
                address = cluster.scheduler_address
                rows.append(
                    _time(
                        f"course autograde, Dask, {workers} worker{'s' * (workers > 1)}",
                        lambda address=address, workers=workers: autograde(
                            assignment, copies[f"dask{workers}"],
                            executor=DaskExecutor(address), progress=False,
                        ),
                    )
                )  # fmt: skip
        costs = _kernel_costs()

        serial_s = rows[0][1]
        print(f"\nautograde {assignment}: {size} submissions, {os.cpu_count()} CPUs seen")
        print(f"{'':<36}{'total s':>9}{'s/notebook':>12}{'median s':>10}{'vs serial':>11}")
        for label, seconds, result in rows:
            median = ""
            if hasattr(result, "results"):
                median = f"{statistics.median(r.seconds for r in result.results.values()):.2f}"
            print(
                f"{label:<36}{seconds:>9.1f}{seconds / size:>12.2f}{median:>10}"
                f"{serial_s / seconds:>10.2f}x"
            )
        by_label = {label: seconds for label, seconds, _ in rows}
        for jobs in (1, 2):
            local = by_label[f"course autograde, {jobs} local worker{'s' * (jobs > 1)}"]
            dask = by_label[f"course autograde, Dask, {jobs} worker{'s' * (jobs > 1)}"]
            print(f"Dask with {jobs} worker(s) adds {(dask - local) / size:+.2f} s per notebook")
        print("fixed costs per notebook:")
        for label, seconds in costs.items():
            print(f"  {label:<40}{seconds:>6.2f} s")
        print("(serial nbgrader verifies nothing and runs student code with the grader's rights)")

        print(f"\nevery assignment, {each} correct submissions, course autograde --jobs 2:")
        for name in checks.ASSIGNMENTS:
            _class(per_assignment, name, each, [{}])
            label, seconds, _ = _time(
                name, lambda name=name: autograde(name, per_assignment, jobs=2, progress=False)
            )
            print(f"  {label:<16}{seconds / each:>6.2f} s per notebook")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
