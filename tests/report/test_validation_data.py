"""Validation and tracking sections, from payloads in the shapes documented in `segwise.report.validation_data`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from segwise.report import validation_data
from segwise.report.data import collect_report_data
from segwise.report.rundir import read_run_dir

from . import payloads
from .conftest import variant


@pytest.fixture(scope="module")
def run(kmeans_run):
    return json.loads((kmeans_run.path / "run.json").read_text())


def test_stability_per_segment(run):
    payload = payloads.stability_payload(run)
    colours = {s: f"#00000{s}" for s in payloads.segment_ids(run)}
    names = {s["segment_id"]: s["segment_name"] for s in run["segments"]}
    section = validation_data.stability_section(payload, names, colours)
    assert [b["jaccard"] for b in section["bars"]] == list(payload["per_segment"].values())
    assert [b["unstable"] for b in section["bars"]] == [v < 0.6 for v in payload["per_segment"].values()]
    assert section["ari_mean"] == "0.87" and section["ari_ci"] == ["0.80", "0.93"] and section["refits"] == "20"
    assert validation_data.stability_section({"B": 20}, names, colours) is None


def test_drift(run):
    names = {s["segment_id"]: s["segment_name"] for s in run["segments"]}
    section = validation_data.drift_section(payloads.drift_payload(run), names, {})
    assert [f["column"] for f in section["features"]] == ["recency_days", "n_orders", "monetary_total"]
    assert section["retrain"] and section["reasons"] == ["recency_days shifted (PSI 0.310 > 0.25)"]
    assert [s["segment_id"] for s in section["shares"]] == sorted(names)
    assert (section["moderate"], section["significant"]) == (0.1, 0.25)


def test_transitions_of_the_latest_period_and_shares_over_time(run):
    payload = payloads.tracking_payload(run)
    a, b = run["segments"][0]["segment_name"], run["segments"][1]["segment_name"]
    section = validation_data.tracking_section(payload, _no_files(), {})
    matrix = section["matrix"]
    assert matrix["period"] == "2024-06-30 to 2024-09-30" and matrix["n_periods"] == 2
    assert matrix["rows"] == ["new", a, b] and matrix["cols"] == [a, b, "gone"]
    # new -> b 5; a -> a 6, b 2, gone 2; b -> a 4, b 8.
    assert matrix["share"] == [[0.0, 1.0, 0.0], [0.6, 0.2, 0.2], [pytest.approx(1 / 3, abs=1e-4),
                                                                 pytest.approx(2 / 3, abs=1e-4), 0.0]]
    assert matrix["stayed"] == f"{14 / 20 * 100:.1f}%"
    assert matrix["temporal_ari"] == "0.42"
    lines = {line["name"]: line for line in section["shares"]["lines"]}
    assert lines[a]["share"] == pytest.approx([10 / 30, 7 / 30, 10 / 30])
    assert section["shares"]["dates"] == ["2024-03-31", "2024-06-30", "2024-09-30"]


def test_tracking_tables_in_the_run_directory(kmeans_run, run, tmp_path):
    payload = payloads.tracking_payload(run)
    path = variant(kmeans_run.path, tmp_path / "run")
    pd.DataFrame(payload["transitions"]).to_parquet(path / "transitions.parquet")
    pd.DataFrame(payload["shares"]).assign(as_of=lambda f: pd.to_datetime(f["as_of"])).to_parquet(
        path / "shares.parquet")
    data = collect_report_data(read_run_dir(path))
    assert data.tracking["matrix"]["period"] == "2024-06-30 to 2024-09-30"
    assert data.tracking["shares"]["dates"] == ["2024-03-31", "2024-06-30", "2024-09-30"]


def test_economics_table(run):
    names = {s["segment_id"]: s["segment_name"] for s in run["segments"]}
    section = validation_data.economics_section(payloads.economics_payload(run), names, {}, "€")
    assert section["headings"] == ["Customers", "Share of customers", "Revenue", "Share of revenue", "Average order",
                                   "Orders per customer", "Active in the period"]
    first = section["rows"][0]
    assert first["name"] == run["segments"][0]["segment_name"]
    assert first["cells"][0] == f"{run['segments'][0]['customers']:,}"
    assert first["cells"][2:5] == ["€1,000", f"{run['segments'][0]['share_revenue'] * 100:.1f}%", "€52.50"]
    assert first["cells"][5:] == ["3.25", "50.0%"]
    assert section["total"][2] == f"€{2000 * len(run['segments']):,}"
    assert section["definitions"][-1] == "share of customers whose last purchase is at most 90 days before as_of"


def test_actionability_warnings(run):
    names = {s["segment_id"]: s["segment_name"] for s in run["segments"]}
    section = validation_data.actionability_section(payloads.actionability_payload(run), names, {})
    assert not section["actionable"]
    small, similar = section["flags"]
    assert small["title"] == "Too small to act on"
    assert [s["name"] for s in small["segments"]] == [run["segments"][-1]["segment_name"]]
    assert similar["title"] == "Too similar to tell apart" and len(similar["segments"]) == 2
    assert validation_data.actionability_section({"actionable": True, "flags": []}, names, {})["flags"] == []


def _no_files():
    class NoFiles:
        transitions = None
        shares = None

    return NoFiles()


def test_validation_measures_and_silhouette_per_segment(kmeans_run, run):
    payload = payloads.validation_payload(kmeans_run.path)
    names = {s["segment_id"]: s["segment_name"] for s in run["segments"]}
    colours = {s: f"#00000{s}" for s in names}
    section = validation_data.validation_section(payload, names, colours)
    silhouette, davies_bouldin, calinski_harabasz = section["measures"]
    low, high = payload["silhouette_ci"]
    assert silhouette["value"] == f"{payload['silhouette']:.2f}"
    assert silhouette["detail"] == f"95% interval {low:.2f} to {high:.2f}; {run['n_customers']:,} customers sampled"
    assert davies_bouldin["name"] == "Davies-Bouldin index" and davies_bouldin["better"] == "lower is better"
    assert calinski_harabasz["value"] == f"{payload['calinski_harabasz']:,.0f}"
    assert [(b["name"], b["colour"]) for b in section["bars"]] == [(names[s], colours[s]) for s in sorted(names)]
    assert [b["silhouette"] for b in section["bars"]] == [payload["per_segment_silhouette"][str(s)]
                                                          for s in sorted(names)]
    assert [b["sampled"] for b in section["bars"]] == [s["customers"] for s in sorted(run["segments"],
                                                                                   key=lambda s: s["segment_id"])]
    assert section["overall"] == payload["silhouette"]


def test_validation_with_likelihood_and_overlapping_segments():
    payload = {"silhouette": 0.12, "silhouette_ci": None, "silhouette_sample_size": 20_000,
               "per_segment_silhouette": {"0": 0.4, "1": -0.05, "2": None}, "per_segment_sampled": {"0": 9, "1": 7},
               "davies_bouldin": None, "calinski_harabasz": None, "bic": 12_345.678, "log_likelihood": -3.21}
    section = validation_data.validation_section(payload, {0: "A", 1: "B", 2: "C"}, {})
    assert [(m["name"], m["value"], m["detail"]) for m in section["measures"]] == [
        ("Silhouette", "0.12", "20,000 customers sampled"), ("BIC", "12,346", ""),
        ("Log-likelihood per customer", "-3.21", ""),
    ]
    assert [b["name"] for b in section["bars"]] == ["A", "B"]  # C had no sampled customer
    assert section["overlapping"] == ["B"]
    assert validation_data.validation_section(None, {}, {}) is None
    assert validation_data.validation_section({"silhouette": None, "per_segment_silhouette": {"0": None}}, {}, {}) is None


def test_alignment_kept_new_and_vanished(run):
    payload = payloads.alignment_payload(run)
    names = {s["segment_id"]: s["segment_name"] for s in run["segments"]}
    section = validation_data.alignment_section(payload, names, {})
    first, last = section["rows"][0], section["rows"][-1]
    assert (first["status"], first["previous"]) == ("kept", f"{names[first['segment_id']]} ({first['segment_id']})")
    assert (first["distance"], first["limit"]) == ("0.100", "1.50")
    assert (last["status"], last["previous"]) == ("new", "none (nearest: Lapsed bargain hunters, too far)")
    assert (section["n_kept"], section["n_new"]) == (len(names) - 1, 1)
    assert section["vanished"] == ["Lapsed bargain hunters (9)"]
    assert section["previous_model_id"] == "model-2024-q2"
    assert validation_data.alignment_section(None, names, {}) is None
