"""Every feature family computed on a tiny log and checked against values worked out by hand."""

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from segwise.data import load_customers, load_transactions
from segwise.errors import InputError
from segwise.features import FAMILIES, build_features

COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "category", "channel", "discount")
ROWS = [
    ("1", "a", "2024-01-01 10:00", 10.0, "X", "web", False),   # Monday morning, two lines
    ("1", "a", "2024-01-01 10:00", 5.0, "Y", "web", False),
    ("2", "a", "2024-01-06 20:00", 20.0, "X", "app", True),    # Saturday evening
    ("3", "a", "2024-03-01 09:00", 30.0, "X", "web", False),   # Friday morning
    ("C9", "a", "2024-03-05 12:00", -10.0, "X", "web", False),  # a return
    ("4", "b", "2024-02-15 15:00", 8.0, "Z", "store", False),  # Thursday afternoon
    ("5", "c", "2024-04-05 00:00", 99.0, "Z", "web", False),   # on as_of: excluded
    ("C6", "d", "2024-02-01 12:00", -3.0, "Z", "web", False),  # only a return
]
AS_OF = date(2024, 4, 5)


@pytest.fixture(scope="module")
def features():
    log = pd.DataFrame(ROWS, columns=COLUMNS)
    log["ordered_at"] = pd.to_datetime(log["ordered_at"])
    return build_features(load_transactions(log), as_of=AS_OF)


def test_customers_and_exclusions(features):
    assert list(features.frame.index) == ["a", "b"]
    assert features.excluded == {"after_as_of": 1, "customers_with_only_returns": 1}
    assert features.as_of == AS_OF


def test_rfm(features):
    a, b = features.frame.loc["a"], features.frame.loc["b"]
    assert (a.recency_days, b.recency_days) == (35, 50)        # Mar 1 -> Apr 5, Feb 15 -> Apr 5
    assert (a.n_orders, b.n_orders) == (3, 1)                  # the return is not an order
    assert (a.monetary_total, b.monetary_total) == (55.0, 8.0)  # 10 + 5 + 20 + 30 - 10
    assert a.monetary_avg == pytest.approx(55 / 3)
    assert (a.tenure_days, b.tenure_days) == (95, 50)          # Jan 1 -> Apr 5 (leap year)
    assert (a.active_days, b.active_days) == (60, 0)           # Jan 1 -> Mar 1 (the return is not a purchase)


def test_affinity(features):
    a, b = features.frame.loc["a"], features.frame.loc["b"]
    assert (a.n_categories, b.n_categories) == (2, 1)
    assert a.top_category_share == 1.0                         # X is in all 3 orders
    p, q = 60 / 65, 5 / 65                                     # purchase spend in X and Y
    assert a.category_entropy == pytest.approx(-(p * math.log2(p) + q * math.log2(q)))
    assert b.category_entropy == 0.0
    assert (a.discount_share, b.discount_share) == (pytest.approx(1 / 3), 0.0)


def test_engagement(features):
    a, b = features.frame.loc["a"], features.frame.loc["b"]
    assert features.spec.channel_levels == ["web", "app", "store"]   # by purchase lines, ties by name
    assert (a.share_channel_web, a.share_channel_app, a.share_channel_store) == (
        pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0)
    assert b.share_channel_store == 1.0
    assert a.share_weekend_orders == pytest.approx(1 / 3) and b.share_weekend_orders == 0.0
    assert (a.share_orders_morning, a.share_orders_evening, a.share_orders_afternoon, a.share_orders_night) == (
        pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0, 0.0)
    assert b.share_orders_afternoon == 1.0


def test_journey(features):
    a, b = features.frame.loc["a"], features.frame.loc["b"]
    gaps = [5 + 10 / 24, 54 + 13 / 24]                       # Jan 1 10:00 -> Jan 6 20:00 -> Mar 1 09:00
    assert a.interpurchase_days_mean == pytest.approx(np.mean(gaps))
    assert a.interpurchase_days_std == pytest.approx(np.std(gaps))
    assert math.isnan(b.interpurchase_days_mean) and math.isnan(b.interpurchase_days_std)
    # Windows: last 90 days = [Jan 6, Apr 5), the 90 before = [Oct 8, Jan 6).
    assert a.purchase_rate_change == pytest.approx((2 - 1) / 3)
    assert a.spend_trend == pytest.approx((40 - 15) / 55)      # 20 + 30 - 10 vs 10 + 5
    assert (b.purchase_rate_change, b.spend_trend) == (1.0, 1.0)


def test_every_column_is_documented_with_unit_and_meaning(features):
    assert list(features.columns) == list(features.frame.columns)
    for name, column in features.columns.items():
        assert column.unit and len(column.description) > 20, name
        assert column.family in FAMILIES
    assert features.families()["rfm"] == ["recency_days", "n_orders", "monetary_total", "monetary_avg", "tenure_days",
                                          "active_days"]


def test_default_as_of_is_the_day_after_the_last_transaction():
    log = pd.DataFrame(ROWS, columns=COLUMNS)
    log["ordered_at"] = pd.to_datetime(log["ordered_at"])
    table = build_features(load_transactions(log))
    assert table.as_of == date(2024, 4, 6)
    assert table.excluded["after_as_of"] == 0
    assert table.frame.loc["c", "recency_days"] == 1


def test_as_of_before_the_data_is_refused_and_bad_dates_explained():
    log = pd.DataFrame(ROWS, columns=COLUMNS)
    log["ordered_at"] = pd.to_datetime(log["ordered_at"])
    tx = load_transactions(log)
    with pytest.raises(InputError, match=r"as_of 2023-06-01 is on or before the first transaction \(2024-01-01\)"):
        build_features(tx, as_of="2023-06-01")
    with pytest.raises(InputError, match="as_of '31/12/2024' is not a date: use the form YYYY-MM-DD"):
        build_features(tx, as_of="31/12/2024")


def test_without_order_ids_orders_are_distinct_purchase_times():
    log = pd.DataFrame({
        "customer_id": ["a", "a", "a"], "date": ["2024-01-01", "2024-01-01", "2024-01-05"], "amount": [1.0, 2.0, 3.0],
    })
    table = build_features(load_transactions(log), as_of="2024-01-10")
    row = table.frame.loc["a"]
    assert (row.n_orders, row.monetary_total, row.monetary_avg) == (2, 6.0, 3.0)
    assert "affinity" not in table.families() and "share_orders_morning" not in table.columns  # dates only


def test_customer_attributes_are_joined_and_dates_become_days(tmp_path):
    log = pd.DataFrame(ROWS, columns=COLUMNS)
    log["ordered_at"] = pd.to_datetime(log["ordered_at"])
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,age,region,signup\na,30,North,2024-03-26\nb,,South,2024-01-01\nz,50,East,2024-02-02\n")
    table = build_features(load_transactions(log), customers=load_customers(path), as_of=AS_OF)
    assert table.frame.loc["a", "age"] == 30 and math.isnan(table.frame.loc["b", "age"])
    assert table.frame.loc["a", "days_since_signup"] == 10
    assert table.frame.loc["b", "region"] == "South"
    assert table.columns["region"].kind == "categorical"
    assert "1 customers of the customer table have no purchase before as_of" in table.notes


def test_a_model_spec_refuses_data_without_the_columns_it_needs():
    log = pd.DataFrame(ROWS, columns=COLUMNS)
    log["ordered_at"] = pd.to_datetime(log["ordered_at"])
    spec = build_features(load_transactions(log), as_of=AS_OF).spec
    bare = log[["order_id", "customer_id", "ordered_at", "amount"]]
    with pytest.raises(InputError, match="the model uses category features but this log has no category column"):
        build_features(load_transactions(bare), spec=spec)
