"""``segwise update`` and ``segwise export`` at the same time on one store and one PostgreSQL table.

Three updates (three as_of dates) and three exports of one run into one table of a
real PostgreSQL server (tests/postgres.py) start together. Each must succeed or stop
with "the store is locked by another segwise process" (changing nothing); at the end
nothing is lost or duplicated: one history row open per customer, one recorded update
per successful update, and the table holds every customer of the run exactly once
with the run's segment.
"""

from __future__ import annotations

import uuid
from concurrent.futures import wait

import pandas as pd
import psycopg
import pytest

import segwise
from segwise.store import STORE_FILENAME, RunStore

from . import datasets
from .conftest import assert_bad_input, start_segwise

AS_OF = ["2024-10-01", "2024-11-01", "2024-12-01"]


@pytest.fixture
def trained(tmp_path):
    population = datasets.population(400, 17)
    orders = datasets.write_order_log(tmp_path / "orders.parquet", population.orders)
    out = tmp_path / "out"
    segwise.segment(str(orders), n_segments=4, random_state=0).save(out)
    return orders, out


@pytest.mark.slow
def test_concurrent_updates_and_exports_lose_and_duplicate_nothing(trained, postgres_url, tmp_path):
    orders, out = trained
    table = f"segs_{uuid.uuid4().hex[:8]}"
    store = out / STORE_FILENAME
    jobs = {}
    for i, as_of in enumerate(AS_OF):
        jobs[f"update-{as_of}"] = start_segwise("update", out / "model.segwise", orders, "--store", store,
                                                "--as-of", as_of, "--out", tmp_path / f"update-{i}", cwd=tmp_path)
        jobs[f"export-{i}"] = start_segwise("export", out, "--to", postgres_url, "--table", table, cwd=tmp_path)
    wait(jobs.values())
    results = {name: job.result() for name, job in jobs.items()}
    for name, result in results.items():
        if result.returncode != 0:
            assert_bad_input(result, "the store is locked by another segwise process")
    assert any(r.returncode == 0 for n, r in results.items() if n.startswith("export"))
    done = sorted(n.split("-", 1)[1] for n, r in results.items() if n.startswith("update") and r.returncode == 0)
    assert done, {n: r.err for n, r in results.items()}

    with RunStore(store, read_only=True) as run_store:
        updates = run_store.updates()
        history = run_store.segment_history()
    assert sorted(str(d)[:10] for d in updates["as_of"]) == done
    open_rows = history[history["valid_to"].isna()]
    assert open_rows["customer_id"].is_unique
    # No interval is recorded twice.
    assert not history.duplicated(["customer_id", "valid_from"]).any()

    written = pd.read_parquet(out / "assignments.parquet")
    written["customer_id"] = written["customer_id"].astype(str)
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(f'SELECT customer_id, segment_id, segment_name FROM "{table}"').fetchall()
    exported = pd.DataFrame(rows, columns=["customer_id", "segment_id", "segment_name"])
    assert len(exported) == len(written) and exported["customer_id"].is_unique
    merged = written.merge(exported, on="customer_id", suffixes=("", "_db"))
    assert len(merged) == len(written)
    assert (merged["segment_id"] == merged["segment_id_db"]).all()
    assert (merged["segment_name"] == merged["segment_name_db"]).all()
