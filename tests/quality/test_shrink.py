"""Empirical-Bayes shrinkage of shares (segwise.features.shrink)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segwise.features.shrink import ShareShrinkage


def _frame(true_share: np.ndarray, orders: np.ndarray, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hits = rng.binomial(orders, true_share)
    return pd.DataFrame({"n_orders": orders, "share": hits / orders})


def test_pure_sampling_noise_is_shrunk_to_the_population_and_weighted_zero():
    orders = np.random.default_rng(1).integers(1, 6, 4_000)
    frame = _frame(np.full(4_000, 0.3), orders)
    shrink = ShareShrinkage(["share"], {"share": "share 0-1"}).fit(frame)
    p = shrink.params_["share"]
    assert p["mu"] == pytest.approx(0.3, abs=0.02)
    assert p["reliability"] < 0.05 and shrink.weights()["share"] < 0.2
    shrunk = shrink.transform(frame)["share"]
    assert shrunk.std() < 0.2 * frame["share"].std()


def test_real_differences_survive_and_rest_more_on_customers_with_many_orders():
    rng = np.random.default_rng(2)
    true = np.where(rng.random(4_000) < 0.5, 0.1, 0.9)
    orders = rng.integers(1, 20, 4_000)
    frame = _frame(true, orders)
    shrink = ShareShrinkage(["share"], {"share": "share 0-1"}).fit(frame)
    assert shrink.params_["share"]["reliability"] > 0.5 and shrink.weights()["share"] == 1.0
    shrunk = shrink.transform(frame)["share"].to_numpy()
    mu = shrink.params_["share"]["mu"]
    # A one-order share of 1 moves further toward the population than a 19-order one.
    one = (frame["n_orders"] == 1) & (frame["share"] == 1)
    many = (frame["n_orders"] == 19) & (frame["share"] == 1)
    assert (1 - shrunk[one.to_numpy()]).min() > (1 - shrunk[many.to_numpy()]).max()
    assert np.all((shrunk >= min(mu, 0)) & (shrunk <= 1))


def test_ratios_keep_their_range_and_state_round_trips():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"n_orders": rng.integers(1, 10, 500), "trend": rng.uniform(-1, 1, 500)})
    shrink = ShareShrinkage(["trend"], {"trend": "ratio -1..1"}).fit(frame)
    out = shrink.transform(frame)["trend"]
    assert out.between(-1, 1).all()
    again = ShareShrinkage.from_dict(shrink.to_dict())
    pd.testing.assert_series_equal(again.transform(frame)["trend"], out)
    array = again.transform_array(frame[["n_orders", "trend"]].to_numpy(float), ["n_orders", "trend"])
    np.testing.assert_allclose(array[:, 1], out.to_numpy())
