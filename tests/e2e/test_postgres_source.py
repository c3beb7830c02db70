"""``segwise run postgresql://... --table orders``: the same result as DuckDB on an export, password never shown.

A real PostgreSQL server (the `postgres_url` fixture) holds the synthetic
population's orders and customers; the runs below read it as a user who has a
password and SELECT on the two tables, and compare with DuckDB reading a COPY
export of the same tables.
"""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

import segwise

from ..engines.pg_tables import create_role, create_table, export_csv
from .conftest import assert_bad_input, assert_ok, run_segwise

PASSWORD = "Tr0ub4dor-and-3"


@pytest.fixture(scope="module")
def database(postgres_url, tmp_path_factory):
    """(URL with the reader's password, directory holding the CSV exports)."""
    population = segwise.generate_population(300, seed=5)
    create_table(postgres_url, "orders", population.orders)
    create_table(postgres_url, "customers", population.customers)
    exports = tmp_path_factory.mktemp("exports")
    export_csv(postgres_url, "orders", exports / "orders.csv")
    export_csv(postgres_url, "customers", exports / "customers.csv")
    return create_role(postgres_url, "analyst", PASSWORD, select_on=["orders", "customers"]), exports


@pytest.fixture(scope="module")
def runs(database, tmp_path_factory):
    url, exports = database
    cwd = tmp_path_factory.mktemp("pg_runs")
    remote = run_segwise("run", url, "--table", "orders", "--customers", "customers", "--out", "pg", cwd=cwd)
    local = run_segwise("run", exports / "orders.csv", "--customers", exports / "customers.csv", "--out", "dd",
                        cwd=cwd)
    return cwd, assert_ok(remote), assert_ok(local)


def test_the_run_equals_duckdb_on_an_export(runs):
    cwd, remote, local = runs
    pg, dd = cwd / "pg", cwd / "dd"
    features_pg, features_dd = pd.read_parquet(pg / "features.parquet"), pd.read_parquet(dd / "features.parquet")
    assert list(features_pg.columns) == list(features_dd.columns)
    numeric = features_dd.select_dtypes("number").columns
    np.testing.assert_allclose(features_pg[numeric].to_numpy(float), features_dd[numeric].to_numpy(float),
                               rtol=0, atol=1e-9, equal_nan=True)
    run_pg, run_dd = json.loads((pg / "run.json").read_text()), json.loads((dd / "run.json").read_text())
    assert run_pg["cleaning"] == run_dd["cleaning"]
    assert run_pg["cleaning"]["duplicate_line"] > 0
    assert run_pg["input"]["customers"]["source"].endswith("(table customers)")
    assert run_pg["input"]["customers"]["columns"] == run_dd["input"]["customers"]["columns"]
    assignments_pg = pd.read_parquet(pg / "assignments.parquet").sort_values("customer_id", ignore_index=True)
    assignments_dd = pd.read_parquet(dd / "assignments.parquet").sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(assignments_pg[["customer_id", "segment_id", "segment_name"]],
                                  assignments_dd[["customer_id", "segment_id", "segment_name"]])
    assert run_pg["n_segments"] == run_dd["n_segments"]
    assert "postgresql://analyst@127.0.0.1:" in run_pg["source"] and "(table orders)" in run_pg["source"]


def test_the_password_appears_in_no_output_and_no_message(runs):
    cwd, remote, _ = runs
    assert PASSWORD not in remote.stdout + remote.stderr
    files = [p for p in (cwd / "pg").rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in files) and any(p.name == "segwise.duckdb" for p in files)
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path


def test_features_and_assign_read_a_query(database, runs, tmp_path):
    url, _ = database
    cwd, _, _ = runs
    query = "SELECT * FROM orders WHERE ordered_at >= '2023-01-01'"
    features = assert_ok(run_segwise("features", url, "--query", query, "--out", "f.parquet", cwd=tmp_path))
    assert "features as of" in features.out
    assigned = assert_ok(run_segwise("assign", cwd / "pg" / "model.segwise", url, "--table", "orders",
                                     "--customers", "customers", "--out", "a.csv", cwd=tmp_path))
    assert PASSWORD not in assigned.stdout + assigned.stderr
    expected = pd.read_parquet(cwd / "pg" / "assignments.parquet").set_index("customer_id")["segment_id"]
    got = pd.read_csv(tmp_path / "a.csv", dtype={"customer_id": str}).set_index("customer_id")["segment_id"]
    assert (got.reindex(expected.index) == expected).mean() > 0.99


def test_a_url_without_host_is_read_as_a_url(database, postgres_url, tmp_path, monkeypatch):
    """``postgresql:///DB`` (libpq's local form: host, port and user from the environment) is not
    folded into ``postgresql:/DB``, which would make the database name a host name."""
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        socket_dir = connection.execute("SHOW unix_socket_directories").fetchone()[0].split(",")[0].strip()
        port = connection.execute("SHOW port").fetchone()[0]
    monkeypatch.setenv("PGHOST", socket_dir)
    monkeypatch.setenv("PGPORT", str(port))
    monkeypatch.setenv("PGUSER", "postgres")
    assert_ok(run_segwise("features", "postgresql:///postgres", "--table", "orders", "--out", "socket.parquet",
                          cwd=tmp_path))
    assert_ok(run_segwise("features", postgres_url, "--table", "orders", "--out", "tcp.parquet", cwd=tmp_path))
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "socket.parquet"),
                                  pd.read_parquet(tmp_path / "tcp.parquet"))


def test_unreadable_sources_exit_2_without_the_password(database, postgres_url, tmp_path):
    url, _ = database
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    no_select = create_role(postgres_url, "outsider", PASSWORD)
    cases = [
        (["run", url, "--table", "ordrs"], "no table 'ordrs' in the database; tables you can see:"),
        (["run", f"postgresql://analyst:{PASSWORD}@127.0.0.1:{free}/postgres", "--table", "orders"],
         "cannot connect to PostgreSQL"),
        (["features", no_select, "--table", "orders"], "permission denied"),
        (["run", url, "--table", "orders", "--amount-col", "price_eur"], "price_eur"),
        (["run", url], "name the transaction log with --table NAME"),
        (["run", "orders.csv", "--engine", "postgres"], "--engine postgres runs inside a PostgreSQL database"),
    ]
    for argv, fragment in cases:
        result = assert_bad_input(run_segwise(*argv, "--out", "x", cwd=tmp_path), fragment)
        assert PASSWORD not in result.stdout + result.stderr


def test_update_and_track_read_the_database(database, runs, tmp_path):
    url, _ = database
    cwd, _, _ = runs
    model = cwd / "pg" / "model.segwise"
    updated = assert_ok(run_segwise("update", model, url, "--query", "SELECT * FROM orders", "--customers",
                                    "customers", "--out", "upd", cwd=tmp_path))
    assert (tmp_path / "upd" / "migrations.parquet").is_file()
    tracked = assert_ok(run_segwise("track", url, "--table", "orders", "--customers", "customers", "--model", model,
                                    "--as-of", "2024-06-01", "--as-of", "2024-12-01", "--out", "trk", cwd=tmp_path))
    assert (tmp_path / "trk" / "summary.json").is_file()
    for result in (updated, tracked):
        assert PASSWORD not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
