"""Where the built website is and which pages it has, for the tests that read it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# the built website; BOOK_SITE_DIR points the tests at a build made elsewhere
SITE = Path(os.environ.get("BOOK_SITE_DIR", ROOT / "_build" / "html"))


def require_site() -> None:
    """Fail with what to do when the website has not been built."""
    if not (SITE / "index.html").exists():
        pytest.fail(f"the website is not built ({SITE} has no index.html): run `make book` first")


def toc_pages() -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        walk(part.get("chapters", []))
    return [str(Path(p).with_suffix("")) for p in pages]
