"""The ``value`` feature family: columns, stored parameters, options, and skipping when it cannot fit."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import segwise
from segwise.data import load_transactions
from segwise.features import build_features
from segwise.features.value import VALUE_COLUMNS

AS_OF = dt.date(2024, 1, 1)


def buying_log(n_customers: int = 300, seed: int = 1) -> pd.DataFrame:
    """Customers buying at random rates through 2023, some stopping; spend varies per customer."""
    rng = np.random.default_rng(seed)
    rows = []
    for customer in range(n_customers):
        rate = rng.gamma(0.8, 1 / 30)  # purchases per day
        first = rng.integers(0, 300)
        stop = first + rng.exponential(200)
        day = float(first)
        mean_spend = rng.gamma(5, 8)
        while day < min(stop, 364):
            rows.append((f"c{customer}", pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(day)),
                         round(rng.gamma(4, mean_spend / 4), 2)))
            day += rng.exponential(1 / rate) + 1
    return pd.DataFrame(rows, columns=["customer_id", "ordered_at", "amount"])


def first_purchase_day_only(orders, repeat_customers: int = 10) -> pd.DataFrame:
    """A log (pyarrow or pandas) cut to each customer's first purchase day, but for a few.

    Fewer repeat customers than `segwise.features.btyd.MIN_REPEAT_CUSTOMERS` remain, so
    the value family cannot be fitted and is left out: the case of a model without it.
    """
    frame = orders.to_pandas() if hasattr(orders, "to_pandas") else orders.copy()
    day = pd.to_datetime(frame["ordered_at"]).dt.normalize()
    first_day = day.groupby(frame["customer_id"]).transform("min")
    kept = frame["customer_id"].drop_duplicates().head(repeat_customers)
    return frame[(day == first_day) | frame["customer_id"].isin(kept)].reset_index(drop=True)


@pytest.fixture(scope="module")
def table():
    return build_features(load_transactions(buying_log()), as_of=AS_OF)


def test_value_columns_are_there_and_sane(table):
    f = table.frame
    assert all(c in f.columns for c in VALUE_COLUMNS)
    assert not [c for c in f.columns if c.startswith("_")]
    assert np.isfinite(f[list(VALUE_COLUMNS)].to_numpy()).all()
    assert f["p_alive"].between(0, 1).all()
    assert (f["expected_purchases_365d"] >= f["expected_purchases_90d"]).all()
    assert (f["clv_365d"] > 0).all()
    assert table.columns["clv_365d"].family == "value"


def test_parameters_are_kept_in_the_spec_and_reported(table):
    model = table.spec.models["value"]
    assert set(model["bgnbd"]) == {"r", "alpha", "a", "b", "time_unit"} and model["margin"] == 1.0
    assert model["discount_rate"] == 0.1
    record = table.summary()["models"]["value"]
    assert record["diagnostics"]["bgnbd"]["converged"] and record["diagnostics"]["bgnbd"]["log_likelihood"] < 0


def test_assignment_scores_with_the_trained_parameters(table):
    # New data: the first half of the customers only. No refit: same parameters, same values.
    log = buying_log()
    part = log[log["customer_id"].isin([f"c{i}" for i in range(150)])]
    again = build_features(load_transactions(part), as_of=AS_OF, spec=table.spec)
    assert again.spec.models["value"]["bgnbd"] == table.spec.models["value"]["bgnbd"]
    pd.testing.assert_frame_equal(again.frame[list(VALUE_COLUMNS)],
                                  table.frame.loc[again.frame.index, list(VALUE_COLUMNS)])


def test_margin_and_discount_rate(table):
    tx = load_transactions(buying_log())
    profit = build_features(tx, as_of=AS_OF, families=["rfm", "value"], margin=0.25, discount_rate=0.0)
    np.testing.assert_allclose(profit.frame["expected_purchases_90d"], table.frame["expected_purchases_90d"])
    # Without discounting and at a quarter margin: a quarter of the undiscounted value, above a quarter
    # of the discounted one.
    assert (profit.frame["clv_365d"] > 0.25 * table.frame["clv_365d"]).all()
    assert (profit.frame["clv_365d"] < 0.25 * table.frame["clv_365d"] * 1.1).all()
    with pytest.raises(segwise.InputError, match="--margin"):
        build_features(tx, as_of=AS_OF, margin=30)


def test_without_repeat_customers_the_family_is_left_out_with_a_note():
    log = pd.DataFrame({"customer_id": ["a", "b", "c"], "ordered_at": ["2023-01-05", "2023-02-01", "2023-03-01"],
                        "amount": [10.0, 20.0, 5.0]})
    table = build_features(load_transactions(log), as_of=AS_OF)
    assert not any(c in table.frame.columns for c in VALUE_COLUMNS)
    assert "value" not in table.spec.families and "value" not in table.spec.models
    assert any("the value family is left out" in note and "repeat purchase" in note for note in table.notes)
    assert "skipped" in table.models["value"]


def test_run_json_records_the_value_models():
    result = segwise.segment(buying_log(), as_of=AS_OF, n_segments=3, random_state=0)
    models = result.run["features"]["models"]["value"]
    assert set(models["bgnbd"]) >= {"r", "alpha", "a", "b"} and set(models["gamma_gamma"]) == {"p", "q", "v"}
    assert "clv_365d" in result.run["features"]["columns"]
    assert "clv_365d" not in result.run["features"]["clustered_on"]  # not a defining family by default


def test_segments_can_be_numbered_by_predicted_value():
    result = segwise.segment(buying_log(), as_of=AS_OF, n_segments=4, random_state=0, order_by="clv_365d")
    means = [p.means["clv_365d"] for p in result.profiles]
    assert means == sorted(means, reverse=True)
    with pytest.raises(segwise.InputError, match="order_by 'no_such_column' is not a feature column"):
        segwise.segment(buying_log(), as_of=AS_OF, n_segments=2, random_state=0, order_by="no_such_column")
