"""Every method through `segwise.Segmenter`: column parameters, Outliers, composite names, method details."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import segwise
from segwise.errors import InputError
from segwise.naming import OUTLIERS_NAME


@pytest.fixture(scope="module")
def population():
    pop = segwise.generate_population(2000, seed=7)
    tx = segwise.load_transactions(pop.orders.to_pandas())
    customers = segwise.load_customers(pop.customers.to_pandas())
    features = segwise.build_features(tx, customers=customers)
    truth = pop.truth.set_index("customer_id")["behaviour_type"].reindex(features.frame.index.astype(str)).to_numpy()
    return features, truth


@pytest.fixture(scope="module")
def dbscan(population):
    features, _ = population
    return segwise.Segmenter(method="dbscan", random_state=0).fit(features)


def test_outliers_are_the_last_segment_profiled_like_the_others(dbscan, population):
    features, _ = population
    seg = dbscan
    outliers = seg.outlier_segment_
    assert outliers == seg.n_segments_ - 1
    assert seg.segment_names_[outliers] == OUTLIERS_NAME
    profile = seg.profiles_[outliers]
    assert profile.n_customers == int((seg.labels_ == outliers).sum()) > 0 and profile.means
    assert profile.description.startswith(f"{profile.n_customers:,} customers")
    # The other segments keep the value order (mean monetary_total descending).
    means = [seg.profiles_[i].means["monetary_total"] for i in range(seg.n_segments_ - 1)]
    assert means == sorted(means, reverse=True)
    assigned = seg.assign(features)
    assert (assigned["segment_name"] == OUTLIERS_NAME).sum() == profile.n_customers


def test_micro_segments_carry_segment_ids_names_and_revenue_share(dbscan):
    details = dbscan.method_details_
    assert details["method"] == "dbscan" and details["outlier_segment"] == dbscan.outlier_segment_
    assert details["micro_segments"], "the 0.8% champions type is a micro-segment here"
    for micro in details["micro_segments"]:
        profile = dbscan.profiles_[micro["segment_id"]]
        assert micro["segment_name"] == profile.name and micro["share_revenue"] == profile.share_revenue
    champions = max(details["micro_segments"], key=lambda m: m["share_revenue"])
    assert champions["share_revenue"] > 5 * champions["share_customers"]
    assert details["outliers"]["segment_name"] == OUTLIERS_NAME


def test_the_outliers_group_can_be_renamed(population):
    features, _ = population
    seg = segwise.Segmenter(method="dbscan", names={"Outliers": "Unusual customers"}, random_state=0).fit(features)
    assert seg.segment_names_[seg.outlier_segment_] == "Unusual customers"


def test_kprototypes_takes_the_categorical_columns_from_the_schema(population):
    features, truth = population
    seg = segwise.Segmenter(method="kprototypes", random_state=0,
                            method_params={"fit_sample": 1000, "selection_sample": 500}).fit(features)
    assert {"gender", "region"} <= set(seg.feature_columns_)
    assert any("categorical column(s) gender, region join the definition" in n for n in seg.notes_)
    names = list(seg.preprocessor_.get_feature_names_out())
    assert [names[i] for i in seg.clusterer_.categorical_index_] == ["gender", "region"]
    assert seg.method_details_["gamma_rule"].startswith("2 x mean variance")
    # Assigning new customers goes through the same codes.
    assert np.array_equal(seg.predict(features), seg.labels_)


def test_kprototypes_takes_a_describing_familys_categorical_only_with_that_family(population):
    features, _ = population
    # journey's first_purchase_category is categorical, but journey describes segments by default.
    assert features.columns["first_purchase_category"].kind == "categorical"
    params = {"fit_sample": 1000, "selection_sample": 500}
    default = segwise.Segmenter(method="kprototypes", n_segments=4, random_state=0, method_params=params).fit(features)
    names = list(default.preprocessor_.get_feature_names_out())
    assert [names[i] for i in default.clusterer_.categorical_index_] == ["gender", "region"]
    assert "first_purchase_category" not in default.feature_columns_
    assert any("first_purchase_category describe the segments" in n for n in default.notes_)
    with_journey = segwise.Segmenter(method="kprototypes", n_segments=4, random_state=0, method_params=params,
                                     features=["rfm", "affinity", "journey"]).fit(features)
    names = list(with_journey.preprocessor_.get_feature_names_out())
    # Named families define the segments: the journey family brings its categorical column, no attribute joins.
    assert [names[i] for i in with_journey.clusterer_.categorical_index_] == ["first_purchase_category"]
    assert {"first_purchase_category", "category_switching_rate"} <= set(with_journey.feature_columns_)
    assert not {"gender", "region"} & set(with_journey.feature_columns_)
    assert np.array_equal(with_journey.predict(features), with_journey.labels_)


def test_kprototypes_without_categorical_columns_is_a_clear_error(population):
    features, _ = population
    numeric = features.frame.select_dtypes("number")
    with pytest.raises(InputError, match="no categorical column was given"):
        segwise.Segmenter(method="kprototypes", random_state=0).fit(numeric)


def test_two_stage_names_parent_and_child(population):
    features, truth = population
    seg = segwise.Segmenter(method="two_stage", random_state=0).fit(features)
    names = list(seg.segment_names_.values())
    assert len(names) == len(set(names)) and any(" / " in n for n in names)
    details = seg.method_details_
    prepared = details["prepared_columns"]
    assert {prepared[i] for i in details["first_columns"]} <= {"recency_days", "n_orders", "monetary_total",
                                                                  "monetary_avg", "active_days"}
    # "rfm" in a method's parameters means the family's defining columns, as in --features.
    assert "active_days" in seg.feature_columns_ and "tenure_days" not in seg.feature_columns_
    assert "first" in details["part_profiles"]
    first_names = {s["name"] for s in details["part_profiles"]["first"]["segments"]}
    assert all(n.split(" / ")[0] in first_names for n in names)
    assert adjusted_rand_score(truth, seg.labels_) > 0.6


def test_multiview_resolves_the_default_views(population):
    features, _ = population
    seg = segwise.Segmenter(method="multiview", random_state=0).fit(features)
    views = seg.method_details_["views"]
    assert list(views) == ["value", "behaviour", "channel"]
    prepared = seg.method_details_["prepared_columns"]
    assert {prepared[i] for i in views["channel"]["columns"]} == {
        "share_channel_web", "share_channel_app", "share_channel_store", "share_channel_phone"}
    kept = [c for c in seg.method_details_["crosstab"] if c["kept"]]
    assert {c["segment_id"] for c in kept} == set(range(seg.n_segments_))
    assert all(len(seg.segment_names_[c["segment_id"]].split(" / ")) == 3 for c in kept)
    assert set(seg.method_details_["part_profiles"]) == {"value", "behaviour", "channel"}


def test_view_and_feature_names_are_checked(population):
    features, _ = population
    with pytest.raises(InputError, match="views: 'taste' names no feature column"):
        segwise.Segmenter(method="multiview", method_params={"views": {"taste": ["flavour"]}}).fit(features)
    with pytest.raises(InputError, match="method 'dbscan' finds the number of segments itself"):
        segwise.Segmenter(method="dbscan", n_segments=4).fit(features)
    with pytest.raises(InputError, match="method 'gmm' has no parameter\\(s\\) linkage; its parameters are:"):
        segwise.Segmenter(method="gmm", method_params={"linkage": "ward"}).fit(features)


def test_hierarchical_levels_map_detailed_to_broad_segment_ids(population):
    features, _ = population
    seg = segwise.Segmenter(method="hierarchical", method_params={"levels": [3, 8]}, random_state=0).fit(features)
    assert seg.n_segments_ == 8
    level = seg.method_details_["levels"][0]
    assert sorted(m["segment_id"] for m in level["mapping"]) == list(range(8))
    assert {m["parent"] for m in level["mapping"]} == {0, 1, 2}
    meta, arrays = seg.to_state()
    again = segwise.Segmenter.from_state(meta, arrays)
    assert again.method_details_ == seg.method_details_
    assert again.assign(features).equals(seg.assign(features))


def test_a_feature_frame_read_back_from_parquet_segments(population, tmp_path):
    # Under copy-on-write, a frame read from Parquet may hold read-only arrays; profiling must not write into them.
    features, _ = population
    features.frame.to_parquet(tmp_path / "features.parquet")
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "features.parquet")
    seg = segwise.Segmenter(method="hierarchical", n_segments=4, random_state=0).fit(frame)
    assert seg.n_segments_ == 4 and len(seg.profiles_) == 4
