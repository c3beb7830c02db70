"""The tiled, symmetric silhouette against scikit-learn's, at and across tile edges."""

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples

from segwise.cluster import silhouette
from segwise.cluster.silhouette import silhouette_many, silhouette_values


@pytest.mark.parametrize("tile_rows", [1, 7, 64, 256])
@pytest.mark.parametrize("n", [5, 300, 513])
def test_every_tile_size_gives_scikit_learns_values(monkeypatch, tile_rows, n):
    # Row counts that are, and are not, multiples of the tile: the last tile row and
    # column are partial, and tiles off the diagonal count for both of their sides.
    monkeypatch.setattr(silhouette, "TILE_ROWS", tile_rows)
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 4)) + np.repeat(rng.normal(scale=4, size=(3, 4)), [n // 3, n // 3, n - 2 * (n // 3)], 0)
    labels = np.arange(n) % 3
    labels[: n // 2] = (X[: n // 2, 0] > 0).astype(int)
    assert silhouette_values(X, labels) == pytest.approx(silhouette_samples(X, labels), abs=1e-12)


def test_duplicate_rows_and_singletons_match_scikit_learn():
    # Customers with identical features are common (one order, same amount): their
    # distance is zero in both computations, and a singleton segment scores 0.
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 3))
    X = np.vstack([np.repeat(base, 10, axis=0), [[50.0, 50.0, 50.0]]])
    labels = np.r_[np.repeat(np.arange(40) % 4, 10), [4]]
    ours = silhouette_values(X, labels)
    assert ours == pytest.approx(silhouette_samples(X, labels), abs=1e-12)
    assert ours[-1] == 0.0


def test_labelings_scored_together_equal_each_scored_alone(monkeypatch):
    monkeypatch.setattr(silhouette, "TILE_ROWS", 32)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(250, 5))
    labelings = [rng.integers(0, k, len(X)) for k in (2, 5, 9)] + [np.zeros(len(X), int)]
    together = silhouette_many(X, labelings)
    alone = [silhouette_many(X, [labels])[0] for labels in labelings]
    assert together[:3] == pytest.approx(alone[:3], abs=1e-12)
    assert np.isnan(together[3]) and np.isnan(alone[3])
