import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import segwise
from segwise.errors import InputError
from segwise.segmenter import Segmenter


@pytest.fixture(scope="module")
def population_features():
    pop = segwise.generate_population(6_000, seed=5)
    table = segwise.build_features(segwise.load_transactions(pop.orders), customers=segwise.load_customers(pop.customers))
    truth = pop.truth.set_index("customer_id")["behaviour_type"].reindex(table.frame.index)
    return table, truth


@pytest.fixture(scope="module")
def fitted(population_features):
    table, _ = population_features
    return Segmenter(random_state=0).fit(table)


def test_defines_segments_on_rfm_and_affinity_and_describes_with_everything(fitted, population_features):
    table, _ = population_features
    # tenure_days (= recency_days + active_days) describes the segments but does not define them.
    defining_rfm = [c for c in table.families()["rfm"] if c != "tenure_days"]
    assert "active_days" in defining_rfm
    assert fitted.feature_columns_ == defining_rfm + table.families()["affinity"]
    assert "tenure_days" in fitted.profile_columns_
    assert fitted.profile_columns_ == list(table.frame.columns)
    assert any("defined by the rfm and affinity families" in note for note in fitted.notes_)
    assert "age" in fitted.profiles_[0].means and "gender" in fitted.profiles_[0].categories


def test_segment_ids_are_ordered_by_mean_spend(fitted, population_features):
    table, _ = population_features
    means = table.frame.groupby(fitted.labels_)["monetary_total"].mean()
    assert list(means.index) == list(range(fitted.n_segments_))
    assert means.is_monotonic_decreasing


def test_names_are_unique_and_recover_planted_types(fitted, population_features):
    _, truth = population_features
    names = list(fitted.segment_names_.values())
    assert len(set(names)) == len(names) == fitted.n_segments_
    assert adjusted_rand_score(truth, fitted.labels_) >= 0.8
    majority = pd.Series(fitted.labels_, index=truth.index).groupby(truth).agg(lambda s: s.mode()[0])
    named = {t: fitted.segment_names_[int(i)] for t, i in majority.items()}
    assert named["big_spenders"] == "Big Spenders"
    assert named["new_customers"] == "New Customers"
    assert named["category_specialists"] == "Category Specialists"
    assert named["deal_hunters"] == "Deal Hunters"
    assert named["at_risk"] == "At Risk"


def test_fit_predict_equals_predict_on_training_data(fitted, population_features):
    table, _ = population_features
    assert np.array_equal(fitted.predict(table.frame), fitted.labels_)
    assigned = fitted.assign(table.frame)
    assert list(assigned.columns) == ["segment_id", "segment_name", "confidence"]
    assert assigned["confidence"].between(0, 1).all()


def test_features_and_exclude_accept_columns_and_families(population_features):
    table, _ = population_features
    only = Segmenter(n_segments=3, features=["n_orders", "monetary_total"], random_state=0).fit(table)
    assert only.feature_columns_ == ["n_orders", "monetary_total"]
    fam = Segmenter(n_segments=3, features="rfm,engagement", exclude=["share_weekend_orders"], random_state=0).fit(table)
    assert "share_channel_web" in fam.feature_columns_ and "share_weekend_orders" not in fam.feature_columns_
    with pytest.raises(InputError, match="features: 'bogus' is neither a feature column nor a family"):
        Segmenter(features=["bogus"]).fit(table)


@pytest.mark.parametrize("requested", ["4..6", (4, 6)])
def test_a_range_of_segments_chooses_automatically_within_it(population_features, requested):
    table, _ = population_features
    model = Segmenter(n_segments=requested, random_state=0).fit(table)
    assert [c["k"] for c in model.clusterer_.selection_.candidates] == [4, 5, 6]
    assert 4 <= model.n_segments_ <= 6


def test_identifier_and_constant_columns_are_left_out_with_a_note():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "income": rng.normal(50, 10, 200), "score": rng.normal(50, 20, 200),
        "member_id": np.arange(200), "email": [f"u{i}@x.org" for i in range(200)], "shop": ["A"] * 200,
    })
    seg = Segmenter(n_segments=2, random_state=0).fit(frame)
    assert seg.feature_columns_ == ["income", "score"]
    assert "column 'shop' left out: constant" in seg.notes_
    assert "column 'email' left out: looks like an identifier (one value per customer)" in seg.notes_
    assert seg.value_col_ == "income"


def test_attribute_only_data_gets_trait_names():
    X, _ = make_blobs(600, centers=[[20, 80], [80, 20], [80, 80]], cluster_std=5, random_state=0)
    frame = pd.DataFrame(X, columns=["annual_income", "spending_score"])
    seg = Segmenter(random_state=0).fit(frame)
    assert seg.n_segments_ == 3
    assert set(seg.segment_names_.values()) == {
        "High Annual Income & High Spending Score", "High Annual Income & Low Spending Score",
        "Low Annual Income & High Spending Score",
    }


def test_rename_and_name_overrides(population_features):
    table, _ = population_features
    seg = Segmenter(n_segments=4, names={0: "VIP"}, random_state=0).fit(table)
    assert seg.segment_names_[0] == "VIP" and seg.profiles_[0].name_overridden
    second = seg.segment_names_[1]
    seg.rename({second: "Core"})
    assert seg.segment_names_[1] == "Core"
    with pytest.raises(InputError, match="segment names must be unique"):
        seg.rename({2: "Core"})


def test_too_many_segments_and_identical_customers_are_clear_errors():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match="5 segments were asked for but there are only 3 customers"):
        Segmenter(n_segments=5).fit(frame)
    same = pd.DataFrame({"a": [1.0] * 10, "b": [2.0] * 10})
    with pytest.raises(InputError, match="no columns are left to segment on"):
        Segmenter().fit(same)


def test_state_round_trip(fitted, population_features):
    table, _ = population_features
    meta, arrays = fitted.to_state()
    again = Segmenter.from_state(meta, arrays)
    assert np.array_equal(again.predict(table.frame), fitted.labels_)
    assert again.segment_names_ == fitted.segment_names_


@parametrize_with_checks([Segmenter(n_segments=3, random_state=0)])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)


def test_prepared_rows_with_share_shrinkage_equal_shrinking_every_column(small_population):
    # _prepared shrinks only the columns the preparation reads; the matrix must be the
    # one shrinking the whole frame gives, and assignment must reproduce the fit.
    features = segwise.build_features(segwise.load_transactions(small_population.orders))
    frame = features.frame.assign(unrelated_text="x")
    segmenter = Segmenter(features=["n_orders", "monetary_total", "share_weekend_orders"], random_state=0).fit(features)
    assert segmenter.shrinkage_ is not None and segmenter.shrinkage_.params_
    whole = segmenter.preprocessor_.transform(segmenter.shrinkage_.transform(frame))
    np.testing.assert_array_equal(segmenter._prepared(frame), whole)
    np.testing.assert_array_equal(segmenter.predict(frame), segmenter.labels_)
