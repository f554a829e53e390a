"""The ``course`` command: release, autograde, feedback and grades of the assignments.

Run it in the course folder (the one with ``nbgrader_config.py``)::

    course release [ASSIGNMENT]             nbgrader generate_assignment, then check exercises/
    course autograde ASSIGNMENT [--jobs N | --scheduler tcp://HOST:PORT] [--timeout S]
                     [--memory MB] [--student S ...]
    course feedback ASSIGNMENT [--student S ...]   feedback/<student>/<assignment>/, no hidden tests
    course grades [--assignment A] [-o FILE]
    course verify NOTEBOOK ASSIGNMENT       grade one notebook in the sandbox, print the result
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import nbformat

__all__ = ["check_release", "main"]

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _between(nb: nbformat.NotebookNode, begin: str, end: str) -> tuple[set[str], set[str]]:
    """(stripped lines of 12+ characters between the markers, the other lines of the notebook)."""
    found: set[str] = set()
    outside: set[str] = set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if begin in line:
                inside = True
            elif end in line:
                inside = False
            elif inside and len(line.strip()) >= 12:
                found.add(line.strip())
            else:
                outside.add(line.strip())
    return found, outside


def check_release(root: Path, assignment: str) -> list[str]:
    """Problems of ``exercises/<a>/<a>.ipynb``: markers, solution or hidden-test lines left."""
    source = root / "solutions" / assignment / f"{assignment}.ipynb"
    release = root / "exercises" / assignment / f"{assignment}.ipynb"
    if not release.is_file():
        return [f"{release.relative_to(root)} was not written"]
    solution_nb = nbformat.read(str(source), as_version=4)
    cells = nbformat.read(str(release), as_version=4).cells
    text = "\n".join(c.source for c in cells)
    code_lines = {
        line.strip() for c in cells if c.cell_type == "code" for line in c.source.splitlines()
    }
    problems = [f"marker {m!r} left in the exercise" for m in MARKERS if m in text]
    solution, shown = _between(solution_nb, "BEGIN SOLUTION", "END SOLUTION")
    hidden, _ = _between(solution_nb, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
    # a solution line the source notebook also shows elsewhere (a worked example) is no leak
    secret = (solution - shown) | hidden
    problems += [
        f"solution/hidden line in the exercise: {line!r}"
        for line in sorted(secret)
        if line in code_lines
    ]
    return problems


def _release(root: Path, assignment: str | None) -> int:
    names = (
        [assignment]
        if assignment
        else sorted(
            p.name for p in (root / "solutions").iterdir() if (p / f"{p.name}.ipynb").is_file()
        )
    )
    failed = 0
    for name in names:
        done = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", name, "--force"],
            cwd=root,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"{name}: nbgrader generate_assignment failed\n{done.stderr[-3000:]}")
            failed += 1
            continue
        problems = check_release(root, name)
        if problems:
            failed += 1
            print(f"{name}: exercises/{name}/{name}.ipynb is NOT safe to hand out:")
            for problem in problems:
                print(f"  - {problem}")
        else:
            print(f"{name}: released to exercises/{name}/ (no solution, no hidden test in it)")
    return 1 if failed else 0


def _autograde(root: Path, args: argparse.Namespace) -> int:
    from course_lib.grading.autograde import autograde
    from course_lib.grading.report import report_data, summary_table, write_report

    executor = None
    if args.scheduler:
        from course_lib.grading.cluster import DaskExecutor

        executor = DaskExecutor(args.scheduler)
    run = autograde(
        args.assignment,
        root,
        executor=executor,
        jobs=args.jobs,
        timeout=args.timeout,
        memory_mb=args.memory,
        students=args.student or None,
        progress=not args.quiet,
    )
    for name, reason in run.refused.items():
        print(f"REFUSED: submitted/{name}/{args.assignment}: {reason}")
    if not run.results:
        print(f"no submissions in submitted/*/{args.assignment}/")
        return 0
    json_path, md_path = write_report(run, root)
    data = report_data(run)
    print(summary_table(data))
    print(
        f"\n{len(run.results)} submissions in {run.seconds:.1f} s with {run.jobs} "
        f"{'Dask worker threads' if run.executor == 'dask' else 'workers'}; "
        f"{len(data['suspicious'])} flagged as suspicious."
    )
    if run.gradebook_tampered:
        print("WARNING: the gradebook was changed during the run by something else; restored.")
    print(f"report: {json_path.relative_to(root)} and {md_path.relative_to(root)}")
    return 0


def _feedback(root: Path, args: argparse.Namespace) -> int:
    from course_lib.grading.feedback import write_feedback

    done = write_feedback(root, args.assignment, args.student or None)
    print(f"feedback for {len(done.students)} students in feedback/<student>/{args.assignment}/")
    for student, reason in done.withheld.items():
        print(f"WITHHELD: {student}: {reason}")
    return 1 if done.withheld else 0


def _grades(root: Path, args: argparse.Namespace) -> int:
    from course_lib.grading.gradebook import grades_csv

    text = grades_csv(root, args.assignment)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output} ({text.count(chr(10)) - 1} rows)")
    else:
        sys.stdout.write(text)
    return 0


def _verify(root: Path | None, args: argparse.Namespace) -> int:
    from course_lib.grading.verify import verify_notebook

    release = None
    if root is not None:
        candidate = root / "exercises" / args.assignment / f"{args.assignment}.ipynb"
        release = candidate if candidate.is_file() else None
    result = verify_notebook(args.notebook, args.assignment, release=release, seed=args.seed)
    for test_id, test in result.tests.items():
        status = "passed" if test.passed else "FAILED"
        print(f"{test_id:<36} {status:<6} {test.points:g}/{test.max_points:g}")
        if test.message:
            print(f"    {test.message}")
    for flag in result.flags:
        print(f"flag {flag.kind}: {flag.detail}: {flag.evidence}")
    print(f"total {result.score:g}/{result.max_score:g} (seed {result.seed})")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="the course folder (default: found from here upwards)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="generate exercises/ from solutions/ and check it")
    p.add_argument("assignment", nargs="?", help="one assignment (default: all)")
    p = sub.add_parser("autograde", help="grade every submission of an assignment")
    p.add_argument("assignment")
    p.add_argument("--jobs", "-j", type=int, default=2, help="parallel workers (default 2)")
    p.add_argument("--timeout", type=int, default=30, help="seconds per cell / call (default 30)")
    p.add_argument("--memory", type=int, default=2048, help="MB per submission (default 2048)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--student", "-s", action="append", help="grade only this student (repeatable): a regrade"
    )
    p.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="grade on this Dask distributed cluster instead of local worker processes",
    )
    p = sub.add_parser("feedback", help="write per-student feedback pages")
    p.add_argument("assignment")
    p.add_argument("--student", "-s", action="append", help="only this student (repeatable)")
    p = sub.add_parser("grades", help="the gradebook as CSV")
    p.add_argument("--assignment", "-a")
    p.add_argument("--output", "-o", help="file to write (default: standard output)")
    p = sub.add_parser("verify", help="grade one notebook in the sandbox")
    p.add_argument("notebook")
    p.add_argument("assignment")
    p.add_argument("--seed", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``course`` console script."""
    from course_lib.grading.autograde import find_course_root

    args = _parser().parse_args(argv)
    # nbgrader runs its helpers (alembic, jupyter) by name: make this environment's win
    tools = str(Path(sys.executable).parent)
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([tools, os.environ.get("PATH", "")])
    try:
        root = find_course_root(args.root)
    except FileNotFoundError as error:
        if args.command != "verify":
            print(f"course: {error}", file=sys.stderr)
            return 2
        root = None
    if args.command == "verify":
        from course_lib.grading.isolation import IsolationError

        try:
            return _verify(root, args)
        except IsolationError as error:
            print(f"course: {error}", file=sys.stderr)
            return 2
    commands = {
        "release": lambda: _release(root, args.assignment),
        "autograde": lambda: _autograde(root, args),
        "feedback": lambda: _feedback(root, args),
        "grades": lambda: _grades(root, args),
    }
    from course_lib.grading.isolation import IsolationError

    try:
        return commands[args.command]()
    except IsolationError as error:
        print(f"course: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
