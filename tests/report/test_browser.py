"""Reports opened in real headless Chromium: drawn, complete, offline, readable at laptop width.

One report per kind of run: a real k-means run, and variants carrying the
method_details of hierarchical, DBSCAN and Gaussian-mixture runs, and one with
every other optional section (SOM, multi-view, autoencoder, validation,
stability, drift, alignment, tracking, economics, actionability, playbook), in the
shapes documented in `segwise.report.method_data` and
`segwise.report.validation_data`.
"""

from __future__ import annotations

import json
import re

import pytest

from segwise.report import MAX_REPORT_BYTES, build_report
from segwise.report.palette import OUTLIER_COLOUR

from . import payloads
from .browser import assert_drawn, expected_with_run, open_report
from .conftest import variant

CORE_SECTIONS = ["section-header", "section-segments", "section-profile", "section-map", "section-distributions"]
DISTRIBUTIONS = [f"fig-distribution-{c}" for c in ("monetary_total", "n_orders", "recency_days", "monetary_avg",
                                                   "tenure_days")]
SELECTION = [f"fig-selection-{m}" for m in ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz")]
CORE_FIGURES = ["fig-heatmap", "fig-map", *DISTRIBUTIONS]


@pytest.fixture(scope="module")
def run(kmeans_run):
    return json.loads((kmeans_run.path / "run.json").read_text())


def _build(path, tmp_path, chromium, hover=None, **kwargs):
    report = build_report(path, **kwargs)
    rendered = open_report(chromium, report.path, tmp_path / "screenshot.png", hover=hover)
    return report, rendered, report.path.read_text(encoding="utf-8")


def test_kmeans_report(kmeans_run, run, chromium, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run")
    report, rendered, html = _build(path, tmp_path, chromium, currency="€", hover={"fig-map": (0, 0)})
    assert_drawn(rendered, sections=CORE_SECTIONS + ["section-selection"], figures=CORE_FIGURES + SELECTION,
                 run=run)
    assert report.sections == rendered.sections
    assert report.size_bytes < MAX_REPORT_BYTES
    # Every customer of this small run is on the map, one SVG point each, one trace (and colour) per segment.
    assert rendered.figures["fig-map"]["points"] == run["n_customers"]
    names = [s["segment_name"] for s in run["segments"]]
    assert [t["name"] for t in rendered.traces["fig-map"]] == names
    # Hovering a customer shows the segment and its key numbers, formatted (money with the currency).
    trace = kmeans_run.result.assignments.query(f"segment_id == {run['segments'][0]['segment_id']}")
    first = kmeans_run.result.features.frame.loc[trace["customer_id"].iloc[0]]
    label = rendered.hover["fig-map"]
    assert label.startswith(names[0])
    assert f"days since last purchase: {first['recency_days']:,.0f}" in label
    assert f"orders: {first['n_orders']:,.0f}" in label
    assert f"total spend: €{first['monetary_total']:,.2f}" in label
    assert rendered.figures["fig-distribution-recency_days"]["boxes"] == len(names)
    assert rendered.figures["fig-heatmap"]["heatmap_images"] == 1
    assert rendered.figures["fig-selection-inertia"]["annotations"] >= 1  # the knee
    # The page says what the reader needs, with numbers for people.
    for segment in run["segments"]:
        assert segment["segment_name"] in rendered.text
        assert f"{segment['customers']:,}" in rendered.text
    assert f"{run['selection']['chosen']} segments: {run['selection']['reason']}" in rendered.text
    assert "Data cleaning" in rendered.text and "€" in rendered.text
    # plotly.js once, no external resources.
    assert len(re.findall(r"\* plotly\.js v\d", html)) == 1
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=\"?https?:", html)


@pytest.mark.parametrize("width", [1280, 1440])
def test_laptop_widths_do_not_scroll_sideways(kmeans_run, chromium, tmp_path, width):
    report = build_report(kmeans_run.path, tmp_path / "report.html")
    rendered = open_report(chromium, report.path, tmp_path / "shot.png", viewport={"width": width, "height": 800})
    assert rendered.console_errors == []
    assert rendered.page_width <= width


def test_hierarchical_report(kmeans_run, run, chromium, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run", run=payloads.hierarchical_run(run))
    _, rendered, _ = _build(path, tmp_path, chromium)
    assert_drawn(rendered, sections=CORE_SECTIONS + ["section-hierarchical", "section-selection"],
                 figures=CORE_FIGURES + SELECTION + ["fig-dendrogram"], run=run)
    assert rendered.figures["fig-dendrogram"]["lines"] == 12  # one U per merge shown
    assert rendered.figures["fig-dendrogram"]["shapes"] == 2  # cuts at 3 and at the run's k
    assert f"{run['n_segments']} segments" in rendered.text and "hierarchical clustering" in rendered.text


def test_dbscan_report(kmeans_run, run, chromium, tmp_path):
    updates, names = payloads.density_run(run)
    path = variant(kmeans_run.path, tmp_path / "run", run=updates, names=names)
    _, rendered, _ = _build(path, tmp_path, chromium)
    assert_drawn(rendered, sections=CORE_SECTIONS + ["section-density"], figures=CORE_FIGURES + ["fig-density"],
                 run=run)
    outliers = next(t for t in rendered.traces["fig-map"] if t["name"] == "Outliers")
    assert outliers["color"] == OUTLIER_COLOUR
    assert rendered.figures["fig-density"]["bars"] == 4  # 2 groups x (customers, revenue)
    assert "Micro-segment" in rendered.text and "DBSCAN" in rendered.text


def test_gmm_report(kmeans_run, run, chromium, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run", run=payloads.mixture_run(run))
    _, rendered, _ = _build(path, tmp_path, chromium)
    assert_drawn(rendered, sections=CORE_SECTIONS + ["section-mixture", "section-selection"],
                 figures=CORE_FIGURES + ["fig-mixture-overlap", "fig-mixture-confidence", "fig-selection-silhouette",
                                         "fig-selection-bic"], run=run)
    assert "57 customers (" in rendered.text and "Gaussian mixture" in rendered.text


def test_every_optional_section(kmeans_run, run, chromium, tmp_path):
    updates = payloads.everything_run(run, kmeans_run.path)
    path = variant(kmeans_run.path, tmp_path / "run", run=updates, playbook=payloads.playbook_payload(run))
    _, rendered, html = _build(path, tmp_path, chromium)
    sections = [
        "section-header", "section-segments", "section-actionability", "section-economics", "section-profile",
        "section-map", "section-distributions", "section-som", "section-multiview", "section-autoencoder",
        "section-validation", "section-stability", "section-drift", "section-alignment", "section-tracking",
        "section-selection",
    ]
    figures = CORE_FIGURES + SELECTION + [
        "fig-selection-stability", "fig-som-umatrix", "fig-som-nodes", "fig-som-planes", "fig-multiview",
        "fig-autoencoder", "fig-validation-silhouette", "fig-stability", "fig-drift-features", "fig-drift-shares",
        "fig-transitions", "fig-shares",
    ]
    assert_drawn(rendered, sections=sections, figures=figures)
    # What the tests of plain runs expect from run.json's validation keys is what the report shows for them.
    implied_sections, implied_figures = expected_with_run({**run, **updates}, [], [])
    assert implied_sections == ["section-actionability", "section-economics", "section-validation",
                                "section-stability", "section-drift", "section-alignment"]
    assert set(implied_figures) == {"fig-validation-silhouette", "fig-stability"} <= set(rendered.figures)
    text = rendered.text
    assert "Retraining is recommended" in text and "Too small to act on" in text
    assert "playbook: vip club" in text.lower() and "Personal call" in text
    # Text from files is escaped, never markup.
    assert "Win-back voucher <10%>" in text and "Win-back voucher &lt;10%&gt;" in html
    assert rendered.figures["fig-som-planes"]["heatmap_images"] == min(12, len(run["prepared_columns"]))
    assert rendered.figures["fig-shares"]["lines"] == 2
    assert rendered.figures["fig-validation-silhouette"]["bars"] == len(run["segments"])
    assert "Silhouette" in text and "Davies-Bouldin index" in text
    assert "vanished: Lapsed bargain hunters (9)" in text and "none (nearest: Lapsed bargain hunters, too far)" in text
