"""Predicted customer value in the report: segment cards and the economics table, with and without the value family."""

from __future__ import annotations

import re

import pytest

import segwise
from segwise.report.build import render_report
from segwise.report.data import collect_report_data
from segwise.report.rundir import read_run_dir

from ..features.test_value_family import AS_OF, buying_log, first_purchase_day_only

VALUE_HEADINGS = ["Predicted CLV per customer (365 d)", "Predicted CLV in total (365 d)", "Share of predicted CLV",
                  "Median P(alive)", "Expected purchases (90 d)", "Expected purchases (365 d)"]


@pytest.fixture(scope="module")
def value_run(tmp_path_factory):
    """300 customers whose purchase histories the BG/NBD and Gamma-Gamma models fit."""
    result = segwise.segment(buying_log(), as_of=AS_OF, n_segments=3, random_state=0)
    path = tmp_path_factory.mktemp("value") / "run"
    result.save(path, store=False)
    return result, path


def test_cards_show_predicted_value_of_the_segment(value_run):
    result, path = value_run
    data = collect_report_data(read_run_dir(path), currency="$")
    frame = result.features.frame
    for card in data.cards:
        members = result.assignments.loc[result.assignments["segment_id"] == card["segment_id"], "customer_id"]
        clv = frame.loc[members, "clv_365d"]
        value = card["value"]
        # Compared as the report formats them (money: whole units from 100, else cents).
        expected_mean = f"${clv.mean():,.0f}" if clv.mean() >= 100 else f"${clv.mean():,.2f}"
        assert value["clv_mean"] == expected_mean
        assert value["clv_total"] == (f"${clv.sum():,.0f}" if clv.sum() >= 100 else f"${clv.sum():,.2f}")
        assert value["p_alive_median"] == f"{frame.loc[members, 'p_alive'].median() * 100:.1f}%"


def test_economics_table_has_the_value_columns(value_run):
    result, path = value_run
    data = collect_report_data(read_run_dir(path), currency="$")
    section = data.economics
    assert section["headings"][-len(VALUE_HEADINGS):] == VALUE_HEADINGS
    economics = result.run["economics"]
    share = section["headings"].index("Share of predicted CLV")
    assert [row["cells"][share] for row in section["rows"]] == [
        f"{s['share_clv'] * 100:.1f}%" for s in economics["segments"]]
    assert section["total"][share] == "100.0%"
    assert "clv_365d" in section["definitions"][section["headings"].index("Predicted CLV in total (365 d)")]


def test_rendered_report_shows_the_value_tiles(value_run):
    _, path = value_run
    html = render_report(path, currency="$")
    assert html.count("predicted CLV per customer (365 d)") == 3
    assert "Median P(alive)" in html and "median P(alive)" in html


def test_without_the_value_family_nothing_is_shown(tmp_path):
    # Ten repeat customers: too few for the models, so the family is left out with a note.
    population = segwise.generate_population(800, seed=11)
    result = segwise.segment(first_purchase_day_only(population.orders), n_segments=3, random_state=0)
    assert "clv_365d" not in result.features.frame.columns and "value" not in result.features.spec.families
    assert any("the value family is left out" in note for note in result.features.notes)
    result.save(tmp_path / "run", store=False)
    data = collect_report_data(read_run_dir(tmp_path / "run"))
    assert all(card["value"] is None for card in data.cards)
    assert not set(VALUE_HEADINGS) & set(data.economics["headings"])
    html = render_report(tmp_path / "run")
    assert not re.search(r"predicted CLV|P\(alive\)", html)
