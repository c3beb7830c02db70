import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import AutoSegmenter, KMeansSegmenter
from segwise.cluster.auto import bootstrap_stability
from segwise.errors import InputError

from .populations import tiny_dense_group


@pytest.fixture(scope="module")
def blobs():
    centres = [[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]]
    return make_blobs(1500, centers=centres, cluster_std=0.7, random_state=4)


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return AutoSegmenter(k_range=(2, 6), n_bootstrap=3, random_state=0).fit(X)


def test_compares_every_candidate_and_keeps_the_table(blobs, fitted):
    X, y = blobs
    table = fitted.details_["comparison"]
    assert [r["method"] for r in table] == ["kmeans", "gmm", "hierarchical", "hdbscan"]
    for row in table:
        assert row["fitted"] and {"silhouette", "davies_bouldin", "stability", "mean_rank", "n_segments"} <= set(row)
    chosen = fitted.details_["chosen"]
    best = min((r for r in table if r["mean_rank"] is not None), key=lambda r: (r["mean_rank"], -r["stability"]))
    assert chosen == best["method"] and fitted.chosen_.method_name == chosen
    assert adjusted_rand_score(y, fitted.labels_) > 0.99
    assert np.array_equal(fitted.predict(X), fitted.chosen_.predict(X))
    assert "best mean rank" in fitted.details_["reason"]


def test_unstable_methods_are_set_aside():
    X, truth = tiny_dense_group(n=1500)
    model = AutoSegmenter(candidates=("kmeans", "gmm"), k_range=(2, 5), n_bootstrap=2, min_stability=1.01,
                          random_state=0).fit(X)
    # Nobody reaches 1.01, so nobody is set aside and the rule still picks one.
    assert all(r["mean_rank"] is not None for r in model.comparison_)
    assert "set aside" not in model.details_["reason"]
    strict = AutoSegmenter(candidates=("kmeans", "hdbscan"), k_range=(2, 5), n_bootstrap=2, min_stability=0.9,
                           random_state=0).fit(X)
    unstable = [r["method"] for r in strict.comparison_ if r["stability"] < 0.9]
    for method in unstable:
        assert method in strict.details_["reason"]


def test_bootstrap_stability_is_high_for_clear_groups_and_low_for_noise():
    X, y = make_blobs(600, centers=3, cluster_std=0.5, random_state=0)
    estimator = KMeansSegmenter(3, random_state=0)
    clear = bootstrap_stability(estimator, X, KMeansSegmenter(3, random_state=0).fit(X).labels_, n_bootstrap=4)
    assert clear["mean"] > 0.99 and len(clear["scores"]) == 4
    noise = np.random.default_rng(0).uniform(size=(600, 2))
    reference = KMeansSegmenter(7, random_state=0).fit(noise).labels_
    assert bootstrap_stability(KMeansSegmenter(7, random_state=1), noise, reference, n_bootstrap=4)["mean"] < clear["mean"]


def test_state_round_trip_and_errors(blobs, fitted):
    X, _ = blobs
    loaded = AutoSegmenter.from_state(*fitted.to_state())
    new = X[::3] + 0.1
    assert np.array_equal(loaded.predict(new), fitted.predict(new))
    assert np.array_equal(loaded.confidence(new), fitted.confidence(new))
    assert loaded.details_["comparison"] == fitted.details_["comparison"]
    with pytest.raises(InputError, match="auto compares simple methods; 'two_stage' cannot be a candidate"):
        AutoSegmenter(candidates=("kmeans", "two_stage")).fit(X)


def test_deterministic(blobs, fitted):
    X, _ = blobs
    again = AutoSegmenter(k_range=(2, 6), n_bootstrap=3, random_state=0).fit(X)
    assert np.array_equal(again.labels_, fitted.labels_)
    assert again.details_["comparison"] == fitted.details_["comparison"]
