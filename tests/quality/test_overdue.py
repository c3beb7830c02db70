"""The overdue ratio derived from the rfm columns (segwise.defining_columns.overdue_ratio)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segwise.defining_columns import OVERDUE_COLUMN, asks_for_overdue, overdue_ratio, with_overdue_ratio
from segwise.errors import InputError
from segwise.features.shrink import IntervalPrior, fit_interval_prior


def _rfm(recency, tenure, orders) -> pd.DataFrame:
    return pd.DataFrame({"recency_days": recency, "tenure_days": tenure, "n_orders": orders},
                        index=[f"c{i}" for i in range(len(orders))])


def test_hand_checked_values_with_a_given_prior():
    # Customer a: first order 100 days ago, last 20 days ago, 5 orders: 4 intervals over 80 days.
    # Customer b: first order 60 days ago, last 30 days ago, 2 orders: 1 interval of 30 days.
    frame = _rfm([20.0, 30.0], [100.0, 60.0], [5.0, 2.0])
    prior = IntervalPrior(mean_interval=50.0, strength=2.0)
    ratio, used = overdue_ratio(frame, prior)
    assert used is prior
    # a: (80 + 2 * 50) / (4 + 2) = 30 days; 20 / 30.  b: (30 + 100) / (1 + 2) = 43.33 days; 30 / 43.33.
    assert ratio["c0"] == pytest.approx(20.0 / 30.0)
    assert ratio["c1"] == pytest.approx(30.0 / (130.0 / 3.0))


def test_a_negligible_prior_gives_the_customers_own_interval():
    frame = _rfm([20.0, 30.0], [100.0, 60.0], [5.0, 2.0])
    ratio, _ = overdue_ratio(frame, IntervalPrior(mean_interval=50.0, strength=1e-9))
    assert ratio.tolist() == pytest.approx([20.0 / 20.0, 30.0 / 30.0])


def test_one_order_customers_are_measured_against_the_population_interval():
    frame = _rfm([10.0, 90.0], [10.0, 90.0], [1.0, 1.0])
    ratio, _ = overdue_ratio(frame, IntervalPrior(mean_interval=45.0, strength=3.0))
    assert ratio.tolist() == pytest.approx([10.0 / 45.0, 90.0 / 45.0])


def test_shrinkage_pulls_few_interval_customers_further_toward_the_population():
    prior = IntervalPrior(mean_interval=60.0, strength=2.0)
    # Both customers buy every 10 days; one has 1 interval, the other 20.
    one, many = prior.shrunk_interval([10.0, 200.0], [1.0, 20.0])
    assert 10.0 < many < one < 60.0
    assert abs(many - 10.0) < abs(one - 10.0)


def test_fitted_prior_is_weak_for_real_differences_and_strong_for_sampling_noise():
    rng = np.random.default_rng(0)
    n = 5_000
    intervals = rng.integers(1, 12, n)
    # Two rhythms (every 7 days and every 90 days): the customers truly differ.
    true_mean = np.where(rng.random(n) < 0.5, 7.0, 90.0)
    spans = np.array([rng.exponential(m, k).sum() for m, k in zip(true_mean, intervals)])
    differing = fit_interval_prior(spans, intervals)
    # One rhythm for everyone: the observed means differ by sampling alone.
    same = np.array([rng.exponential(30.0, k).sum() for k in intervals])
    alike = fit_interval_prior(same, intervals)
    # Two rhythms: mean 48.5, between-customer variance 41.5² → strength 48.5² / 41.5² + 1 ≈ 2.4.
    assert differing.strength == pytest.approx(2.37, abs=0.3)
    assert alike.strength > 20.0
    assert alike.mean_interval == pytest.approx(30.0, rel=0.1)


def test_training_prior_is_reused_for_new_customers_and_needs_repeat_buyers():
    frame = _rfm([5.0, 40.0, 3.0, 200.0], [50.0, 400.0, 30.0, 200.0], [6.0, 3.0, 10.0, 1.0])
    out, docs, prior = with_overdue_ratio(frame, {})
    assert OVERDUE_COLUMN in out and docs[OVERDUE_COLUMN].family == "overdue"
    assert (out[OVERDUE_COLUMN] >= 0).all()
    new, _ = overdue_ratio(frame.iloc[[3]], prior)
    assert new.iloc[0] == pytest.approx(out[OVERDUE_COLUMN].iloc[3])
    with pytest.raises(InputError, match="repeat buyer"):
        overdue_ratio(_rfm([1.0, 2.0], [1.0, 2.0], [1.0, 1.0]))
    with pytest.raises(InputError, match="tenure_days"):
        overdue_ratio(frame.drop(columns="tenure_days"))


def test_only_named_features_ask_for_it():
    assert asks_for_overdue("rfm,affinity,overdue") and asks_for_overdue(["overdue_ratio"])
    assert not asks_for_overdue(None) and not asks_for_overdue(["rfm", "affinity"])


def test_segment_with_the_overdue_family_defines_by_it_and_predicts_new_tables_like_training():
    import pyarrow.parquet as pq

    import segwise
    from segwise.segmenter import Segmenter
    from segwise.synth import generate_population

    population = generate_population(2_000, seed=1)
    result = segwise.segment(population.orders, random_state=0, features=["rfm", "affinity", "overdue"])
    segmenter = result.segmenter
    assert OVERDUE_COLUMN in segmenter.feature_columns_ and OVERDUE_COLUMN in result.features.frame
    assert segmenter.feature_docs_[OVERDUE_COLUMN]["family"] == "overdue"
    # A table without the derived column (as features are built for new customers) gets it from the kept prior.
    restored = Segmenter.from_state(*segmenter.to_state())
    plain = result.features.frame.drop(columns=OVERDUE_COLUMN)
    assert (restored.predict(plain) == segmenter.labels_).all()
    default = segwise.segment(population.orders, random_state=0)
    assert OVERDUE_COLUMN not in default.segmenter.feature_columns_


def test_interval_reliability_tells_rhythms_that_differ_from_sampling_noise():
    from segwise.features.shrink import interval_reliability

    rng = np.random.default_rng(3)
    intervals = rng.integers(1, 12, 4_000)
    true_mean = np.where(rng.random(4_000) < 0.5, 7.0, 90.0)
    differing = np.array([rng.exponential(m, k).sum() for m, k in zip(true_mean, intervals)])
    alike = np.array([rng.exponential(30.0, k).sum() for k in intervals])
    assert interval_reliability(differing, intervals) > 0.5 > 0.1 > interval_reliability(alike, intervals)


def test_a_default_with_the_family_derives_it_only_where_the_rfm_columns_are(monkeypatch):
    import segwise.defining_columns as defining

    rfm = _rfm([5.0, 40.0], [50.0, 400.0], [6.0, 3.0])
    assert not asks_for_overdue(None, rfm)
    monkeypatch.setattr(defining, "DEFAULT_FAMILIES", (*defining.DEFAULT_FAMILIES, defining.OVERDUE_FAMILY))
    assert asks_for_overdue(None, rfm)
    assert not asks_for_overdue(None, pd.DataFrame({"age": [30, 40], "income": [1.0, 2.0]}))


def test_a_named_overdue_ratio_left_out_by_the_correlation_pruning_is_reported():
    import segwise
    from segwise.synth import generate_population

    population = generate_population(2_000, seed=1)
    result = segwise.segment(population.orders, random_state=0, features=["rfm", "affinity", "overdue"])
    dropped = result.segmenter.preprocessor_.report_["dropped"]
    noted = [n for n in result.segmenter.notes_ if n.startswith(f"{OVERDUE_COLUMN} was asked for")]
    # On the demo population the shrunk ratio follows recency_days (r about 0.95): pruned, and said so.
    assert OVERDUE_COLUMN in dropped and "recency_days" in dropped[OVERDUE_COLUMN] and noted
    kept = segwise.segment(population.orders, random_state=0, features=["rfm", "affinity", "overdue"],
                           preprocessing={"corr_threshold": None})
    assert OVERDUE_COLUMN not in kept.segmenter.preprocessor_.report_["dropped"]
    assert not [n for n in kept.segmenter.notes_ if n.startswith(f"{OVERDUE_COLUMN} was asked for")]
