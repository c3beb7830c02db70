"""Loading and cleaning: every cleaning rule counted on tiny tables, every source kind, every bad input."""

import math
import warnings

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from segwise.data import CLEANING_RULES, load_customers, load_transactions
from segwise.errors import DataWarning, InputError

from .conftest import tiny_log


def rows_of(tx):
    return tx.to_pandas().sort_values(["customer_id", "ts", "amount"]).reset_index(drop=True)


# ----------------------------------------------------------------- cleaning rules


def test_each_cleaning_rule_is_counted_and_applied():
    log = tiny_log([
        ("1", "a", "2024-01-01 10:00", 10.0),
        ("1", "a", "2024-01-01 10:00", 10.0),   # exact duplicate line of order 1: double export
        ("2", None, "2024-01-02 10:00", 5.0),   # no customer id
        ("3", "b", "2024-01-03 10:00", 0.0),    # zero amount: a free item, kept as a purchase
        ("4", "b", "2024-01-04 10:00", float("nan")),  # NaN amount
        ("5", "b", "2024-01-05 10:00", float("inf")),  # infinite amount
        ("6", "b", "2024-01-06 10:00", 20.0),
        ("7", "b", "2024-01-07 10:00", -8.0),   # negative amount: a return, kept
        ("8", "c", None, 3.0),                  # no date
    ])
    tx = load_transactions(log)
    assert tx.cleaning.input_rows == 9
    assert tx.cleaning.rules == {
        "missing_customer_id": 1, "missing_timestamp": 1, "invalid_amount": 2, "zero_amount": 1,
        "duplicate_line": 1, "cancellation": 1,
    }
    rows = rows_of(tx)
    assert rows[["customer_id", "order_id", "amount", "is_return"]].values.tolist() == [
        ["a", "1", 10.0, False], ["b", "3", 0.0, False], ["b", "6", 20.0, False], ["b", "7", -8.0, True],
    ]
    assert set(tx.cleaning.rules) <= set(CLEANING_RULES)


def test_identical_rows_without_an_order_id_are_separate_purchases():
    log = tiny_log([("a", "2024-01-01", 10.0), ("a", "2024-01-01", 10.0)], ("customer_id", "ordered_at", "amount"))
    tx = load_transactions(log)
    assert tx.n_rows == 2 and tx.cleaning.rules["duplicate_line"] == 0
    assert any("no order id" in note for note in tx.cleaning.notes)


def test_invoice_ids_starting_with_c_are_cancellations_and_amounts_are_negated():
    frame = pd.DataFrame({
        "InvoiceNo": ["536365", "536365", "C536379", "536400", "536401"],
        "CustomerID": [17850.0, 17850.0, 17850.0, np.nan, 13047.0],
        "InvoiceDate": ["12/1/2010 8:26", "12/1/2010 8:26", "12/1/2010 9:41", "12/2/2010 10:00", "12/13/2010 10:00"],
        "Quantity": [6, 2, 1, 5, 3],
        "UnitPrice": [2.55, 0.0, 27.5, 1.0, 1.5],
        "StockCode": ["85123A", "22", "D", "X", "Y"],
    })
    tx = load_transactions(frame)
    assert tx.roles.quantity == "Quantity" and tx.roles.unit_price == "UnitPrice" and tx.roles.amount is None
    assert tx.cleaning.rules["non_positive_price"] == 1
    assert tx.cleaning.rules["missing_customer_id"] == 1
    assert tx.cleaning.rules["cancellation"] == 1
    rows = rows_of(tx)
    # The cancellation (positive quantity x price in the file) is netted as a negative amount.
    assert rows[["customer_id", "amount", "is_return"]].values.tolist() == [
        ["13047", 4.5, False], ["17850", pytest.approx(15.3), False], ["17850", -27.5, True],
    ]
    assert "month first" in tx.timestamp_format


def test_order_ids_that_merely_start_with_c_are_not_cancellations():
    log = tiny_log([("CA-2016-1", "a", "2024-01-01", 10.0), ("CA-2016-2", "b", "2024-01-02", 12.0)])
    tx = load_transactions(log)
    assert tx.cleaning.rules["cancellation"] == 0


def test_only_cancellations_is_a_clear_error():
    log = tiny_log([("1", "a", "2024-01-01", -10.0), ("2", "b", "2024-01-02", -1.0)])
    with pytest.raises(InputError, match="every one of the 2 usable rows is a cancellation or return"):
        load_transactions(log)


def test_float_customer_ids_lose_their_trailing_zero():
    log = tiny_log([("1", 12345.0, "2024-01-01", 10.0), ("2", 7.0, "2024-01-02", 1.0)])
    assert sorted(rows_of(load_transactions(log)).customer_id) == ["12345", "7"]
    text_ids = tiny_log([("1", "12345.0", "2024-01-01", 10.0)])
    assert rows_of(load_transactions(text_ids)).customer_id.tolist() == ["12345"]


# ----------------------------------------------------------------- sources


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


CSV = "order_id,customer_id,order_date,amount\n1,a,2024-01-01,10.5\n2,b,2024-01-03,4\n3,a,2024-02-01,7\n"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_with_any_delimiter(tmp_path, delimiter):
    path = write(tmp_path / "orders.csv", CSV.replace(",", delimiter))
    tx = load_transactions(path)
    assert tx.n_rows == 3 and tx.n_customers == 2
    assert tx.roles.timestamp == "order_date"


def test_csv_with_bom_and_crlf(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV.replace("\n", "\r\n").encode())
    tx = load_transactions(path)
    assert tx.roles.order_id == "order_id" and tx.n_rows == 3


def test_latin1_falls_back_with_a_warning(tmp_path):
    text = "order_id,customer_id,order_date,amount,category\n1,a,2024-01-01,10,caf\xe9\n2,b,2024-01-02,3,th\xe9\n"
    path = write(tmp_path / "orders.csv", text, "latin-1")
    with pytest.warns(DataWarning, match="not valid UTF-8; it was read as Latin-1"):
        tx = load_transactions(path)
    assert sorted(tx.to_pandas().category) == ["café", "thé"]
    assert any("Latin-1" in note for note in tx.cleaning.notes)


def test_explicit_utf8_on_latin1_bytes_is_an_error(tmp_path):
    path = write(tmp_path / "orders.csv", "customer_id,order_date,amount,category\na,2024-01-01,1,caf\xe9\n", "latin-1")
    with pytest.raises(InputError) as info:
        load_transactions(path, encoding="utf-8")
    message = str(info.value)
    assert "orders.csv" in message and "not valid UTF-8" in message and "--encoding latin-1" in message


def test_whitespace_separated_log_with_and_without_header(tmp_path):
    body = "   00001 19970101  1  11.77\n   00002 19970112  1  12.00\n   00001 19970212  5  77.00\n"
    with_header = write(tmp_path / "cdnow.txt", "customer_id date count dollar_value\n" + body)
    tx = load_transactions(with_header)
    assert (tx.roles.customer_id, tx.roles.timestamp, tx.roles.amount) == ("customer_id", "date", "dollar_value")
    assert tx.n_rows == 3 and tx.timestamp_format == "%Y%m%d"
    assert sorted(set(tx.to_pandas().customer_id)) == ["00001", "00002"]
    no_header = write(tmp_path / "cdnow_noheader.txt", body)
    with pytest.raises(InputError, match="could not find a customer id column"):
        load_transactions(no_header)
    tx2 = load_transactions(no_header, header=False, column_names=["customer_id", "date", "count", "dollar_value"])
    assert tx2.n_rows == 3 and tx2.last_timestamp == pd.Timestamp("1997-02-12")


def test_parquet_duckdb_pandas_polars_and_arrow_sources(tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO(CSV))
    parquet = tmp_path / "orders.parquet"
    frame.to_parquet(parquet)
    db = tmp_path / "shop.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE orders AS SELECT * FROM read_parquet(?)", [str(parquet)]).fetchall()
        con.execute("CREATE TABLE other AS SELECT 1 AS x").fetchall()
    results = [
        load_transactions(parquet),
        load_transactions(db, table="orders"),
        load_transactions(frame),
        load_transactions(pl.from_pandas(frame)),
        load_transactions(pa.Table.from_pandas(frame)),
    ]
    for tx in results:
        assert (tx.n_rows, tx.n_customers) == (3, 2)
    with pytest.raises(InputError, match=r"holds 2 tables \(orders, other\); name one with --table"):
        load_transactions(db)


# ----------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "values, expected_first, how",
    [
        (["2024-03-01 10:00:00", "2024-03-02 11:30:00"], "2024-03-01 10:00", "ISO"),
        (["20240301", "20240302"], "2024-03-01", "%Y%m%d"),
        (["01/03/2024 10:00", "25/03/2024 11:30"], "2024-03-01 10:00", "day first"),
        (["03/01/2024 10:00", "03/25/2024 11:30"], "2024-03-01 10:00", "month first"),
        (["3/1/2024 8:05", "3/25/2024 11:30"], "2024-03-01 08:05", "month first"),
    ],
)
def test_date_formats_are_detected_from_the_values(values, expected_first, how):
    log = pd.DataFrame({"customer_id": ["a", "b"], "date": values, "amount": [1.0, 2.0]})
    tx = load_transactions(log)
    assert how in tx.timestamp_format
    assert tx.first_timestamp == pd.Timestamp(expected_first)


def test_ambiguous_day_month_order_asks_for_a_date_format():
    log = pd.DataFrame({"customer_id": ["a", "b"], "date": ["01/03/2024", "02/04/2024"], "amount": [1.0, 2.0]})
    with pytest.raises(InputError) as info:
        load_transactions(log)
    message = str(info.value)
    assert "could be day-first or month-first" in message and "--date-format '%d/%m/%Y'" in message
    tx = load_transactions(log, date_format="%d/%m/%Y")
    assert tx.first_timestamp == pd.Timestamp("2024-03-01")


def test_unparseable_dates_name_rows_and_values(tmp_path):
    path = write(tmp_path / "orders.csv", "customer_id,date,amount\na,2024-01-01,1\nb,not a date,2\nc,2024-01-03,3\n")
    with pytest.raises(InputError) as info:
        load_transactions(path)
    message = str(info.value)
    assert "orders.csv" in message and "column 'date'" in message
    assert "line 3" in message and "'not a date'" in message and "--date-format" in message


def test_integer_dates_and_unix_seconds():
    log = pd.DataFrame({"customer_id": ["a", "b"], "date": [20240301, 20240302], "amount": [1.0, 2.0]})
    assert load_transactions(log).first_timestamp == pd.Timestamp("2024-03-01")
    epoch = pd.DataFrame({"customer_id": ["a"], "ts": [1_709_251_200], "amount": [1.0]})
    assert load_transactions(epoch).first_timestamp == pd.Timestamp("2024-03-01")


# ----------------------------------------------------------------- bad input


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty \(0 bytes\)"):
        load_transactions(empty)
    header_only = write(tmp_path / "header.csv", "customer_id,date,amount\n")
    with pytest.raises(InputError, match="has a header line but no data rows"):
        load_transactions(header_only)


def test_wrong_delimiter_is_diagnosed(tmp_path):
    path = write(tmp_path / "orders.csv", CSV.replace(",", ";"))
    with pytest.raises(InputError, match=r"the delimiter is probably ';', not ','\. Pass --delimiter ';'"):
        load_transactions(path, delimiter=",")


def test_non_numeric_amounts_name_rows_and_values(tmp_path):
    path = write(tmp_path / "orders.csv", "customer_id,date,amount\na,2024-01-01,1\nb,2024-01-02,$12\nc,2024-01-03,n/a\n")
    with pytest.raises(InputError) as info:
        load_transactions(path)
    message = str(info.value)
    assert "column 'amount': 2 values are not numbers" in message and "lines 3, 4" in message and "'$12'" in message


def test_missing_file_and_unsupported_object(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        load_transactions(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="cannot read a int as a transaction log"):
        load_transactions(42)


def test_binary_and_utf16_files_are_refused(tmp_path):
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("customer_id,date,amount\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        load_transactions(utf16)
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\x01\x02\x00\x03" * 100)
    with pytest.raises(InputError, match="does not look like a text file"):
        load_transactions(binary)


# ----------------------------------------------------------------- customer tables


def test_customer_table_types_missing_values_and_left_out_columns(tmp_path):
    text = (
        "\ufeffCustomerID;Gender;Age;Annual Income (k$);Spending Score (1-100);Email;Country;Joined\r\n"
        + "".join(
            f"{i};{'Male' if i % 2 else 'Female'};{20 + i % 40};{'' if i % 10 == 0 else 15 + i};{i % 100};"
            f"user{i}@example.com;NL;2020-01-{1 + i % 28:02d}\r\n"
            for i in range(1, 61)
        )
    )
    path = write(tmp_path / "mall.csv", text)
    table = load_customers(path)
    assert table.id_column == "CustomerID"
    assert table.kinds == {"Gender": "categorical", "Age": "numeric", "Annual Income (k$)": "numeric",
                           "Spending Score (1-100)": "numeric", "Joined": "date"}
    assert table.left_out == {"Email": "looks like an identifier or free text (nearly one value per customer)",
                              "Country": "constant: one value for every customer"}
    assert table.frame["Annual Income (k$)"].isna().sum() == 6
    assert table.frame.index[0] == "1"


def test_customer_table_with_duplicate_ids_is_refused(tmp_path):
    path = write(tmp_path / "c.csv", "id,age\n1,30\n2,40\n1,50\n")
    with pytest.raises(InputError, match=r"appear more than once \(lines 2, 4\); a customer table needs one row per customer"):
        load_customers(path)


def test_no_warnings_on_clean_utf8(tmp_path):
    path = write(tmp_path / "orders.csv", CSV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_transactions(path)
    assert not math.isnan(1.0)
