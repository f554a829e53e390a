"""The built website in a real browser: every page of the table of contents loads cleanly.

Runs headless Chromium (the system's ``chromium``, driven by Playwright) against ``_build/html``,
served over HTTP on 127.0.0.1. For every page: no console errors and no uncaught exceptions,
math typeset by MathJax, every image loaded, the animations playable, the sidebar and the
next/previous links working; the search page finds a chapter. A full-page screenshot of each
page is saved to ``artifacts/screenshots/`` for a person to look at.

Build the site first: ``make book``.
"""

from __future__ import annotations

import functools
import http.server
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from book_site import ROOT, SITE, require_site, toc_pages

SCREENSHOTS = ROOT / "artifacts" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Console errors that are not the book's and that no setting of the book removes:
# jupyter-book 1.0.4 with sphinx-thebe 0.3 writes sphinx-thebe's one-line configuration script
# (``const THEBE_JS_URL = ...``) into every page twice; the second copy throws when it
# redeclares the constant, and nothing else runs in that inline script (the first copy has
# already defined everything, so the live-code button still works).
KNOWN_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)
# Chromium asks every site for /favicon.ico on its own (the pages don't link it); a 404 there is
# the browser's probe, not a resource the book uses.
BROWSER_PROBES = ("/favicon.ico",)


PAGES = toc_pages()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    require_site()
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh page of the session's Chromium (``browser`` in conftest.py), recording errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []  # console errors and uncaught exceptions, in order
    page.on(
        "console",
        lambda message: (
            page.errors.append(f"console {message.type}: {message.text} at {message.location}")
            if message.type == "error"
            and not any(k in message.text for k in KNOWN_ERRORS)
            and not any(str(message.location.get("url", "")).endswith(p) for p in BROWSER_PROBES)
            else None
        ),
    )
    page.on(
        "pageerror",
        lambda error: (
            None
            if any(known in str(error) for known in KNOWN_ERRORS)
            else page.errors.append(f"uncaught exception: {error}")
        ),
    )
    page.on(
        "requestfailed",
        lambda request: page.errors.append(f"request failed: {request.url} ({request.failure})"),
    )
    yield page
    context.close()


def open_page(page: object, url: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")


def wait_for_math(page: object) -> int:
    """Number of math elements Sphinx wrote; waits until MathJax has typeset them."""
    count = page.locator(".math").count()
    if count:
        try:
            page.wait_for_selector("mjx-container", state="attached", timeout=15_000)
        except Exception as error:
            scripts = page.locator("script[src*='mathjax' i]").evaluate_all(
                "scripts => scripts.map(s => s.getAttribute('src'))"
            )
            raise AssertionError(
                f"{count} math elements but MathJax typeset none within 15 s (MathJax scripts: "
                f"{scripts}; the site must serve MathJax itself, it cannot load it from a CDN)"
            ) from error
        page.wait_for_function(
            "() => !window.MathJax || !MathJax.startup || !MathJax.startup.promise"
            " || MathJax.startup.promise.then(() => true)"
        )
    return count


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_cleanly(page: object, site_url: str, name: str) -> None:
    open_page(page, f"{site_url}/{name}.html")
    assert page.title(), f"{name}: the page has no title"
    math = wait_for_math(page)
    if math:
        typeset = page.locator("mjx-container").count()
        assert typeset > 0, f"{name}: {math} math elements but MathJax typeset none"
        errors = page.locator("mjx-merror").count()
        assert errors == 0, f"{name}: MathJax reports {errors} TeX errors"

    broken = page.evaluate(
        "() => Array.from(document.images)"
        ".filter(img => !img.complete || img.naturalWidth === 0)"
        ".map(img => img.currentSrc.slice(0, 120) || img.id || img.alt || '(no source)')"
    )
    assert not broken, f"{name}: images that did not load: {broken}"

    animations = page.locator("div.animation")
    for i in range(animations.count()):
        player = animations.nth(i)
        frame = player.locator("img")
        player.locator("button[title='Pause']").click()
        player.locator("button[title='First frame']").click()
        first = frame.get_attribute("src")
        player.locator("button[title='Next frame']").click()
        second = frame.get_attribute("src")
        assert first and second and first != second, (
            f"{name}: animation {i} does not advance when 'Next frame' is clicked"
        )

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name.replace('/', '__')}.png"), full_page=True)
    assert not page.errors, f"{name}: " + "\n".join(page.errors)


def test_chapters_with_animations_show_them(page: object, site_url: str) -> None:
    """A chapter whose source makes an animation must show a player on the website."""
    for name in PAGES:
        source = ROOT / f"{name}.md"
        if not source.exists():
            continue
        text = source.read_text()
        if not any(call in text for call in ("embed(", "jshtml(", "_animation(")):
            continue
        open_page(page, f"{site_url}/{name}.html")
        assert page.locator("div.animation img").count() > 0, (
            f"{name} makes an animation but the page shows none"
        )


def test_sidebar_lists_every_page_and_its_links_work(page: object, site_url: str) -> None:
    open_page(page, f"{site_url}/{PAGES[0]}.html")
    links = page.locator("nav.bd-docs-nav a.reference.internal")
    urls = links.evaluate_all("links => links.map(a => a.href)")  # absolute, resolved
    targets = {url.split("#")[0].removeprefix(f"{site_url}/").removesuffix(".html") for url in urls}
    missing = [p for p in PAGES[1:] if p not in targets]
    assert not missing, f"pages missing from the sidebar: {missing}"

    last = PAGES[-1]
    page.locator(f"nav.bd-docs-nav a.reference.internal[href$='{Path(last).name}.html']").click()
    page.wait_for_load_state("load")
    assert page.url.split("#")[0].endswith(f"{last}.html"), f"the sidebar link led to {page.url}"
    assert not page.errors, "\n".join(page.errors)


def test_next_and_previous_links_follow_the_table_of_contents(page: object, site_url: str) -> None:
    for current, following in itertools.pairwise(PAGES):
        open_page(page, f"{site_url}/{current}.html")
        page.locator("a.right-next").click()
        page.wait_for_load_state("load")
        assert page.url.split("#")[0].endswith(f"{following}.html"), (
            f"'next' on {current} led to {page.url}, expected {following}"
        )
        page.locator("a.left-prev").click()
        page.wait_for_load_state("load")
        assert page.url.split("#")[0].endswith(f"{current}.html"), (
            f"'previous' on {following} led to {page.url}, expected {current}"
        )
    assert not page.errors, "\n".join(page.errors)


def test_search_finds_a_chapter(page: object, site_url: str) -> None:
    open_page(page, f"{site_url}/search.html?q=pooling")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=30_000)
    hrefs = results.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert any("pooling" in href for href in hrefs), f"search for 'pooling' found {hrefs}"
    assert not page.errors, "\n".join(page.errors)
