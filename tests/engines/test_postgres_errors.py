"""A PostgreSQL source that cannot be read: a clear InputError naming the fix, the password never shown."""

from __future__ import annotations

import socket

import pyarrow as pa
import pytest

from segwise.data import load_transactions
from segwise.engines.postgres import PostgresEngine
from segwise.engines.postgres_url import describe_postgres_url, is_postgres_url, mask_secrets, normalize_postgres_url
from segwise.errors import InputError

from .pg_tables import create_role, create_table

PASSWORD = "Sw0rdfish-7731"


@pytest.fixture(scope="module")
def small_table(postgres_url):
    create_table(postgres_url, "small_orders", pa.table({
        "customer_id": ["a", "b", "c"], "ordered_at": pa.array([1, 2, 3], pa.int64()).cast(pa.timestamp("s")),
        "amount": [1.0, 2.0, 3.0],
    }))
    return "small_orders"


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1].split("/")[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_password_is_dropped_from_the_description():
    url = f"postgresql://ana:{PASSWORD}@db.example.com:6543/shop"
    assert describe_postgres_url(url) == "postgresql://ana@db.example.com:6543/shop"
    assert mask_secrets(f"password {PASSWORD} rejected", url) == "password *** rejected"
    # a path argument collapses the double slash; the URL is still recognised and restored
    assert is_postgres_url("postgresql:/ana@db/shop")
    assert normalize_postgres_url("postgresql:/ana@db/shop") == "postgresql://ana@db/shop"
    assert not is_postgres_url("orders.csv")
    # SQLAlchemy-style URLs name a driver; segwise connects with psycopg whatever it is
    assert normalize_postgres_url("postgresql+psycopg2://ana@db/shop") == "postgresql://ana@db/shop"
    assert describe_postgres_url(f"postgres+psycopg://ana:{PASSWORD}@db/shop") == "postgresql://ana@db/shop"


def test_a_url_libpq_cannot_read(small_table):
    with pytest.raises(InputError, match=r"not a valid PostgreSQL URL .*write postgresql://USER@HOST:PORT/DATABASE") as e:
        load_transactions(f"postgresql://ana:{PASSWORD}@host:5432/db?no_such_option=1", table="x")
    assert PASSWORD not in str(e.value)


def test_a_refused_connection():
    url = f"postgresql://ana:{PASSWORD}@127.0.0.1:{_free_port()}/shop"
    with pytest.raises(InputError, match=r"cannot connect to PostgreSQL .*Check the host, port") as e:
        load_transactions(url, table="orders")
    assert PASSWORD not in str(e.value)
    assert "postgresql://ana@127.0.0.1:" in str(e.value)


def test_a_missing_table_lists_the_tables(postgres_url, small_table):
    with pytest.raises(InputError, match=r"no table 'nope' in the database; tables you can see: .*small_orders"):
        load_transactions(postgres_url, table="nope")
    with pytest.raises(InputError, match="name the transaction log with --table NAME"):
        load_transactions(postgres_url)


def test_a_missing_column_names_it(postgres_url, small_table):
    with pytest.raises(InputError, match="no_such_col"):
        load_transactions(postgres_url, table=small_table, amount_col="no_such_col")
    with pytest.raises(InputError, match=r"PostgreSQL could not run a query \(column \"no_such_col\" does not exist"):
        load_transactions(postgres_url, query=f"SELECT no_such_col FROM {small_table}")


def test_a_user_without_select(postgres_url, small_table):
    url = create_role(postgres_url, "no_select", PASSWORD)
    with pytest.raises(InputError, match=r"permission denied .*needs SELECT on the source table") as e:
        load_transactions(url, table=small_table)
    assert PASSWORD not in str(e.value)
    assert str(e.value).startswith("postgresql://no_select@127.0.0.1:")


def test_a_user_with_select_reads_and_the_password_is_not_recorded(postgres_url, small_table):
    url = create_role(postgres_url, "reader", PASSWORD, select_on=[small_table])
    tx = load_transactions(url, table=small_table)
    assert tx.n_rows == 3
    assert PASSWORD not in repr(tx.summary())
    assert tx.source == f"postgresql://reader@127.0.0.1:{_port(postgres_url)}/postgres (table {small_table})"


def test_an_empty_table(postgres_url):
    create_table(postgres_url, "no_rows", pa.table({"customer_id": pa.array([], pa.string()),
                                                    "amount": pa.array([], pa.float64())}))
    with pytest.raises(InputError, match=r"\(table no_rows\): the transaction log has no rows"):
        load_transactions(postgres_url, table="no_rows")


def test_query_needs_a_database():
    with pytest.raises(InputError, match="query= .* give a postgresql:// URL"):
        load_transactions("orders.csv", query="SELECT 1")


def test_engine_refuses_a_wrong_engine_name(postgres_url, small_table):
    with pytest.raises(InputError, match="runs on --engine postgres or duckdb"):
        load_transactions(postgres_url, table=small_table, engine="spark")
    assert PostgresEngine(postgres_url).columns(small_table) == {
        "customer_id": "VARCHAR", "ordered_at": "TIMESTAMP", "amount": "DOUBLE"}
