"""Shared fixtures: tiny hand-checkable transaction tables and a small population."""

from __future__ import annotations

import pandas as pd
import pytest

import segwise


def tiny_log(rows: list[tuple], columns=("order_id", "customer_id", "ordered_at", "amount")) -> pd.DataFrame:
    """A transaction log from literal rows; timestamps parsed from ISO text."""
    frame = pd.DataFrame(rows, columns=list(columns))
    if "ordered_at" in frame:
        frame["ordered_at"] = pd.to_datetime(frame["ordered_at"])
    return frame


@pytest.fixture(scope="session")
def small_population():
    """2,000 synthetic customers (fast, deterministic)."""
    return segwise.generate_population(2_000, seed=7)


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a real PostgreSQL server started for this session (see tests/postgres.py).

    Skips only when no server binaries are installed, and never in CI (CI=true):
    there a missing server is a failure.
    """
    import os

    from .postgres import PostgresServer, server_binaries

    binaries = server_binaries()
    if binaries is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed; apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(*binaries)
    try:
        url = server.start()
    except BaseException:
        server.stop()
        raise
    yield url
    server.stop()


@pytest.fixture(scope="session")
def small_run(small_population, tmp_path_factory):
    """`segwise.segment` of the small population with 5 segments, saved to a run directory.

    Returns (result, run_dir). Tests must not modify the directory (copy it first).
    """
    result = segwise.segment(small_population.orders, customers=small_population.customers, n_segments=5,
                             random_state=0)
    run_dir = tmp_path_factory.mktemp("small_run") / "run"
    result.save(run_dir)
    return result, run_dir


# One headless Chromium per test session, shared by the report tests (tests/report,
# tests/e2e/test_report.py).
from .report.browser import chromium  # noqa: E402, F401
