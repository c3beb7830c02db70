"""The report's sections computed from a real k-means run (no browser)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

from segwise.errors import InputError
from segwise.report.data import (
    MIN_POINTS_PER_SEGMENT, collect_report_data, heatmap_section, selection_section, stratified_sample,
)
from segwise.report.palette import OUTLIER_COLOUR, SEGMENT_COLOURS, segment_colours
from segwise.report.rundir import read_run_dir

from .conftest import variant


@pytest.fixture(scope="module")
def files(kmeans_run):
    return read_run_dir(kmeans_run.path)


@pytest.fixture(scope="module")
def data(files):
    return collect_report_data(files, currency="€")


# --------------------------------------------------------------------------- sampling


def test_stratified_sample_keeps_small_segments_and_the_budget():
    labels = np.repeat([0, 1, 2], [50_000, 9_950, 50])
    rows = stratified_sample(labels, 2_000, random_state=0)
    assert len(rows) == 2_000
    assert len(np.unique(rows)) == 2_000 and np.all(np.diff(rows) > 0)
    counts = np.bincount(labels[rows], minlength=3)
    assert counts[2] == 50  # smaller than the floor: all of it
    assert counts[1] >= MIN_POINTS_PER_SEGMENT
    # Beyond the floor, the budget is shared in proportion to what is left of each segment.
    floor = MIN_POINTS_PER_SEGMENT
    assert (counts[0] - floor) / (counts[1] - floor) == pytest.approx((50_000 - floor) / (9_950 - floor), rel=0.01)


def test_stratified_sample_is_seeded_and_takes_everyone_when_small():
    labels = np.random.default_rng(1).integers(0, 5, 30_000)
    assert np.array_equal(stratified_sample(labels, 1_000, 7), stratified_sample(labels, 1_000, 7))
    assert not np.array_equal(stratified_sample(labels, 1_000, 7), stratified_sample(labels, 1_000, 8))
    assert np.array_equal(stratified_sample(labels[:900], 1_000, 7), np.arange(900))


def test_stratified_sample_with_many_segments_shares_the_floor():
    labels = np.repeat(np.arange(40), 100)
    rows = stratified_sample(labels, 1_000, 0)
    assert len(rows) == 1_000
    assert set(np.bincount(labels[rows])) == {25}


# --------------------------------------------------------------------------- colours


def test_segment_colours_follow_ids_and_outliers_are_grey():
    colours = segment_colours([(2, "Outliers"), (0, "A"), (1, "B"), (3, "C")])
    assert colours == {0: SEGMENT_COLOURS[0], 1: SEGMENT_COLOURS[1], 2: OUTLIER_COLOUR, 3: SEGMENT_COLOURS[2]}


def test_every_segment_has_one_colour_everywhere(data):
    colours = data.colours
    assert len(set(colours.values())) == len(colours)
    assert [c["colour"] for c in data.cards] == [colours[c["segment_id"]] for c in data.cards]
    assert all(t["colour"] == colours[t["segment_id"]] for t in data.map["traces"])
    for dist in data.distributions:
        assert all(b["colour"] == colours[b["segment_id"]] for b in dist["boxes"])


# --------------------------------------------------------------------------- header and cards


def test_header_states_the_data_and_the_run(files, data):
    facts = {f["label"]: f["value"] for f in data.header["facts"]}
    run = files.run
    assert facts["As of"] == run["as_of"]
    assert facts["Customers"] == f"{run['n_customers']:,}"
    assert facts["Orders"] == f"{int(files.features['n_orders'].sum()):,}"
    assert facts["Method"] == "k-means"
    assert facts["Segments"] == str(run["n_segments"])
    first = run["input"]["transactions"]["first_timestamp"][:10]
    last = run["input"]["transactions"]["last_timestamp"][:10]
    assert facts["Period covered"].startswith(f"{first} to {last} (")
    assert facts["Revenue (net)"].startswith("€")
    cleaning = {c["rule"]: c["rows"] for c in data.header["cleaning"]}
    assert cleaning["duplicate_line"] == f"{run['cleaning']['duplicate_line']:,}"
    assert cleaning["missing_customer_id"] == f"{run['cleaning']['missing_customer_id']:,}"
    assert data.header["input_rows"] == f"{run['input']['transactions']['cleaning']['input_rows']:,}"
    assert "days since last purchase" in data.header["clustered_on"]


def test_cards_show_medians_shares_and_traits(files, data):
    assert [c["segment_id"] for c in data.cards] == [p.segment_id for p in files.profiles]
    for card, profile in zip(data.cards, files.profiles):
        assert card["name"] == profile.name
        assert card["customers"] == f"{profile.n_customers:,}"
        assert card["share_customers"] == f"{profile.share_customers * 100:.1f}%"
        metrics = {m["label"]: m["value"] for m in card["metrics"]}
        days = round(profile.medians["recency_days"])
        assert metrics["Last purchase"] == f"{days:,} day{'' if days == 1 else 's'} ago"
        assert metrics["Total spend"].startswith("€")
        assert [t["text"] for t in card["traits"]] == [t["text"] for t in profile.traits[:4]]
        assert card["play"] is None


def test_card_metrics_are_the_medians_of_the_segment(files, data):
    labels = files.assignments["segment_id"].to_numpy()
    card = data.cards[0]
    orders = files.features["n_orders"].to_numpy()[labels == card["segment_id"]]
    metrics = {m["label"]: m["value"] for m in card["metrics"]}
    median = float(np.median(orders))
    assert metrics["Orders"] == (f"{round(median):,}" if median.is_integer() or median >= 10 else f"{median:.2g}")


# --------------------------------------------------------------------------- heatmap and selection


def test_heatmap_holds_the_profile_zscores_defining_features_first(files, data):
    heatmap = data.heatmap
    defining = files.run["features"]["clustered_on"]
    assert heatmap["features"][: len(defining)] == defining
    assert heatmap["defining"] == [f in defining for f in heatmap["features"]]
    for i, profile in enumerate(files.profiles):
        for j, feature in enumerate(heatmap["features"]):
            expected = profile.zscores[feature]
            if np.isnan(expected):
                assert heatmap["z"][i][j] is None
            else:
                assert heatmap["z"][i][j] == pytest.approx(expected, abs=1e-3)


def test_heatmap_keeps_the_most_distinctive_features_when_there_are_many(files, monkeypatch):
    import segwise.report.data as report_data

    monkeypatch.setattr(report_data, "MAX_HEATMAP_FEATURES", 5)
    heatmap = heatmap_section(files)
    z = files.profiles.zscores_frame()
    strongest = set(z.abs().max(axis=0).sort_values(ascending=False).index[:5])
    assert set(heatmap["features"]) == strongest
    assert heatmap["n_hidden"] == z.shape[1] - 5


def test_selection_has_every_score_and_the_reason(files, data):
    selection = data.selection
    run_selection = files.run["selection"]
    assert selection["chosen"] == run_selection["chosen"] == files.run["n_segments"]
    assert selection["reason"] == run_selection["reason"]
    assert [p["metric"] for p in selection["panels"]] == ["inertia", "silhouette", "davies_bouldin",
                                                         "calinski_harabasz"]
    inertia = selection["panels"][0]["series"][0]
    assert inertia["k"] == [c["k"] for c in run_selection["candidates"]]
    assert inertia["values"] == [c["inertia"] for c in run_selection["candidates"]]
    assert selection["knee"] == run_selection["knee"]


def test_selection_with_bic_per_covariance_type_and_stability_per_k():
    run = {"n_customers": 100, "n_segments": 3, "selection": {
        "candidates": [{"k": k, "covariance_type": t, "bic": 100.0 * k + (5 if t == "diag" else 0), "silhouette": 0.5}
                       for t in ("full", "diag") for k in (2, 3, 4)],
        "chosen": 3, "knee": None, "rule": "lowest BIC", "reason": "k=3 has the lowest BIC"},
        "stability": {"by_k": {"candidates": [{"k": 2, "ari_mean": 0.7}, {"k": 3, "ari_mean": 0.9},
                                              {"k": 4, "ari_mean": 0.6}]}}}
    selection = selection_section(run)
    panels = {p["metric"]: p for p in selection["panels"]}
    assert set(panels) == {"silhouette", "bic", "stability"}
    assert [s["group"] for s in panels["bic"]["series"]] == ["full", "diag"]
    assert panels["bic"]["series"][1]["values"] == [205.0, 305.0, 405.0]
    assert [s["values"] for s in panels["stability"]["series"]] == [[0.7, 0.9, 0.6], [0.7, 0.9, 0.6]]
    assert selection_section({"selection": None}) is None


# --------------------------------------------------------------------------- map and distributions


def test_map_projects_the_models_prepared_features(files, data):
    prepared = files.model.segmenter.preprocessor_.transform(files.features)
    pca = PCA(n_components=2, svd_solver="full").fit(prepared)
    expected = pca.transform(prepared)
    labels = files.assignments["segment_id"].to_numpy()
    assert data.map["shown"] == data.map["total"] == len(labels)
    for trace in data.map["traces"]:
        mine = expected[labels == trace["segment_id"]]
        assert np.allclose(np.abs(trace["x"]), np.abs(mine[:, 0]), atol=1e-4)
        assert np.allclose(np.abs(trace["y"]), np.abs(mine[:, 1]), atol=1e-4)
        spend = files.features["monetary_total"].to_numpy()[labels == trace["segment_id"]]
        assert np.allclose(trace["custom"][:, 2], spend, rtol=1e-6)
    assert data.map["explained"] == pytest.approx(list(pca.explained_variance_ratio_))
    assert [h["label"] for h in data.map["hover"]] == ["days since last purchase", "orders", "total spend"]


def test_map_draws_at_most_max_points(files):
    small = collect_report_data(files, max_points=400, random_state=3)
    assert small.map["shown"] == 400
    assert sum(len(t["x"]) for t in small.map["traces"]) == 400
    assert "400 of" in small.map["caption"]


def test_distributions_are_percentiles_over_all_customers(files, data):
    labels = files.assignments["segment_id"].to_numpy()
    by_column = {d["column"]: d for d in data.distributions}
    assert list(by_column) == ["monetary_total", "n_orders", "recency_days", "monetary_avg", "tenure_days"]
    recency = by_column["recency_days"]
    assert not recency["log"]
    for box in recency["boxes"]:
        values = files.features["recency_days"].to_numpy()[labels == box["segment_id"]]
        assert [box["p5"], box["q1"], box["median"], box["q3"], box["p95"]] == pytest.approx(
            np.percentile(values, [5, 25, 50, 75, 95]))
        assert box["n"] == len(values)
    spend = by_column["monetary_total"]
    assert spend["log"] and spend["money"]
    for box in spend["boxes"]:
        values = files.features["monetary_total"].to_numpy()[labels == box["segment_id"]]
        assert box["median"] == pytest.approx(np.median(values[values > 0]))


def test_money_at_or_below_zero_is_counted_off_the_log_axis(kmeans_run, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run")
    features = pd.read_parquet(path / "features.parquet")
    assignments = pd.read_parquet(path / "assignments.parquet")
    first = assignments["segment_id"].iloc[0]
    rows = np.flatnonzero(assignments["segment_id"].to_numpy() == first)[:3]
    features.loc[rows, "monetary_total"] = [0.0, -5.0, 0.0]
    features.to_parquet(path / "features.parquet")
    files = read_run_dir(path)
    spend = next(d for d in collect_report_data(files).distributions if d["column"] == "monetary_total")
    assert spend["log"]
    at_or_below = (features["monetary_total"] <= 0).groupby(assignments["segment_id"]).sum()
    assert at_or_below[first] >= 3
    expected = ", ".join(f"{files.profiles.names[int(s)]} {n:,}" for s, n in at_or_below.items() if n)
    assert spend["caption"] == f"Customers at zero or below, who cannot be on the log scale: {expected}."
    for box in spend["boxes"]:
        shown = features["monetary_total"][(assignments["segment_id"] == box["segment_id"]).to_numpy()]
        assert box["n"] == int((shown > 0).sum())


# --------------------------------------------------------------------------- reading a run directory


def test_not_a_run_directory(tmp_path):
    with pytest.raises(InputError, match="not a segwise run directory \\(no run.json\\); run `segwise run` first"):
        read_run_dir(tmp_path)
    with pytest.raises(InputError, match="no such run directory"):
        read_run_dir(tmp_path / "nothing")


def test_a_missing_output_is_named(kmeans_run, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run")
    (path / "features.parquet").unlink()
    with pytest.raises(InputError, match="the report needs every output of `segwise run`; missing: features.parquet"):
        read_run_dir(path)


def test_features_from_another_run_are_refused(kmeans_run, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run")
    features = pd.read_parquet(path / "features.parquet")
    features["customer_id"] = features["customer_id"].astype(str) + "x"
    features.to_parquet(path / "features.parquet")
    with pytest.raises(InputError, match="do not describe the same customers"):
        read_run_dir(path)


def test_features_in_another_order_are_aligned(kmeans_run, tmp_path):
    path = variant(kmeans_run.path, tmp_path / "run")
    features = pd.read_parquet(path / "features.parquet")
    features.iloc[::-1].to_parquet(path / "features.parquet")
    files = read_run_dir(path)
    assert list(files.features.index) == list(files.assignments["customer_id"])


def test_a_playbook_entry_reaches_its_card_by_id_or_name(kmeans_run, tmp_path):
    from .payloads import PLAYBOOK_KEY_SEGMENT, playbook_payload

    run = json.loads((kmeans_run.path / "run.json").read_text())
    path = variant(kmeans_run.path, tmp_path / "run", playbook=playbook_payload(run))
    files = read_run_dir(path)
    cards = collect_report_data(files).cards
    first = cards[0]["play"]
    assert first["display_name"] == "VIP club"
    assert first["lists"] == [("Retention", ["Early access"]), ("Success metrics", ["repeat rate"])]
    assert first["facts"] == [("Channels", "email, app"), ("Cadence", "weekly"), ("Price sensitivity", "low")]
    assert first["actions"] == [{"when": "recency_days > 30", "action": "Personal call", "channel": "phone"},
                                {"when": "everyone else", "action": "Thank-you note", "channel": ""}]
    assert cards[PLAYBOOK_KEY_SEGMENT]["play"]["lists"] == [("Retention", ["Win-back voucher <10%>"])]
    assert all(card["play"] is None for card in cards[PLAYBOOK_KEY_SEGMENT + 1:])
