"""``course feedback``: one page per student, never the source of a hidden test.

nbgrader's own feedback is the autograded notebook rendered to HTML, hidden test cells
included. This writes ``feedback/<student>/<assignment>/<assignment>.md`` and ``.html`` from the
latest report instead: each test's result, its points and, for a wrong answer, what was wrong on
which case and the likely misconception. Before writing, every page is checked against the hidden
tests of the solution notebook: a page that would contain a line of them is withheld (and said
so), while the other students' pages are written. The scores shown are the gradebook's: a manual
score or comment a grader set in the formgrader appears with the automatic result, and the late
penalty is shown. Beside each page go the submission's ``timestamp.txt`` and
``submission_secret.txt``, so that ``nbgrader release_feedback`` can hand the page out through
the exchange.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib.grading.report import latest_report

__all__ = [
    "FeedbackRun",
    "HiddenTestLeak",
    "check_page",
    "hidden_test_lines",
    "render_feedback",
    "write_feedback",
]

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"

#: Files nbgrader's release_feedback reads beside each page (copied from the submission).
RELEASE_FILES = ("timestamp.txt", "submission_secret.txt")


def hidden_test_lines(solution: Path) -> set[str]:
    """The stripped lines (10 characters or more) between the hidden-test markers."""
    nb = nbformat.read(str(solution), as_version=4)
    lines: set[str] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        hidden = False
        for line in cell.source.splitlines():
            if BEGIN in line:
                hidden = True
            elif END in line:
                hidden = False
            elif hidden and len(line.strip()) >= 10:
                lines.add(line.strip())
    return lines


def _points(test_id: str, test: dict, record: dict | None) -> tuple[float, str]:
    """The points a test counts for (the gradebook's, a grader's manual score included) and a
    note on where they come from."""
    cell = (record or {}).get("cells", {}).get(test_id)
    if not cell:
        return float(test["points"]), ""
    if cell.get("manual_score") is not None:
        note = f"set by your grader (automatic: {test['points']:g})"
        if cell.get("needs_manual_grade"):
            note += "; under review after your new submission"
        return float(cell["score"]), note
    return float(cell["score"]), ""


class HiddenTestLeak(RuntimeError):
    """A feedback page would have shown a line of a hidden test."""


def check_page(student: str, markdown: str, hidden: set[str], page: str = "") -> None:
    """Raise :class:`HiddenTestLeak` when a page shows any of the ``hidden`` lines."""
    texts = (markdown, page, html.unescape(page))
    leaked = sorted(line for line in hidden if any(line in text for text in texts))
    if leaked:
        raise HiddenTestLeak(f"the page would show a hidden test line: {leaked[0]!r}")


def render_feedback(
    assignment: str, student: str, data: dict, record: dict | None = None
) -> tuple[str, str]:
    """(markdown, html) of one student's feedback from a report's data and, when given, the
    gradebook's record of the submission (manual scores, comments, late penalty)."""
    s = data["students"][student]
    max_score = float(record["max_score"]) if record else float(s["max_score"])
    score = float(record["score"]) if record else float(s["score"])
    summary = [f"Score: {score:g} / {max_score:g}"]
    notes = []
    if record and record["late_penalty"] > 0:
        notes.append(
            f"late submission penalty: {record['late_penalty']:g} points "
            f"({record['seconds_late'] / 3600:.1f} hours late)"
        )
    if record and record["needs_manual_grade"]:
        notes.append("some of it is waiting for your grader's review")
    cells = (record or {}).get("cells", {})
    md = [f"# Feedback: {assignment}", "", f"Student: {student}", ""]
    md.append(f"**{summary[0]}**")
    md += [f"- {note}" for note in notes]
    md.append("")
    by_function: dict[str, list[tuple[str, dict]]] = {}
    for test_id, test in s["tests"].items():
        by_function.setdefault(test["function"] or "?", []).append((test_id, test))
    rows = []
    for function, tests in by_function.items():
        md += [f"## `{function}`", ""]
        comment = (cells.get(function) or {}).get("comment")
        if comment:
            md += [f"Your grader: {' '.join(comment.split())}", ""]
        for test_id, test in tests:
            ok = test["message"] is None
            mark = "passed" if ok else "failed"
            points, note = _points(test_id, test, record)
            line = f"- `{test_id}`: {mark}, {points:g} / {test['max_points']:g} points"
            md.append(line + (f" ({note})" if note else ""))
            if not ok:
                md.append("  - " + " ".join(test["message"].split()))
            test_comment = (cells.get(test_id) or {}).get("comment")
            if test_comment:
                md.append(f"  - Your grader: {' '.join(test_comment.split())}")
            rows.append((function, test_id, mark, points, test, note, test_comment))
        md.append("")
    if s["incidents"]:
        md += ["## Runs that did not finish", ""]
        md += [f"- {item}" for item in s["incidents"]]
        md.append("")
    if s["cell_errors"]:
        md += ["## Cells that raised an error", ""]
        md += [f"- `{name}`: {error}" for name, error in s["cell_errors"].items()]
        md.append("")
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback: {html.escape(assignment)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
        "td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}"
        "table{border-collapse:collapse}.passed{color:#176317}.failed{color:#a31515}"
        ".grader{color:#333;font-style:italic}</style>",
        "</head><body>",
        f"<h1>Feedback: {html.escape(assignment)}</h1>",
        f"<p>Student: {html.escape(student)}</p>",
        f"<p><strong>{html.escape(summary[0])}</strong></p>",
    ]
    if notes:
        page.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    page.append(
        "<table><tr><th>function</th><th>test</th><th>result</th><th>points</th>"
        "<th>what was wrong</th></tr>"
    )
    for function, test_id, mark, points, test, note, test_comment in rows:
        extra = f' <span class="grader">({html.escape(note)})</span>' if note else ""
        said = (
            f'<p class="grader">Your grader: {html.escape(test_comment)}</p>'
            if test_comment
            else ""
        )
        page.append(
            f"<tr><td><code>{html.escape(function)}</code></td><td><code>{html.escape(test_id)}"
            f'</code></td><td class="{mark}">{mark}</td>'
            f"<td>{points:g} / {test['max_points']:g}{extra}</td>"
            f"<td>{html.escape(test['message'] or '')}{said}</td></tr>"
        )
    page.append("</table>")
    comments = [(function, (cells.get(function) or {}).get("comment")) for function in by_function]
    comments = [(f, c) for f, c in comments if c]
    if comments:
        page.append("<h2>Your grader's comments</h2><ul>")
        page += [f"<li><code>{html.escape(f)}</code>: {html.escape(c)}</li>" for f, c in comments]
        page.append("</ul>")
    for title, items in (
        ("Runs that did not finish", s["incidents"]),
        ("Cells that raised an error", [f"{k}: {v}" for k, v in s["cell_errors"].items()]),
    ):
        if items:
            page.append(f"<h2>{title}</h2><ul>")
            page += [f"<li>{html.escape(item)}</li>" for item in items]
            page.append("</ul>")
    page.append("</body></html>")
    return "\n".join(md).rstrip() + "\n", "\n".join(page) + "\n"


@dataclass
class FeedbackRun:
    """What ``course feedback`` wrote: the pages, and the students whose page was withheld."""

    pages: list[Path] = field(default_factory=list)
    withheld: dict[str, str] = field(default_factory=dict)  # student -> why

    @property
    def students(self) -> list[str]:
        return sorted({p.parent.parent.name for p in self.pages})


def write_feedback(root: Path, assignment: str, students: list[str] | None = None) -> FeedbackRun:
    """Write each student's feedback from the latest report.

    A page that would show a line of a hidden test is not written (the student's page is
    withheld and said so in the result); the other students' pages are written all the same.
    Student ids from the report are checked before they become folder names.
    """
    from course_lib.grading.gradebook import submission_record
    from course_lib.grading.submission import check_student_id

    root = Path(root)
    data = latest_report(root, assignment)
    gradebook = (root / "gradebook.db").is_file()
    solution = root / "solutions" / assignment / f"{assignment}.ipynb"
    hidden = hidden_test_lines(solution) if solution.is_file() else set()
    done = FeedbackRun()
    for student in students or sorted(data["students"]):
        try:
            check_student_id(student)
        except ValueError as error:
            done.withheld[student] = str(error)
            continue
        if student not in data["students"]:
            done.withheld[student] = "not in the report"
            continue
        record = submission_record(root, assignment, student) if gradebook else None
        md, page = render_feedback(assignment, student, data, record)
        try:
            check_page(student, md, hidden, page)
        except HiddenTestLeak as leak:
            done.withheld[student] = str(leak)
            continue
        folder = root / "feedback" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, text in ((".md", md), (".html", page)):
            path = folder / f"{assignment}{suffix}"
            if path.is_symlink():
                path.unlink()
            path.write_text(text)
            done.pages.append(path)
        # what `nbgrader release_feedback` needs beside the page: which submission it is for
        for name in RELEASE_FILES:
            source = root / "autograded" / student / assignment / name
            if not source.is_file() or source.is_symlink():
                source = root / "submitted" / student / assignment / name
            target = folder / name
            if source.is_file() and not source.is_symlink():
                if target.is_symlink():
                    target.unlink()
                shutil.copyfile(source, target)
    return done
