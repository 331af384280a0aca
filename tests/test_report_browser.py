"""The report in a real headless browser: Debian's chromium driven by Playwright.

Opens ``index.html`` from disk (``file://``), checks that it loads, that every image
loads, that there are no console errors, failed requests or page errors, follows
every claim link and checks the same there, and keeps a screenshot of the index in
``test-artifacts/report-index.png``.

Needs ``/usr/bin/chromium`` (``.ci/run`` installs it). Without it the test is
skipped locally, but fails when the ``CI`` environment variable is set, so CI never
skips it silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elulab.lab.store import Store
from elulab.report import build_report
from test_report import make_store

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"

pytestmark = pytest.mark.browser

_IMAGES_JS = """() => Array.from(document.images).map(img => ({
    src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth }))"""


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    msg = f"{CHROMIUM} is missing (install it with: apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(msg + "; CI must run the browser test")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


class _Watch:
    """Console errors, page errors and failed requests of one page."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: self.problems.append(f"request failed: {r.url} ({r.failure})"),
        )

    def take(self) -> list[str]:
        out, self.problems = self.problems, []
        return out


def _check_page(page, watch: _Watch, url: str, min_images: int = 0) -> None:
    response = page.goto(url, wait_until="load")
    assert response is None or response.ok, f"{url} did not load"
    assert page.evaluate("document.readyState") == "complete"
    assert page.title(), f"{url} has no title"
    images = page.evaluate(_IMAGES_JS)
    assert len(images) >= min_images, f"{url}: {len(images)} images, expected >= {min_images}"
    broken = [i["src"] for i in images if not i["complete"] or i["width"] <= 0]
    assert not broken, f"{url}: images that did not load: {broken}"
    problems = watch.take()
    assert not problems, f"{url}: {problems}"


def test_report_in_headless_chromium(browser, tmp_path):
    make_store(tmp_path / "results" / "elulab.sqlite").close()
    index = build_report(tmp_path / "results" / "elulab.sqlite", tmp_path / "site")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = _Watch(page)
    _check_page(page, watch, index.as_uri())
    assert page.locator("#ledger tbody tr").count() >= 11
    assert page.locator(".badge-supported").count() >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-index.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    links = page.eval_on_selector_all("a.claim-link", "els => els.map(e => e.href)")
    assert len(links) == 12  # C1..C11 and Z9, an id the ledger lacks
    for url in links:
        _check_page(page, watch, url, min_images=1 if url.endswith("claim-C2.html") else 0)
        assert page.locator("h1 .cid").count() == 1
    # following a link by clicking, and back
    page.goto(index.as_uri())
    page.click("a.claim-link >> text=RNN gradient flow")
    page.wait_for_load_state("load")
    assert page.url.endswith("claim-C2.html")
    assert page.locator("figure img").count() == 2  # the hook's figure and a drawn series
    page.click("text=← All claims")
    page.wait_for_load_state("load")
    assert page.url.endswith("index.html")
    assert not watch.take()
    page.close()


def test_empty_report_in_headless_chromium(browser, tmp_path):
    Store(tmp_path / "s.sqlite").close()
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site")
    page = browser.new_page()
    watch = _Watch(page)
    _check_page(page, watch, index.as_uri())
    assert page.locator("#empty-store").is_visible()
    assert page.locator("#ledger .badge-unmeasured").count() == 11
    page.close()
