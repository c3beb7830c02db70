import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

from segwise.cluster import HierarchicalSegmenter
from segwise.cluster.hierarchical import micro_cluster_count
from segwise.errors import InputError

from .populations import nested_groups


@pytest.fixture(scope="module")
def nested():
    return nested_groups()


@pytest.mark.parametrize("linkage", ["ward", "average", "complete"])
def test_each_linkage_recovers_the_detailed_groups(nested, linkage):
    X, _, detailed = nested
    model = HierarchicalSegmenter(linkage=linkage, random_state=0).fit(X)
    assert model.n_segments_ == 9
    assert adjusted_rand_score(detailed, model.labels_) > 0.99
    assert [c["k"] for c in model.selection_.candidates] == list(range(2, 13))


def test_levels_are_nested_with_the_detailed_to_broad_mapping(nested):
    X, broad, detailed = nested
    model = HierarchicalSegmenter(levels=(3, 9), random_state=0).fit(X)
    assert model.n_segments_ == 9 and model.selection_ is None
    assert adjusted_rand_score(detailed, model.labels_) > 0.99
    level = model.details_["levels"][0]
    assert level["n_segments"] == 3 and level["groups"] == 3
    parent = np.array([m["parent"] for m in sorted(level["mapping"], key=lambda m: m["cluster"])])
    assert adjusted_rand_score(broad, parent[model.labels_]) > 0.99
    assert np.array_equal(model.predict_level(X, 3), parent[model.predict(X)])
    with pytest.raises(InputError, match="no level 5; the levels are 3, 9"):
        model.predict_level(X, 5)


def test_dendrogram_is_truncated_to_the_top_merges(nested):
    X, _, _ = nested
    model = HierarchicalSegmenter(4, dendrogram_merges=10, random_state=0).fit(X)
    tree = model.details_["dendrogram"]
    assert len(tree["merges"]) == 10 and tree["n_leaves"] == len(X)
    assert model.details_["tree"] == {"kind": "exact", "n_leaves": len(X)}


def test_above_the_exact_limit_ward_runs_on_weighted_micro_clusters(nested):
    X, broad, detailed = nested
    model = HierarchicalSegmenter(levels=(3, 9), exact_limit=500, random_state=0).fit(X)
    tree = model.details_["tree"]
    assert tree["kind"] == "micro-clusters" and tree["n_leaves"] == 200
    assert "1,350 customers exceed exact_limit=500" in tree["reason"]
    assert adjusted_rand_score(detailed, model.labels_) > 0.99
    assert micro_cluster_count(100) == 200 and micro_cluster_count(10**6) == 2000
    assert micro_cluster_count(250_000) == 1000


def test_custom_distances(nested):
    X, _, detailed = nested
    city = HierarchicalSegmenter(linkage="average", metric="cityblock", random_state=0).fit(X)
    assert adjusted_rand_score(detailed, city.labels_) > 0.99
    assert city.selection_.candidates[0]["silhouette_metric"] == "cityblock"
    pre = HierarchicalSegmenter(9, linkage="average", metric="precomputed").fit(cdist(X, X))
    assert adjusted_rand_score(detailed, pre.labels_) > 0.99
    # New customers given by their distances to the training customers.
    assert np.array_equal(pre.predict(cdist(X[:20], X)), pre.labels_[:20])


def test_feature_weights_make_a_feature_count_more():
    rng = np.random.default_rng(5)
    # Two groups along feature 0 (gap 2) and two along feature 1 (gap 3): unweighted, feature 1 wins.
    a, b = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    X = np.column_stack([2.0 * a, 3.0 * b]) + rng.normal(scale=0.2, size=(400, 2))
    plain = HierarchicalSegmenter(2, random_state=0).fit(X)
    weighted = HierarchicalSegmenter(2, feature_weights=[4.0, 1.0], random_state=0).fit(X)
    assert adjusted_rand_score(b, plain.labels_) > 0.99
    assert adjusted_rand_score(a, weighted.labels_) > 0.99
    city = HierarchicalSegmenter(2, linkage="average", metric="cityblock", feature_weights=[4.0, 1.0]).fit(X)
    assert adjusted_rand_score(a, city.labels_) > 0.99


@pytest.mark.parametrize("metric", ["cityblock", "cosine", "precomputed"])
def test_ward_refuses_other_distances(metric):
    X = np.random.default_rng(0).random((20, 20))
    with pytest.raises(InputError, match=rf"Ward linkage needs Euclidean distances .* but metric='{metric}' was given; "
                                         "use linkage='average' or 'complete'"):
        HierarchicalSegmenter(linkage="ward", metric=metric).fit(X)


def test_parameter_errors():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(InputError, match="The 'linkage' parameter of HierarchicalSegmenter must be a str among"):
        HierarchicalSegmenter(linkage="single").fit(X)
    with pytest.raises(InputError, match="The 'metric' parameter of HierarchicalSegmenter must be 'precomputed' or a scipy"):
        HierarchicalSegmenter(linkage="average", metric="mahalanobis").fit(X)
    with pytest.raises(InputError, match=r"n_segments=4 and levels=\[2, 6\] disagree"):
        HierarchicalSegmenter(4, levels=(6, 2)).fit(X)
    with pytest.raises(InputError, match="metric='precomputed' needs a square, symmetric distance matrix"):
        HierarchicalSegmenter(linkage="average", metric="precomputed").fit(X)
    with pytest.raises(InputError, match="The 'feature_weights' parameter of HierarchicalSegmenter must be"):
        HierarchicalSegmenter(feature_weights=[1.0]).fit(X)


def test_deterministic_and_state_round_trip(nested):
    X, _, _ = nested
    a = HierarchicalSegmenter(levels=(3, 9), exact_limit=500, random_state=3).fit(X)
    b = HierarchicalSegmenter(levels=(3, 9), exact_limit=500, random_state=3).fit(X)
    assert np.array_equal(a.labels_, b.labels_) and np.array_equal(a.linkage_matrix_, b.linkage_matrix_)
    again = HierarchicalSegmenter.from_state(*a.to_state())
    new = X[::7] + 0.3
    assert np.array_equal(again.predict(new), a.predict(new))
    assert np.array_equal(again.confidence(new), a.confidence(new))
    assert np.array_equal(again.predict_level(new, 3), a.predict_level(new, 3))
    conf = a.confidence(X)
    assert conf.min() >= 0 and conf.max() <= 1
    # The segments are what the rule assigns; the rule moved few customers away from the tree cut.
    assert np.array_equal(a.predict(X), a.labels_)
    assert np.array_equal(again.predict(X), a.labels_)
    assert np.array_equal(again.confidence(X), conf)
    moved = a.details_["reassigned_by_rule"]
    assert moved["customers"] == round(moved["share"] * len(X)) and moved["share"] < 0.01
