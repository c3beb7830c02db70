"""``segwise run`` with no flags on the layouts real data arrives in.

(a) the synthetic order log, Parquet and CSV; (b) UCI Online Retail style invoice
lines (Latin-1, cancellations, blank ids, zero prices), dates day-first and
month-first; (c) a CDNOW-like whitespace-padded log, with a header line and
without one (then named with flags); (d) a mall-customers-like attribute table
alone (';', BOM, CRLF, missing incomes).
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from . import datasets
from .conftest import TRAIN_CUSTOMERS, TRAIN_SEED, Jobs, assert_ok


def read_run(out) -> dict:
    return json.loads((out / "run.json").read_text())


def expected_cleaning(orders: pd.DataFrame) -> dict[str, int]:
    """What the cleaning should report for a synthetic order log (computed independently)."""
    with_id = orders[orders["customer_id"].notna()]
    distinct = with_id.drop_duplicates()
    cancel = distinct["order_id"].str.startswith("C")
    return {
        "missing_customer_id": int(orders["customer_id"].isna().sum()),
        "duplicate_line": int(len(with_id) - len(distinct)),
        "cancellation": int(cancel.sum()),
        "customers": int(distinct.loc[~cancel, "customer_id"].nunique()),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of this module, each in its own directory: name -> (input file, Result, output dir)."""
    root = tmp_path_factory.mktemp("inputs")
    files = {
        "csv": datasets.write_order_log(
            root / "csv" / "orders.csv", datasets.population(TRAIN_CUSTOMERS, TRAIN_SEED).orders
        ),
        "uci_day_first": datasets.write_invoice_lines(root / "uci_day_first" / "online_retail.csv", day_first=True),
        "uci_month_first": datasets.write_invoice_lines(
            root / "uci_month_first" / "online_retail.csv", day_first=False
        ),
        "cdnow": datasets.write_cdnow(root / "cdnow" / "CDNOW_master.txt", header=True),
        "cdnow_no_header": datasets.write_cdnow(root / "cdnow_no_header" / "CDNOW_master.txt", header=False),
        "mall": datasets.write_mall_customers(root / "mall" / "Mall_Customers.csv"),
    }
    argv = {
        "csv": ["run", "orders.csv", "--out", "out"],
        "uci_day_first": ["run", "online_retail.csv", "--out", "out"],
        "uci_month_first": ["run", "online_retail.csv", "--out", "out"],
        "cdnow": ["run", "CDNOW_master.txt", "--out", "out"],
        "cdnow_no_header": [
            "run", "CDNOW_master.txt", "--no-header", "--column-names", "customer_id,date,count,dollar_value",
            "--out", "out",
        ],
        "mall": ["run", "--customers", "Mall_Customers.csv", "--out", "out"],
    }
    jobs = Jobs({name: (args, root / name) for name, args in argv.items()})

    class Runs:
        def __getitem__(self, name):
            result = jobs[name]
            return files[name], result, result.cwd / "out"

    return Runs()


# --------------------------------------------------------------------------- (a) synthetic order log


def test_parquet_order_log_runs_with_no_flags(trained):
    result = assert_ok(trained.result)
    run = read_run(trained.out)
    expected = expected_cleaning(trained.population.orders.to_pandas())

    assert f"segments of {expected['customers']:,} customers" in result.out
    assert "number of segments: k=" in result.out
    assert "outputs written to out/" in result.out
    assert (
        f"cleaning: missing customer id {expected['missing_customer_id']}, duplicate line "
        f"{expected['duplicate_line']}, cancellation {expected['cancellation']}"
    ) in result.err
    assert run["n_customers"] == expected["customers"] == TRAIN_CUSTOMERS
    for rule in ("missing_customer_id", "duplicate_line", "cancellation"):
        assert run["cleaning"][rule] == expected[rule], rule
    tx = run["input"]["transactions"]
    assert tx["source"] == "orders.parquet"
    assert tx["timestamp_format"] == "native timestamp"
    assert {k: tx["roles"][k] for k in ("customer_id", "timestamp", "amount", "order_id")} == {
        "customer_id": "customer_id", "timestamp": "ordered_at", "amount": "amount", "order_id": "order_id",
    }


def test_csv_order_log_gives_the_same_segments_as_parquet(runs, trained):
    """The same log as CSV (text everywhere) and as Parquet (typed columns): the same result."""
    _, result, out = runs["csv"]
    assert_ok(result)
    run, parquet_run = read_run(out), read_run(trained.out)
    assert run["input"]["transactions"]["timestamp_format"] == "ISO 8601"
    assert run["cleaning"] == parquet_run["cleaning"]
    assert run["n_segments"] == parquet_run["n_segments"]

    from_csv = pd.read_parquet(out / "assignments.parquet")
    from_parquet = pd.read_parquet(trained.out / "assignments.parquet")
    pd.testing.assert_frame_equal(
        from_csv.drop(columns="confidence"), from_parquet.drop(columns="confidence"), check_dtype=False
    )
    np.testing.assert_allclose(from_csv["confidence"], from_parquet["confidence"], atol=1e-9)


# --------------------------------------------------------------------------- (b) UCI invoice lines


@pytest.mark.parametrize(
    ("variant", "date_format", "order"),
    [("uci_day_first", "%d/%m/%Y %H:%M", "day first"), ("uci_month_first", "%m/%d/%Y %H:%M", "month first")],
)
def test_invoice_line_csv_runs_with_no_flags(runs, variant, date_format, order):
    log, result, out = runs[variant]
    assert_ok(result)
    run = read_run(out)
    tx = run["input"]["transactions"]

    # the dates: detected order, and really parsed that way
    assert order in tx["timestamp_format"]
    assert tx["timestamp_format"] == f"{date_format} ({order})"
    lines = pd.read_csv(log.path, encoding="latin-1", dtype=str, keep_default_na=False)
    stamps = pd.to_datetime(lines["InvoiceDate"], format=date_format)
    assert tx["first_timestamp"] == str(stamps.min())
    assert tx["last_timestamp"] == str(stamps.max())
    assert run["as_of"] == str(stamps.max().date() + timedelta(days=1))

    # the dirt planted in the file, each counted under its rule
    assert run["cleaning"]["missing_customer_id"] == log.blank_customer_ids
    assert run["cleaning"]["non_positive_price"] == log.zero_prices
    assert run["cleaning"]["cancellation"] == log.cancellations
    assert run["cleaning"]["duplicate_line"] == 0
    assert tx["cleaning"]["input_rows"] == log.lines
    assert tx["rows"] == log.lines - log.blank_customer_ids - log.zero_prices
    assert run["n_customers"] == log.customers
    assert (
        f"cleaning: missing customer id {log.blank_customer_ids}, non positive price {log.zero_prices}, "
        f"cancellation {log.cancellations}"
    ) in result.err

    # the columns: amount is Quantity x UnitPrice, the invoice is the order
    roles = tx["roles"]
    assert (roles["customer_id"], roles["timestamp"], roles["order_id"]) == ("CustomerID", "InvoiceDate", "InvoiceNo")
    assert (roles["quantity"], roles["unit_price"], roles["amount"]) == ("Quantity", "UnitPrice", None)
    kept = lines[(lines["CustomerID"] != "") & (lines["UnitPrice"].astype(float) > 0)]
    net_spend = (kept["Quantity"].astype(float) * kept["UnitPrice"].astype(float)).sum()
    features = pd.read_parquet(out / "features.parquet")
    assert features["monetary_total"].sum() == pytest.approx(net_spend, abs=0.01)

    # the encoding: read as Latin-1, and the user is told
    assert log.accented_lines > 0
    assert "warning: online_retail.csv: the file is not valid UTF-8; it was read as Latin-1" in result.err
    assert any("Latin-1" in note for note in tx["cleaning"]["notes"])
    assert len(pd.read_parquet(out / "assignments.parquet")) == log.customers


# --------------------------------------------------------------------------- (c) CDNOW whitespace log


@pytest.mark.parametrize("variant", ["cdnow", "cdnow_no_header"])
def test_whitespace_separated_log_runs(runs, variant):
    log, result, out = runs[variant]
    assert_ok(result)
    run = read_run(out)
    tx = run["input"]["transactions"]

    assert tx["timestamp_format"] == "%Y%m%d"
    roles = tx["roles"]
    assert (roles["customer_id"], roles["timestamp"], roles["amount"]) == ("customer_id", "date", "dollar_value")
    assert tx["cleaning"]["input_rows"] == log.lines  # the header line is not a row
    assert run["cleaning"]["zero_amount"] == log.zero_amounts
    assert run["n_customers"] == log.customers
    assert run["n_segments"] >= 2
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert len(assignments) == log.customers
    assert "00001" in set(assignments["customer_id"])  # zero-padded ids stay text


def test_whitespace_log_without_header_matches_the_one_with_header(runs):
    with_header = pd.read_parquet(runs["cdnow"][2] / "assignments.parquet")
    without_header = pd.read_parquet(runs["cdnow_no_header"][2] / "assignments.parquet")
    pd.testing.assert_frame_equal(with_header, without_header)


# --------------------------------------------------------------------------- (d) customer table alone


def test_customer_table_alone_is_segmented(runs):
    table, result, out = runs["mall"]
    assert_ok(result)
    run = read_run(out)
    customers = run["input"]["customers"]

    assert run["input"]["transactions"] is None
    assert customers["id_column"] == "CustomerID"  # BOM stripped, name detected
    assert customers["rows"] == table.rows
    assert list(customers["columns"]) == ["Gender", "Age", "Annual Income (k$)", "Spending Score (1-100)"]
    assert customers["columns"]["Annual Income (k$)"] == "numeric"
    assert run["n_segments"] >= 2
    assert f"{run['n_segments']} segments of {table.rows} customers" in result.out

    assignments = pd.read_parquet(out / "assignments.parquet")
    assert sorted(assignments["customer_id"], key=int) == [str(i) for i in range(1, table.rows + 1)]
    assert assignments["segment_id"].nunique() == run["n_segments"]
    features = pd.read_parquet(out / "features.parquet")
    # empty income fields are missing values, not zeros (imputed later, never dropped)
    assert int(features["Annual Income (k$)"].isna().sum()) == table.missing_incomes
    assert len(features) == table.rows


def test_customer_table_segments_are_ordered_by_value(runs):
    _, result, out = runs["mall"]
    assert_ok(result)
    profiles = json.loads((out / "profiles.json").read_text())
    value_column = profiles["value_column"]
    assert value_column in ("Annual Income (k$)", "Spending Score (1-100)")
    means = [segment["means"][value_column] for segment in sorted(profiles["segments"], key=lambda s: s["segment_id"])]
    assert means == sorted(means, reverse=True)
