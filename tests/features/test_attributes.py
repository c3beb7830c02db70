"""Customer attributes read from the order log (segwise.features.attributes)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import segwise
from segwise.data import load_transactions
from segwise.features import build_features

from ..e2e import datasets
from ..e2e.conftest import assert_ok, run_segwise


def _log(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "amount", "store", "payment"])
    frame["ordered_at"] = pd.to_datetime(frame["ordered_at"])
    return frame


#: Customer a: store North on 9 of 10 lines; b: South, and North once after the as_of used
#: below; c, d, e: one store each. The payment method changes from line to line: it
#: describes the purchase, not the customer. (Mean share of the most frequent store over
#: the whole log: (0.9 + 0.75 + 1 + 1 + 1) / 5 = 0.93; of the payment: below 0.9.)
ROWS = (
    [(f"a{i}", "a", f"2024-01-{i + 2:02d}", 10.0 + i, "South" if i == 3 else "North", "card" if i % 2 else "cash")
     for i in range(10)]
    + [("b1", "b", "2024-01-03", 50.0, "South", "cash"), ("b2", "b", "2024-01-20", 40.0, "South", "card"),
       ("b3", "b", "2024-01-25", 20.0, "South", "cash"), ("b4", "b", "2024-02-10", 45.0, "North", "card")]
    + [(f"{c}{i}", c, f"2024-01-{4 + 5 * i:02d}", 20.0 + i, store, "card" if i else "cash")
       for c, store in (("c", "North"), ("d", "South"), ("e", "North")) for i in range(2)]
)


def test_a_column_constant_per_customer_becomes_an_attribute_and_a_line_level_one_does_not():
    tx = load_transactions(_log(ROWS))
    assert set(tx.attribute_columns.values()) == {"store", "payment"}
    features = build_features(tx, as_of="2024-02-01")
    assert features.spec.log_attributes == {"store": "store"}
    assert "payment" not in features.frame.columns
    frame = features.frame
    assert frame.loc["a", "store"] == "North" and frame.loc["a", "store_share"] == pytest.approx(9 / 10)
    # b's North line is after as_of: it does not count.
    assert frame.loc["b", "store"] == "South" and frame.loc["b", "store_share"] == 1.0
    assert frame.loc["c", "store"] == "North" and frame.loc["c", "store_share"] == 1.0
    assert features.columns["store"].kind == "categorical" and features.columns["store"].family == "log_attributes"
    assert features.columns["store_share"].unit == "share 0-1"


def test_a_tie_goes_to_the_first_value_in_text_order_and_the_share_counts_every_line():
    rows = [("o1", "a", "2024-01-02", 10.0, "South", "card"), ("o2", "a", "2024-01-03", 10.0, "North", "card"),
            ("o3", "b", "2024-01-02", 10.0, "South", "card"), ("o4", "b", "2024-01-05", 10.0, "South", "card"),
            ("o5", "c", "2024-01-02", 10.0, "North", "card"), ("o6", "c", "2024-01-05", 10.0, "North", "card"),
            ("o7", "d", "2024-01-02", 10.0, "North", "card"), ("o8", "d", "2024-01-05", 10.0, "North", "card"),
            ("o9", "e", "2024-01-02", 10.0, "South", "card"), ("o10", "e", "2024-01-05", 10.0, "South", "card"),
            ("o11", "f", "2024-01-02", 10.0, "South", "card"), ("o12", "f", "2024-01-05", 10.0, "South", "card"),
            ("o13", "g", "2024-01-02", 10.0, "North", "card"), ("o14", "g", "2024-01-05", 10.0, "North", "card"),
            ("o15", "h", "2024-01-02", 10.0, "North", "card"), ("o16", "h", "2024-01-05", 10.0, "North", "card"),
            ("o17", "i", "2024-01-02", 10.0, "South", "card"), ("o18", "i", "2024-01-05", 10.0, "South", "card"),
            ("o19", "j", "2024-01-02", 10.0, "South", "card"), ("o20", "j", "2024-01-05", 10.0, "South", "card")]
    features = build_features(load_transactions(_log(rows)), as_of="2024-02-01")
    # 9 of 10 customers always at one store: the mean share is (9 + 0.5) / 10 = 0.95 >= 0.9.
    assert features.spec.log_attributes == {"store": "store"}
    assert features.frame.loc["a", "store"] == "North" and features.frame.loc["a", "store_share"] == 0.5


def _population_with_stores() -> pd.DataFrame:
    """300 synthetic customers whose lines carry their store (one of three, by customer)."""
    orders = datasets.population(300, 4, clean=True).orders.to_pandas()
    orders["store"] = pd.Series(["Harbour", "Old Town", "Station"])[orders["customer_id"] % 3].to_numpy()
    return orders


def test_attributes_describe_segments_and_join_the_definition_with_features():
    result = segwise.segment(_population_with_stores(), n_segments=3, features=["rfm", "store"], random_state=0)
    assert "store" in result.model.segmenter.feature_columns_
    profiles = result.profiles.to_dict()
    assert any("store" in segment.get("categories", {}) for segment in profiles["segments"]), profiles


def test_kprototypes_runs_on_an_online_retail_log_with_no_extra_flags(tmp_path):
    log = datasets.write_invoice_lines(tmp_path / "online_retail.csv", n_customers=300, seed=5)
    assert_ok(run_segwise("run", log.path.name, "--method", "kprototypes", "--out", "out", "--no-store",
                          cwd=tmp_path))
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "country" in run["features"]["clustered_on"] and run["method"] == "kprototypes"
    assert run["method_details"]["prepared_columns"][-1].startswith("country")
    features = pd.read_parquet(tmp_path / "out" / "features.parquet")
    assert set(features["country"]) <= {"United Kingdom", "France", "EIRE"}
    assert (features["country_share"] >= 0.5).all() and features["country_share"].mean() > 0.95
    # The saved model assigns the same customers to the same segments (country recomputed from the log).
    assert_ok(run_segwise("assign", "out/model.segwise", log.path.name, "--out", "again.parquet", cwd=tmp_path))
    written = pd.read_parquet(tmp_path / "out" / "assignments.parquet").set_index("customer_id")
    again = pd.read_parquet(tmp_path / "again.parquet").set_index("customer_id").loc[written.index]
    assert (again["segment_id"] == written["segment_id"]).all()


def test_a_model_using_a_log_attribute_names_it_when_the_new_log_lacks_it(tmp_path):
    log = _population_with_stores()
    result = segwise.segment(log, n_segments=3, features=["rfm", "store"], random_state=0)
    with pytest.raises(segwise.InputError, match="the customer attribute 'store' read from the order log"):
        result.model.assign(load_transactions(log.drop(columns=["store"])))


