import numpy as np
import pytest
from minisom import MiniSom
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import SOMSegmenter
from segwise.cluster.som import _two_best, map_shape, pca_grid, u_matrix


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(2000, centers=5, n_features=6, cluster_std=1.0, random_state=3)


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return SOMSegmenter(num_iteration=8000, random_state=0).fit(X)


def test_recovers_the_planted_groups(blobs, fitted):
    _, y = blobs
    assert fitted.n_segments_ == 5
    assert adjusted_rand_score(y, fitted.labels_) > 0.99
    assert np.array_equal(fitted.predict(blobs[0]), fitted.labels_)


def test_map_size_rule():
    assert map_shape(10_000) == (20, 20)  # 5 sqrt(n) = 500 nodes, capped at 400
    assert map_shape(100) == (7, 7)  # 50 nodes, square without data
    stretched = np.random.default_rng(0).normal(size=(400, 3)) * [4.0, 1.0, 0.5]
    rows, cols = map_shape(400, stretched)
    assert rows > cols and abs(rows * cols - 100) <= 10


def test_pca_initialisation_spans_the_first_two_components():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 5)) @ np.diag([3.0, 2.0, 0.5, 0.3, 0.1]) @ np.linalg.qr(rng.normal(size=(5, 5)))[0]
    W = pca_grid(X, 6, 4).reshape(-1, 5) - X.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(np.cov(X, rowvar=False))
    plane = eigvecs[:, -2:]
    assert np.abs(W - W @ plane @ plane.T).max() < 1e-10
    # The grid reaches one standard deviation along each component (corners).
    extent = np.abs(W @ plane).max(axis=0)
    assert np.allclose(sorted(extent), sorted(np.sqrt(eigvals[-2:])))


def test_vectorised_units_and_errors_match_minisom(blobs, fitted):
    X, _ = blobs
    rows, cols = fitted.details_["map_shape"]
    som = MiniSom(rows, cols, X.shape[1])
    som._weights = fitted.weights_.copy()
    best, _, dist = _two_best(X, fitted.weights_.reshape(-1, X.shape[1]))
    winners = np.array([np.ravel_multi_index(som.winner(x), (rows, cols)) for x in X[:200]])
    assert np.array_equal(best[:200], winners)
    assert fitted.quantization_error_ == pytest.approx(som.quantization_error(X))
    assert fitted.topographic_error_ == pytest.approx(som.topographic_error(X))


def test_u_matrix_and_component_planes(fitted, blobs):
    weights = np.zeros((2, 3, 1))
    weights[0, 0, 0] = 3.0
    um = u_matrix(weights)
    # Node (0,0) differs by 3 from its 3 neighbours; node (1,2) has 3 neighbours none of them (0,0).
    assert um[0, 0] == 3.0 and um[1, 2] == 0.0 and um[0, 1] == pytest.approx(3.0 / 5)
    details = fitted.details_
    rows, cols = details["map_shape"]
    assert np.array(details["u_matrix"]).shape == (rows, cols)
    assert np.array(details["component_planes"]).shape == (blobs[0].shape[1], rows, cols)
    assert np.array(details["hits"]).sum() == len(blobs[0])


def test_deterministic_and_state_round_trip(blobs, fitted):
    X, _ = blobs
    again = SOMSegmenter(num_iteration=8000, random_state=0).fit(X)
    assert np.array_equal(again.weights_, fitted.weights_) and np.array_equal(again.labels_, fitted.labels_)
    loaded = SOMSegmenter.from_state(*fitted.to_state())
    new = X[::4] + 0.2
    assert np.array_equal(loaded.predict(new), fitted.predict(new))
    assert np.array_equal(loaded.confidence(new), fitted.confidence(new))
    conf = fitted.confidence(X)
    assert conf.min() >= 0 and conf.max() <= 1
