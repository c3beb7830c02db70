"""The seasonality family on a tiny log, against values worked out by hand, on DuckDB and on Spark."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from segwise.data import load_transactions
from segwise.features import build_features
from segwise.features.seasonality import MIN_SEASON_DAYS, MIN_SEASON_ORDERS

AS_OF = date(2025, 1, 1)
COLUMNS = ["share_orders_q1", "share_orders_q2", "share_orders_q3", "share_orders_q4", "share_orders_top_season",
           "season_concentration"]
LOG = pd.DataFrame(
    [
        # a: four orders, every one on 1 December (day 335 or 336): one season, concentration 1.
        ("a", "2021-12-01"), ("a", "2022-12-01"), ("a", "2023-12-01"), ("a", "2024-12-01"),
        # b: one order per quarter, on days 1, 91, 182, 274 of 2023 (about a quarter-circle apart).
        ("b", "2023-01-01"), ("b", "2023-04-01"), ("b", "2023-07-01"), ("b", "2023-10-01"),
        # c: three orders only: not enough orders.
        ("c", "2023-03-01"), ("c", "2023-03-05"), ("c", "2023-06-01"),
        # d: five orders, first one less than a year before as_of: not enough history.
        ("d", "2024-02-01"), ("d", "2024-03-01"), ("d", "2024-04-01"), ("d", "2024-05-01"), ("d", "2024-06-01"),
    ],
    columns=["customer_id", "ordered_at"],
).assign(amount=10.0)


def circular_concentration(days_of_year: list[int]) -> float:
    angles = [2 * math.pi * (d - 1) / 365.25 for d in days_of_year]
    return math.hypot(sum(map(math.cos, angles)) / len(angles), sum(map(math.sin, angles)) / len(angles))


def expected() -> pd.DataFrame:
    nan = float("nan")
    return pd.DataFrame(
        {
            "a": [0, 0, 0, 1, 1, circular_concentration([335, 335, 335, 336])],
            "b": [0.25, 0.25, 0.25, 0.25, 0.25, circular_concentration([1, 91, 182, 274])],
            "c": [nan] * 6,
            "d": [nan] * 6,
        },
        index=COLUMNS,
    ).T


def seasonality_of(engine=None) -> pd.DataFrame:
    tx = load_transactions(LOG, engine=engine) if engine is not None else load_transactions(LOG)
    return build_features(tx, as_of=AS_OF, families=["rfm", "seasonality"]).frame[COLUMNS]


def test_the_documented_minimum_history():
    assert (MIN_SEASON_ORDERS, MIN_SEASON_DAYS) == (4, 365)


def test_seasonality_matches_hand_computed_values():
    got = seasonality_of()
    pd.testing.assert_frame_equal(got, expected(), check_names=False, check_index_type=False, atol=1e-12, rtol=0)
    # Sanity of the hand values: one day of the year is fully concentrated, four quarters nearly not.
    assert got.loc["a", "season_concentration"] > 0.9999 and got.loc["b", "season_concentration"] < 0.01


@pytest.mark.spark
@pytest.mark.slow
def test_seasonality_on_spark_equals_duckdb():
    pytest.importorskip("pyspark")
    from segwise.engines import get_engine

    engine = get_engine("spark", master="local[1]", conf={"spark.ui.enabled": "false",
                                                           "spark.sql.shuffle.partitions": "1"})
    try:
        spark = seasonality_of(engine)
    finally:
        engine.close()
    local = seasonality_of()
    assert list(spark.index) == list(local.index)
    np.testing.assert_array_equal(spark.to_numpy(), local.to_numpy())


def test_without_a_year_of_history_the_family_is_left_out_with_a_note():
    short = LOG[LOG["customer_id"] == "d"]
    table = build_features(load_transactions(short), as_of=AS_OF, families=["rfm", "seasonality"])
    assert not any(c in table.frame.columns for c in COLUMNS)
    assert any("the seasonality family is left out" in note for note in table.notes)


def test_seasonal_shoppers_archetype_needs_a_clearly_seasonal_segment():
    from segwise.naming import ARCHETYPES, MIN_ARCHETYPE_SCORE

    needs, score = ARCHETYPES["Seasonal Shoppers"]
    assert set(needs) == {"share_orders_top_season", "season_concentration", "n_orders"}
    seasonal = {"share_orders_top_season": 1.8, "season_concentration": 1.6, "n_orders": 0.4}
    assert score(seasonal) >= MIN_ARCHETYPE_SCORE
    # Concentrated in one quarter but not on the circle (two opposite months), or spread out: not seasonal.
    assert score({**seasonal, "season_concentration": 0.2}) < MIN_ARCHETYPE_SCORE
    assert score({"share_orders_top_season": -0.5, "season_concentration": -0.4, "n_orders": 1.0}) < 0
    # Missing seasonality (customers without a year of history) never makes the name.
    assert score({"n_orders": 2.0}) < MIN_ARCHETYPE_SCORE
