"""Property-based tests (hypothesis): features of random small transaction tables.

- the feature table does not depend on the order of the rows, nor on whether an
  order is exported as one line or split into several lines;
- ``n_orders``, ``monetary_total`` and ``recency_days`` equal a plain-Python
  reference computation;
- assigning the training customers with the saved model reproduces the training labels.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import segwise
from segwise.data import load_transactions
from segwise.features import build_features

AS_OF = dt.date(2025, 1, 1)
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def order_logs(draw) -> pd.DataFrame:
    """A log of 1-12 orders of 1-4 customers, 1-3 lines each, some orders being returns.

    Amounts are whole cents and distinct within an order (identical lines within one
    order are a double export, which the loader removes on purpose).
    """
    n_orders = draw(st.integers(1, 12))
    rows = []
    for number in range(n_orders):
        customer = draw(st.sampled_from(["C1", "C2", "C3", "C4"]))
        day = draw(st.dates(dt.date(2023, 1, 1), dt.date(2024, 12, 31)))
        ts = dt.datetime.combine(day, dt.time(draw(st.integers(0, 23)), draw(st.integers(0, 59))))
        cents = draw(st.lists(st.integers(2, 500_000), min_size=1, max_size=3, unique=True))
        sign = -1 if draw(st.integers(0, 5)) == 0 else 1
        for c in cents:
            rows.append((f"O{number}", customer, ts, sign * c / 100))
    log = pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "amount"])
    if not (log["amount"] > 0).any():
        log.loc[0, "amount"] = abs(log.loc[0, "amount"])
    return log


def features_of(log: pd.DataFrame) -> pd.DataFrame:
    table = build_features(load_transactions(log), as_of=AS_OF)
    return table.frame.sort_index()


def reference(log: pd.DataFrame) -> pd.DataFrame:
    """n_orders, monetary_total, recency_days computed directly from the rows."""
    out = {}
    for customer, rows in log.groupby("customer_id"):
        purchases = rows[rows["amount"] > 0]
        if purchases.empty:
            continue  # a customer with only returns has nothing to segment
        out[customer] = {
            "n_orders": float(purchases["order_id"].nunique()),
            "monetary_total": float(rows["amount"].sum()),
            "recency_days": float((AS_OF - purchases["ordered_at"].max().date()).days),
        }
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


@PROPERTY_SETTINGS
@given(log=order_logs(), data=st.data())
def test_features_do_not_depend_on_row_order(log, data):
    order = data.draw(st.permutations(list(range(len(log)))))
    shuffled = log.iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(features_of(shuffled), features_of(log), rtol=1e-9)


@PROPERTY_SETTINGS
@given(log=order_logs(), data=st.data())
def test_features_do_not_depend_on_splitting_an_order_into_lines(log, data):
    line = data.draw(st.integers(0, len(log) - 1))
    amount = log.loc[line, "amount"]
    cents = round(abs(amount) * 100)
    part = data.draw(st.integers(1, cents - 1))
    first, second = np.sign(amount) * part / 100, np.sign(amount) * (cents - part) / 100
    same_order = log[log["order_id"] == log.loc[line, "order_id"]]["amount"].tolist()
    if first == second or first in same_order or second in same_order:
        return  # identical lines in one order are a double export by definition
    split = pd.concat([log.drop(index=line), log.loc[[line]].assign(amount=first),
                       log.loc[[line]].assign(amount=second)], ignore_index=True)
    pd.testing.assert_frame_equal(features_of(split), features_of(log), rtol=1e-9)


@PROPERTY_SETTINGS
@given(log=order_logs())
def test_rfm_agrees_with_a_reference_implementation(log):
    features = features_of(log)[["n_orders", "monetary_total", "recency_days"]]
    expected = reference(log)[["n_orders", "monetary_total", "recency_days"]]
    assert features.index.tolist() == expected.index.tolist()
    pd.testing.assert_frame_equal(features, expected, rtol=1e-9, check_names=False, check_index_type=False)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_customers=st.integers(60, 200), seed=st.integers(0, 10_000), n_segments=st.integers(2, 4))
def test_the_saved_model_reproduces_the_training_labels(tmp_path_factory, n_customers, seed, n_segments):
    population = segwise.generate_population(n_customers, seed=seed)
    result = segwise.segment(population.orders, n_segments=n_segments, random_state=seed)
    path = tmp_path_factory.mktemp("model") / "model.segwise"
    result.model.save(path)
    again = segwise.load_model(path).assign(load_transactions(population.orders))
    training = result.assignments.set_index("customer_id")["segment_id"]
    assert again.set_index("customer_id")["segment_id"].reindex(training.index).tolist() == training.tolist()
