"""Opening reports in the system's headless Chromium, driven by Playwright.

Playwright drives Debian's ``/usr/bin/chromium`` (installed by ``.ci/run``); it never
downloads a browser. One browser per test session (`chromium` fixture, registered in
tests/conftest.py); every report opens in a fresh offline context, so a report that
needed the network would fail to draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Debian's chromium, headless, as root in a container: no sandbox, no GPU, no
#: background requests.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="session")
def chromium():
    """A headless Chromium shared by the whole test session."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class RenderedReport:
    """What a report looked like in the browser."""

    console_errors: list[str]
    network_requests: list[str]
    sections: list[str]
    figures: dict[str, dict[str, int]]
    drawn: int
    page_width: int
    viewport_width: int
    screenshot: Path
    text: str
    traces: dict[str, list[dict]] = field(default_factory=dict)
    hover: dict[str, str] = field(default_factory=dict)


_DOM_SUMMARY = """() => {
  const figures = {};
  for (const el of document.querySelectorAll('[data-figure]')) {
    figures[el.id] = {
      svg: el.querySelectorAll('svg.main-svg').length,
      traces: el.querySelectorAll('g.trace, g.hm, g.heatmaplayer image').length,
      points: el.querySelectorAll('g.trace path.point').length,
      lines: el.querySelectorAll('g.trace path.js-line').length,
      boxes: el.querySelectorAll('g.trace.boxes path.box').length,
      bars: el.querySelectorAll('g.trace.bars g.point').length,
      heatmap_images: el.querySelectorAll('g.hm image').length,
      annotations: el.querySelectorAll('g.annotation').length,
      shapes: el.querySelectorAll('g.layer-above g.shapelayer path, g.layer-below g.shapelayer path').length,
    };
  }
  const traces = {};
  for (const el of document.querySelectorAll('[data-figure]')) {
    traces[el.id] = (el.data || []).map(t => ({name: t.name || '', type: t.type || '',
      color: t.marker && typeof t.marker.color === 'string' ? t.marker.color : null}));
  }
  return {
    sections: Array.from(document.querySelectorAll('section[id], header[id]')).map(s => s.id),
    figures: figures,
    traces: traces,
    drawn: Number(document.body.getAttribute('data-figures-drawn')),
    pageWidth: document.documentElement.scrollWidth,
    viewportWidth: window.innerWidth,
    text: document.body.innerText,
  };
}"""


_HOVER = """([id, curve, point]) => {
  const el = document.getElementById(id);
  Plotly.Fx.hover(el, [{curveNumber: curve, pointNumber: point}]);
  const label = el.querySelector('g.hoverlayer g.hovertext');
  return label ? label.textContent : '';
}"""


def open_report(browser, path: Path, screenshot: Path, *, viewport: dict | None = None,
                hover: dict[str, tuple[int, int]] | None = None) -> RenderedReport:
    """Open ``path`` offline, wait until every figure is drawn, read the DOM, take a full-page screenshot.

    ``hover`` maps figure ids to ``(trace, point)``: the hover label plotly shows
    for that point is returned in `RenderedReport.hover`.
    """
    context = browser.new_context(viewport=viewport or LAPTOP, offline=True)
    errors: list[str] = []
    requests: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
        page.on("request", lambda request: requests.append(request.url)
                if not request.url.startswith(("file:", "data:", "blob:")) else None)
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_selector("body[data-figures-drawn]", state="attached", timeout=120_000)
        summary = page.evaluate(_DOM_SUMMARY)
        page.screenshot(path=str(screenshot), full_page=True)
        labels = {fig_id: page.evaluate(_HOVER, [fig_id, *where]) for fig_id, where in (hover or {}).items()}
    finally:
        context.close()
    return RenderedReport(
        console_errors=errors, network_requests=requests, sections=summary["sections"],
        figures=summary["figures"], drawn=summary["drawn"], page_width=summary["pageWidth"],
        viewport_width=summary["viewportWidth"], screenshot=screenshot, text=summary["text"],
        traces=summary["traces"], hover=labels,
    )


#: Every section a report can have, in page order.
PAGE_ORDER = [
    "section-header", "section-segments", "section-actionability", "section-economics", "section-profile",
    "section-map", "section-distributions", "section-hierarchical", "section-density", "section-mixture",
    "section-som", "section-multiview", "section-autoencoder", "section-validation", "section-stability",
    "section-drift", "section-alignment", "section-tracking", "section-selection",
]
#: Sections that a run.json key of validation adds when it holds data (issue 4 writes them for every run).
SECTION_OF_KEY = {"actionability": "section-actionability", "economics": "section-economics",
                  "validation": "section-validation", "stability": "section-stability", "drift": "section-drift",
                  "alignment": "section-alignment"}


def expected_with_run(run: dict, sections: list[str], figures: list[str]) -> tuple[list[str], list[str]]:
    """``sections`` and ``figures`` plus those the run's validation keys add, sections in page order."""
    wanted = set(sections) | {section for key, section in SECTION_OF_KEY.items() if run.get(key)}
    figures = set(figures)
    validation = run.get("validation") or {}
    if any(v is not None for v in (validation.get("per_segment_silhouette") or {}).values()):
        figures.add("fig-validation-silhouette")
    if (run.get("stability") or {}).get("per_segment"):
        figures.add("fig-stability")
    return [s for s in PAGE_ORDER if s in wanted], sorted(figures)


def assert_drawn(rendered: RenderedReport, *, sections: list[str], figures: list[str],
                 run: dict | None = None) -> None:
    """No console errors, no network, exactly these sections and figures, every figure drawn as SVG.

    With ``run`` (its run.json), the sections and figures its validation keys add
    are expected too.
    """
    if run is not None:
        sections, figures = expected_with_run(run, sections, figures)
    assert rendered.console_errors == []
    assert rendered.network_requests == []
    assert rendered.sections == sections
    assert sorted(rendered.figures) == sorted(figures)
    assert rendered.drawn == len(figures)
    for fig_id, counts in rendered.figures.items():
        assert counts["svg"] >= 1, fig_id
        assert counts["traces"] >= 1, (fig_id, counts)
    assert rendered.page_width <= rendered.viewport_width, "the page scrolls sideways at laptop width"
    assert rendered.screenshot.stat().st_size > 10_000
    assert rendered.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
