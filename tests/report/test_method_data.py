"""Sections of method details, from payloads in the shapes documented in `segwise.report.method_data`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.cluster.hierarchy import dendrogram, fcluster

from segwise.report import method_data
from segwise.report.data import collect_report_data
from segwise.report.palette import OUTLIER_COLOUR
from segwise.report.rundir import read_run_dir

from . import payloads
from .conftest import variant


@pytest.fixture(scope="module")
def run(kmeans_run):
    return json.loads((kmeans_run.path / "run.json").read_text())


@pytest.fixture(scope="module")
def files(kmeans_run):
    return read_run_dir(kmeans_run.path)


def test_a_kmeans_run_has_only_the_sections_every_run_has(files):
    data = collect_report_data(files)
    assert data.methods == {}
    # Every run measures its quality and economics; the rest needs an option (--stability,
    # --align-to) or another command (segwise update, segwise track).
    assert data.validation is not None and data.economics is not None and data.actionability is not None
    assert (data.stability, data.drift, data.alignment, data.tracking) == (None,) * 4


# --------------------------------------------------------------------------- hierarchical


def test_dendrogram_is_scipys_truncated_dendrogram():
    tree, Z = payloads.dendrogram_payload(n_points=80, n_merges=12)
    section = method_data.hierarchical_section({"dendrogram": tree}, {"n_segments": 4})
    reference = dendrogram(Z, truncate_mode="lastp", p=13, no_plot=True)
    assert section["icoord"] == reference["icoord"]
    assert section["dcoord"] == reference["dcoord"]
    assert section["leaf_labels"] == [label.strip("()") for label in reference["ivl"]]
    assert section["shown_leaves"] == 13 and section["n_leaves"] == 80


@pytest.mark.parametrize("k", [2, 3, 4, 7, 12])
def test_cut_heights_give_k_segments(k):
    tree, Z = payloads.dendrogram_payload(n_points=80, n_merges=12)
    section = method_data.hierarchical_section({"dendrogram": tree, "levels": [2, {"n_segments": k}]},
                                               {"n_segments": 4})
    cuts = {c["k"]: c for c in section["cuts"]}
    assert set(cuts) == {2, k, 4}
    assert cuts[4]["chosen"] and not cuts[2]["chosen"]
    assert len(np.unique(fcluster(Z, t=cuts[k]["height"], criterion="distance"))) == k


def test_given_cut_heights_win():
    tree, _ = payloads.dendrogram_payload()
    section = method_data.hierarchical_section({"dendrogram": tree, "cut_heights": {"3": 12.5}}, {"n_segments": 3})
    assert section["cuts"] == [{"k": 3, "height": 12.5, "chosen": True}]


def test_no_dendrogram_no_section():
    assert method_data.hierarchical_section({}, {"n_segments": 3}) is None
    assert method_data.hierarchical_section({"dendrogram": {"n_leaves": 4, "merges": []}}, {}) is None


# --------------------------------------------------------------------------- density


def test_outliers_and_micro_segments_with_their_revenue(kmeans_run, run, tmp_path):
    updates, names = payloads.density_run(run)
    files = read_run_dir(variant(kmeans_run.path, tmp_path / "run", run=updates, names=names))
    data = collect_report_data(files)
    section = data.methods["density"]
    outlier_id = updates["method_details"]["outliers"]["segment_id"]
    micro_id = updates["method_details"]["micro_segments"][0]["segment_id"]
    micro, outliers = section["rows"]
    assert (micro["kind"], micro["segment_id"]) == ("Micro-segment", micro_id)
    assert (outliers["kind"], outliers["name"], outliers["colour"]) == ("Outliers", "Outliers", OUTLIER_COLOUR)
    profile = files.profiles[micro_id]
    assert micro["share_revenue"] == f"{profile.share_revenue * 100:.2f}%"
    assert micro["revenue_per_share"] == f"{profile.share_revenue / profile.share_customers:.2g}x"
    assert section["micro_share"] == "5.0%" and section["n_micro"] == 1
    assert data.colours[outlier_id] == OUTLIER_COLOUR
    assert data.selection is None


# --------------------------------------------------------------------------- mixture


def test_multi_segment_customers_and_confidence(kmeans_run, run, tmp_path):
    files = read_run_dir(variant(kmeans_run.path, tmp_path / "run", run=payloads.mixture_run(run)))
    data = collect_report_data(files)
    section = data.methods["mixture"]
    ids = payloads.segment_ids(run)
    overlap = np.array(section["overlap"])
    assert np.array_equal(overlap, overlap.T)
    assert overlap[0, 1] == 40 and overlap[1, 2] == 17 and overlap.sum() == 2 * (40 + 17)
    assert section["customers"] == "57" and section["threshold"] == "30%"
    assert section["mean_max_probability"] == "91.0%"
    sizes = files.assignments["segment_id"].value_counts()
    assert [sum(h["counts"]) for h in section["histograms"]] == [int(sizes[i]) for i in ids]
    bic = next(p for p in data.selection["panels"] if p["metric"] == "bic")
    assert [s["group"] for s in bic["series"]] == ["full", "diag"]


# --------------------------------------------------------------------------- SOM, multi-view, autoencoder


def test_som_grids_and_component_planes(run):
    details = payloads.som_details(run)
    section = method_data.som_section(details, run, {s: "#000000" for s in payloads.segment_ids(run)})
    assert section["shape"] == [4, 6]
    assert section["u_matrix"] == details["u_matrix"]
    expected = run["prepared_columns"][: method_data.MAX_COMPONENT_PLANES]
    assert [p["feature"] for p in section["planes"]] == expected
    assert section["n_planes"] == len(run["prepared_columns"])
    assert section["nodes"]["segment"] == sum(details["node_segments"], [])
    assert section["nodes"]["hits"] == [float(h) for h in sum(details["hits"], [])]
    assert section["topographic_error"] == "3.1%"


def test_som_planes_by_name():
    section = method_data.som_section({"u_matrix": [[0.1, 0.2]], "component_planes": {"n_orders": [[1.0, 2.0]]}},
                                      {}, {})
    assert [(p["feature"], p["label"], p["grid"]) for p in section["planes"]] == [("n_orders", "orders", [[1.0, 2.0]])]
    assert section["nodes"] is None


def test_multiview_crosstab():
    section = method_data.multiview_section(payloads.multiview_details(), {0: "A", 1: "B", 2: "C", 3: "D"})
    matrix = section["matrix"]
    assert matrix["rows"] == ["High value", "Low value"]
    assert matrix["cols"] == ["Web first", "Store first", "App first"]
    assert matrix["counts"] == [[300, 150, 0], [600, 0, 450]]
    assert [c["parts"] for c in section["cells"]][0] == ["Low value", "Web first"]
    assert section["cells"][0]["segment"] == "C" and section["cells"][0]["share"] == "40.0%"


def test_autoencoder_loss_curve():
    section = method_data.autoencoder_section({"loss_curve": [1.0, 0.5, 0.25]})
    assert section == {"epochs": [1, 2, 3], "loss": [1.0, 0.5, 0.25], "final": "0.250"}
    assert method_data.autoencoder_section({}) is None


def test_details_of_a_chosen_method_are_read_too():
    details = method_data.method_details({"method_details": {"comparison": [], "chosen_details": {"loss_curve": [1]}}})
    assert details == {"loss_curve": [1], "comparison": []}
