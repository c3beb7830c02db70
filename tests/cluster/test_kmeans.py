import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from segwise.cluster import METHODS, KMeansSegmenter, get_method
from segwise.cluster.kmeans import centroid_confidence
from segwise.errors import InputError


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(4000, centers=6, cluster_std=0.6, random_state=11)


def test_registry():
    assert METHODS["kmeans"] is KMeansSegmenter
    with pytest.raises(InputError, match="unknown segmentation method 'nope'; methods are: auto, autoencoder, dbscan, "
                                         "gmm, hdbscan, hierarchical, kmeans, kprototypes, multiview, som, two_stage"):
        get_method("nope")


def test_auto_recovers_planted_groups(blobs):
    X, y = blobs
    model = KMeansSegmenter(random_state=0).fit(X)
    assert model.n_segments_ == 6
    assert adjusted_rand_score(y, model.labels_) > 0.99
    assert [c["k"] for c in model.selection_.candidates] == list(range(2, 13))


@pytest.mark.parametrize("n_segments", [3, 6])
@pytest.mark.parametrize("seed", [0, 1])
def test_fit_predict_equals_fit_then_predict_and_is_deterministic(blobs, n_segments, seed):
    X, _ = blobs
    a = KMeansSegmenter(n_segments, random_state=seed).fit(X)
    b = KMeansSegmenter(n_segments, random_state=seed)
    assert np.array_equal(b.fit_predict(X), a.predict(X))
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)


def test_confidence_is_one_at_a_centroid_and_zero_on_the_boundary():
    distances = np.array([[0.0, 2.0], [1.0, 1.0], [1.0, 4.0]])
    assert centroid_confidence(distances).tolist() == [1.0, 0.0, 0.75]
    assert centroid_confidence(np.array([[3.0]])).tolist() == [1.0]


def test_confidence_range_and_state_round_trip(blobs):
    X, _ = blobs
    model = KMeansSegmenter(4, random_state=0).fit(X)
    conf = model.confidence(X)
    assert conf.min() >= 0 and conf.max() <= 1
    meta, arrays = model.to_state()
    again = KMeansSegmenter.from_state(meta, arrays)
    assert np.array_equal(again.predict(X), model.predict(X))
    assert np.array_equal(again.confidence(X), conf)
    segments, one_pass_conf = again.predict_with_confidence(X)
    assert np.array_equal(segments, model.predict(X)) and np.array_equal(one_pass_conf, conf)


def test_large_inputs_choose_k_on_a_sample_and_refit_on_everyone():
    X, y = make_blobs(6000, centers=4, cluster_std=0.5, random_state=2)
    model = KMeansSegmenter(random_state=0, fit_sample=1500, k_range=(2, 6)).fit(X)
    assert model.selection_.candidates[0]["fit_sample_size"] == 1500
    assert model.labels_.shape == (6000,) and model.n_segments_ == 4
    assert adjusted_rand_score(y, model.labels_) > 0.99


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(InputError, match=r"The 'n_segments' parameter of KMeansSegmenter must be 'auto' or an int"):
        KMeansSegmenter(0).fit(X)
    with pytest.raises(InputError, match="25 segments were asked for but there are only 20 customers"):
        KMeansSegmenter(25).fit(X)


@parametrize_with_checks([KMeansSegmenter(n_segments=3, random_state=0)])
def test_scikit_learn_compatible(estimator, check):
    check(estimator)
