import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import segwise
from segwise.drift import PSI_EPSILON, PSI_SIGNIFICANT, RETRAIN_RULE, bin_shares, drift_report, psi, training_snapshot
from segwise.synth import BEHAVIOUR_TYPES
from segwise.track import update


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def test_psi_of_known_distributions():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * math.log(1.2) + 0.1 * math.log(1.25))
    assert psi([0.25] * 4, [0.1, 0.2, 0.3, 0.4]) == pytest.approx(
        sum((a - 0.25) * math.log(a / 0.25) for a in (0.1, 0.2, 0.3, 0.4)))
    # An empty bin counts as PSI_EPSILON instead of making the index infinite.
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) == pytest.approx(
        -0.1 * math.log(0.4 / 0.5) + (0.1 - PSI_EPSILON) * math.log(0.1 / PSI_EPSILON))
    with pytest.raises(ValueError, match="different bins"):
        psi([0.5, 0.5], [1.0])


def test_bins_are_training_quantiles_plus_missing():
    frame = pd.DataFrame({"x": np.arange(1.0, 11.0), "channel": list("aaaaabbbcc")})
    snapshot = training_snapshot(frame, ["x", "channel"], {0: 0.7, 1: 0.3}, bins=2)
    x = snapshot["features"]["x"]
    assert x["edges"] == [5.5] and x["shares"] == [0.5, 0.5, 0.0]
    assert bin_shares(np.array([1.0, 2.0, 3.0, 9.0, np.nan]), x).tolist() == [0.6, 0.2, 0.2]
    # Values equal to an edge fall in the lower bin.
    assert bin_shares(np.array([5.5, 5.50001]), x).tolist() == [0.5, 0.5, 0.0]
    channel = snapshot["features"]["channel"]
    assert channel["levels"] == ["a", "b", "c"] and channel["shares"] == pytest.approx([0.5, 0.3, 0.2, 0.0, 0.0])
    assert bin_shares(pd.Series(["a", "z", None, "c"]), channel).tolist() == [0.25, 0.0, 0.25, 0.25, 0.25]
    report = drift_report(snapshot, pd.DataFrame({"x": [1.0, 2.0, 3.0, 9.0], "channel": list("abcc")}),
                          np.array([0, 0, 1, 1]))
    expected_x = psi([0.5, 0.5, 0.0], [0.75, 0.25, 0.0])
    assert report["features"]["x"]["psi"] == pytest.approx(expected_x)
    assert report["features"]["x"]["level"] == "significant" and expected_x > PSI_SIGNIFICANT
    assert report["segment_share_psi"] == pytest.approx(psi([0.7, 0.3], [0.5, 0.5]))
    assert report["segment_shares"] == {"0": {"training": 0.7, "current": 0.5}, "1": {"training": 0.3, "current": 0.5}}
    # channel: 0.25 ln 2 + 0.05 ln 1.2 + 0.3 ln 2.5 = 0.457, largest first.
    assert report["features"]["channel"]["psi"] == pytest.approx(
        0.25 * math.log(2) + 0.05 * math.log(1.2) + 0.3 * math.log(2.5))
    assert report["retrain_recommended"]
    assert report["reasons"] == ["channel shifted (PSI 0.457 > 0.25)", "x shifted (PSI 0.275 > 0.25)"]
    assert report["rule"] == RETRAIN_RULE


@pytest.fixture(scope="module")
def trained(small_population):
    return segwise.segment(small_population.orders, random_state=0)


def test_the_model_file_keeps_the_training_snapshot(trained, tmp_path):
    snapshot = trained.model.training_snapshot
    assert set(snapshot["features"]) == set(trained.segmenter.feature_columns_)
    assert snapshot["segment_shares"] == {str(p.segment_id): p.share_customers for p in trained.profiles}
    assert snapshot["as_of"] == trained.run["as_of"] and snapshot["n_customers"] == len(trained.assignments)
    trained.model.save(tmp_path / "model.segwise")
    assert segwise.load_model(tmp_path / "model.segwise").training_snapshot == snapshot


def test_no_retrain_on_the_same_kind_of_population(trained, tmp_path):
    fresh = segwise.generate_population(2_000, seed=8)
    result = update(trained.model, segwise.load_transactions(fresh.orders), tmp_path / "store.duckdb")
    drift = result.summary["drift"]
    assert not drift["retrain_recommended"] and drift["reasons"] == []
    assert drift["segment_share_psi"] < 0.05 and drift["max_feature_psi"] < 0.1
    assert result.summary["retrain_recommended"] is False


def test_retrain_on_a_shifted_population(trained, tmp_path):
    # The same business a year on: far fewer loyal customers, many more lost one-timers and deal hunters.
    shares = {"loyal_regulars": 0.02, "lost_one_timers": 0.6, "deal_hunters": 0.3}
    types = tuple(replace(t, share=shares.get(t.name, t.share)) for t in BEHAVIOUR_TYPES)
    shifted = segwise.generate_population(2_000, seed=8, types=types)
    result = update(trained.model, segwise.load_transactions(shifted.orders), tmp_path / "store.duckdb")
    drift = result.summary["drift"]
    assert drift["retrain_recommended"] and result.summary["retrain_recommended"]
    assert drift["segment_share_psi"] > PSI_SIGNIFICANT
    assert any(reason.startswith("segment shares shifted") for reason in drift["reasons"])
