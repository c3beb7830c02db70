import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segwise.select import CHOICE_RULE, KSelection, _choose, knee_point, select_n_segments
from segwise.validate import internal_metrics, sample_indices, silhouette_many


def test_silhouette_many_equals_scikit_learn():
    X, y = make_blobs(1500, centers=4, random_state=0)
    rng = np.random.default_rng(0)
    labelings = [y, rng.integers(0, 3, len(y)), np.r_[np.zeros(1499, int), [1]]]
    ours = silhouette_many(X, labelings)
    assert ours == pytest.approx([silhouette_score(X, labels) for labels in labelings], abs=1e-12)


def test_internal_metrics_sample_and_never_the_full_matrix():
    X, y = make_blobs(30_000, centers=3, random_state=1)
    metrics = internal_metrics(X, y, sample_size=2_000)
    assert metrics["silhouette_sample_size"] == 2_000
    assert metrics["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, y))
    assert metrics["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, y))
    sample = sample_indices(30_000, 2_000, 0)
    assert metrics["silhouette"] == pytest.approx(silhouette_score(X[sample], y[sample]))
    assert np.isnan(internal_metrics(X, np.zeros(len(X), int))["silhouette"])


def test_knee_of_a_convex_decreasing_curve():
    ks = list(range(1, 11))
    assert knee_point(ks, [100, 50, 25, 20, 18, 16, 15, 14, 13, 12]) == 3
    assert knee_point([2, 3], [10, 5]) is None
    assert knee_point(ks, [5.0] * 10) is None


def test_choice_rule_takes_the_best_silhouette_and_breaks_ties_to_the_smaller_k():
    cands = [{"k": 2, "silhouette": 0.40}, {"k": 3, "silhouette": 0.55}, {"k": 4, "silhouette": 0.553},
             {"k": 5, "silhouette": 0.30}]
    k, reason = _choose(cands, knee=3)
    assert k == 3
    assert "tied within 0.005 with k=4" in reason and "bends at k=3" in reason
    assert _choose([{"k": 2, "silhouette": 0.2}, {"k": 6, "silhouette": 0.5}], None)[0] == 6


def test_selection_finds_planted_blobs_and_keeps_every_candidate():
    from sklearn.cluster import KMeans

    X, _ = make_blobs(3000, centers=5, cluster_std=0.5, random_state=3)
    selection = select_n_segments(X, lambda Xf, k: KMeans(k, n_init=2, random_state=0).fit(Xf), k_range=(2, 8))
    assert selection.chosen == 5
    assert [c["k"] for c in selection.candidates] == list(range(2, 9))
    assert selection.rule == CHOICE_RULE
    assert KSelection.from_dict(selection.to_dict()).to_dict() == selection.to_dict()


def test_selection_fits_on_a_sample_above_the_limit():
    from sklearn.cluster import KMeans

    X, _ = make_blobs(5000, centers=3, random_state=0)
    sizes = []

    def fit(Xf, k):
        sizes.append(len(Xf))
        return KMeans(k, n_init=1, random_state=0).fit(Xf)

    selection = select_n_segments(X, fit, k_range=(2, 4), fit_sample_size=1000, sample_size=500)
    assert set(sizes) == {1000}
    assert selection.candidates[0]["fit_sample_size"] == 1000 and selection.candidates[0]["silhouette_sample_size"] == 500
