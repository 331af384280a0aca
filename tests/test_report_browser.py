"""The report in a real headless browser: Debian's chromium driven by Playwright.

Opens ``index.html`` from disk (``file://``), checks that it loads, that every image
loads, that there are no console errors, failed requests or page errors, follows
every claim link and checks the same there. At 1280 px: no page scrolls sideways,
every figure is shown at most at its natural width (never blown up; its text never
smaller than drawn unless the figure is wider than the page), with every collapsed
section opened too, and every claim page is under 6,000 px tall. A screenshot of the
index and of every claim page is kept in ``test-artifacts/report/`` (or in the folder
named by ``ELULAB_SCREENSHOTS``); the folder is printed.

Needs ``/usr/bin/chromium`` (``.ci/run`` installs it). Without it the test is
skipped locally, but fails when the ``CI`` environment variable is set, so CI never
skips it silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from elulab.lab.store import Store
from elulab.report import Reference, build_reference, build_report
from test_report import make_reference_store, make_store

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
WIDTH = 1280
MAX_PAGE_PX = 6000

pytestmark = pytest.mark.browser

_IMAGES_JS = """() => Array.from(document.images).map(img => ({
    src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth }))"""
_SIZES_JS = """() => Array.from(document.images).map(img => ({
    src: img.getAttribute('src'), natural: img.naturalWidth,
    shown: img.getBoundingClientRect().width }))"""
_OVERFLOW_JS = """() => ({ scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth })"""
_HEIGHT_JS = "() => document.documentElement.scrollHeight"
_OPEN_ALL_JS = "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"


def _shots_dir() -> Path:
    d = Path(os.environ.get("ELULAB_SCREENSHOTS") or ARTIFACTS / "report")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _check_layout(page, url: str) -> int:
    """No sideways scrolling, figures at most at their natural width; the page height."""
    box = page.evaluate(_OVERFLOW_JS)
    assert box["scroll"] <= box["client"], f"{url}: {box['scroll']} px wide at {WIDTH} px"
    height = page.evaluate(_HEIGHT_JS)
    page.evaluate(_OPEN_ALL_JS)  # the collapsed figures and tables count too
    page.wait_for_load_state("load")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    for img in page.evaluate(_SIZES_JS):
        assert img["natural"] > 0, f"{url}: {img['src']} did not load"
        assert img["shown"] <= img["natural"] + 0.5, (
            f"{url}: {img['src']} shown {img['shown']:.0f} px wide, drawn {img['natural']} px"
        )
    box = page.evaluate(_OVERFLOW_JS)
    assert box["scroll"] <= box["client"], f"{url}: opened sections scroll sideways"
    return height


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
    index = build_report(
        tmp_path / "results" / "elulab.sqlite", tmp_path / "site", reference=Reference()
    )
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
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
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site", reference=Reference())
    page = browser.new_page()
    watch = _Watch(page)
    _check_page(page, watch, index.as_uri())
    assert page.locator("#empty-store").is_visible()
    assert page.locator("#ledger .badge-unmeasured").count() == 11
    page.close()


def test_claim_pages_at_1280_px_with_a_reference(browser, tmp_path):
    """Every page at 1280 px: no sideways scrolling, figures never blown up, claim pages
    under 6,000 px; this run beside the reference; one screenshot per page."""
    make_store(tmp_path / "s.sqlite").close()
    ref = build_reference(make_reference_store(tmp_path / "ref.sqlite"))
    index = build_report(tmp_path / "s.sqlite", tmp_path / "site", reference=ref)
    shots = _shots_dir()
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    watch = _Watch(page)
    heights: dict[str, int] = {}
    for html in [index, *sorted(index.parent.glob("claim-*.html"))]:
        _check_page(page, watch, html.as_uri())
        page.screenshot(path=str(shots / f"{html.stem}.png"), full_page=True)
        heights[html.stem] = _check_layout(page, html.as_uri())
        assert not watch.take()
    print(f"\nscreenshots of {len(heights)} report pages at {WIDTH} px: {shots}")
    tall = {k: h for k, h in heights.items() if k != "index" and h >= MAX_PAGE_PX}
    assert not tall, f"claim pages of {MAX_PAGE_PX} px or more at {WIDTH} px: {tall}"
    assert (shots / "claim-C2.png").stat().st_size > 10_000
    # the ledger fits the page: no column hidden behind a scroll bar of its own
    page.goto(index.as_uri())
    inner = page.evaluate(
        "() => { const d = document.getElementById('ledger').parentElement;"
        " return [d.scrollWidth, d.clientWidth]; }"
    )
    assert inner[0] <= inner[1], f"the ledger table scrolls sideways: {inner}"
    # this run beside the reference, side by side on one row
    page.goto((index.parent / "claim-C2.html").as_uri())
    assert page.locator("#quick-banner").is_visible()
    run = page.locator(".verdict-pair .this-run").first.bounding_box()
    ref_box = page.locator(".verdict-pair .reference").first.bounding_box()
    assert run and ref_box and abs(run["y"] - ref_box["y"]) < 1 and ref_box["x"] > run["x"]
    assert "supported (small)" in page.locator(".verdict-pair .reference").first.inner_text()
    # numbers collapsed by default: the metrics table is not visible until opened
    metrics = page.locator("details.metrics").first
    assert not metrics.locator("table").is_visible()
    metrics.locator("summary").click()
    assert metrics.locator("table").is_visible()
    page.close()
