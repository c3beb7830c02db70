"""One small local[2] Spark session per test process (startup takes tens of seconds).

Every Spark test module is marked ``spark`` (select them with ``-m spark``). Under
``pytest -n 2`` whole files go to one worker (``--dist loadfile`` in pyproject), so
each worker starts at most one session, and a module's shared fixtures are built once.
Two shuffle partitions and no UI keep the sessions light on a shared machine.
"""

from __future__ import annotations

import pytest

import segwise


@pytest.fixture(scope="session")
def spark_engine():
    from segwise.engines import get_engine

    engine = get_engine("spark", master="local[2]", conf={
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        "spark.driver.memory": "1g",
    })
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def synthetic_log(tmp_path_factory):
    """400 synthetic customers (about 4,500 order lines) as Parquet and CSV."""
    population = segwise.generate_population(400, seed=11)
    directory = tmp_path_factory.mktemp("spark-data")
    paths = population.write(directory / "parquet", "parquet")
    csv_paths = population.write(directory / "csv", "csv")
    return {"parquet": paths["orders"], "csv": csv_paths["orders"], "customers": paths["customers"],
            "population": population}
