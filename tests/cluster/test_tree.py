import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score

from segwise.cluster.tree import cut_levels, dendrogram_data, weighted_linkage


@pytest.mark.parametrize("method", ["ward", "average", "complete"])
def test_unit_weights_give_scipys_tree(method):
    X = np.random.default_rng(0).normal(size=(120, 3))
    assert np.allclose(weighted_linkage(X, np.ones(120), method), linkage(X, method))


def test_weights_count_like_repeated_points():
    X = np.random.default_rng(1).normal(size=(40, 3))
    repeated = linkage(np.repeat(X, 3, axis=0), "ward")
    weighted = weighted_linkage(X, np.full(40, 3.0), "ward")
    # The 2 x 40 merges of copies happen at height 0; the rest is the weighted tree.
    assert np.allclose(repeated[-39:, 2], weighted[:, 2])
    assert weighted[-1, 3] == 120


def test_cuts_are_exact_nested_and_match_scipy():
    X = np.random.default_rng(2).normal(size=(200, 2))
    Z = linkage(X, "average")
    cuts = cut_levels(Z, [3, 7])
    assert sorted(np.unique(cuts[3])) == [0, 1, 2] and len(np.unique(cuts[7])) == 7
    assert adjusted_rand_score(fcluster(Z, 7, "maxclust"), cuts[7]) == 1.0
    # Every detailed cluster lies inside one broad cluster.
    for c in range(7):
        assert len(np.unique(cuts[3][cuts[7] == c])) == 1
    # Numbered by smallest leaf: leaf 0 is in cluster 0.
    assert cuts[3][0] == 0


def test_cut_refuses_impossible_counts():
    Z = linkage(np.arange(10.0)[:, None], "ward")
    with pytest.raises(ValueError, match="cannot cut a tree of 10 leaves into 11 clusters"):
        cut_levels(Z, [11])


def test_dendrogram_keeps_the_top_merges_and_sizes_below():
    X = np.random.default_rng(3).normal(size=(50, 2))
    Z = linkage(X, "ward")
    data = dendrogram_data(Z, 5)
    assert data["n_leaves"] == 50 and len(data["merges"]) == 5
    assert data["merges"][-1][3] == 50
    # The truncated subtrees hold every customer exactly once.
    assert sum(data["truncated"].values()) == 50
