"""The Spark benchmarks run end to end on a small log (each starts its own JVM)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import segwise

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_orders(tmp_path_factory) -> Path:
    population = segwise.generate_population(300, seed=5)
    return population.write(tmp_path_factory.mktemp("bench-spark"), "parquet")["orders"]


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_engine_benchmark_measures_both_engines_with_the_jvm(small_orders):
    completed = subprocess.run(
        [sys.executable, "-m", "bench.spark", "--orders", str(small_orders), "--segments", "3",
         "--driver-memory", "1g", "--no-record"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    header, *runs = _json_lines(completed.stdout)
    assert header["order_lines"] > 0
    by_engine = {run["engine"]: run for run in runs}
    assert set(by_engine) == {"duckdb", "spark"}
    assert all(run["returncode"] == 0 and run["segments"] == 3 for run in runs)
    assert {"load", "features", "segment"} <= set(by_engine["spark"]["timings"])
    # The JVM (a child of the driver) is counted: a local Spark run takes far more than DuckDB.
    assert by_engine["spark"]["peak_tree_rss_mib"] > by_engine["duckdb"]["peak_tree_rss_mib"] + 200


def test_shuffle_benchmark_reads_spark_accounting_per_family(small_orders):
    completed = subprocess.run(
        [sys.executable, "-m", "bench.spark_shuffle", "--orders", str(small_orders), "--driver-memory", "1g",
         "--no-record"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    builds = _json_lines(completed.stdout)
    assert builds[0]["families"] == ["rfm"]
    assert builds[-1]["families"][0] == "rfm" and len(builds[-1]["families"]) == len(builds) - 1
    assert all(build["shuffleWriteBytes"] > 0 and build["stages"] > 0 for build in builds)
    # Every extra family aggregates by customer again, so it adds shuffle.
    assert all(build["shuffleWriteBytes"] > builds[0]["shuffleWriteBytes"] for build in builds[1:])
    assert "Each family's own share" in completed.stdout
