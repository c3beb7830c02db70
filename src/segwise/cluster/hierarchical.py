"""Hierarchical (agglomerative) segmentation: one tree, cut at one or several levels.

Linkages: ``ward`` (Euclidean only: it minimises the within-segment sum of squares,
which has no meaning for other distances), ``average`` and ``complete`` with any
scipy distance, per-feature weights, or a precomputed distance matrix.

Scale: the exact tree (scipy) needs the n^2/2 pairwise distances, so it is built
only up to ``exact_limit`` customers (20,000: 1.6 GB of distances). Above that the
customers are summarised by k-means micro-clusters (``2 * sqrt(n)`` of them,
between 200 and 2,000) and the tree is built on their centroids weighted by their
sizes (`segwise.cluster.tree.weighted_linkage`); memory stays bounded at any n.
Which path ran is recorded in ``details_["tree"]``.

Customers go to the nearest segment centroid (mean of the customers of a tree
cluster in prepared space, measured with the tree's distance). A tree cut is not a
partition of space, so the rule moves a few customers near a boundary to another
cluster than the one the cut gave them. The segments are what the rule gives, for
training customers as for new ones: the tree is cut, the centroids of the cut's
clusters are kept, and every training customer is then assigned by the rule, so a
saved model gives every training customer the segment the run wrote.
``details_["reassigned_by_rule"]`` counts the customers the rule moved away from
their tree cluster (a cluster the rule leaves empty is dropped).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import linkage as scipy_linkage
from scipy.spatial.distance import cdist, pdist, squareform
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import silhouette_score

from segwise.cluster.base import (
    SegmentClusterer, check_int_param, fit_input, param_error, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.cluster.kmeans import _check_n_segments, centroid_confidence
from segwise.cluster.tree import LINKAGES, cut_levels, dendrogram_data, weighted_linkage
from segwise.errors import InputError
from segwise.cluster.select import CHOICE_RULE, KSelection, _choose, knee_point, select_n_segments
from segwise.cluster.silhouette import sample_indices

__all__ = ["HierarchicalSegmenter", "micro_cluster_count"]

#: scipy distance names usable as ``metric`` (plus "precomputed"). ``seuclidean`` and
#: ``mahalanobis`` are left out: scipy estimates their scales from whatever rows it is
#: given, so new customers would be measured on another scale than the training ones
#: (the preparation already standardises the features).
SCIPY_METRICS = (
    "braycurtis", "canberra", "chebyshev", "cityblock", "correlation", "cosine", "euclidean", "jensenshannon",
    "minkowski", "sqeuclidean",
)


def micro_cluster_count(n: int) -> int:
    """Micro-clusters summarising ``n`` customers: ``2 * sqrt(n)``, between 200 and 2,000."""
    return int(min(2000, max(200, 2 * int(np.ceil(np.sqrt(n))))))


class _Cut:
    """A tree cut dressed as a fitted estimator for `select_n_segments`."""

    def __init__(self, labels: np.ndarray, inertia: float) -> None:
        self.labels_ = labels
        self.inertia_ = inertia


def _within_ss(X: np.ndarray, labels: np.ndarray, k: int) -> float:
    counts = np.bincount(labels, minlength=k).astype(float)
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    total_sq = float(np.einsum("ij,ij->", X, X))
    return total_sq - float(np.sum(np.einsum("ij,ij->i", sums, sums) / np.maximum(counts, 1)))


@register_method("hierarchical")
class HierarchicalSegmenter(SegmentClusterer):
    """Agglomerative segmentation (Ward, average or complete linkage) with nested levels.

    Parameters
    ----------
    n_segments : int or "auto"
        Number of segments; ``"auto"`` cuts the tree at every k of ``k_range`` and
        chooses by `segwise.cluster.select.CHOICE_RULE` (silhouette on a seeded sample, in
        the tree's distance).
    k_range : tuple of two ints
    linkage : {"ward", "average", "complete"}
    metric : str
        A scipy distance name (``"euclidean"``, ``"cityblock"``, ``"cosine"`` ...) or
        ``"precomputed"`` (then ``X`` in `fit` is a square distance matrix and in
        `predict` the distances of new customers to the training customers). Ward
        accepts only ``"euclidean"``.
    feature_weights : array-like of float, optional
        Per-feature weights of a weighted distance (``sqrt(sum w_i (u_i - v_i)^2)``
        for Euclidean, e.g. 2 on recency to count it twice).
    levels : sequence of int, optional
        Several numbers of segments cut from the same tree, e.g. ``(4, 12)``. The
        segments are those of the finest level; ``details_["levels"]`` maps each of
        them to its group at every coarser level (nested by construction), and
        `predict_level` assigns new customers at any level.
    exact_limit : int
        Largest number of customers for the exact tree (see the module docstring).
    n_micro_clusters : int or "auto"
        Micro-clusters above ``exact_limit`` (``"auto"``: `micro_cluster_count`).
    dendrogram_merges : int
        Top merges kept in ``details_["dendrogram"]``.
    selection_sample : int
        Customers used for the silhouette when choosing k.
    random_state : int, RandomState or None
        Seed of the micro-clusters and the selection sample.

    Attributes
    ----------
    labels_, n_segments_, cluster_centers_, selection_, details_
    linkage_matrix_ : ndarray
        The tree (scipy linkage matrix over the leaves: customers, or micro-clusters).
    leaf_of_sample_ : ndarray or None
        Micro-cluster of each training customer (None for the exact tree).
    """

    param_docs = {
        "linkage": ("str", "ward, average or complete"),
        "metric": ("str", "distance between customers (ward needs euclidean)"),
        "feature_weights": ("params", "per-feature weights of a weighted distance"),
        "levels": ("counts", "cuts a hierarchical tree at several levels, one per number of segments"),
        "exact_limit": ("int", "largest number of customers for the exact tree (micro-clusters above)"),
        "n_micro_clusters": ("auto|int", "micro-clusters above exact_limit"),
        "dendrogram_merges": ("int", "top merges kept for the report's dendrogram"),
    }
    cli_options = {"levels": "--levels"}
    assignment_rule = "the segment of the nearest training customer or micro-cluster centre"
    report_sections = ("hierarchical",)

    @classmethod
    def summary_lines(cls, details: dict[str, Any]) -> list[str]:
        tree = details.get("tree") or {}
        return [f"tree: {tree['reason']}"] if tree.get("kind") == "micro-clusters" else []

    def __init__(self, n_segments="auto", *, k_range=(2, 12), linkage="ward", metric="euclidean",
                 feature_weights=None, levels=None, exact_limit=20_000, n_micro_clusters="auto",
                 dendrogram_merges=30, selection_sample=10_000, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.linkage = linkage
        self.metric = metric
        self.feature_weights = feature_weights
        self.levels = levels
        self.exact_limit = exact_limit
        self.n_micro_clusters = n_micro_clusters
        self.dendrogram_merges = dendrogram_merges
        self.selection_sample = selection_sample
        self.random_state = random_state

    # ------------------------------------------------------------------ checks

    def _validate(self, n: int, d: int) -> list[int] | None:
        owner = type(self).__name__
        if self.linkage not in LINKAGES:
            raise param_error(owner, "linkage", "a str among {'ward', 'average', 'complete'}", self.linkage)
        if self.metric != "precomputed" and self.metric not in SCIPY_METRICS:
            raise param_error(owner, "metric", "'precomputed' or a scipy distance name (e.g. 'euclidean', "
                              "'cityblock', 'cosine')", self.metric)
        if self.linkage == "ward" and self.metric != "euclidean":
            raise InputError(
                f"Ward linkage needs Euclidean distances (it minimises the within-segment sum of squares), "
                f"but metric={self.metric!r} was given; use linkage='average' or 'complete' with this distance, "
                "or metric='euclidean' (per-feature weights are allowed: feature_weights)"
            )
        if self.feature_weights is not None:
            w = np.asarray(self.feature_weights, dtype=np.float64)
            if w.shape != (d,) or (w < 0).any() or not np.isfinite(w).all():
                raise param_error(owner, "feature_weights", f"None or {d} non-negative numbers (one per feature)",
                                  self.feature_weights)
            if self.metric == "precomputed":
                raise InputError("feature_weights cannot be used with metric='precomputed': weight the features "
                                 "before computing the distance matrix")
        check_int_param(owner, "exact_limit", self.exact_limit, 2)
        check_int_param(owner, "dendrogram_merges", self.dendrogram_merges, 1)
        if self.n_micro_clusters != "auto":
            check_int_param(owner, "n_micro_clusters", self.n_micro_clusters, 2)
        if self.levels is None:
            _check_n_segments(self.n_segments, owner, n)
            return None
        levels = list(self.levels) if not isinstance(self.levels, numbers.Integral) else [self.levels]
        if not levels or any(not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1 for v in levels):
            raise param_error(owner, "levels", "None or a list of ints >= 1 (e.g. [4, 12])", self.levels)
        levels = sorted(set(int(v) for v in levels))
        if levels[-1] > n:
            raise InputError(f"levels ask for {levels[-1]} segments but there are only {n} customers")
        if self.n_segments != "auto" and self.n_segments != levels[-1]:
            raise InputError(
                f"n_segments={self.n_segments!r} and levels={levels} disagree: with levels the segments are "
                f"the finest level ({levels[-1]}); leave n_segments at 'auto'"
            )
        return levels

    # ------------------------------------------------------------------ fit

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        # Weighted Euclidean is Euclidean on columns scaled by sqrt(w): Ward stays valid.
        if self.feature_weights is None or self.metric != "euclidean":
            return X
        return X * np.sqrt(np.asarray(self.feature_weights, dtype=np.float64))

    def _metric_kwargs(self) -> dict[str, Any]:
        # Other distances take the weights the way scipy defines them for that distance.
        if self.feature_weights is None or self.metric == "euclidean":
            return {}
        return {"w": np.asarray(self.feature_weights, dtype=np.float64)}

    def fit(self, X, y=None):
        """Build the tree and cut it (choosing k when ``n_segments="auto"``)."""
        X = fit_input(X)
        n = X.shape[0]
        levels = self._validate(n, X.shape[1])
        precomputed = self.metric == "precomputed"
        if precomputed and (X.shape[0] != X.shape[1] or not np.allclose(X, X.T)
                            or (np.diag(X) != 0).any() or (X < 0).any()):
            raise InputError("metric='precomputed' needs a square, symmetric distance matrix with zeros on "
                             f"the diagonal and no negative entries; got shape {X.shape}")
        self.n_features_in_ = X.shape[1]
        seed = resolve_seed(self.random_state)
        space = self._scaled(X)
        metric, metric_kwargs = self.metric, self._metric_kwargs()
        if precomputed or n <= self.exact_limit:
            leaf_of = None
            if precomputed:
                Z = scipy_linkage(squareform(X, checks=False), method=self.linkage)
            elif self.linkage == "ward":
                Z = scipy_linkage(space, method="ward")
            else:
                Z = scipy_linkage(pdist(space, metric, **metric_kwargs), method=self.linkage)
            leaf_weights = None
            tree = {"kind": "exact", "n_leaves": n}
        else:
            m = micro_cluster_count(n) if self.n_micro_clusters == "auto" else int(self.n_micro_clusters)
            micro = MiniBatchKMeans(n_clusters=m, batch_size=4096, n_init=1, random_state=seed,
                                    init_size=min(n, 3 * m + 1024)).fit(space)
            counts = np.bincount(micro.labels_, minlength=m)
            used = np.flatnonzero(counts)
            remap = np.full(m, -1, dtype=np.int64)
            remap[used] = np.arange(len(used))
            leaf_of = remap[micro.labels_]
            leaf_weights = counts[used].astype(np.float64)
            Z = weighted_linkage(micro.cluster_centers_[used], leaf_weights, self.linkage, metric=metric,
                                 metric_kwargs=metric_kwargs)
            tree = {"kind": "micro-clusters", "n_leaves": int(len(used)), "exact_limit": int(self.exact_limit),
                    "reason": f"{n:,} customers exceed exact_limit={self.exact_limit:,}: the tree is built on "
                              f"{len(used):,} k-means micro-clusters weighted by their sizes"}
        n_leaves = Z.shape[0] + 1
        self.linkage_matrix_ = Z
        self.leaf_of_sample_ = leaf_of

        def customer_labels(leaf_labels: np.ndarray) -> np.ndarray:
            return leaf_labels if leaf_of is None else leaf_labels[leaf_of]

        if levels is not None:
            levels = [min(v, n_leaves) for v in levels]
            cuts = {k: customer_labels(v) for k, v in cut_levels(Z, levels).items()}
            chosen = levels[-1]
            self.selection_ = None
        elif self.n_segments == "auto":
            lo, hi = int(self.k_range[0]), min(int(self.k_range[1]), n_leaves, n - 1)
            ks = list(range(lo, max(lo, hi) + 1))
            cuts = {k: customer_labels(v) for k, v in cut_levels(Z, [k for k in ks if k <= n_leaves]).items()}
            self.selection_ = self._select(X, space, cuts, seed)
            chosen = self.selection_.chosen
            levels = [chosen]
        else:
            chosen = min(int(self.n_segments), n_leaves)
            cuts = {chosen: customer_labels(cut_levels(Z, [chosen])[chosen])}
            self.selection_ = None
            levels = [chosen]
        cut = cuts[chosen].astype(np.int64)
        self.n_segments_ = int(cut.max()) + 1
        self.levels_ = levels
        if precomputed:
            self.train_labels_ = cut.copy()
            self.cluster_centers_ = np.zeros((self.n_segments_, 0))
        else:
            counts = np.bincount(cut, minlength=self.n_segments_).astype(float)
            sums = np.zeros((self.n_segments_, X.shape[1]))
            np.add.at(sums, cut, X)
            self.cluster_centers_ = sums / counts[:, None]
        parents = {}
        for level in levels[:-1]:
            coarse = cuts[level] if level in cuts else customer_labels(cut_levels(Z, [level])[level])
            parent = np.zeros(self.n_segments_, dtype=np.int64)
            parent[cut] = coarse
            parents[int(level)] = parent
        # The segments are what the assignment rule gives (see the module docstring).
        labels = self.predict(X)
        moved = int(np.sum(labels != cut))
        kept = np.unique(labels)
        if len(kept) < self.n_segments_:
            # A tree cluster whose every customer is nearer another centroid is no segment: drop it.
            # Nobody is nearest to it, so dropping its centroid moves nobody.
            remap = np.full(self.n_segments_, -1, dtype=np.int64)
            remap[kept] = np.arange(len(kept))
            labels = remap[labels]
            if precomputed:
                self.train_labels_ = remap[self.train_labels_]
            else:
                self.cluster_centers_ = self.cluster_centers_[kept]
            parents = {level: np.unique(parent[kept], return_inverse=True)[1].astype(np.int64)
                       for level, parent in parents.items()}
            self.n_segments_ = int(len(kept))
        self.labels_ = labels
        self.level_maps_ = parents
        self.details_ = {
            "linkage": self.linkage,
            "metric": self.metric,
            "weighted_features": self.feature_weights is not None,
            "tree": tree,
            "dendrogram": dendrogram_data(Z, int(self.dendrogram_merges), leaf_weights),
            "levels": [
                {"n_segments": int(level), "groups": int(self.level_maps_[level].max()) + 1,
                 "mapping": [{"cluster": int(c), "parent": int(p)} for c, p in enumerate(self.level_maps_[level])]}
                for level in levels[:-1]
            ],
            "cut_heights": {str(int(k)): float(Z[-(k - 1), 2]) if k > 1 else None for k in levels},
            "reassigned_by_rule": {"customers": moved, "share": float(moved / n),
                                   "rule": "nearest centroid of the tree's clusters"},
        }
        return self

    def _select(self, X: np.ndarray, space: np.ndarray, cuts: dict[int, np.ndarray], seed: int) -> KSelection:
        n = X.shape[0]
        if self.metric == "euclidean":
            return select_n_segments(
                space, lambda _X, k: _Cut(cuts[k], _within_ss(space, cuts[k], k)), k_range=(min(cuts), max(cuts)),
                sample_size=self.selection_sample, fit_sample_size=n, random_state=seed,
                choose_by="silhouette",  # a cut of this tree cannot cluster reference data
            )
        # Other distances: the silhouette is measured in the tree's own distance.
        rows = sample_indices(n, min(self.selection_sample, 5000), seed + 1)
        if self.metric == "precomputed":
            D = X[np.ix_(rows, rows)]
        else:
            D = squareform(pdist(space[rows], self.metric, **self._metric_kwargs()))
        candidates = []
        for k, labels in cuts.items():
            sample_labels = labels[rows]
            several = 2 <= len(np.unique(sample_labels)) < len(rows)
            sizes = np.bincount(labels, minlength=k)
            candidates.append({
                "k": int(k),
                "inertia": float("nan") if self.metric == "precomputed" else _within_ss(space, labels, k),
                "silhouette": float(silhouette_score(D, sample_labels, metric="precomputed")) if several else float("nan"),
                "silhouette_metric": self.metric,
                "smallest_share": float(sizes.min() / n),
                "fit_sample_size": int(n),
                "silhouette_sample_size": int(len(rows)),
            })
        knee = None if self.metric == "precomputed" else knee_point(
            [c["k"] for c in candidates], [c["inertia"] for c in candidates])
        chosen, reason = _choose(candidates, knee)
        return KSelection(candidates=candidates, chosen=chosen, knee=knee, rule=CHOICE_RULE, reason=reason)

    # ------------------------------------------------------------------ predict

    def distances(self, X) -> np.ndarray:
        """Distance of each row to each segment (centroid; mean distance when precomputed)."""
        X = self._check_X(X)
        if self.metric == "precomputed":
            # Mean distance to the members of each cluster (-1: a member of a dropped cluster).
            member = self.train_labels_ >= 0
            counts = np.bincount(self.train_labels_[member], minlength=self.n_segments_).astype(float)
            onehot = np.zeros((len(self.train_labels_), self.n_segments_))
            onehot[np.flatnonzero(member), self.train_labels_[member]] = 1.0
            return (X @ onehot) / counts
        return cdist(self._scaled(X), self._scaled(self.cluster_centers_), self.metric, **self._metric_kwargs())

    def predict(self, X):
        """Nearest segment centroid (see the module docstring)."""
        return np.argmin(self.distances(X), axis=1).astype(np.int64)

    def predict_level(self, X, level: int) -> np.ndarray:
        """Group of each row at a coarser ``level`` of ``levels`` (or the segments themselves)."""
        labels = self.predict(X)
        if level == self.n_segments_:
            return labels
        if level not in self.level_maps_:
            raise InputError(f"no level {level}; the levels are {', '.join(map(str, self.levels_))}")
        return self.level_maps_[level][labels]

    def confidence(self, X):
        """``1 - d_nearest / d_second`` over the segment distances (see `centroid_confidence`)."""
        return centroid_confidence(self.distances(X))

    # ------------------------------------------------------------------ state

    def to_state(self):
        meta = {
            "params": state_params(self),
            "n_features_in": self.n_features_in_,
            "n_segments": self.n_segments_,
            "levels": [int(v) for v in self.levels_],
            "selection": self.selection_.to_dict() if self.selection_ is not None else None,
            "details": self.details_,
        }
        arrays = {"cluster_centers": self.cluster_centers_, "linkage_matrix": self.linkage_matrix_}
        for level, parent in self.level_maps_.items():
            arrays[f"level_{level}"] = parent
        if self.metric == "precomputed":
            arrays["train_labels"] = self.train_labels_
        return meta, arrays

    @classmethod
    def from_state(cls, meta, arrays):
        params = params_from_state(meta["params"], ("k_range", "levels"))
        self = cls(**params)
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.levels_ = list(meta["levels"])
        self.cluster_centers_ = arrays["cluster_centers"]
        self.linkage_matrix_ = arrays["linkage_matrix"]
        self.level_maps_ = {int(v): arrays[f"level_{v}"].astype(np.int64) for v in self.levels_[:-1]}
        if "train_labels" in arrays:
            self.train_labels_ = arrays["train_labels"].astype(np.int64)
        self.selection_ = KSelection.from_dict(meta["selection"]) if meta.get("selection") else None
        self.details_ = meta.get("details") or {}
        self.labels_ = np.zeros(0, dtype=np.int64)
        self.leaf_of_sample_ = None
        return self
