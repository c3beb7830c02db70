"""Purchases of amount zero (a free item, a $0.00 CDNOW line) are purchases.

They count for recency, orders and tenure and add nothing to spend; the cleaning
rule ``zero_amount`` counts them and keeps them.
"""

from datetime import date

import pandas as pd
import pytest

from segwise.data import load_transactions
from segwise.features import build_features

LOG = pd.DataFrame(
    [
        ("1", "a", "2024-01-01", 10.0),
        ("2", "a", "2024-02-01", 0.0),    # a free item: the latest order of a
        ("3", "b", "2024-01-15", 0.0),    # b's only purchase is free: b is still a customer
        ("4", "c", "2024-01-10", 5.0),
        ("C5", "c", "2024-01-20", -5.0),  # a return, not an order
    ],
    columns=["order_id", "customer_id", "ordered_at", "amount"],
)


@pytest.fixture(scope="module")
def table():
    return build_features(load_transactions(LOG), as_of=date(2024, 3, 1), families=["rfm"])


def test_zero_amount_lines_are_counted_and_kept():
    tx = load_transactions(LOG)
    assert tx.cleaning.rules["zero_amount"] == 2
    assert tx.cleaning.removed_rows == 0
    assert tx.n_customers == 3


def test_zero_amount_purchases_are_orders_without_spend(table):
    f = table.frame
    assert list(f.index) == ["a", "b", "c"]
    assert f.loc["a", ["n_orders", "monetary_total", "recency_days", "tenure_days"]].tolist() == [2, 10.0, 29, 60]
    assert f.loc["b", ["n_orders", "monetary_total", "recency_days", "tenure_days"]].tolist() == [1, 0.0, 46, 46]
    assert f.loc["c", ["n_orders", "monetary_total"]].tolist() == [1, 0.0]
