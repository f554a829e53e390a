"""Autograding beyond one process: local worker processes and a real Dask cluster on loopback.

The same small class is graded through a ``distributed.LocalCluster`` with two worker processes
and through ``dask scheduler`` and ``dask worker`` started as processes, one of which is killed
during the batch; a local worker process is killed mid-task, and a submission runs past its time
budget. Each time every submission must be graded exactly once, with the same verified scores,
and the gradebook must hold one submission per student.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from grading_fixtures import students as fixtures

from course_lib.cli import main
from course_lib.grading.autograde import LocalPool, autograde
from course_lib.grading.cluster import DaskExecutor

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "convolution"
CLASS = [
    fixtures.Student("alice"),
    fixtures.Student("bob", answers=fixtures.VECTORISED),
    fixtures.Student("carol", answers={"corr2d": fixtures.FLIPPED_CORR2D}),
    fixtures.Student("dan", answers={"avg_pool2d_forward": fixtures.SUM_POOL}),
    fixtures.Student("erin", answers={"conv2d_forward": fixtures.SYNTAX_ERROR}),
    fixtures.Student("grace", unanswered=True),
]
SCORES = {"alice": 20.0, "bob": 20.0, "carol": 17.0, "dan": 17.0, "erin": 12.0, "grace": 0.0}


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("released")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copytree(REPO / "solutions", root / "solutions")
    assert main(["--root", str(root), "release", ASSIGNMENT]) == 0
    return root


@pytest.fixture
def course(released: Path, tmp_path: Path) -> Path:
    root = tmp_path / "course"
    shutil.copytree(released, root)
    fixtures.write_class(root, ASSIGNMENT, CLASS)
    return root


def _gradebook(root: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submissions = list(gb.assignment_submissions(ASSIGNMENT))
        assert len(submissions) == len({s.student.id for s in submissions})  # once each
        return {s.student.id: s.score for s in submissions}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_workers(address: str, count: int, timeout: float = 90.0) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=timeout)


def test_a_local_cluster_grades_like_the_local_pool(course: Path) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        run = autograde(
            ASSIGNMENT, course, executor=DaskExecutor(cluster.scheduler_address), progress=False
        )
    assert {n: r.score for n, r in run.results.items()} == SCORES
    assert run.executor == "dask" and run.jobs == 2
    assert _gradebook(course) == SCORES
    assert all(r.verification is not None for r in run.results.values())
    # the workers ran the same grading code as the coordinator
    assert not [f for r in run.results.values() for f in r.flags if f.kind == "grader-version"]
    assert (course / "autograded" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()


def test_a_killed_dask_worker_loses_nothing(course: Path, tmp_path: Path) -> None:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli"]
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--local-directory",
                str(tmp_path / f"w{i}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for i in range(2)
    ]
    del dask
    try:
        _wait_for_workers(address, 2)
        killed: list[str] = []

        def kill_one(result) -> None:
            if not killed:  # after the first result, while the others are being graded
                os.killpg(workers[0].pid, signal.SIGKILL)
                killed.append(result.student)

        run = autograde(
            ASSIGNMENT, course, executor=DaskExecutor(address), progress=False, on_result=kill_one
        )
        assert killed and workers[0].wait(timeout=30) is not None
        assert {n: r.score for n, r in run.results.items()} == SCORES
        assert _gradebook(course) == SCORES
    finally:
        for process in [*workers, scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_an_unreachable_scheduler_is_named(course: Path, capsys) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(SystemExit, match=f"cannot reach the Dask scheduler at {address}"):
        main(["--root", str(course), "autograde", ASSIGNMENT, "--scheduler", address])


def _worker_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text().split()
        except OSError:
            continue
        if b"_autograde_worker.py" in cmdline and int(stat[3]) == os.getpid():
            found.append(int(entry.name))
    return found


def test_a_killed_local_worker_is_replaced_and_its_task_retried(course: Path) -> None:
    killed: list[int] = []

    def kill_one(result) -> None:
        if not killed:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not killed:
                for pid in _worker_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
                time.sleep(0.05)

    run = autograde(ASSIGNMENT, course, executor=LocalPool(2), progress=False, on_result=kill_one)
    assert killed
    assert {n: r.score for n, r in run.results.items()} == SCORES
    assert _gradebook(course) == SCORES


def test_a_submission_past_its_budget_is_reported_and_the_batch_goes_on(course: Path) -> None:
    sleeper = fixtures.Student("hank", extra_cells=("import time\ntime.sleep(60)",))
    fixtures.write_class(course, ASSIGNMENT, [sleeper])
    started = time.monotonic()
    run = autograde(
        ASSIGNMENT,
        course,
        executor=LocalPool(2),
        timeout=60,
        submission_budget=25,
        progress=False,
    )
    assert time.monotonic() - started < 240
    assert "did not finish in 25 s" in run.results["hank"].error
    assert run.results["hank"].score == 0.0
    assert {n: r.score for n, r in run.results.items() if n != "hank"} == SCORES
    assert _gradebook(course)["hank"] == 0.0
