import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import segwise
from segwise.economics import actionability, retention_flags, segment_economics
from segwise.profile import Profiles, SegmentProfile

from .conftest import tiny_log


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


#: Four customers, one repeat buyer: the value family cannot be fitted, so no value measure is shown.
NO_VALUE = {"clv_mean": None, "clv_total": None, "share_clv": None, "p_alive_median": None,
            "expected_purchases_90d_mean": None, "expected_purchases_365d_mean": None}


def test_economics_by_hand():
    """as_of 2024-07-01, 90-day periods: recent from 2024-04-02, previous from 2024-01-03.

    P: 2024-02-01 (100), 2024-05-01 (50)  -> active, bought in both periods
    Q: 2024-06-01 (30)                    -> active, recent period only
    R: 2023-06-01 (200), 2024-03-01 (20)  -> last purchase 122 days ago, previous period only
    S: 2024-04-01 (10), 2024-04-02 (10)   -> last purchase exactly 90 days ago, both periods
    """
    log = tiny_log([
        ("p1", "P", "2024-02-01", 100.0), ("p2", "P", "2024-05-01", 50.0),
        ("q1", "Q", "2024-06-01", 30.0),
        ("r1", "R", "2023-06-01", 200.0), ("r2", "R", "2024-03-01", 20.0),
        ("s1", "S", "2024-04-01", 10.0), ("s2", "S", "2024-04-02", 10.0),
    ])
    tx = segwise.load_transactions(log)
    features = segwise.build_features(tx, as_of="2024-07-01")
    assert features.frame.loc["S", "recency_days"] == 90
    labels = features.frame.index.map({"P": 0, "Q": 0, "R": 1, "S": 1}.get).to_numpy()
    result = segment_economics(features.frame, labels, {0: "Alpha", 1: "Beta"}, transactions=tx,
                               as_of=features.as_of)
    first, second = result["segments"]
    assert first == {
        "segment_id": 0, "segment_name": "Alpha", "customers": 2, "revenue": 180.0, "orders_per_customer": 1.5,
        "average_order_value": 60.0, "share_active": 1.0, "retention_proxy": 0.5, "share_customers": 0.5,
        "share_revenue": pytest.approx(180 / 420), **NO_VALUE,
    }
    assert second == {
        "segment_id": 1, "segment_name": "Beta", "customers": 2, "revenue": 240.0, "orders_per_customer": 2.0,
        "average_order_value": 60.0, "share_active": 0.5, "retention_proxy": 0.5, "share_customers": 0.5,
        "share_revenue": pytest.approx(240 / 420), **NO_VALUE,
    }
    total = result["total"]
    assert (total["customers"], total["revenue"], total["orders_per_customer"], total["share_active"],
            total["retention_proxy"], total["share_revenue"]) == (4, 420.0, 1.75, 0.75, 0.5, 1.0)
    assert result["period_days"] == 90 and result["as_of"] == "2024-07-01"
    assert "90 days" in result["definitions"]["retention_proxy"]
    assert "clv_365d" not in features.frame.columns and total["clv_total"] is None


def test_retention_flags_computed_before_give_the_same_economics():
    """The flow computes the flags with the features and releases the log: the economics must not change."""
    log = tiny_log([
        ("p1", "P", "2024-02-01", 100.0), ("p2", "P", "2024-05-01", 50.0),
        ("q1", "Q", "2024-06-01", 30.0),
        ("s1", "S", "2024-04-01", 10.0), ("s2", "S", "2024-04-02", 10.0),
    ])
    tx = segwise.load_transactions(log)
    features = segwise.build_features(tx, as_of="2024-07-01")
    flags = retention_flags(tx, features.as_of)
    # Q bought only in the recent period; customers without an order in either period are absent.
    assert flags.to_dict() == {"P": True, "Q": False, "S": True}
    labels = features.frame.index.map({"P": 0, "Q": 0, "S": 1}.get).to_numpy()
    names = {0: "Alpha", 1: "Beta"}
    from_log = segment_economics(features.frame, labels, names, transactions=tx, as_of=features.as_of)
    tx.engine.drop(tx.table_name)
    from_flags = segment_economics(features.frame, labels, names, retained=flags, as_of=features.as_of)
    assert from_flags == from_log
    assert [s["retention_proxy"] for s in from_flags["segments"]] == [0.5, 1.0]


def test_economics_carries_predicted_value_per_segment():
    """Where the value family fits, each segment's CLV, P(alive) and expected purchases are its customers'."""
    from .features.test_value_family import AS_OF, buying_log

    features = segwise.build_features(segwise.load_transactions(buying_log()), as_of=AS_OF)
    f = features.frame
    # Two segments that differ in value: the customers above and below the median predicted CLV.
    labels = (f["clv_365d"] > f["clv_365d"].median()).astype(int).to_numpy()
    result = segment_economics(f, labels, {0: "Low", 1: "High"})
    low, high = result["segments"]
    for row, seg in ((low, 0), (high, 1)):
        part = f[labels == seg]
        assert row["clv_mean"] == pytest.approx(part["clv_365d"].mean())
        assert row["clv_total"] == pytest.approx(part["clv_365d"].sum())
        assert row["p_alive_median"] == pytest.approx(part["p_alive"].median())
        assert row["expected_purchases_90d_mean"] == pytest.approx(part["expected_purchases_90d"].mean())
        assert row["expected_purchases_365d_mean"] == pytest.approx(part["expected_purchases_365d"].mean())
    assert high["clv_mean"] > low["clv_mean"]
    total = result["total"]
    assert total["clv_total"] == pytest.approx(f["clv_365d"].sum())
    assert low["share_clv"] + high["share_clv"] == pytest.approx(1.0) and total["share_clv"] == 1.0
    assert "clv_365d" in result["definitions"]["clv_total"]


def test_economics_without_transactions_says_what_it_cannot_know():
    import pandas as pd

    frame = pd.DataFrame({"age": [20.0, 30.0, 40.0]}, index=pd.Index(["a", "b", "c"], name="customer_id"))
    result = segment_economics(frame, np.array([0, 0, 1]), {0: "Young", 1: "Older"})
    first = result["segments"][0]
    assert first["customers"] == 2 and first["share_customers"] == pytest.approx(2 / 3)
    assert first["revenue"] is None and first["share_revenue"] is None and first["retention_proxy"] is None
    assert first["average_order_value"] is None and first["share_active"] is None
    assert result["currency_column"] is None


def _profile(segment_id, name, share, z):
    return SegmentProfile(segment_id=segment_id, name=name, description="", n_customers=int(share * 10_000),
                          share_customers=share, share_revenue=None, means={}, medians={}, zscores=z, traits=[])


def test_actionability_flags_too_small_and_too_similar_segments():
    profiles = Profiles(
        segments=[
            _profile(0, "Champions", 0.005, {"recency_days": -1.0, "n_orders": 3.0, "age": 0.0}),
            _profile(1, "Loyal", 0.40, {"recency_days": -0.8, "n_orders": 1.0, "age": 5.0}),
            _profile(2, "Loyal Too", 0.395, {"recency_days": -0.5, "n_orders": 0.7, "age": -5.0}),
            _profile(3, "Lost", 0.20, {"recency_days": 2.0, "n_orders": -1.0, "age": 0.0}),
        ],
        population_means={"recency_days": 100.0, "n_orders": 3.0, "age": 40.0},
        population_medians={}, value_column=None,
    )
    # "age" describes the segments but does not define them: its differences do not count.
    result = actionability(profiles, ["recency_days", "n_orders"])
    assert not result["actionable"]
    small, similar = result["flags"]
    assert small["kind"] == "too_small" and small["segment_ids"] == [0]
    assert small["detail"] == "Champions holds 0.50% of customers (50), below 1%"
    assert small["suggestion"].startswith("merge it into Loyal (segment 1), the most similar,")
    assert similar["kind"] == "too_similar" and similar["segment_ids"] == [1, 2]
    assert similar["detail"] == ("Loyal and Loyal Too differ by at most 0.30 standard deviations on every feature "
                                 "that defines the segments (threshold 0.5)")
    assert similar["suggestion"] == "merge them, or segment again with fewer segments (--segments 3)"
    relaxed = actionability(profiles, ["recency_days", "n_orders"], min_share=0.001, min_difference=0.2)
    assert relaxed["actionable"] and relaxed["flags"] == []


def test_a_run_carries_validation_economics_and_actionability(small_population, tmp_path):
    result = segwise.segment(small_population.orders, random_state=0)
    for key in ("validation", "economics", "actionability"):
        assert result.run[key] == getattr(result, key)
    assert result.run["stability"] is None and result.run["alignment"] is None
    economics = result.economics
    assert [s["segment_id"] for s in economics["segments"]] == sorted(result.model.names)
    assert sum(s["customers"] for s in economics["segments"]) == len(result.assignments)
    assert economics["total"]["revenue"] == pytest.approx(result.features.frame["monetary_total"].sum())
    assert result.validation["n_segments"] == result.n_segments
    assert set(result.validation["per_segment_silhouette"]) == {str(s) for s in result.model.names}
    result.save(tmp_path)
    run = segwise.load_run(tmp_path)["run"]
    assert run["validation"]["silhouette"] == pytest.approx(result.validation["silhouette"])
    assert run["economics"]["segments"][0]["segment_name"] == result.economics["segments"][0]["segment_name"]
    assert run["actionability"]["rule"] == result.actionability["rule"]
