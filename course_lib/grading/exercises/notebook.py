"""The parts of the notebooks and of the README that derive from the declarations.

The source notebooks in ``solutions/`` are what instructors edit (JupyterLab with nbgrader's
*Create Assignment* toolbar). A few parts of them restate the declarations and must agree with
them: each answer cell's ``grade_id``, each graded test cell's ``grade_id`` and points, the
hidden-test block at the end of a test cell, the points table and the points in the section
titles. :func:`check_notebook` lists where a notebook disagrees; :func:`sync_notebook` rewrites
those parts from the declarations (``scripts/check_solutions.py --fix``). :func:`readme_tables`
gives the README's tables of the assignments.
"""

from __future__ import annotations

import re

import nbformat

from ._base import Assignment, Exercise, HiddenTest

__all__ = [
    "HIDDEN_BEGIN",
    "check_notebook",
    "hidden_block",
    "points_table",
    "readme_tables",
    "sync_notebook",
]

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


def _points(value: float) -> str:
    return f"{value:g} point{'' if value == 1 else 's'}"


def hidden_block(exercise: Exercise, test: HiddenTest) -> str:
    """The end of a graded test cell: a comment on what the hidden tests try, and the call."""
    return "\n".join(
        [
            f"# Hidden tests ({_points(test.points)}): {test.covers}.",
            "# They run when your notebook is graded, on fresh random inputs each time.",
            HIDDEN_BEGIN,
            "from course_lib.grading.checks import run_test",
            "",
            f'run_test("{test.id}", {exercise.name})',
            HIDDEN_END,
        ]
    )


def points_table(assignment: Assignment) -> str:
    """The notebook's '## Points' cell."""
    rows = [f"| `{f.name}` | {f.summary} | {f.points:g} |" for f in assignment.functions]
    return "\n".join(
        [
            "## Points",
            "",
            "| function | what it does | points |",
            "|---|---|---|",
            *rows,
            f"| **total** | | **{assignment.points:g}** |",
            "",
            "Each function is graded by hidden tests on inputs drawn at random at every grading "
            f"run: {assignment.graded_on}. A test gives its points when every one of its cases "
            "is right. When a case fails, the feedback says which case and the likely cause.",
        ]
    )


def _meta(cell: nbformat.NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _section_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^(## \d+\. `{re.escape(name)}[(`].*?)\((\d+(?:\.\d+)?) points?\)", re.M)


def _visible_part(source: str) -> str:
    """A test cell's code before its hidden-test comment and block."""
    lines = source.split(HIDDEN_BEGIN)[0].rstrip().splitlines()
    while lines and lines[-1].startswith(("# Hidden tests", "# They run when your notebook")):
        lines.pop()
    return "\n".join(lines).rstrip()


def _expected_cells(assignment: Assignment) -> tuple[list[str], list[tuple[str, float]]]:
    answers = [f.name for f in assignment.functions]
    tests = [(t.id, t.points) for f in assignment.functions for t in f.tests]
    return answers, tests


def check_notebook(nb: nbformat.NotebookNode, assignment: Assignment) -> list[str]:
    """Where the source notebook disagrees with the declarations (empty: it agrees)."""
    problems = []
    answers, tests = _expected_cells(assignment)
    found_answers = [_meta(c)["grade_id"] for c in nb.cells if _meta(c).get("solution")]
    found_tests = [(_meta(c)["grade_id"], _meta(c).get("points")) for c in nb.cells if _meta(c).get("grade")]
    if found_answers != answers:
        problems.append(f"answer cells {found_answers}, expected {answers}")
    if [t for t, _ in found_tests] != [t for t, _ in tests]:
        problems.append(f"graded test cells {[t for t, _ in found_tests]}, expected {[t for t, _ in tests]}")
    declared = dict(tests)
    for test_id, points in found_tests:
        if test_id in declared and points != declared[test_id]:
            problems.append(f"{test_id} has {points} points, the declaration {declared[test_id]}")
    by_test = {t.id: (f, t) for f in assignment.functions for t in f.tests}
    first_tests = {f.tests[0].id for f in assignment.functions}
    for cell in nb.cells:
        meta = _meta(cell)
        if meta.get("solution") and f"def {meta['grade_id']}(" not in cell.source:
            problems.append(f"answer cell {meta['grade_id']} does not define {meta['grade_id']}()")
        if meta.get("grade") and meta.get("grade_id") in by_test:
            exercise, test = by_test[meta["grade_id"]]
            if not cell.source.rstrip().endswith(hidden_block(exercise, test)):
                problems.append(f"{test.id}: the hidden-test block differs from the declaration")
            has_visible = bool(_visible_part(cell.source).strip())
            if test.id in first_tests and exercise.visible and not has_visible:
                problems.append(f"{test.id}: no visible tests, although the declaration has some")
            if test.id not in first_tests and has_visible:
                problems.append(f"{test.id}: visible tests belong in the function's first test cell")
    table = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Points")]
    if len(table) != 1 or table[0].source != points_table(assignment):
        problems.append("the '## Points' cell differs from the declarations")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for f in assignment.functions:
        titles = _section_pattern(f.name).findall(text)
        if len(titles) != 1:
            problems.append(f"no single section title '## N. `{f.name}(...)` (P points)'")
        elif float(titles[0][1]) != f.points:
            problems.append(f"the title of {f.name} says {titles[0][1]} points, the declaration {f.points:g}")
    return problems


def sync_notebook(nb: nbformat.NotebookNode, assignment: Assignment) -> list[str]:
    """Rewrite the derived parts of ``nb`` from the declarations; return what changed."""
    changed = []
    by_test = {t.id: (f, t) for f in assignment.functions for t in f.tests}
    for cell in nb.cells:
        meta = _meta(cell)
        if meta.get("grade") and meta.get("grade_id") in by_test:
            exercise, test = by_test[meta["grade_id"]]
            visible = _visible_part(cell.source)
            source = (visible + "\n\n" if visible else "") + hidden_block(exercise, test)
            if source != cell.source or meta.get("points") != test.points:
                changed.append(test.id)
            cell.source = source
            meta["points"] = test.points
        elif cell.cell_type == "markdown" and cell.source.startswith("## Points"):
            table = points_table(assignment)
            if cell.source != table:
                changed.append("points table")
            cell.source = table
        elif cell.cell_type == "markdown":
            for f in assignment.functions:
                new = _section_pattern(f.name).sub(lambda m, f=f: f"{m.group(1)}({_points(f.points)})", cell.source)
                if new != cell.source:
                    changed.append(f"title of {f.name}")
                    cell.source = new
    return changed


def readme_tables(assignments: dict[str, Assignment]) -> tuple[str, str]:
    """(the students' table of exercises, the instructors' table of tests and points)."""
    students = ["| exercise | you write | with |", "|---|---|---|"]
    for a in assignments.values():
        functions = ", ".join(f"`{f.name}`" for f in a.functions)
        chapters = ", ".join(str(c.number) for c in a.chapters)
        word = "chapter" if len(a.chapters) == 1 else "chapters"
        students.append(f"| `exercises/{a.notebook}` | {functions} | {word} {chapters} |")
    instructors = ["| assignment | function | hidden tests (points) | total |", "|---|---|---|---|"]
    for a in assignments.values():
        for index, f in enumerate(a.functions):
            tests = ", ".join(f"`{t.id}` ({t.points:g})" for t in f.tests)
            name = f"`{a.name}` ({a.points:g})" if index == 0 else ""
            instructors.append(f"| {name} | `{f.name}` | {tests} | {f.points:g} |")
    return "\n".join(students), "\n".join(instructors)
