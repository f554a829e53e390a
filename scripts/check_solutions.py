"""Check the source notebooks solutions/<assignment>/<assignment>.ipynb against the declarations.

The notebooks are the source of truth for everything a student reads; the declarations in
course_lib/grading/exercises/ are the source of truth for the grading. This script lists where
a notebook disagrees with its declaration (answer and test cell ids, points, the hidden-test
block of each test cell, the points table, the points in the section titles), and with --fix
rewrites those parts from the declarations. Then regenerate the student versions:

    python scripts/check_solutions.py --fix
    nbgrader generate_assignment "*" --force      # or: course release

Usage: python scripts/check_solutions.py [--fix] [--readme] [assignment ...]
  --readme   print the README's tables of the assignments, made from the declarations
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.grading.exercises import ASSIGNMENTS  # noqa: E402
from course_lib.grading.exercises.notebook import (  # noqa: E402
    check_notebook,
    readme_tables,
    sync_notebook,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help=f"among {', '.join(ASSIGNMENTS)}")
    parser.add_argument("--fix", action="store_true", help="rewrite the derived parts")
    parser.add_argument("--readme", action="store_true", help="print the README's tables")
    args = parser.parse_args(argv)
    if args.readme:
        for table in readme_tables(ASSIGNMENTS):
            print(table, end="\n\n")
        return 0
    unknown = [a for a in args.assignments if a not in ASSIGNMENTS]
    if unknown:
        parser.error(f"unknown assignment {unknown[0]!r}; known: {', '.join(ASSIGNMENTS)}")
    failed = 0
    for name in args.assignments or list(ASSIGNMENTS):
        path = ROOT / "solutions" / name / f"{name}.ipynb"
        nb = nbformat.read(str(path), as_version=4)
        if args.fix:
            changed = sync_notebook(nb, ASSIGNMENTS[name])
            if changed:
                nbformat.write(nb, str(path))
                print(f"{name}: rewrote {', '.join(changed)}")
        problems = check_notebook(nb, ASSIGNMENTS[name])
        for problem in problems:
            print(f"{name}: {problem}")
        if not problems:
            print(f"{name}: agrees with its declaration")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
