"""``course feedback``: one page per student, never the source of a hidden test.

nbgrader's own feedback is the autograded notebook rendered to HTML, hidden test cells
included. This writes ``feedback/<student>/<assignment>/<assignment>.md`` and ``.html`` from the
latest report instead: each test's result, its points and, for a wrong answer, what was wrong on
which case and the likely misconception. Before writing, every page is checked against the hidden
tests of the solution notebook: a page that would contain a line of them is withheld (and said
so), while the other students' pages are written.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib.grading.report import latest_report

__all__ = [
    "FeedbackRun",
    "hidden_test_lines",
    "render_feedback",
    "write_feedback",
]

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


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


def render_feedback(assignment: str, student: str, data: dict) -> tuple[str, str]:
    """(markdown, html) of one student's feedback from a report's data."""
    s = data["students"][student]
    md = [f"# Feedback: {assignment}", "", f"Student: {student}", ""]
    md.append(f"**Score: {s['score']:g} / {s['max_score']:g}**")
    md.append("")
    by_function: dict[str, list[tuple[str, dict]]] = {}
    for test_id, test in s["tests"].items():
        by_function.setdefault(test["function"] or "?", []).append((test_id, test))
    rows = []
    for function, tests in by_function.items():
        md += [f"## `{function}`", ""]
        for test_id, test in tests:
            ok = test["message"] is None
            mark = "passed" if ok else "failed"
            md.append(f"- `{test_id}`: {mark}, {test['points']:g} / {test['max_points']:g} points")
            if not ok:
                md.append("  - " + " ".join(test["message"].split()))
            rows.append((function, test_id, mark, test["points"], test["max_points"], test))
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
        "table{border-collapse:collapse}.passed{color:#176317}.failed{color:#a31515}</style>",
        "</head><body>",
        f"<h1>Feedback: {html.escape(assignment)}</h1>",
        f"<p>Student: {html.escape(student)}</p>",
        f"<p><strong>Score: {s['score']:g} / {s['max_score']:g}</strong></p>",
        "<table><tr><th>function</th><th>test</th><th>result</th><th>points</th>"
        "<th>what was wrong</th></tr>",
    ]
    for function, test_id, mark, points, max_points, test in rows:
        page.append(
            f"<tr><td><code>{html.escape(function)}</code></td><td><code>{html.escape(test_id)}"
            f'</code></td><td class="{mark}">{mark}</td><td>{points:g} / {max_points:g}</td>'
            f"<td>{html.escape(test['message'] or '')}</td></tr>"
        )
    page.append("</table>")
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
    from course_lib.grading.submission import check_student_id

    root = Path(root)
    data = latest_report(root, assignment)
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
        md, page = render_feedback(assignment, student, data)
        leaked = sorted(
            line for line in hidden if any(line in text for text in (md, page, html.unescape(page)))
        )
        if leaked:
            done.withheld[student] = f"the page would show a hidden test line: {leaked[0]!r}"
            continue
        folder = root / "feedback" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for suffix, text in ((".md", md), (".html", page)):
            path = folder / f"{assignment}{suffix}"
            if path.is_symlink():
                path.unlink()
            path.write_text(text)
            done.pages.append(path)
    return done
