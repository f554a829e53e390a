"""How long the website takes to build: from scratch, and again from the execution cache.

A fresh copy of the book (configuration, table of contents, chapters, exercises) goes into a
temporary folder with an empty cache and is built three times with the flags of ``make book``:

1. clean: every chapter is executed;
2. cached, every page rewritten (``--all``): no chapter is executed, all come from the cache;
3. cached, nothing changed: Sphinx only checks what is out of date.

It prints the three times with their ratios, then the chapters' own execution times as the
cache recorded them, slowest first. ``python -m benchmarks book``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
COPIED = ["_config.yml", "_toc.yml", "references.bib", "book", "exercises"]
IGNORED = shutil.ignore_patterns("_build", ".ipynb_checkpoints", "__pycache__")


def copy_book(destination: Path) -> None:
    """The files the website is built from, without any build output or cache."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=IGNORED)
        elif source.exists():
            shutil.copy2(source, destination / name)


def build(book: Path, *extra: str) -> float:
    """Seconds for one ``jupyter-book build``; raise with its output when it fails."""
    command = [str(JUPYTER_BOOK), "build", str(book), "--warningiserror", "--keep-going", *extra]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=book)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}"
            f"\n{result.stderr[-4000:]}"
        )
    return seconds


def chapter_times(book: Path) -> list[tuple[str, float]]:
    """(chapter, execution seconds) from the jupyter-cache records, slowest first."""
    from jupyter_cache import get_cache

    cache_dir = book / "_build" / ".jupyter_cache"
    if not cache_dir.exists():
        return []
    rows = []
    for record in get_cache(cache_dir).list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        if seconds is not None:
            uri = Path(record.uri)
            name = str(uri.relative_to(book)) if uri.is_relative_to(book) else uri.name
            rows.append((name, float(seconds)))
    return sorted(rows, key=lambda row: row[1], reverse=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="book-bench-") as folder:
        book = Path(folder)
        copy_book(book)
        clean = build(book)
        rewrite = build(book, "--all")
        unchanged = build(book)
        print(f"\n{'build':<36} {'seconds':>8} {'clean / this':>13}")
        for name, seconds in [
            ("clean (empty cache, executes all)", clean),
            ("cached, every page rewritten", rewrite),
            ("cached, nothing changed", unchanged),
        ]:
            print(f"{name:<36} {seconds:>8.1f} {clean / seconds:>13.1f}")
        rows = chapter_times(book)
        if rows:
            total = sum(seconds for _, seconds in rows)
            print(f"\nchapter execution (from the cache), total {total:.1f} s, slowest first")
            width = max(len(name) for name, _ in rows)
            for name, seconds in rows:
                print(f"{name:<{width}}  {seconds:>7.1f} s  {seconds / total:>6.1%}")


if __name__ == "__main__":
    main()
