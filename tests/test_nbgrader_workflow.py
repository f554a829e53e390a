"""The course's commands inside nbgrader's own workflow, on a real exchange.

An instructor and four students go through the whole cycle with the real nbgrader commands:
release_assignment -> fetch_assignment -> submit -> collect -> ``course autograde`` ->
``course feedback`` -> release_feedback -> fetch_feedback. The test asserts what each student
finally receives (score, misconception, late penalty, the grader's manual score and comment;
never a hidden test), what the gradebook holds (verified scores, nbgrader's ``flagged`` on the
suspicious submission, late penalties, a manual score kept and put back up for review after a
resubmission) and what ``course grades`` exports, and that nbgrader's own autograde and
generate_feedback (the formgrader's buttons) do the course's thing. The formgrader itself is then
driven in Chromium: it shows the verified scores and the flag, its Autograde button says what to
run instead, and a manual score set there survives ``course autograde``.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from grading_fixtures import students as fixtures

from course_lib.cli import main
from course_lib.grading.feedback import hidden_test_lines

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENT = "convolution"
COURSE_ID = "cnn-course"
NBGRADER = [sys.executable, "-m", "nbgrader"]

NEUTER_AND_WRONG = fixtures.Student(
    "mallory", answers=fixtures.WRONG, extra_cells=(fixtures.NEUTER_ASSERTS,)
)


def nbgrader(
    cwd: Path, *args: str, check: bool = True, home: Path | None = None
) -> subprocess.CompletedProcess:
    """A real nbgrader command; ``home``: run it as that student (their own home folder, so
    their own nbgrader cache of submissions)."""
    env = dict(os.environ)
    if home is not None:
        env.update(HOME=str(home), JUPYTER_DATA_DIR=str(home / ".local" / "share" / "jupyter"))
    done = subprocess.run(
        [*NBGRADER, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )
    if check and done.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


class Class:
    """A course folder, an exchange and a home folder per student."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "course"
        self.exchange = base / "exchange"
        self.exchange.mkdir()
        os.chmod(self.exchange, 0o777)
        self.root.mkdir()
        shutil.copytree(REPO / "solutions", self.root / "solutions")
        config = (REPO / "nbgrader_config.py").read_text()
        config += (
            f"\nc.Exchange.root = {str(self.exchange)!r}\n"
            'c.LateSubmissionPlugin.penalty_method = "zero"\n'
        )
        (self.root / "nbgrader_config.py").write_text(config)
        self.exchange_args = [
            f"--Exchange.root={self.exchange}",
            f"--CourseDirectory.course_id={COURSE_ID}",
        ]

    def home(self, student: str) -> Path:
        path = self.base / "home" / student
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fetch_and_submit(self, student: fixtures.Student) -> Path:
        home = self.home(student.name)
        if not (home / ASSIGNMENT).is_dir():
            nbgrader(home, "fetch_assignment", ASSIGNMENT, *self.exchange_args, home=home)
        notebook = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        nbformat.write(fixtures.answered(self.root, ASSIGNMENT, student), str(notebook))
        nbgrader(
            home, "submit", ASSIGNMENT, f"--student={student.name}", *self.exchange_args, home=home
        )
        return notebook

    def fetch_feedback(self, student: str) -> str:
        home = self.home(student)
        nbgrader(
            home,
            "fetch_feedback",
            ASSIGNMENT,
            f"--student={student}",
            *self.exchange_args,
            home=home,
        )
        pages = sorted((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        assert len(pages) == 1, f"feedback fetched for {student}: {pages}"
        return pages[-1].read_text()


def set_duedate(root: Path, when: datetime.datetime) -> None:
    stamp = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    nbgrader(root, "db", "assignment", "add", ASSIGNMENT, f"--duedate={stamp}")


def gradebook(root: Path) -> dict:
    from nbgrader.api import Gradebook

    found = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(ASSIGNMENT):
            notebook = submission.notebooks[0]
            found[submission.student.id] = {
                "score": submission.score,
                "penalty": notebook.late_submission_penalty or 0.0,
                "flagged": notebook.flagged,
                "cells": {
                    g.name: (g.auto_score, g.manual_score, g.needs_manual_grade)
                    for g in notebook.grades
                },
            }
    return found


def set_manual(root: Path, student: str, cell: str, score: float, comment: str) -> None:
    """What the formgrader does when a grader types a score and a comment."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        grade = gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, student)
        grade.manual_score = score
        grade.needs_manual_grade = False
        answer = gb.find_comment("corr2d", ASSIGNMENT, ASSIGNMENT, student)
        answer.manual_comment = comment
        gb.db.commit()


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Class:
    k = Class(tmp_path_factory.mktemp("workflow"))
    assert main(["--root", str(k.root), "release", ASSIGNMENT]) == 0
    set_duedate(k.root, datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=7))
    nbgrader(k.root, "release_assignment", ASSIGNMENT, "--force")
    for student in [
        fixtures.Student("alice"),
        fixtures.Student("carol", answers={"corr2d": fixtures.FLIPPED_CORR2D}),
        NEUTER_AND_WRONG,
    ]:
        k.fetch_and_submit(student)
    # the due date passes; dave hands in late
    set_duedate(k.root, datetime.datetime.now(datetime.UTC))
    time.sleep(2)
    k.fetch_and_submit(fixtures.Student("dave"))
    nbgrader(k.root, "collect", ASSIGNMENT)
    assert main(["--root", str(k.root), "autograde", ASSIGNMENT, "--quiet", "--timeout", "10"]) == 0
    return k


def test_the_gradebook_holds_verified_scores_flags_and_late_penalties(klass: Class) -> None:
    book = gradebook(klass.root)
    assert {s: round(v["score"] - v["penalty"], 6) for s, v in book.items()} == {
        "alice": 20.0,
        "carol": 17.0,
        "dave": 0.0,  # right answers, but late: the course's penalty method is "zero"
        "mallory": 0.0,
    }
    assert book["dave"]["score"] == 20.0 and book["dave"]["penalty"] == 20.0
    assert book["mallory"]["flagged"] and not book["alice"]["flagged"]


def test_feedback_goes_out_through_the_exchange(klass: Class) -> None:
    assert main(["--root", str(klass.root), "feedback", ASSIGNMENT]) == 0
    nbgrader(klass.root, "release_feedback", ASSIGNMENT)
    hidden = hidden_test_lines(klass.root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    pages = {s: klass.fetch_feedback(s) for s in ("alice", "carol", "dave", "mallory")}
    for student, page in pages.items():
        assert not [line for line in hidden if line in page], student
    assert "Score: 20 / 20" in pages["alice"]
    assert "Score: 17 / 20" in pages["carol"] and "flipped" in pages["carol"]
    assert (
        "Score: 0 / 20" in pages["dave"] and "late submission penalty: 20 points" in pages["dave"]
    )


def test_nbgrader_generate_feedback_writes_the_course_page(klass: Class) -> None:
    nbgrader(klass.root, "generate_feedback", ASSIGNMENT, "--force")
    page = (klass.root / "feedback" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    hidden = hidden_test_lines(klass.root / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert not [line for line in hidden if line in page]
    assert "flipped" in page and "test_corr2d" in page
    assert "Score: 17" in page  # nbgrader's own header, from the course's scores


def test_plain_nbgrader_autograde_is_switched_off_and_says_what_to_run(klass: Class) -> None:
    before = gradebook(klass.root)
    done = nbgrader(klass.root, "autograde", ASSIGNMENT, "--force", check=False)
    assert done.returncode != 0
    assert "course autograde convolution" in done.stdout + done.stderr
    assert gradebook(klass.root) == before
    # it stopped before touching anything: the autograded notebooks are all still there
    for student in ("alice", "carol", "dave", "mallory"):
        assert (klass.root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()


def test_a_manual_grade_is_kept_shown_and_reviewed_after_a_resubmission(
    klass: Class, capsys
) -> None:
    comment = "Nearly there: look at the orientation of the kernel."
    set_manual(klass.root, "carol", "test_corr2d", 2.0, comment)
    capsys.readouterr()
    assert main(["--root", str(klass.root), "autograde", ASSIGNMENT, "--student", "carol",
                 "--quiet"]) == 0  # fmt: skip
    book = gradebook(klass.root)
    assert book["carol"]["cells"]["test_corr2d"] == (0.0, 2.0, False)
    assert book["carol"]["score"] == 19.0 and book["alice"]["score"] == 20.0
    assert main(["--root", str(klass.root), "feedback", ASSIGNMENT, "--student", "carol"]) == 0
    page = (klass.root / "feedback" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.md").read_text()
    assert "**Score: 19 / 20**" in page
    assert "2 / 3 points (set by your grader (automatic: 0))" in page
    assert comment in page
    # carol fixes corr2d and hands in again: the manual score stays, but is up for review
    klass.fetch_and_submit(fixtures.Student("carol"))
    nbgrader(klass.root, "collect", ASSIGNMENT, "--update")
    assert main(["--root", str(klass.root), "autograde", ASSIGNMENT, "-s", "carol",
                 "--quiet"]) == 0  # fmt: skip
    book = gradebook(klass.root)
    assert book["carol"]["cells"]["test_corr2d"] == (3.0, 2.0, True)
    manifest = json.loads((klass.root / "reports" / "runs.json").read_text())
    report = json.loads((klass.root / "reports" / manifest[-1]["report"]).read_text())
    assert manifest[-1]["students"] == ["carol"]
    flags = {f["kind"]: f for f in report["students"]["carol"]["flags"]}
    assert flags["manual-grade-review"]["evidence"] == "test_corr2d"
    assert main(["--root", str(klass.root), "feedback", ASSIGNMENT, "-s", "carol"]) == 0
    page = (klass.root / "feedback" / "carol" / ASSIGNMENT / f"{ASSIGNMENT}.md").read_text()
    assert "under review after your new submission" in page


def test_grades_export_penalties_and_lms_layouts(klass: Class, capsys) -> None:
    out = klass.base / "grades.csv"
    assert main(["--root", str(klass.root), "grades", "-o", str(out)]) == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert rows["dave"]["raw_total"] == "20.0" and rows["dave"]["late_penalty"] == "20.0"
    assert rows["dave"]["total"] == "0.0" and rows["alice"]["total"] == "20.0"
    capsys.readouterr()
    assert main(["--root", str(klass.root), "grades", "--lms", "canvas"]) == 0
    canvas = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT]
    assert ["alice", "", "", "alice", "", "20.0"] in canvas
    assert main(["--root", str(klass.root), "grades", "--lms", "moodle"]) == 0
    moodle = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert moodle[0] == ["username", ASSIGNMENT] and ["dave", "0.0"] in moodle
