"""``course grades``: the gradebook as a CSV table, one row per student and assignment.

Columns: ``student, assignment``, the points of each function of the assignment (the sum of
its test cells' scores in nbgrader's gradebook, which ``course autograde`` fills with the
verified points), and ``total``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from course_lib.grading import checks

__all__ = ["grade_rows", "grades_csv"]


def grade_rows(root: Path, assignment: str | None = None) -> list[dict[str, object]]:
    """One dict per (student, assignment) with a submission in the gradebook."""
    from nbgrader.api import Gradebook

    rows = []
    with Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb:
        names = [a.name for a in gb.assignments if assignment in (None, a.name)]
        for name in sorted(names):
            functions = checks.ASSIGNMENTS.get(name, {})
            owner = {t: f for f, ids in functions.items() for t in ids}
            for submission in sorted(gb.assignment_submissions(name), key=lambda s: s.student.id):
                points = dict.fromkeys(functions, 0.0)
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        function = owner.get(grade.name)
                        if function is not None:
                            points[function] += float(grade.score or 0.0)
                row: dict[str, object] = {"student": submission.student.id, "assignment": name}
                row.update({f: round(p, 4) for f, p in points.items()})
                row["total"] = round(float(submission.score or 0.0), 4)
                rows.append(row)
    return rows


def grades_csv(root: Path, assignment: str | None = None) -> str:
    """The CSV text of :func:`grade_rows` (columns of every assignment present)."""
    rows = grade_rows(root, assignment)
    columns = ["student", "assignment"]
    for row in rows:
        columns += [k for k in row if k not in columns and k != "total"]
    columns.append("total")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
