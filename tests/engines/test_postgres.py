"""The PostgreSQL engine against a real server: the same cleaning and features as DuckDB, read-only, bounded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import segwise
from segwise.data import load_transactions
from segwise.engines.postgres import PostgresEngine
from segwise.engines.postgres_sql import to_postgres
from segwise.errors import InputError
from segwise.features import build_features

from .pg_tables import create_table, export_csv, persistent_relations


@pytest.fixture(scope="module")
def orders(postgres_url):
    """The synthetic population's orders, as Arrow and as table ``orders`` of the server."""
    table = segwise.generate_population(400, seed=11).orders
    create_table(postgres_url, "orders", table)
    return table


def assert_same_features(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert list(a.index) == list(b.index)
    text = [c for c in a.columns if not pd.api.types.is_numeric_dtype(a[c])]  # categorical columns
    for column in text:
        assert a[column].tolist() == b[column].tolist(), column
    numeric = a.columns.difference(text, sort=False)
    np.testing.assert_allclose(a[numeric].to_numpy(float), b[numeric].to_numpy(float), rtol=0, atol=1e-9,
                               equal_nan=True)


def test_cleaning_and_features_equal_duckdb_on_an_export(postgres_url, orders, tmp_path):
    exported = export_csv(postgres_url, "orders", tmp_path / "orders.csv")
    local = load_transactions(exported)
    remote = load_transactions(postgres_url, table="orders")
    assert remote.engine.name == "postgres"
    assert remote.cleaning.rules == local.cleaning.rules
    assert remote.cleaning.rules["duplicate_line"] > 0 and remote.cleaning.rules["cancellation"] > 0
    assert (remote.n_rows, remote.n_customers) == (local.n_rows, local.n_customers)
    assert (remote.first_timestamp, remote.last_timestamp) == (local.first_timestamp, local.last_timestamp)
    assert remote.roles.to_dict() == local.roles.to_dict()
    features_local, features_remote = build_features(local), build_features(remote)
    assert features_remote.excluded == features_local.excluded
    # The category_mix levels are learned in the database: the same levels, then the same shares.
    assert features_remote.spec.category_levels == features_local.spec.category_levels
    assert any(c.startswith("share_category_") for c in features_local.frame.columns)
    # The returns share: returned order keys counted in the database, as DuckDB counts them.
    assert features_remote.spec.has_returns and features_local.frame["share_returned_orders"].gt(0).any()
    assert_same_features(features_remote.frame, features_local.frame)
    # with an as_of inside the log (rows after it excluded in the database)
    inside = build_features(remote, as_of="2023-06-01")
    assert inside.excluded["after_as_of"] > 0
    assert inside.excluded == build_features(local, as_of="2023-06-01").excluded
    assert_same_features(inside.frame, build_features(local, as_of="2023-06-01").frame)


def _feature_bytes(postgres_url, table):
    remote = load_transactions(postgres_url, table=table)
    before = remote.engine.bytes_received
    frame = build_features(remote).frame
    assert len(frame) == remote.n_customers
    return remote.engine.bytes_received - before


def test_only_one_row_per_customer_crosses_the_network(postgres_url, orders):
    # The same customers with five times the order lines (each order repeated under
    # new ids): the log that would cross grows fivefold, the features that do cross not.
    copies = [orders.set_column(0, "order_id", pc.binary_join_element_wise(orders["order_id"], f"r{i}", ""))
              for i in range(5)]
    create_table(postgres_url, "orders_x5", pa.concat_tables(copies))
    received, received_x5 = _feature_bytes(postgres_url, "orders"), _feature_bytes(postgres_url, "orders_x5")
    whole_log = PostgresEngine(postgres_url)
    whole_log.fetch_arrow("SELECT * FROM orders_x5")
    assert 0 < received_x5 < 1.2 * received
    assert received_x5 < whole_log.bytes_received / 3


def test_query_reads_the_rows_of_a_select(postgres_url, orders):
    tx = load_transactions(postgres_url, query="SELECT * FROM orders WHERE channel = 'web'")
    frame = orders.to_pandas()
    assert tx.cleaning.input_rows == int((frame["channel"] == "web").sum())
    assert tx.source.endswith("(query)")


def test_duckdb_engine_fetches_the_table_and_gives_the_same_features(postgres_url, orders):
    fetched = load_transactions(postgres_url, table="orders", engine="duckdb")
    remote = load_transactions(postgres_url, table="orders")
    assert fetched.engine.name == "duckdb"
    assert fetched.source == remote.source == remote.engine.label + " (table orders)"
    assert fetched.cleaning.rules == remote.cleaning.rules
    assert_same_features(build_features(fetched).frame, build_features(remote).frame)


def test_ties_of_the_main_category_and_of_the_first_order_are_broken_alike(postgres_url):
    # The main category of an order is an aggregate over an ordered key (most spend, then
    # the first name in text order): both engines must break every tie the same way.
    rows = [  # order id, customer, time, amount, category
        ("2", "a", "2024-01-01 10:00:00", 10.0, "Toys"),    # equal spend: Books before Toys
        ("2", "a", "2024-01-01 10:00:00", 10.0, "Books"),
        ("10", "a", "2024-01-01 10:00:00", 5.0, "Toys"),    # same time as order 2, "10" < "2": a's first order
        ("10", "a", "2024-01-01 10:00:00", 5.0, "Garden"),
        ("3", "a", "2024-02-01 09:00:00", 7.0, "Toys"),
        ("3", "a", "2024-02-01 09:00:00", 3.0, "Books"),
        ("5", "b", "2024-01-05 12:00:00", 4.0, "Books"),    # two lines of Books: 8, equal to Toys' 8
        ("5", "b", "2024-01-05 12:00:00", 4.5, "Books"),
        ("5", "b", "2024-01-05 12:00:00", -0.5, "Books"),   # a return, not part of the order's spend
        ("5", "b", "2024-01-05 12:00:00", 8.0, "Toys"),
        ("6", "b", "2024-03-01 12:00:00", 9.0, "Toys"),
        ("7", "c", "2024-01-09 08:00:00", 6.0, "banana"),   # text order is code points: "Cherry" < "banana"
        ("7", "c", "2024-01-09 08:00:00", 6.0, "Cherry"),
        ("8", "c", "2024-01-20 08:00:00", 0.0, "Zebra"),    # free items: equal spend of 0
        ("8", "c", "2024-01-20 08:00:00", 0.0, "Apple"),
    ]
    table = pa.table({
        "order_id": [r[0] for r in rows], "customer_id": [r[1] for r in rows],
        "ordered_at": pa.array([pd.Timestamp(r[2]) for r in rows], pa.timestamp("us")),
        "amount": [r[3] for r in rows], "category": [r[4] for r in rows],
    })
    create_table(postgres_url, "tied_orders", table)
    local = build_features(load_transactions(table), families=["rfm", "journey"], as_of="2024-06-01").frame
    remote = build_features(load_transactions(postgres_url, table="tied_orders"), families=["rfm", "journey"],
                            as_of="2024-06-01").frame
    assert_same_features(remote, local)
    # a: orders 10 (Garden), 2 (Books), 3 (Toys); b: 5 (Books), 6 (Toys); c: 7 (Cherry), 8 (Apple).
    assert local["first_purchase_category"].to_dict() == {"a": "Garden", "b": "Books", "c": "Cherry"}
    assert local["category_switching_rate"].to_dict() == {"a": 1.0, "b": 1.0, "c": 1.0}
    # Toys is first bought at 10:00 (orders 10 and 2): order 2 repeats nothing, order 3 repeats Toys.
    assert local["repeat_category_rate"].to_dict() == {"a": 0.5, "b": 1.0, "c": 0.0}


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "ibis"])
def test_frames_and_ibis_tables_are_read_with_the_same_roles(orders, kind):
    frame = orders.to_pandas()
    source = {
        "pandas": lambda: frame,
        "polars": lambda: __import__("polars").from_arrow(orders),
        "arrow": lambda: orders,
        "ibis": lambda: __import__("ibis").memtable(orders),
    }[kind]()
    tx = load_transactions(source)
    reference = load_transactions(orders)
    assert tx.roles.to_dict() == reference.roles.to_dict()
    assert tx.cleaning.rules == reference.cleaning.rules


def test_text_columns_are_typed_in_the_database(postgres_url):
    rows = pa.table({
        "customer": ["a", "a", "b", "b", " ", "c"],
        "day": ["2024-01-02", "2024-01-05 10:30:00", "2024-02-01", "2024-02-01", "2024-02-03", "2024-03-01"],
        "total": ["10.5", "4", "-3", "7.25", "1", "0"],
    })
    create_table(postgres_url, "text_log", rows)
    tx = load_transactions(postgres_url, table="text_log", customer_id_col="customer", timestamp_col="day",
                           amount_col="total")
    assert tx.timestamp_format == "ISO 8601"
    assert tx.cleaning.rules["missing_customer_id"] == 1
    assert tx.cleaning.rules["zero_amount"] == 1
    assert tx.cleaning.rules["cancellation"] == 1
    got = tx.to_pandas().sort_values(["customer_id", "ts"]).reset_index(drop=True)
    assert got["amount"].tolist() == [10.5, 4.0, -3.0, 7.25, 0.0]  # a free item is a purchase
    assert str(got["ts"][1]) == "2024-01-05 10:30:00"



def test_a_decimal_comma_is_read_in_the_database_as_on_duckdb(postgres_url):
    rows = pa.table({
        "customer": ["a", "a", "b", "c"],
        "day": ["2024-01-02", "2024-01-05", "2024-02-01", "2024-03-01"],
        "total": ["1.234,5", "4", "-3,25", "7,25"],
    })
    create_table(postgres_url, "comma_log", rows)
    options = {"customer_id_col": "customer", "timestamp_col": "day", "amount_col": "total"}
    in_database = load_transactions(postgres_url, table="comma_log", **options)
    local = load_transactions(rows.to_pandas(), **options)
    for tx in (in_database, local):
        got = tx.to_pandas().sort_values(["customer_id", "ts"])["amount"].tolist()
        assert got == [1234.5, 4.0, -3.25, 7.25]
        assert any("'total' is written with a decimal comma" in note for note in tx.cleaning.notes)

def test_text_dates_that_are_not_iso_are_for_the_query(postgres_url):
    create_table(postgres_url, "dmy_log", pa.table({
        "customer_id": ["a", "b"], "order_date": ["31/01/2024", "01/02/2024"], "amount": [1.0, 2.0],
    }))
    with pytest.raises(InputError, match=r"column 'order_date' does not hold dates .* to_timestamp\(order_date"):
        load_transactions(postgres_url, table="dmy_log")
    tx = load_transactions(postgres_url, query="SELECT customer_id, to_timestamp(order_date, 'DD/MM/YYYY') "
                                               "AS ordered_at, amount FROM dmy_log")
    assert tx.timestamp_format == "native timestamp"
    assert str(tx.first_timestamp) == "2024-01-31 00:00:00"


def test_nothing_persistent_is_created_in_the_source(postgres_url, orders):
    before = persistent_relations(postgres_url)
    tx = load_transactions(postgres_url, table="orders")
    build_features(tx)
    assert persistent_relations(postgres_url) == before
    with pytest.raises(RuntimeError, match="only TEMPORARY"):
        tx.engine.execute("CREATE TABLE sneaky AS SELECT 1 AS a")
    with pytest.raises(RuntimeError, match="read-only"):
        tx.engine.execute("DELETE FROM orders")
    with pytest.raises(RuntimeError, match="its own temporary"):
        tx.engine.execute("DROP TABLE orders")


def test_a_statement_over_the_timeout_is_a_clear_error(postgres_url):
    engine = PostgresEngine(postgres_url, statement_timeout="200ms")
    with pytest.raises(InputError, match=r"longer than the statement timeout \(200ms\)"):
        engine.execute("SELECT pg_sleep(2)")


@pytest.mark.parametrize(("duckdb_sql", "postgres_sql"), [
    ("SELECT CAST(x AS DOUBLE), CAST(y AS STRING) FROM t",
     "SELECT CAST(x AS DOUBLE PRECISION), CAST(y AS TEXT) FROM t"),
    ("SELECT count(*) FROM (SELECT a FROM t) WHERE a > ?",
     "SELECT COUNT(*) FROM (SELECT a FROM t) AS segwise_sq0 WHERE a > %s"),
    ("SELECT isnan(a) OR isinf(a) FROM t",
     "SELECT (a = CAST('NaN' AS DOUBLE PRECISION)) OR (ABS(a) = CAST('Infinity' AS DOUBLE PRECISION)) FROM t"),
    ("SELECT contains(a, '.') FROM t", "SELECT STRPOS(a, '.') > 0 FROM t"),
])
def test_duckdb_text_is_translated(duckdb_sql, postgres_sql):
    assert to_postgres(duckdb_sql) == postgres_sql


def test_try_cast_reads_numbers_as_duckdb_does(postgres_url):
    engine = PostgresEngine(postgres_url)
    values = ["1", " 2.5 ", "-3e2", ".5", "abc", "1,5", "", "inf", "NaN", "12.", "+4"]
    rows = ", ".join(f"({i}, '{v}')" for i, v in enumerate(values))
    query = f"SELECT TRY_CAST(v AS DOUBLE) FROM (VALUES {rows}) AS t(i, v) ORDER BY i"
    got = [r[0] for r in engine.execute(query)]
    import duckdb

    expected = [r[0] for r in duckdb.execute(query).fetchall()]
    assert [str(g) for g in got] == [str(e) for e in expected]


def test_segment_runs_in_the_database_of_a_url(postgres_url, orders, monkeypatch):
    from segwise.engines import postgres

    made = []
    original = postgres.PostgresEngine.__init__

    def recording_init(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(postgres.PostgresEngine, "__init__", recording_init)
    result = segwise.segment(postgres_url, load_options={"table": "orders"}, n_segments=4, random_state=0)
    assert len(made) == 1 and made[0].bytes_received > 0
    assert result.run["source"].endswith("/postgres (table orders)")
    assert result.n_segments == 4


def test_the_engine_is_registered_by_name(postgres_url):
    from segwise.engines import ENGINES, Engine, get_engine

    engine = get_engine("postgres", url=postgres_url, statement_timeout="1min")
    assert "postgres" in ENGINES and isinstance(engine, Engine)
    assert engine.execute("SELECT current_setting('statement_timeout'), current_setting('TimeZone')") == [
        ("1min", "UTC")]


def test_a_query_postgresql_cannot_run_falls_back_to_duckdb(postgres_url):
    from segwise.errors import DataWarning

    create_table(postgres_url, "names", pa.table({"a": ["kitten", "flaw", "x"], "b": ["sitting", "lawn", "x"],
                                                  "unused": [1.0, 2.0, 3.0]}))
    engine = PostgresEngine(postgres_url)
    names = engine.table("names")
    # levenshtein needs PostgreSQL's fuzzystrmatch extension, which this server does not have
    expr = names.select(names.a, d=names.a.levenshtein(names.b)).order_by("a")
    with pytest.warns(DataWarning, match=r"PostgreSQL cannot run a feature query .*levenshtein.* ran in DuckDB on "
                                         r"the 3 rows"):
        got = engine.fetch_arrow(expr)
    assert got.column("d").to_pylist() == [2, 3, 0]
