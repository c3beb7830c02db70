"""Purchase-sequence features (journey family, with categories) on a tiny log worked out by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from segwise.data import load_transactions
from segwise.features import build_features

AS_OF = date(2024, 6, 1)
COLUMNS = ["spend_share_top3_categories", "repeat_category_rate", "category_switching_rate"]
LOG = pd.DataFrame(
    [
        ("1", "a", "2024-01-01", "X", 10.0), ("1", "a", "2024-01-01", "Y", 5.0),  # main X
        ("2", "a", "2024-01-10", "Y", 20.0),                                    # main Y: switch; Y seen: repeat
        ("3", "a", "2024-02-01", "Z", 7.0), ("3", "a", "2024-02-01", "W", 3.0),   # main Z: switch; all new
        ("4", "a", "2024-03-01", "W", 1.0), ("4", "a", "2024-03-01", "X", 2.0),   # main X: switch; repeat
        ("C5", "a", "2024-03-02", "Y", -20.0),                                  # a return: not a purchase
        ("6", "b", "2024-02-01", "V", 5.0),                                     # one order
        ("7", "c", "2024-02-01", "X", 5.0), ("8", "c", "2024-02-03", "X", 6.0),   # same category twice
        ("9", "d", "2024-01-05", "Q", 5.0), ("9", "d", "2024-01-05", "P", 5.0),   # tie: main P (first name)
        ("10", "d", "2024-02-05", "Q", 9.0),                                    # main Q: switch; Q seen: repeat
        # Two orders at the same first time: the first is the smaller order id (text order), "11" before "12",
        # whatever their categories' names; A is new at that time: no repeat; Z then A: a switch.
        ("12", "e", "2024-01-07", "A", 9.0), ("11", "e", "2024-01-07", "Z", 9.0),
        # The first order has no category: the first order with one counts.
        ("13", "f", "2024-01-02", None, 4.0), ("14", "f", "2024-03-02", "Y", 4.0),
    ],
    columns=["order_id", "customer_id", "ordered_at", "category", "amount"],
)


@pytest.fixture(scope="module")
def table():
    return build_features(load_transactions(LOG), as_of=AS_OF, families=["rfm", "journey"])


@pytest.fixture(scope="module")
def sequence(table) -> pd.DataFrame:
    return table.frame[COLUMNS]


def test_sequence_features_match_hand_computed_values(sequence):
    nan = float("nan")
    expected = pd.DataFrame(
        {
            # a: spend X 12, Y 25, Z 7, W 4: top three 44 of 48; 3 switches and 2 repeat orders of 3 later orders.
            "a": [44 / 48, 2 / 3, 1.0],
            "b": [1.0, nan, nan],
            "c": [1.0, 1.0, 0.0],
            "d": [1.0, 1.0, 1.0],
            "e": [1.0, 0.0, 1.0],
            "f": [1.0, nan, nan],  # one order with a category
        },
        index=COLUMNS,
    ).T
    np.testing.assert_allclose(sequence.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert list(sequence.index) == ["a", "b", "c", "d", "e", "f"]


def test_first_purchase_category_is_the_main_category_of_the_first_order(table):
    first = table.frame["first_purchase_category"]
    # a: X (10) over Y (5); b: V; c: X; d: P and Q tie at 5, the first name wins; e: order 11 (Z) is
    # first of the two at the same time; f: its first order has no category, the next one's Y counts.
    assert first.to_dict() == {"a": "X", "b": "V", "c": "X", "d": "P", "e": "Z", "f": "Y"}
    assert not pd.api.types.is_numeric_dtype(first)  # categorical: not cast to float with the numeric columns
    assert table.columns["first_purchase_category"].kind == "categorical"
    assert table.columns["first_purchase_category"].family == "journey"


def test_without_categories_there_are_no_sequence_columns():
    table = build_features(load_transactions(LOG.drop(columns="category")), as_of=AS_OF, families=["rfm", "journey"])
    assert not any(c in table.frame.columns for c in [*COLUMNS, "first_purchase_category"])


@pytest.mark.spark
@pytest.mark.slow
def test_sequence_features_on_spark_equal_duckdb(table, sequence):
    pytest.importorskip("pyspark")
    from segwise.engines import get_engine

    engine = get_engine("spark", master="local[1]", conf={"spark.ui.enabled": "false",
                                                           "spark.sql.shuffle.partitions": "1"})
    try:
        on_spark = build_features(load_transactions(LOG, engine=engine), as_of=AS_OF, families=["rfm", "journey"])
    finally:
        engine.close()
    spark = on_spark.frame[COLUMNS]
    assert list(spark.index) == list(sequence.index)
    np.testing.assert_array_equal(spark.to_numpy(), sequence.to_numpy())
    first = table.frame["first_purchase_category"]
    assert on_spark.frame["first_purchase_category"].to_dict() == first.to_dict()
