"""The hand-written yardstick of issue 21 computes segwise's columns, not lookalikes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import segwise
from bench.reference_duckdb import SAME_COLUMNS_FAMILIES, compute_same_columns

from .conftest import tiny_log


def _segwise_features(path) -> pd.DataFrame:
    tx = segwise.load_transactions(path)
    return segwise.build_features(tx, families=list(SAME_COLUMNS_FAMILIES)).frame


def _assert_same(ours: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert sorted(reference.columns) == sorted(ours.columns)
    assert sorted(reference.index) == sorted(ours.index)
    reference = reference.loc[list(ours.index)]
    for column in ours.columns:
        if ours[column].dtype == object or pd.api.types.is_string_dtype(ours[column]):
            assert reference[column].tolist() == ours[column].tolist(), column
        else:
            np.testing.assert_allclose(reference[column].to_numpy(float), ours[column].to_numpy(float),
                                       rtol=1e-9, atol=1e-9, err_msg=column)


def test_same_columns_query_equals_segwise_on_a_generated_log(small_population, tmp_path):
    path = tmp_path / "orders.parquet"
    orders = small_population.orders
    pq.write_table(orders if isinstance(orders, pa.Table) else pa.Table.from_pandas(orders, preserve_index=False),
                   path)
    ours = _segwise_features(path)
    # The log exercises the sequence columns (several orders, several categories).
    assert ours["category_switching_rate"].notna().sum() > 100
    assert ours["share_orders_top_season"].notna().sum() > 100
    _assert_same(ours, compute_same_columns(path))


def test_same_columns_query_breaks_ties_as_segwise(tmp_path):
    # Equal spend in two categories of one order (main category: first name), two
    # orders at the same time (first order: smaller id), a cancellation, a duplicate line.
    rows = [
        ("1", "a", "2024-01-01 10:00", 5.0, "toys", "web", False),
        ("1", "a", "2024-01-01 10:00", 5.0, "books", "web", False),
        ("2", "a", "2024-02-01 09:00", 3.0, "toys", "app", True),
        ("3", "a", "2024-02-01 09:00", 4.0, "home", "app", False),
        ("3", "a", "2024-02-01 09:00", 4.0, "home", "app", False),
        ("C4", "a", "2024-02-02 09:00", -3.0, "toys", "app", False),
        ("5", "b", "2024-03-01 12:00", 7.0, "home", "web", False),
        ("6", "b", "2024-06-01 20:00", 2.0, None, "web", True),
        ("7", "b", "2024-06-02 20:00", 2.0, "home", "web", False),
        ("8", "c", "2023-01-02 08:00", 9.0, "books", "store", False),
        ("9", "c", "2023-05-02 08:00", 9.0, "books", "store", False),
        ("10", "c", "2023-09-02 08:00", 1.0, "toys", "store", False),
        ("11", "c", "2024-01-02 08:00", 1.0, "toys", "store", False),
    ]
    log = tiny_log(rows, columns=("order_id", "customer_id", "ordered_at", "amount", "category", "channel",
                                  "discount"))
    path = tmp_path / "tiny.parquet"
    log.to_parquet(path, index=False)
    ours = _segwise_features(path)
    assert ours.loc["a", "first_purchase_category"] == "books"
    _assert_same(ours, compute_same_columns(path))
