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


# One headless Chromium per test session, shared by the report tests (tests/report,
# tests/e2e/test_report.py).
from .report.browser import chromium  # noqa: E402, F401
