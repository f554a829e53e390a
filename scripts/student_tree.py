"""Copy what students need, and nothing of the instructor's, into a folder of its own.

    python scripts/student_tree.py DEST

DEST gets the book (book/, _config.yml, _toc.yml, references.bib), the released exercises
(exercises/), course_lib without its grading code (course_lib/grading/ and the `course`
command stay behind) and the files that install it (pyproject.toml, environment.yml,
scripts/setup.sh, the README). It never gets solutions/, the gradebook, submissions, autograded
notebooks, feedback, reports or the tests. Build the students' image (or their JupyterHub
environment) from DEST. The hidden tests run only where `course autograde` runs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What students get, relative to the course folder.
INCLUDED = (
    "book",
    "exercises",
    "course_lib",
    "_config.yml",
    "_toc.yml",
    "references.bib",
    "pyproject.toml",
    "environment.yml",
    "README.md",
    "scripts/setup.sh",
)

#: Never copied, wherever it lies.
EXCLUDED = ("grading", "cli.py", "__pycache__", ".ipynb_checkpoints", "_build")


def student_tree(dest: Path, root: Path = ROOT) -> list[Path]:
    """Copy the student material of ``root`` into ``dest`` (which must not exist yet)."""
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists already: give a new folder")
    copied = []
    for name in INCLUDED:
        source = root / name
        if not source.exists():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(*EXCLUDED))
        else:
            shutil.copy2(source, target)
        copied.append(target)
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    for path in student_tree(Path(sys.argv[1])):
        print(path)
