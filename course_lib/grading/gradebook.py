"""``course grades``: the gradebook as a CSV table, and what one submission's record says.

Columns: ``student, assignment``, the points of each function of the assignment (the sum of its
test cells' scores in nbgrader's gradebook: the verified points that ``course autograde`` writes,
or the grader's manual score where one was set in the formgrader), ``raw_total``,
``late_penalty`` (nbgrader's late-submission penalty, computed from the verified score with the
course's ``LateSubmissionPlugin`` settings) and ``total`` (raw minus penalty, nbgrader's
"score"). ``--lms canvas`` and ``--lms moodle`` write one row per student and one column per
assignment, in the layouts those systems import.

:func:`submission_record` is one submission as the gradebook has it: per cell the auto score,
the manual score and comment a grader set, whether it needs a manual look, the late penalty and
the flag; ``course feedback`` shows it.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from course_lib.grading import checks

__all__ = ["grade_rows", "grades_csv", "lms_csv", "submission_record"]


def grade_rows(root: Path, assignment: str | None = None) -> list[dict[str, object]]:
    """One dict per (student, assignment) with a submission in the gradebook."""
    from nbgrader.api import Gradebook

    rows = []
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")
        names = [a.name for a in gb.assignments if assignment in (None, a.name)]
        for name in sorted(names):
            functions = checks.ASSIGNMENTS.get(name, {})
            owner = {t: f for f, ids in functions.items() for t in ids}
            for submission in sorted(gb.assignment_submissions(name), key=lambda s: s.student.id):
                points = dict.fromkeys(functions, 0.0)
                penalty = 0.0
                for notebook in submission.notebooks:
                    penalty += float(notebook.late_submission_penalty or 0.0)
                    for grade in notebook.grades:
                        function = owner.get(grade.name)
                        if function is not None:
                            points[function] += float(grade.score or 0.0)
                raw = float(submission.score or 0.0)
                row: dict[str, object] = {"student": submission.student.id, "assignment": name}
                row.update({f: round(p, 4) for f, p in points.items()})
                row["raw_total"] = round(raw, 4)
                row["late_penalty"] = round(penalty, 4)
                row["total"] = round(raw - penalty, 4)
                rows.append(row)
    return rows


def grades_csv(root: Path, assignment: str | None = None) -> str:
    """The CSV text of :func:`grade_rows` (columns of every assignment present)."""
    rows = grade_rows(root, assignment)
    columns = ["student", "assignment"]
    for row in rows:
        columns += [
            k for k in row if k not in columns and k not in ("raw_total", "late_penalty", "total")
        ]
    columns += ["raw_total", "late_penalty", "total"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def lms_csv(root: Path, system: str) -> str:
    """One row per student, one column per assignment (its total after penalties).

    ``canvas``: the columns of Canvas's gradebook import (Student, ID, SIS User ID, SIS Login
    ID, Section, then one column per assignment; the student id goes in SIS Login ID, and an
    assignment column Canvas does not know yet becomes a new assignment on import).
    ``moodle``: ``username`` and one column per assignment, for Moodle's CSV grade import
    (map ``username`` to the user field when importing).
    """
    rows = grade_rows(root)
    assignments = sorted({str(r["assignment"]) for r in rows})
    totals: dict[str, dict[str, object]] = {}
    for row in rows:
        totals.setdefault(str(row["student"]), {})[str(row["assignment"])] = row["total"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if system == "canvas":
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments])
        for student in sorted(totals):
            cells = [totals[student].get(a, "") for a in assignments]
            writer.writerow([student, "", "", student, "", *cells])
    elif system == "moodle":
        writer.writerow(["username", *assignments])
        for student in sorted(totals):
            writer.writerow([student, *[totals[student].get(a, "") for a in assignments]])
    else:
        raise ValueError(f"unknown LMS {system!r}: use 'canvas' or 'moodle'")
    return out.getvalue()


def submission_record(root: Path, assignment: str, student: str) -> dict | None:
    """What the gradebook holds for one submission (None when it has none)."""
    from nbgrader.api import Gradebook, MissingEntry

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore")
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        cells: dict[str, dict] = {}
        penalty = 0.0
        flagged = False
        for notebook in submission.notebooks:
            penalty += float(notebook.late_submission_penalty or 0.0)
            flagged = flagged or bool(notebook.flagged)
            for grade in notebook.grades:
                cells[grade.name] = {
                    "auto_score": grade.auto_score,
                    "manual_score": grade.manual_score,
                    "score": float(grade.score or 0.0),
                    "max_score": float(grade.max_score or 0.0),
                    "needs_manual_grade": bool(grade.needs_manual_grade),
                    "comment": None,
                }
            for comment in notebook.comments:
                text = comment.manual_comment
                if text:
                    cells.setdefault(comment.name, {"comment": None})["comment"] = text
        raw = float(submission.score or 0.0)
        return {
            "cells": cells,
            "raw_score": raw,
            "late_penalty": penalty,
            "score": raw - penalty,
            "max_score": float(submission.max_score or 0.0),
            "seconds_late": float(submission.total_seconds_late or 0.0),
            "needs_manual_grade": bool(submission.needs_manual_grade),
            "flagged": flagged,
        }
