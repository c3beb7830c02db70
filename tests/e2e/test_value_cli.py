"""The CDNOW master log through the real command line: features and customer value.

CDNOW (Fader, Hardie and Lee 2005) is the canonical data set of the buy-till-you-die
literature; the file is read from the shared data directory (see its README) and the
tests are skipped when it is absent.
"""

from __future__ import annotations

import json
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


#: lifetimes 0.11.3 on the same log (bench/results/value-reference-*.json): BetaGeoFitter on
#: calibration_and_holdout_data(calibration_period_end="1997-09-30", observation_period_end="1998-06-30",
#: freq="D"), and the sum of its conditional_expected_number_of_purchases_up_to_time(273 days).
LIFETIMES_HOLDOUT = {
    "bgnbd": {"r": 0.25162401142410395, "alpha": 33.5226161922892, "a": 0.7234330357288046, "b": 2.1610869813723315},
    "predicted_purchases": 16873.737004341783,
    "actual_purchases": 19684,
}


def test_value_on_cdnow_matches_lifetimes(tmp_path):
    out = tmp_path / "value"
    result = assert_ok(run_segwise("value", CDNOW, "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30",
                                   "--out", out, cwd=tmp_path))
    assert "holdout 1997-09-30 .. 1998-06-30" in result.out
    record = json.loads((out / "value.json").read_text())
    for name, value in LIFETIMES_HOLDOUT["bgnbd"].items():
        assert record["bgnbd"][name] == pytest.approx(value, rel=0.01), name
    assert set(record["gamma_gamma"]) == {"p", "q", "v"}
    assert record["holdout"]["predicted_purchases"] == pytest.approx(LIFETIMES_HOLDOUT["predicted_purchases"], rel=0.01)
    assert record["holdout"]["actual_purchases"] == LIFETIMES_HOLDOUT["actual_purchases"]

    holdout = pd.read_parquet(out / "holdout.parquet")
    assert list(holdout.columns) == ["customer_id", "predicted", "actual"]
    assert len(holdout) == 23_570
    # The actual holdout purchase days, counted plainly from the log.
    log = cdnow_log()
    in_holdout = log[(log["date"] > "1997-09-30") & (log["date"] <= "1998-06-30")]
    expected = in_holdout.groupby("customer_id")["date"].nunique()
    actual = holdout.set_index("customer_id")["actual"]
    assert actual.sum() == expected.sum()
    assert (actual.reindex(expected.index) == expected).all()
    html = (out / "holdout.html").read_text()
    assert "plotly" in html and "repeat purchase days in the calibration period" in html
    assert not list(out.glob(".segwise-staging-*"))


def test_value_with_a_holdout_before_the_calibration_end_is_bad_input(tmp_path):
    result = run_segwise("value", CDNOW, "--calibration-end", "1998-01-31", "--holdout-end", "1997-12-31",
                         "--out", tmp_path / "v", cwd=tmp_path)
    assert result.returncode == 2
    assert "--holdout-end 1997-12-31 must be after --calibration-end 1998-01-31" in result.err
    assert not (tmp_path / "v" / "value.json").exists()


def test_value_without_enough_repeat_customers_says_why(tmp_path):
    log = tmp_path / "tiny.csv"
    log.write_text("customer_id,date,amount\na,2024-01-01,5\nb,2024-01-02,6\na,2024-03-01,7\n")
    result = run_segwise("value", log, "--calibration-end", "2024-01-31", "--out", tmp_path / "v", cwd=tmp_path)
    assert result.returncode == 2
    assert "only 0 of 2 customers have a repeat purchase; the BG/NBD model needs at least 20" in result.err
    assert not (tmp_path / "v").exists()


def test_run_orders_segments_by_predicted_value(tmp_path):
    out = tmp_path / "run"
    assert_ok(run_segwise("run", CDNOW, "--order-by", "clv", "--segments", "3", "--no-report", "--no-store",
                          "--out", out, cwd=tmp_path))
    profiles = json.loads((out / "profiles.json").read_text())
    means = [s["means"]["clv_365d"] for s in profiles["segments"]]
    assert means == sorted(means, reverse=True)
    run = json.loads((out / "run.json").read_text())
    assert run["features"]["models"]["value"]["bgnbd"]["r"] == pytest.approx(0.26712777455768094, rel=1e-3)


def test_value_on_customers_who_never_drop_out_fits_the_no_dropout_limit(tmp_path):
    # Every customer's purchases fall anywhere in the year, none stops early: BG/NBD's
    # dropout part vanishes (a on its floor; before, "degenerate parameters" and exit 2).
    # The command fits, says so, and predicts the holdout.
    rng = np.random.default_rng(5)
    rows = []
    for customer in range(1_500):
        for day in rng.uniform(0, 370, 1 + rng.poisson(rng.choice([1.0, 3.0, 6.0, 15.0]))):
            rows.append((f"c{customer}", pd.Timestamp("2023-01-01") + pd.Timedelta(days=float(day)),
                         round(float(rng.gamma(4, 10)), 2)))
    log = tmp_path / "steady.csv"
    pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).to_csv(log, index=False)
    out = tmp_path / "v"
    result = assert_ok(run_segwise("value", log, "--calibration-end", "2023-09-30", "--out", out, cwd=tmp_path))
    assert "customers are not seen to stop buying" in result.err
    record = json.loads((out / "value.json").read_text())
    assert record["diagnostics"]["bgnbd"]["at_floor"] == ["a"]
    assert any("not seen to stop buying" in note for note in record["notes"])
    assert record["holdout"]["predicted_purchases"] == pytest.approx(record["holdout"]["actual_purchases"], rel=0.1)
