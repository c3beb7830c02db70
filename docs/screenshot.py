"""Take the README's screenshot of a report with headless Chromium.

    segwise demo --out segwise-demo
    .venv/bin/python docs/screenshot.py segwise-demo/report.html docs/report-screenshot.png

Opens the report in Debian's Chromium (``/usr/bin/chromium``, driven by Playwright;
needs the ``dev`` extra), waits until every figure is drawn and captures the top
of the page at laptop width: the header and the segment cards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(args.report.resolve().as_uri())
            page.wait_for_selector("body[data-figures-drawn]", state="attached", timeout=120_000)
            page.screenshot(path=str(args.png), clip={"x": 0, "y": 0, "width": args.width, "height": args.height})
        finally:
            browser.close()


if __name__ == "__main__":
    main()
