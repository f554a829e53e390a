"""Autograding a class: plain serial ``nbgrader autograde`` against ``course autograde --jobs 2``.

Builds a course in a temporary folder (the repository's nbgrader_config.py and the
``convolution`` assignment), a class of ``BENCH_AUTOGRADE_STUDENTS`` submissions (default 40:
loops, vectorised, and two typical bugs), and grades two identical copies of it, one with
nbgrader alone, one with ``course autograde``, in the same run. Prints the total times, the
speed-up, the median seconds per notebook, and the kernel start and import time that every
notebook pays.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "convolution"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _class(course: Path, size: int) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from grading_fixtures import students as fixtures

    styles = [
        {},
        fixtures.VECTORISED,
        {"corr2d": fixtures.FLIPPED_CORR2D},
        {"avg_pool2d_forward": fixtures.SUM_POOL},
    ]
    fixtures.write_class(
        course,
        ASSIGNMENT,
        [fixtures.Student(f"s{i:03d}", answers=styles[i % len(styles)]) for i in range(size)],
    )


def _kernel_start_and_import() -> tuple[float, float]:
    """Seconds to start a python3 kernel, and to import what the hidden tests import."""
    from jupyter_client.manager import start_new_kernel

    started = time.perf_counter()
    manager, client = start_new_kernel(kernel_name="python3")
    ready = time.perf_counter() - started
    try:
        started = time.perf_counter()
        client.execute_interactive("import numpy\nimport course_lib.grading.checks", timeout=120)
        imported = time.perf_counter() - started
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return ready, imported


def _per_notebook_from_mtimes(course: Path) -> list[float]:
    """Serial nbgrader: the gaps between consecutive autograded notebooks being written."""
    written = sorted(
        p.stat().st_mtime for p in (course / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb")
    )
    return [b - a for a, b in itertools.pairwise(written)]


def main() -> None:
    size = int(os.environ.get("BENCH_AUTOGRADE_STUDENTS", "40"))
    jobs = int(os.environ.get("BENCH_AUTOGRADE_JOBS", "2"))
    base = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        course = base / "course"
        (course / "solutions").mkdir(parents=True)
        shutil.copy(REPO / "nbgrader_config.py", course)
        shutil.copytree(REPO / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
        course_cli = [sys.executable, "-m", "course_lib.cli", "--root", str(course)]
        subprocess.run([*course_cli, "release", ASSIGNMENT], check=True, env=_env())
        _class(course, size)
        serial = base / "serial"
        shutil.copytree(course, serial)
        (serial / "nbgrader_config.py").write_text(
            (serial / "nbgrader_config.py").read_text().replace(str(course), str(serial))
        )

        ready, imported = _kernel_start_and_import()

        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"],
            cwd=serial,
            env=_env(),
            check=True,
            capture_output=True,
        )
        serial_s = time.perf_counter() - started

        started = time.perf_counter()
        subprocess.run(
            [*course_cli, "autograde", ASSIGNMENT, "--jobs", str(jobs), "--quiet"],
            env=_env(),
            check=True,
            capture_output=True,
        )
        ours_s = time.perf_counter() - started

        report = json.loads(
            sorted((course / "reports").glob(f"{ASSIGNMENT}-*.json"))[-1].read_text()
        )
        ours_each = [s["seconds"] for s in report["students"].values()]
        serial_each = _per_notebook_from_mtimes(serial)
        agree = sum(s["score"] == s["nbgrader_score"] for s in report["students"].values())
        print(f"\nautograde {ASSIGNMENT}: {size} submissions, {os.cpu_count()} CPUs seen")
        print(f"kernel start {ready:.2f} s, import numpy + checks {imported:.2f} s (per notebook)")
        print(f"{'':<28}{'total s':>10}{'s/notebook':>12}{'median s/nb':>13}")
        print(
            f"{'nbgrader autograde (serial)':<28}{serial_s:>10.1f}{serial_s / size:>12.2f}"
            f"{statistics.median(serial_each):>13.2f}"
        )
        print(
            f"{f'course autograde --jobs {jobs}':<28}{ours_s:>10.1f}{ours_s / size:>12.2f}"
            f"{statistics.median(ours_each):>13.2f}"
        )
        print(
            f"speed-up {serial_s / ours_s:.2f}x (verified and nbgrader scores agree on "
            f"{agree}/{size}; ours also verifies every notebook in the sandbox)"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
