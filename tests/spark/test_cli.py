"""The installed ``segwise`` script with ``--engine spark`` (each run starts its own Spark)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from segwise.data import load_transactions
from segwise.features import build_features

# Every command starts a JVM: slow, and one command at a time.
pytestmark = [pytest.mark.spark, pytest.mark.slow]

SEGWISE = Path(sys.executable).parent / "segwise"
SPARK = ["--engine", "spark", "--spark-master", "local[1]", "--spark-conf", "spark.ui.enabled=false",
         "--spark-conf", "spark.sql.shuffle.partitions=2"]


def segwise(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "FORCE_COLOR")}
    env["NO_COLOR"] = "1"
    done = subprocess.run([str(SEGWISE), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done


def test_features_and_run_on_spark_from_the_command_line(synthetic_log, tmp_path):
    data = synthetic_log["parquet"]
    segwise("features", data, "--out", "spark.parquet", *SPARK, cwd=tmp_path)
    on_spark = pd.read_parquet(tmp_path / "spark.parquet")
    # What `segwise features DATA --out FILE` writes on the DuckDB engine.
    local = build_features(load_transactions(data)).frame.reset_index()
    assert list(on_spark.columns) == list(local.columns)
    pd.testing.assert_frame_equal(on_spark, local, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-12)

    segwise("run", data, "--out", "out", "--segments", "3", "--method", "gmm", *SPARK, cwd=tmp_path)
    out = tmp_path / "out"
    run = json.loads((out / "run.json").read_text())
    assert run["method"] == "spark_gmm" and run["n_segments"] == 3
    assignments = pd.read_parquet(out / "assignments.parquet")
    partitions = sorted(p.name for p in (out / "assignments_by_segment").iterdir() if p.is_dir())
    assert partitions == [f"segment_id={i}" for i in sorted(assignments["segment_id"].unique())]
    by_segment = pq.read_table(out / "assignments_by_segment").to_pandas()
    assert len(by_segment) == len(assignments)
    assert sorted(by_segment["customer_id"]) == sorted(assignments["customer_id"])
    profiles = json.loads((out / "profiles.json").read_text())
    assert sum(p["n_customers"] for p in profiles["segments"]) == len(assignments)
