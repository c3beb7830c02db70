"""Agglomerative trees: weighted linkage of micro-clusters, nested cuts, dendrogram data.

scipy's `linkage` treats every row as one observation. Above a few tens of
thousands of customers the exact tree is out of reach (its distance matrix has
n^2/2 entries), so segwise summarises the customers by k-means micro-clusters and
builds the tree on their centroids *weighted by their sizes*. No library builds
Ward/average/complete trees on weighted observations, so `weighted_linkage` does
it here: the nearest-neighbour-chain algorithm with the Lance-Williams updates of
each linkage, which for these (reducible) linkages gives exactly the tree of the
weighted data. Its output is a scipy linkage matrix, so everything downstream
(cuts, dendrograms) is the same for the exact and the micro-cluster tree.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["weighted_linkage", "cut_levels", "dendrogram_data", "LINKAGES"]

LINKAGES = ("ward", "average", "complete")


def weighted_linkage(points: np.ndarray, weights: np.ndarray, method: str, *, metric: str = "euclidean",
                     metric_kwargs: dict[str, Any] | None = None) -> np.ndarray:
    """A scipy linkage matrix of weighted points (e.g. micro-cluster centroids and sizes).

    ``ward`` merges the pair whose union increases the within-cluster sum of squares
    least, counting each point ``weight`` times; heights are ``sqrt(2 * increase)``
    as in scipy (equal to the Euclidean distance for two unit-weight points).
    ``average`` is size-weighted UPGMA and ``complete`` the largest distance, both
    starting from the ``metric`` distances between the points.
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    m = points.shape[0]
    if m < 2:
        raise ValueError("a tree needs at least 2 points")
    if method == "ward":
        sq = cdist(points, points, "sqeuclidean")
        dist = (weights[:, None] * weights[None, :] / (weights[:, None] + weights[None, :])) * sq
    else:
        dist = cdist(points, points, metric, **(metric_kwargs or {}))
    np.fill_diagonal(dist, np.inf)
    size = weights.copy()
    active = np.ones(m, dtype=bool)
    merges: list[tuple[int, int, float]] = []
    chain: list[int] = []
    n_active = m
    while n_active > 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        while True:
            a = chain[-1]
            b = int(np.argmin(dist[a]))
            if len(chain) >= 2 and dist[a, chain[-2]] <= dist[a, b]:
                b = chain[-2]
                break
            chain.append(b)
        chain.pop()
        chain.pop()
        i, j = (a, b) if a < b else (b, a)
        d_ij = dist[i, j]
        row_i, row_j = dist[i].copy(), dist[j].copy()
        if method == "ward":
            s_i, s_j = size[i], size[j]
            new = ((s_i + size) * row_i + (s_j + size) * row_j - size * d_ij) / (s_i + s_j + size)
        elif method == "average":
            new = (size[i] * row_i + size[j] * row_j) / (size[i] + size[j])
        else:
            new = np.maximum(row_i, row_j)
        new[~active] = np.inf
        new[i] = np.inf
        new[j] = np.inf
        dist[i, :] = new
        dist[:, i] = new
        dist[j, :] = np.inf
        dist[:, j] = np.inf
        active[j] = False
        size[i] += size[j]
        n_active -= 1
        height = float(np.sqrt(2.0 * d_ij)) if method == "ward" else float(d_ij)
        merges.append((i, j, height))
    return _linkage_matrix(merges, weights)


def _linkage_matrix(merges: list[tuple[int, int, float]], weights: np.ndarray) -> np.ndarray:
    """Sort merges by height and number the clusters the way scipy does (union-find)."""
    m = len(weights)
    order = sorted(range(len(merges)), key=lambda t: (merges[t][2], t))
    parent = list(range(2 * m - 1))
    cluster_id = list(range(m))
    size = list(weights) + [0.0] * (m - 1)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    Z = np.empty((m - 1, 4))
    for t, idx in enumerate(order):
        i, j, height = merges[idx]
        ri, rj = find(i), find(j)
        a, b = cluster_id[ri], cluster_id[rj]
        new_id = m + t
        Z[t] = (min(a, b), max(a, b), height, size[a] + size[b])
        size[new_id] = size[a] + size[b]
        parent[rj] = ri
        cluster_id[ri] = new_id
    return Z


def cut_levels(Z: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Leaf labels (0..k-1) of the tree cut into exactly ``k`` clusters, for each ``k``.

    Cutting into k clusters undoes the last k-1 merges, so the cuts are nested by
    construction: every cluster of a finer cut lies inside one cluster of a coarser
    cut. Clusters are numbered by their smallest leaf.
    """
    m = Z.shape[0] + 1
    children = Z[:, :2].astype(np.int64)
    out = {}
    for k in ks:
        if not 1 <= k <= m:
            raise ValueError(f"cannot cut a tree of {m} leaves into {k} clusters")
        label = np.full(2 * m - 1, -1, dtype=np.int64)
        applied = m - k  # merges 0 .. applied-1 are kept
        # The roots of the cut: nodes not absorbed by a kept merge.
        is_root = np.ones(2 * m - 1, dtype=bool)
        is_root[m + applied:] = False
        is_root[children[:applied].ravel()] = False
        roots = np.flatnonzero(is_root)
        label[roots] = np.arange(len(roots))
        for t in range(applied - 1, -1, -1):
            label[children[t]] = label[m + t]
        leaves = label[:m]
        # Renumber by smallest leaf, so numbering does not depend on merge order.
        _, first = np.unique(leaves, return_index=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first))
        uniq = np.unique(leaves)
        remap = np.empty(int(uniq.max()) + 1, dtype=np.int64)
        remap[uniq] = rank
        out[int(k)] = remap[leaves]
    return out


def dendrogram_data(Z: np.ndarray, n_merges: int, leaf_weights: np.ndarray | None = None) -> dict[str, Any]:
    """The top ``n_merges`` merges of a tree, enough to draw a truncated dendrogram.

    ``merges`` lists ``[left, right, height, size]`` (node ids as in scipy: below
    ``n_leaves`` a leaf, else the node made by merge ``id - n_leaves``); nodes below
    the truncation appear as ids with their ``size`` (customers) in ``truncated``.
    """
    m = Z.shape[0] + 1
    top = Z[max(0, m - 1 - n_merges):]
    created = set(range(m + (m - 1 - len(top)), 2 * m - 1))
    sizes = np.concatenate([np.ones(m) if leaf_weights is None else np.asarray(leaf_weights, float), Z[:, 3]])
    truncated = {}
    for row in top:
        for child in row[:2].astype(int):
            if child not in created:
                truncated[str(int(child))] = float(sizes[child])
    return {
        "n_leaves": int(m),
        "merges": [[int(a), int(b), float(h), float(s)] for a, b, h, s in top],
        "truncated": truncated,
    }
