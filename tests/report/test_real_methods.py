"""Reports of real runs of every method, opened in headless Chromium, with their method sections drawn.

Each method segments a tiny synthetic population (with a customer table, so
k-prototypes has categorical columns) and saves its run with its report; the report
is opened offline in the session's Chromium (tests/report/browser.py). Nothing here
is a hand-built payload: the sections come from the method's own run.json.
"""

from __future__ import annotations

import json

import pytest

import segwise

from .browser import open_report

N_CUSTOMERS = 250
SEED = 3
CORE_SECTIONS = ["section-header", "section-segments", "section-profile", "section-map", "section-distributions"]

#: Method -> (parameters keeping it small, its own report section and figures; None: none of its own).
METHODS = {
    "kmeans": ({}, None),
    "hierarchical": ({}, ("section-hierarchical", ["fig-dendrogram"])),
    "dbscan": ({}, ("section-density", ["fig-density"])),
    "hdbscan": ({}, ("section-density", ["fig-density"])),
    "gmm": ({}, ("section-mixture", ["fig-mixture-overlap", "fig-mixture-confidence"])),
    "som": ({"num_iteration": 2000}, ("section-som", ["fig-som-umatrix", "fig-som-nodes", "fig-som-planes"])),
    "kprototypes": ({}, None),
    "two_stage": ({"second_method": "hierarchical"}, None),
    "multiview": ({}, ("section-multiview", ["fig-multiview"])),
    "autoencoder": ({"epochs": 5}, ("section-autoencoder", ["fig-autoencoder"])),
    "auto": ({"n_bootstrap": 2, "candidates": ("kmeans", "gmm", "hierarchical")}, "chosen"),
}


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    pop = segwise.generate_population(N_CUSTOMERS, seed=SEED)
    root = tmp_path_factory.mktemp("real-methods")
    orders, customers = root / "orders.parquet", root / "customers.parquet"
    pop.orders.to_pandas().to_parquet(orders)
    pop.customers.to_pandas().to_parquet(customers)
    return root, orders, customers


@pytest.mark.parametrize("method", list(METHODS))
def test_the_report_of_a_real_run_draws_its_method_section(population, chromium, tmp_path, method):
    root, orders, customers = population
    params, own = METHODS[method]
    result = segwise.segment(str(orders), customers=str(customers), method=method, k_range=(2, 6),
                             method_params=params, random_state=SEED)
    out = tmp_path / "run"
    result.save(out, store=False)
    run = json.loads((out / "run.json").read_text())
    if own == "chosen":
        chosen = run["method_details"]["chosen"]
        own = METHODS[chosen][1]
    rendered = open_report(chromium, out / "report.html", tmp_path / "shot.png")
    assert rendered.console_errors == [] and rendered.network_requests == []
    assert set(CORE_SECTIONS) <= set(rendered.sections)
    method_sections = {"section-hierarchical", "section-density", "section-mixture", "section-som",
                       "section-multiview", "section-autoencoder"}
    expected = {own[0]} if own else set()
    assert set(rendered.sections) & method_sections == expected, rendered.sections
    for figure in (own[1] if own else []):
        assert figure in rendered.figures, (figure, sorted(rendered.figures))
    assert rendered.drawn == len(rendered.figures) > 0
    for fig_id, counts in rendered.figures.items():
        assert counts["svg"] >= 1 and counts["traces"] >= 1, (fig_id, counts)
    for segment in run["segments"]:
        assert segment["segment_name"] in rendered.text
    assert rendered.page_width <= rendered.viewport_width
