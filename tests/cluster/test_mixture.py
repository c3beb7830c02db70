import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import GaussianMixtureSegmenter
from segwise.cluster.mixture import multi_segment_summary, n_parameters
from segwise.errors import InputError

from .populations import OVERLAPPING, overlapping_groups


@pytest.fixture(scope="module")
def fitted():
    X, y = overlapping_groups()
    return X, y, GaussianMixtureSegmenter(k_range=(2, 5), random_state=0).fit(X)


def bayes_labels(X: np.ndarray) -> np.ndarray:
    """The best possible assignment: the most probable planted group under the true parameters."""
    means, covs = OVERLAPPING
    return np.column_stack([multivariate_normal(m, c).logpdf(X) for m, c in zip(means, covs)]).argmax(axis=1)


def test_bic_finds_the_planted_components_and_keeps_every_candidate(fitted):
    X, y, model = fitted
    assert model.n_segments_ == 3 and model.covariance_type_ == "full"
    candidates = model.selection_.candidates
    assert len(candidates) == 4 * 4
    assert {(c["k"], c["covariance_type"]) for c in candidates} == {
        (k, t) for k in range(2, 6) for t in ("full", "tied", "diag", "spherical")}
    best = min(candidates, key=lambda c: c["bic"])
    assert (best["k"], best["covariance_type"]) == (3, "full")
    assert "lowest BIC" in model.selection_.reason
    # Overlapping groups cannot be told apart perfectly: compare with the Bayes assignment.
    assert adjusted_rand_score(y, model.labels_) >= adjusted_rand_score(y, bayes_labels(X)) - 0.03


def test_soft_membership_and_confidence(fitted):
    X, _, model = fitted
    proba = model.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(model.predict(X), proba.argmax(axis=1))
    assert np.array_equal(model.labels_, model.predict(X))
    assert np.allclose(model.confidence(X), proba.max(axis=1))
    multi = model.details_["multi_segment"]
    expected = int(((proba >= 0.3).sum(axis=1) > 1).sum())
    assert multi["customers"] == expected > 0 and multi["share"] == pytest.approx(expected / len(X))
    assert multi["pairs"][0]["customers"] >= multi["pairs"][-1]["customers"]


def test_multi_segment_summary_by_hand():
    proba = np.array([[0.5, 0.4, 0.1], [0.9, 0.05, 0.05], [0.35, 0.3, 0.35], [0.1, 0.45, 0.45]])
    summary = multi_segment_summary(proba, 0.3)
    assert summary["customers"] == 3 and summary["share"] == 0.75
    assert summary["pairs"] == [
        {"clusters": [0, 1], "customers": 2}, {"clusters": [1, 2], "customers": 2}, {"clusters": [0, 2], "customers": 1},
    ]
    assert n_parameters(3, 2, "full") == 17 and n_parameters(3, 2, "spherical") == 11


def test_large_inputs_choose_on_a_sample_and_refit_everyone():
    X, y = overlapping_groups(per_group=600, seed=1)
    model = GaussianMixtureSegmenter(k_range=(2, 4), covariance_type="full", fit_sample=500, random_state=0).fit(X)
    assert {c["fit_sample_size"] for c in model.selection_.candidates} == {500}
    assert model.labels_.shape == (1800,) and model.n_segments_ == 3


def test_deterministic_and_state_round_trip(fitted):
    X, _, model = fitted
    again = GaussianMixtureSegmenter(k_range=(2, 5), random_state=0).fit(X)
    assert np.array_equal(again.labels_, model.labels_)
    loaded = GaussianMixtureSegmenter.from_state(*model.to_state())
    new = X[::3] * 1.1
    assert np.array_equal(loaded.predict(new), model.predict(new))
    assert np.array_equal(loaded.predict_proba(new), model.predict_proba(new))


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(InputError, match="The 'covariance_type' parameter of GaussianMixtureSegmenter must be 'auto' or"):
        GaussianMixtureSegmenter(covariance_type="banded").fit(X)
    with pytest.raises(InputError, match="The 'multi_threshold' parameter of GaussianMixtureSegmenter must be a float"):
        GaussianMixtureSegmenter(multi_threshold=1.5).fit(X)
