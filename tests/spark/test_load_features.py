"""Loading, cleaning and features on Spark equal the DuckDB engine's on the same logs."""

from __future__ import annotations

import dataclasses
import numpy as np
import pandas as pd
import pytest

from segwise.data import load_transactions
from segwise.errors import InputError
from segwise.features import build_features

# A Spark session takes tens of seconds to start: the module is slow as a whole.
pytestmark = [pytest.mark.spark, pytest.mark.slow]

# Counts are compared exactly; every other feature within 1e-9 relative.
COUNT_COLUMNS = {"n_orders", "n_categories", "recency_days", "tenure_days", "active_days"}


def assert_same_models(local, spark):
    """Fitted model records equal, their numbers within 1e-9 relative.

    The value family's Gamma-Gamma fit sees mean spends summed in another order on
    Spark (they differ in the last digit); its optimum is determined to about 1e-12
    relative, not bit for bit, so exact equality would test summation order.
    """
    if isinstance(local, dict):
        assert isinstance(spark, dict) and spark.keys() == local.keys()
        for key in local:
            assert_same_models(local[key], spark[key])
    elif isinstance(local, float):
        assert spark == pytest.approx(local, rel=1e-9, abs=1e-12)
    else:
        assert spark == local


def assert_same_features(local, spark):
    assert list(spark.frame.columns) == list(local.frame.columns)
    assert list(spark.frame.index) == list(local.frame.index)
    assert spark.excluded == local.excluded and spark.as_of == local.as_of
    assert dataclasses.replace(spark.spec, models={}) == dataclasses.replace(local.spec, models={})
    assert_same_models(local.spec.models, spark.spec.models)
    for column in local.frame.columns:
        if local.columns[column].kind == "categorical":
            assert spark.frame[column].tolist() == local.frame[column].tolist(), column
            continue
        expected, actual = local.frame[column].to_numpy(float), spark.frame[column].to_numpy(float)
        if column in COUNT_COLUMNS:
            np.testing.assert_array_equal(actual, expected, err_msg=column)
        else:
            np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, err_msg=column)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_cleaning_counts_and_every_feature_equal_duckdb(spark_engine, synthetic_log, fmt):
    local_tx = load_transactions(synthetic_log[fmt])
    spark_tx = load_transactions(synthetic_log[fmt], engine=spark_engine)
    assert spark_tx.cleaning.to_dict() == local_tx.cleaning.to_dict()
    assert spark_tx.cleaning.rules["duplicate_line"] > 0 and spark_tx.cleaning.rules["cancellation"] > 0
    assert (spark_tx.roles, spark_tx.timestamp_format, spark_tx.has_time_of_day) == (
        local_tx.roles, local_tx.timestamp_format, local_tx.has_time_of_day)
    assert (spark_tx.n_rows, spark_tx.n_customers) == (local_tx.n_rows, local_tx.n_customers)
    assert (spark_tx.first_timestamp, spark_tx.last_timestamp) == (local_tx.first_timestamp, local_tx.last_timestamp)
    local = build_features(local_tx, as_of="2024-10-01")
    # Every family, the categorical journey column included (compared as text, level by level).
    assert local.columns["first_purchase_category"].kind == "categorical"
    assert local.frame["first_purchase_category"].nunique() > 1
    # The category_mix shares: levels learned by each engine (compared with the spec), then shares.
    assert local.spec.category_levels and any(c.startswith("share_category_") for c in local.frame.columns)
    # The returns share (the log has cancellations): the same returned order keys on both engines.
    assert local.spec.has_returns and local.frame["share_returned_orders"].gt(0).any()
    assert_same_features(local, build_features(spark_tx, as_of="2024-10-01"))


def test_cleaned_log_is_computed_once_and_served_from_the_cache(spark_engine, synthetic_log):
    # Every feature family reads the cleaned log; if its cache were dropped (as a
    # dropped upstream view does on Spark) each query would parse the file again.
    transactions = load_transactions(synthetic_log["parquet"], engine=spark_engine)
    build_features(transactions)
    query = spark_engine.spark.sql(f"SELECT count(*) FROM {spark_engine.quote(transactions.table_name)}")
    plan = query._jdf.queryExecution().executedPlan().toString()
    assert "InMemoryTableScan" in plan


MESSY = """Invoice,CustomerID,InvoiceDate,Quantity,UnitPrice,Channel
1001,17850.0,13/01/2024 08:26:00,6,2.55,web
1001,17850.0,13/01/2024 08:26:00,6,2.55,web
1001,17850.0,13/01/2024 08:26:00,2,3.10,web
C1002,17850.0,14/01/2024 09:00:00,-1,2.55,web
1003,,15/01/2024 10:00:00,1,1.00,app
1004,13047,2/02/2024 11:30:00,3,0,app
1005,13047,03/02/2024 23:59:59,1,5.00,app
1006,12583,20/02/2024 07:00:00,4,1.25,store
1007,12583,21/02/2024 07:00:00,1,8.00,store
"""


def test_text_log_with_day_first_fractional_dates_and_invoice_cancellations(spark_engine, tmp_path):
    path = tmp_path / "retail.csv"
    path.write_text(MESSY)
    local_tx = load_transactions(str(path))
    spark_tx = load_transactions(str(path), engine=spark_engine)
    assert spark_tx.timestamp_format == local_tx.timestamp_format
    assert spark_tx.cleaning.to_dict() == local_tx.cleaning.to_dict()
    assert spark_tx.cleaning.rules == {
        "missing_customer_id": 1, "missing_timestamp": 0, "invalid_amount": 0, "non_positive_price": 1,
        "zero_amount": 0, "duplicate_line": 1, "cancellation": 1,
    }
    columns = ["customer_id", "order_id", "ts", "amount", "is_return", "channel"]
    by = ["customer_id", "ts", "amount"]
    local_rows = local_tx.to_pandas()[columns].sort_values(by).reset_index(drop=True)
    spark_rows = spark_tx.to_pandas()[columns].sort_values(by).reset_index(drop=True)
    pd.testing.assert_frame_equal(spark_rows, local_rows, check_dtype=False)
    assert_same_features(build_features(local_tx), build_features(spark_tx))


def test_sub_second_timestamps_give_the_same_gaps(spark_engine):
    # epoch_seconds is the one feature expression that is not portable as Ibis
    # compiles it (Spark's unix_timestamp drops fractions); segwise's Spark variant keeps them.
    log = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "b"],
        "ordered_at": pd.to_datetime(["2024-01-01 10:00:00.250", "2024-01-01 10:00:01.125", "2024-01-03 08:00:00.500",
                                      "2024-01-02 00:00:00.000", "2024-01-02 00:00:00.750"]),
        "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
    })
    local = build_features(load_transactions(log))
    spark = build_features(load_transactions(log, engine=spark_engine))
    assert local.frame.loc["b", "interpurchase_days_mean"] == pytest.approx(0.75 / 86400)
    assert_same_features(local, spark)


def test_spark_dataframe_and_catalog_table_inputs(spark_engine, synthetic_log):
    frame = spark_engine.spark.read.parquet(synthetic_log["parquet"])
    from_frame = load_transactions(frame, engine=spark_engine)
    frame.createOrReplaceTempView("segwise_test_orders")
    from_table = load_transactions(None, table="segwise_test_orders", engine=spark_engine)
    local = load_transactions(synthetic_log["parquet"])
    assert from_frame.source == "Spark DataFrame" and from_table.source == "Spark table segwise_test_orders"
    assert from_frame.cleaning.rules == from_table.cleaning.rules == local.cleaning.rules


def test_errors_name_the_source_column_and_values(spark_engine, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("customer_id,date,amount\na,2024-01-01,10\nb,2024-01-02,1O\nc,2024-01-03,abc\n")
    with pytest.raises(InputError, match=r"bad\.csv: column 'amount': 2 values are not numbers \(for example: "):
        load_transactions(str(path), engine=spark_engine)
    with pytest.raises(InputError, match=r"no such file or directory"):
        load_transactions(str(tmp_path / "missing.parquet"), engine=spark_engine)
    with pytest.raises(InputError, match=r"no table 'no_such_table' in the Spark catalog"):
        load_transactions(None, table="no_such_table", engine=spark_engine)
    dates = tmp_path / "dates.csv"
    dates.write_text("customer_id,date,amount\na,2024-01-01,10\nb,2024-13-45,12\n")
    with pytest.raises(InputError, match=r"column 'date'"):
        load_transactions(str(dates), engine=spark_engine)


def test_a_decimal_comma_is_read_as_on_duckdb(spark_engine, tmp_path):
    path = tmp_path / "komma.csv"
    path.write_text("customer_id;date;amount\na;2024-01-01;1.234,50\na;2024-01-05;4\nb;2024-01-02;-3,25\n"
                    "c;2024-01-03;7,25\n")
    spark = load_transactions(str(path), engine=spark_engine, delimiter=";")
    local = load_transactions(str(path), delimiter=";")
    for tx in (spark, local):
        got = tx.to_pandas().sort_values(["customer_id", "ts"])["amount"].tolist()
        assert got == [1234.5, 4.0, -3.25, 7.25]
        assert any("'amount' is written with a decimal comma" in note for note in tx.cleaning.notes)
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("customer_id;date;amount\na;2024-01-01;1,50\nb;2024-01-02;12.50\n")
    with pytest.raises(InputError, match=r"column 'amount': 1 values are not numbers"):
        load_transactions(str(mixed), engine=spark_engine, delimiter=";")
