import numpy as np
import pandas as pd
import pytest

from segwise.errors import InputError
from segwise.naming import ARCHETYPES, name_segments
from segwise.profile import Profiles, compute_profiles, segment_stats


@pytest.fixture
def table():
    # Two segments, hand-checkable: segment 0 buys often and spends a lot.
    frame = pd.DataFrame({
        "n_orders": [10.0, 12.0, 1.0, 1.0, 2.0, 1.0],
        "monetary_total": [500.0, 700.0, 20.0, 30.0, 40.0, 10.0],
        "discount_share": [0.0, 0.1, 1.0, 1.0, 0.5, 1.0],
        "region": ["N", "N", "S", "S", "N", "S"],
    }, index=[f"c{i}" for i in range(6)])
    labels = np.array([0, 0, 1, 1, 1, 1])
    units = {"n_orders": "orders", "monetary_total": "currency", "discount_share": "share 0-1"}
    return frame, labels, units


def test_profile_numbers(table):
    frame, labels, units = table
    profiles = compute_profiles(frame, labels, units=units)
    seg0, seg1 = profiles[0], profiles[1]
    assert (seg0.n_customers, seg0.share_customers) == (2, pytest.approx(1 / 3))
    assert seg0.share_revenue == pytest.approx(1200 / 1300)
    assert seg0.means["n_orders"] == 11.0 and seg0.medians["monetary_total"] == 600.0
    mean, std = frame["n_orders"].mean(), frame["n_orders"].std(ddof=0)
    assert seg0.zscores["n_orders"] == pytest.approx((11 - mean) / std)
    assert seg1.categories["region"] == {"S": 0.75, "N": 0.25}
    texts = [t["text"] for t in seg0.traits]
    assert f"buys {11 / mean:.1f}x more often than average" in texts
    assert "share of discounted orders: 5% vs 60% overall" in texts


def test_profiles_round_trip_through_json(table):
    frame, labels, units = table
    profiles = name_segments(compute_profiles(frame, labels, units=units), frame, labels)
    again = Profiles.from_dict(profiles.to_dict())
    assert again.names == profiles.names
    assert again.table().equals(profiles.table())


def test_archetype_scores_name_segments_that_fit_them():
    z_champion = {"recency_days": -1.8, "n_orders": 2.5, "monetary_total": 2.8, "monetary_avg": 0.8}
    z_lost = {"recency_days": 1.5, "n_orders": -1.0, "monetary_total": -0.4}
    score = {name: fn for name, (_, fn) in ARCHETYPES.items()}
    assert max(score, key=lambda n: score[n](z_champion)) == "Champions"
    assert max(score, key=lambda n: score[n](z_lost)) == "Lost"


def test_descriptions_are_plain_language(table):
    frame, labels, units = table
    profiles = name_segments(compute_profiles(frame, labels, units=units), frame, labels)
    text = profiles[0].description
    assert text.startswith("2 customers (33.3% of all) bringing 92.3% of revenue.")
    assert "The typical customer here has placed 11 orders, spent 600 in total." in text


def test_overrides_and_uniqueness(table):
    frame, labels, units = table
    profiles = name_segments(compute_profiles(frame, labels, units=units), frame, labels, overrides={1: "Bargain crowd"})
    assert profiles[1].name == "Bargain crowd" and profiles[1].name_overridden
    with pytest.raises(InputError, match="segment names must be unique within a model; repeated: Same"):
        name_segments(compute_profiles(frame, labels, units=units), frame, labels, overrides={0: "Same", 1: "Same"})


def test_profiles_of_a_frame_with_text_and_log_compared_columns():
    # Selecting the numeric columns of a mixed frame gives pandas a read-only view;
    # ranking log-transforms them, which must happen on a copy.
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "monetary_total": np.exp(rng.normal(size=200)),
        "n_orders": rng.integers(1, 9, 200).astype(float),
        "region": np.where(np.arange(200) % 3 == 0, "north", "south"),
    })
    labels = np.arange(200) % 2
    profiles = compute_profiles(frame, labels, log_columns={"n_orders"})
    assert profiles[0].categories == {"region": {"south": 0.66, "north": 0.34}}
    assert frame["n_orders"].min() >= 1  # the caller's frame is untouched


@pytest.mark.parametrize("shape", [0.1, 1.0, 5.0])
@pytest.mark.parametrize("n", [3, 10, 1_001, 100_000])
def test_naming_skewness_is_scipys_to_the_bit(shape, n):
    # naming_zscores puts a column on the log scale when this exceeds 1: the decision
    # (and so every name) must not move by a rounding.
    from scipy import stats

    from segwise.profile import _skewness

    rng = np.random.default_rng(n)
    for values in (rng.gamma(shape, size=n), rng.normal(3.0, 1e-9, n), rng.integers(0, 3, n).astype(float)):
        assert _skewness(values) == float(np.nan_to_num(stats.skew(values)))


def test_segment_stats_with_and_without_missing_values_by_hand():
    # Column a is complete (the masks are skipped), b has a missing value per segment.
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 10.0, 20.0, 40.0], "b": [1.0, np.nan, 3.0, np.nan, 4.0, 8.0]})
    labels = np.array([0, 0, 0, 1, 1, 1])
    stats_ = segment_stats(frame, labels, value_column="a")
    np.testing.assert_array_equal(stats_.means, [[2.0, 2.0], [70 / 3, 6.0]])
    np.testing.assert_array_equal(stats_.medians, [[2.0, 2.0], [20.0, 6.0]])
    np.testing.assert_array_equal(stats_.observed, [[1.0, 2 / 3], [1.0, 2 / 3]])
    np.testing.assert_array_equal(stats_.pop_median, [6.5, 3.5])
    np.testing.assert_array_equal(stats_.revenue, [6.0, 70.0])
    # The frame is not changed by the in-place medians.
    assert frame["a"].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 40.0]


def test_segments_that_differ_in_channel_and_time_are_named_by_them_in_words():
    # No rfm columns, so no archetype fits: names come from the two strongest traits.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 200)
    web = np.where(labels == 0, 0.8, 0.2) + rng.normal(0, 0.05, 600)
    frame = pd.DataFrame({
        "share_channel_web": web, "share_channel_store": 1 - web,
        "share_orders_q4": np.where(labels == 0, 0.6, 0.25) + rng.normal(0, 0.05, 600),
        "share_orders_night": np.where(labels == 2, 0.7, 0.1) + rng.normal(0, 0.05, 600),
        "share_orders_afternoon": np.where(labels == 2, 0.1, 0.5) + rng.normal(0, 0.05, 600),
    }, index=[f"c{i}" for i in range(600)])
    units = {c: "share 0-1" for c in frame.columns}
    profiles = name_segments(compute_profiles(frame, labels, units=units), frame, labels)
    # A high share is named by its level; a low share names nothing (the orders went elsewhere),
    # and two channels, or two parts of the day, are not named twice.
    assert profiles[0].name == "Web-First, Q4 Customers"
    assert profiles[1].name == "Store-First, Afternoon Customers"
    assert profiles[2].name == "Store-First, Night Customers"  # not "... & Low Share Of Orders In The Afternoon"
    assert not any("Share Of" in p.name for p in profiles)
