import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segwise.cluster.select import (
    CHOICE_RULE, MARGIN_RULE, KSelection, _choose, knee_point, resolve_n_segments, select_n_segments,
    supported_range,
)
from segwise.errors import InputError
from segwise.validate import (
    calinski_harabasz, cluster_scatter, davies_bouldin, internal_metrics, sample_indices, silhouette_many,
    silhouette_values, validation_report,
)


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
    assert selection.rule == MARGIN_RULE
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


# --------------------------------------------------------------------------- validation report


def test_validation_report_matches_scikit_learn_on_every_measure():
    from sklearn.metrics import silhouette_samples

    X, y = make_blobs(1200, centers=3, random_state=4)
    report = validation_report(X, y, sample_size=5_000)
    assert report["n_customers"] == 1200 and report["n_segments"] == 3
    assert report["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, y), rel=1e-10)
    assert report["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, y), rel=1e-10)
    assert report["silhouette"] == pytest.approx(silhouette_score(X, y), abs=1e-12)
    assert report["silhouette_sample_size"] == 1200
    per_row = silhouette_samples(X, y)
    for seg in range(3):
        assert report["per_segment_silhouette"][str(seg)] == pytest.approx(per_row[y == seg].mean(), abs=1e-12)
        assert report["per_segment_sampled"][str(seg)] == int((y == seg).sum())
    low, high = report["silhouette_ci"]
    assert low < report["silhouette"] < high and high - low < 0.05
    assert report["bic"] is None and report["log_likelihood"] is None


def test_silhouette_values_equal_scikit_learn_per_row():
    from sklearn.metrics import silhouette_samples

    X, y = make_blobs(700, centers=4, random_state=2)
    assert silhouette_values(X, y) == pytest.approx(silhouette_samples(X, y), abs=1e-12)
    with pytest.raises(ValueError, match="at least two segments"):
        silhouette_values(X, np.zeros(len(X), int))


def test_silhouette_is_sampled_above_the_sample_size_and_the_interval_covers_the_full_value():
    X, y = make_blobs(6_000, centers=4, cluster_std=2.5, random_state=5)
    report = validation_report(X, y, sample_size=1_500, random_state=3)
    assert report["silhouette_sample_size"] == 1_500
    assert sum(report["per_segment_sampled"].values()) == 1_500
    low, high = report["silhouette_ci"]
    assert low <= silhouette_score(X, y) <= high
    again = validation_report(X, y, sample_size=1_500, random_state=3)
    assert again == report


def test_bic_and_log_likelihood_come_from_a_method_that_has_them():
    from sklearn.mixture import GaussianMixture

    X, _ = make_blobs(800, centers=3, random_state=0)
    gmm = GaussianMixture(3, random_state=0).fit(X)
    report = validation_report(X, gmm.predict(X), clusterer=gmm)
    assert report["bic"] == pytest.approx(gmm.bic(X))
    assert report["log_likelihood"] == pytest.approx(gmm.score(X) * len(X))


def test_undefined_scores_are_none_with_one_segment():
    X, _ = make_blobs(100, centers=2, random_state=0)
    report = validation_report(X, np.zeros(100, int))
    assert report["silhouette"] is None and report["davies_bouldin"] is None and report["calinski_harabasz"] is None
    with pytest.raises(ValueError, match="'confidence' parameter of validation_report must be in"):
        validation_report(X, np.zeros(100, int), confidence=1.5)


def test_scores_on_all_customers_never_copy_the_matrix(monkeypatch):
    """Calinski-Harabasz and Davies-Bouldin work in blocks: at 10 million customers a copy is gigabytes."""
    import tracemalloc

    from segwise.cluster import silhouette

    monkeypatch.setattr(silhouette, "BLOCK_BYTES", 2**20)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400_000, 12))
    labels = rng.integers(0, 6, len(X))
    tracemalloc.start()
    try:
        scatter = cluster_scatter(X, labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One label-sized integer array (3 MB) and 1 MB blocks; X itself is 38 MB.
    assert peak < X.nbytes / 4
    sub = slice(0, 20_000)
    small = cluster_scatter(X[sub], labels[sub])
    assert calinski_harabasz(small) == pytest.approx(calinski_harabasz_score(X[sub], labels[sub]), rel=1e-9)
    assert davies_bouldin(small) == pytest.approx(davies_bouldin_score(X[sub], labels[sub]), rel=1e-9)
    assert scatter.sizes.sum() == len(X)


def test_silhouette_memory_is_bounded_by_the_block_not_the_sample():
    import tracemalloc

    from segwise.validate import BLOCK_BYTES

    rng = np.random.default_rng(1)
    X = rng.normal(size=(8_000, 5))
    labels = rng.integers(0, 3, len(X))
    tracemalloc.start()
    try:
        silhouette_values(X, labels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_matrix = 8 * len(X) ** 2
    assert peak < 3 * BLOCK_BYTES < full_matrix


def test_margin_rule_takes_the_largest_margin_over_the_reference_and_ties_to_the_smaller_k():
    from segwise.cluster.select import _choose_by_margin

    # k=2 has the best plain silhouette, but data without clusters cut in two score almost as well.
    cands = [{"k": 2, "silhouette": 0.50, "reference_silhouette": 0.45, "margin": 0.05},
             {"k": 3, "silhouette": 0.40, "reference_silhouette": 0.30, "margin": 0.10},
             {"k": 4, "silhouette": 0.38, "reference_silhouette": 0.277, "margin": 0.103},
             {"k": 5, "silhouette": 0.30, "reference_silhouette": 0.25, "margin": 0.05}]
    k, reason = _choose_by_margin(cands, knee=None)
    assert k == 3
    assert "tied within 0.005 with k=4" in reason
    assert "plain silhouette is highest at k=2" in reason
    assert supported_range(cands, 3) == (3, 4)


def test_every_candidate_records_its_reference_silhouette_and_margin():
    from sklearn.cluster import KMeans

    X, _ = make_blobs(1500, centers=4, cluster_std=0.6, random_state=3)
    selection = select_n_segments(X, lambda Xf, k: KMeans(k, n_init=2, random_state=0).fit(Xf), k_range=(2, 6))
    for c in selection.candidates:
        assert c["margin"] == pytest.approx(c["silhouette"] - c["reference_silhouette"])
    assert selection.chosen == 4
    assert selection.structure["verdict"] == "clear"
    assert "largest silhouette margin" in selection.reason


@pytest.mark.parametrize("requested, expected", [
    ("auto", ("auto", (2, 12))), ("6", (6, (2, 12))), (6, (6, (2, 12))), ("4..8", ("auto", (4, 8))),
    (" 4..8 ", ("auto", (4, 8))), ((3, 5), ("auto", (3, 5))), (range(3, 6), ("auto", (3, 5))),
])
def test_a_requested_number_or_range_of_segments_is_resolved(requested, expected):
    assert resolve_n_segments(requested, (2, 12)) == expected


@pytest.mark.parametrize("requested, message", [
    ("8..4", "2 <= low <= high, got 8..4"), ("1..4", "2 <= low <= high, got 1..4"),
    ("four..8", "two whole numbers, e.g. 4..8"), ("many", "a range such as 4..8, got 'many'"),
    ((2, 3, 4), "two whole numbers"),
])
def test_a_bad_range_of_segments_says_how_to_write_one(requested, message):
    with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(")):
        resolve_n_segments(requested)
