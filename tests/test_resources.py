"""Resource bounds: the feature step runs out-of-core under a DuckDB memory limit smaller than the data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segwise.data import load_transactions
from segwise.engines.duckdb import DuckDBEngine
from segwise.features import build_features

MEMORY_LIMIT_BYTES = 100 * 1000**2


def _order_lines(n_lines: int, seed: int = 0) -> pa.Table:
    """Order lines with long text ids: about 70 bytes a line in Arrow."""
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, n_lines // 6, n_lines)
    seconds = rng.integers(0, 700 * 86_400, n_lines)
    return pa.table({
        "customer_id": pa.array([f"customer-{c:09d}" for c in customers]),
        "order_id": pa.array([f"order-{o:012d}" for o in np.arange(n_lines) // 2]),
        "ordered_at": pa.array(pd.Timestamp("2023-01-01") + pd.to_timedelta(seconds, unit="s")),
        "amount": rng.uniform(1, 300, n_lines).round(2),
        "category": pa.array(np.array([f"cat{i:02d}" for i in range(30)])[rng.integers(0, 30, n_lines)]),
    })


@pytest.mark.slow
def test_features_complete_under_a_memory_limit_smaller_than_the_data(tmp_path):
    lines = _order_lines(1_600_000)
    assert lines.nbytes > MEMORY_LIMIT_BYTES
    pq.write_table(lines, tmp_path / "orders.parquet")
    spill = tmp_path / "spill"
    engine = DuckDBEngine(memory_limit=f"{MEMORY_LIMIT_BYTES // 1000**2}MB", threads=1, temp_directory=str(spill))
    features = build_features(load_transactions(str(tmp_path / "orders.parquet"), engine=engine)).frame
    spilled = engine.execute("SELECT sum(temporary_storage_bytes) FROM duckdb_memory()")[0][0]
    assert spilled > 0  # the tables did not fit: DuckDB wrote them to the temp directory
    assert engine.execute("SELECT current_setting('temp_directory')")[0][0] == str(spill)
    frame = lines.select(["customer_id", "order_id", "amount"]).to_pandas()
    by_customer = frame.groupby("customer_id")
    expected = pd.DataFrame({"n_orders": by_customer["order_id"].nunique().astype(float),
                             "monetary_total": by_customer["amount"].sum()})
    assert len(features) == len(expected)
    pd.testing.assert_frame_equal(features[["n_orders", "monetary_total"]].sort_index(), expected.sort_index(),
                                  rtol=1e-9, check_names=False, check_index_type=False)


def test_the_spill_directory_an_engine_creates_is_removed(tmp_path):
    engine = DuckDBEngine()
    spill = Path(engine.execute("SELECT current_setting('temp_directory')")[0][0])
    assert spill.is_dir()
    engine.close()
    assert not spill.exists()
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    (tmp_path / "orders.csv").write_text("customer_id,order_date,amount\nA,2024-01-02,10\nB,2024-02-03,20\n")
    script = Path(sys.executable).parent / "segwise"
    subprocess.run([str(script), "features", "orders.csv", "--out", "f.csv"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    assert not list(tmp_path.glob("segwise-duckdb-*"))  # the command's engine cleaned up at exit


def _duckdb_limit_bytes(engine: DuckDBEngine) -> int:
    # duckdb_settings() shows the limit rounded ('11.7 GiB'); the value in bytes is exact enough.
    text = engine.execute("SELECT current_setting('memory_limit')")[0][0]
    number, unit = text.split()
    return int(float(number) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit])


def test_duckdb_memory_limit_defaults_to_a_fraction_of_the_machine(monkeypatch):
    from segwise.engines.duckdb import MEMORY_FRACTION, MEMORY_LIMIT_ENV, _machine_memory_bytes

    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    engine = DuckDBEngine()
    try:
        expected = _machine_memory_bytes() * MEMORY_FRACTION
        assert abs(_duckdb_limit_bytes(engine) - expected) < 0.01 * expected
    finally:
        engine.close()


def test_duckdb_memory_limit_from_the_environment_and_the_argument(monkeypatch):
    from segwise.engines.duckdb import MEMORY_LIMIT_ENV

    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1GB")
    engine = DuckDBEngine()
    assert _duckdb_limit_bytes(engine) == pytest.approx(1000**3, rel=0.01)
    engine.close()
    engine = DuckDBEngine(memory_limit="500MB")  # the argument wins over the environment
    assert _duckdb_limit_bytes(engine) == pytest.approx(500 * 1000**2, rel=0.01)
    engine.close()


def test_a_memory_limit_that_is_not_a_size_is_an_input_error(monkeypatch):
    from segwise.engines.duckdb import MEMORY_LIMIT_ENV
    from segwise.errors import InputError

    monkeypatch.setenv(MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(InputError, match="SEGWISE_DUCKDB_MEMORY_LIMIT.*is not a size: give one such as 4GB"):
        DuckDBEngine()
