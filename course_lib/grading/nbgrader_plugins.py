"""nbgrader preprocessors that make nbgrader's own buttons and commands fit the course.

``nbgrader_config.py`` installs them:

- :func:`switch_off_plain_autograde` and :class:`IsolatedAutogradeOnly` (as nbgrader's
  autograde preprocessor, a second line). Plain ``nbgrader autograde`` (and the formgrader's
  *Autograde* button) would run student code in a kernel with the instructor's rights and
  write unverified scores; for this course it stops, before it changes anything, with a message
  that says to run ``course autograde ASSIGNMENT [--student ID]``, which runs each submission
  isolated and writes the verified scores. ``course autograde`` runs nbgrader with its own
  configuration, without either.
- :class:`CourseFeedback` as nbgrader's feedback preprocessor: *Generate Feedback* (the
  formgrader's button, or ``nbgrader generate_feedback``) then writes the course's feedback page
  (each test's result and the misconception, the grader's manual scores and comments, the late
  penalty) instead of the autograded notebook with its hidden tests.
"""

from __future__ import annotations

from pathlib import Path

from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

__all__ = [
    "CourseFeedback",
    "IsolatedAutogradeOnly",
    "IsolatedAutogradeRequired",
    "switch_off_plain_autograde",
]

MESSAGE = (
    "This course does not autograde with plain nbgrader (it would run student code with your "
    "rights and record unverified scores). Run `course autograde {assignment} --student "
    "{student}` (or `course autograde {assignment}` for the class) in the course folder: it runs "
    "each submission isolated and writes the verified scores into this gradebook."
)


class IsolatedAutogradeRequired(RuntimeError):
    """nbgrader's own autograde was asked for; the message says what to run instead."""


def switch_off_plain_autograde() -> None:
    """Make nbgrader's Autograde stop at its start, before it removes or writes anything.

    Called from ``nbgrader_config.py``, so it acts in the processes that read the course's
    configuration (the ``nbgrader`` command, the formgrader's server), not in ``course
    autograde``'s workers, which configure nbgrader themselves. Without it, nbgrader would
    first delete the student's autograded folder and only then meet
    :class:`IsolatedAutogradeOnly`.
    """
    from nbgrader.converters import Autograde

    if getattr(Autograde.start, "_course_switched_off", False):
        return

    def start(self) -> None:
        student = self.coursedir.student_id
        raise IsolatedAutogradeRequired(
            MESSAGE.format(
                assignment=self.coursedir.assignment_id or "ASSIGNMENT",
                student=student if student not in ("", "*") else "STUDENT",
            )
        )

    start._course_switched_off = True  # type: ignore[attr-defined]
    Autograde.start = start  # type: ignore[method-assign]


class IsolatedAutogradeOnly(NbGraderPreprocessor):
    """Stop nbgrader's own autograde before any student code runs (see the module doc)."""

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        raise IsolatedAutogradeRequired(
            MESSAGE.format(
                assignment=info.get("assignment", "ASSIGNMENT"),
                student=info.get("student", "STUDENT"),
            )
        )


class CourseFeedback(NbGraderPreprocessor):
    """Replace the autograded notebook by the course's feedback for the student."""

    def preprocess(self, nb, resources):
        from course_lib.grading.feedback import check_page, hidden_test_lines, render_feedback
        from course_lib.grading.gradebook import submission_record
        from course_lib.grading.report import latest_report

        info = resources["nbgrader"]
        assignment, student = info["assignment"], info["student"]
        # autograded/<student>/<assignment>/ -> the course folder
        root = Path(resources["metadata"]["path"]).resolve().parents[2]
        data = latest_report(root, assignment)
        if student not in data["students"]:
            raise KeyError(f"no report has graded {student} on {assignment}")
        record = submission_record(root, assignment, student)
        markdown, _page = render_feedback(assignment, student, data, record)
        solution = root / "solutions" / assignment / f"{assignment}.ipynb"
        hidden = hidden_test_lines(solution) if solution.is_file() else set()
        check_page(student, markdown, hidden)
        nb.cells = [new_markdown_cell(markdown)]
        info["score"] = record["raw_score"] if record else data["students"][student]["score"]
        info["max_score"] = (
            record["max_score"] if record else data["students"][student]["max_score"]
        )
        info["late_penalty"] = record["late_penalty"] if record else 0.0
        return nb, resources
