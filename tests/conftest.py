"""Shared fixtures: tiny hand-checkable transaction tables and a small population.

Under CI (``CI`` set, as ``.ci/run`` does) the suite fails loudly instead of passing
by skipping: every optional dependency a test needs must be present (checked once at
the start of the session, naming what is missing), and a skip whose reason is not in
`ALLOWED_SKIPS` (each with its justification) fails the run at the end.
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import segwise

#: Reasons a test may skip even in CI (a fragment of the reason), with why that is right.
ALLOWED_SKIPS = {
    "SCIPY_ARRAY_API is not set: not checking array_api input":
        "scikit-learn's estimator checks test array-API inputs only when SciPy's experimental array API is "
        "switched on; segwise methods take NumPy arrays only and do not claim array-API support",
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _hypothesis_profiles() -> None:
    """In CI the property tests draw the same examples on every run (a red CI is then a change,
    not the luck of the draw); elsewhere they draw new ones each run and keep what failed."""
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
    if _in_ci():
        settings.load_profile("ci")


_hypothesis_profiles()


def missing_dependencies() -> list[str]:
    """What an optional test dependency lacks on this machine, one line each (empty: nothing)."""
    from .postgres import server_binaries
    from .report.browser import CHROMIUM

    missing = []
    for module, what in (("torch", "PyTorch (pip install 'segwise[deep]'): the autoencoder tests"),
                         ("pyspark", "PySpark (pip install 'segwise[spark]'): the Spark engine tests"),
                         ("playwright", "Playwright (pip install playwright): the browser tests of the report"),
                         ("psycopg", "psycopg (pip install 'psycopg[binary]'): the PostgreSQL export tests")):
        try:
            # Imported, not only found: a broken install is as missing as an absent one.
            importlib.import_module(module)
        except ImportError:
            missing.append(what)
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        missing.append("Java (a JRE 17+, e.g. apt-get install openjdk-17-jre-headless): PySpark runs on it")
    if server_binaries() is None:
        missing.append("the PostgreSQL server binaries initdb and pg_ctl (apt-get install postgresql)")
    if not CHROMIUM.exists():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium): the browser tests of the report")
    return missing


def pytest_sessionstart(session):
    if _in_ci() and not hasattr(session.config, "workerinput"):
        missing = missing_dependencies()
        if missing:
            raise pytest.UsageError(
                "CI is set, so every optional test dependency is required, and these are missing:\n  - "
                + "\n  - ".join(missing) + "\n(.ci/run installs the system packages; `make dev` the Python ones)")


def unexplained_skips(skipped_reports) -> list[str]:
    """The reasons of skipped tests that `ALLOWED_SKIPS` does not justify."""
    out = []
    for report in skipped_reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not any(allowed in reason for allowed in ALLOWED_SKIPS):
            out.append(f"{report.nodeid}: {reason}")
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    # Only the controlling process sees every test's report (pytest-xdist workers do not).
    if not _in_ci() or hasattr(session.config, "workerinput"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    unexplained = unexplained_skips(reporter.stats.get("skipped", []))
    if unexplained:
        reporter.section("skips not in tests/conftest.py ALLOWED_SKIPS (CI fails on them)", red=True)
        for line in unexplained:
            reporter.line(line, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
    from .postgres import PostgresServer, server_binaries

    binaries = server_binaries()
    if binaries is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed; apt-get install postgresql"
        if _in_ci():
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
