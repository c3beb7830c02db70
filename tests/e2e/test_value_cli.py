"""The CDNOW master log through the real command line: features and customer value.

CDNOW (Fader, Hardie and Lee 2005) is the canonical data set of the buy-till-you-die
literature; the file is read from the shared data directory (see its README) and the
tests are skipped when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from .conftest import assert_ok, run_segwise

CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
if not CDNOW.exists():
    CDNOW = Path("/work/shared/data/cdnow/CDNOW_master.txt")

pytestmark = pytest.mark.skipif(not CDNOW.exists(), reason="the CDNOW master file is not available")


def cdnow_log() -> pd.DataFrame:
    """The master log read plainly with pandas: the reference for the checks below."""
    log = pd.read_csv(CDNOW, sep=r"\s+", dtype={"customer_id": str, "date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return log


def test_features_on_cdnow_master_are_exact(tmp_path):
    out = tmp_path / "features.parquet"
    assert_ok(run_segwise("features", CDNOW, "--as-of", "1998-07-01", "--out", out, cwd=tmp_path))
    features = pd.read_parquet(out).set_index("customer_id").sort_index()

    log = cdnow_log()
    as_of = pd.Timestamp("1998-07-01")
    # The log has no order id, so an order is a distinct purchase time (a day here);
    # $0.00 lines are orders too (68 customers have only those).
    expected = log.groupby("customer_id").agg(
        n_orders=("date", "nunique"), monetary_total=("dollar_value", "sum"),
        first=("date", "min"), last=("date", "max"),
    ).sort_index()
    assert len(features) == len(expected) == 23_570
    assert (features.index == expected.index).all()
    np.testing.assert_array_equal(features["n_orders"], expected["n_orders"])
    np.testing.assert_array_equal(features["recency_days"], (as_of - expected["last"]).dt.days)
    np.testing.assert_array_equal(features["tenure_days"], (as_of - expected["first"]).dt.days)
    np.testing.assert_allclose(features["monetary_total"], expected["monetary_total"], rtol=0, atol=1e-9)
