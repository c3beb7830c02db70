"""Density-based segmentation: DBSCAN and HDBSCAN (scikit-learn), with an Outliers group.

Both find the number of segments themselves and call customers in sparse regions
noise. Noise becomes an explicit cluster, ``outlier_cluster_`` (the last cluster
number), which `segwise.Segmenter` names "Outliers", profiles like any segment and
gives the last segment id (after the value-ordered segments), so the ids of real
segments keep their meaning and the Outliers id is easy to find.

Small dense groups are the point of these methods: clusters holding less than
``micro_share`` of the customers are listed in ``details_["micro_segments"]``
(the Segmenter adds their revenue share: the "super shoppers" who are 0.5% of
customers and 5% of revenue).

Memory stays bounded: scikit-learn's DBSCAN keeps every neighbourhood within eps
in memory and HDBSCAN's tree costs O(n^2) time, so above ``fit_sample`` customers
(20,000) the clustering runs on a seeded random sample and every other customer is
assigned by the rule for new customers (nearest neighbours on a KD-tree, in chunks;
never an n x n matrix).

Defaults scaled to the data (all recorded in ``details_``):

- ``min_samples = max(2 * n_features, ceil(ln n))``: twice the dimension (Sander et
  al., 1998) and growing slowly with the number of customers clustered;
- DBSCAN's ``eps`` is the knee (Kneedle) of the sorted k-distance curve
  (distance of each customer to its ``min_samples``-th neighbour) on up to
  ``knee_sample`` customers;
- HDBSCAN's ``min_cluster_size = max(10, ceil(0.0025 n))``: a group of a quarter of
  a percent of the customers can still be found.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.neighbors import NearestNeighbors

from segwise.cluster.base import (
    SegmentClusterer, fit_input, check_int_param, param_error, params_from_state, register_method, resolve_seed,
    state_params,
)
from segwise.errors import InputError
from segwise.cluster.silhouette import sample_indices

__all__ = ["DBSCANSegmenter", "HDBSCANSegmenter", "default_min_samples", "k_distance_knee"]

#: Rows of new customers queried against the KD-tree at once.
_QUERY_CHUNK = 50_000


def default_min_samples(n: int, n_features: int) -> int:
    """``max(2 * n_features, ceil(ln n))`` (see the module docstring)."""
    return int(max(2 * n_features, int(np.ceil(np.log(max(n, 2))))))


def k_distance_knee(distances: np.ndarray) -> tuple[float, int]:
    """Kneedle knee of the ascending k-distance curve: (eps, index of the knee).

    The knee is the point furthest below the chord from the smallest to the largest
    distance of the normalised curve, where distances start to climb steeply.
    """
    d = np.sort(np.asarray(distances, dtype=np.float64))
    if len(d) < 3 or d[-1] == d[0]:
        return float(d[-1]), len(d) - 1
    x = np.linspace(0.0, 1.0, len(d))
    y = (d - d[0]) / (d[-1] - d[0])
    i = int(np.argmax(x - y))
    return float(d[i]), i


def _kneighbors(nn: NearestNeighbors, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    dist, idx = [], []
    for start in range(0, X.shape[0], _QUERY_CHUNK):
        d, i = nn.kneighbors(X[start:start + _QUERY_CHUNK], n_neighbors=k)
        dist.append(d)
        idx.append(i)
    return np.vstack(dist), np.vstack(idx)


class _DensityBase(SegmentClusterer):
    """What DBSCAN and HDBSCAN share: sampling, the Outliers cluster, micro-segments, state."""

    @classmethod
    def summary_lines(cls, details: dict[str, Any]) -> list[str]:
        lines = []
        for micro in details.get("micro_segments") or []:
            revenue = micro.get("share_revenue")
            lines.append(f"micro-segment {micro.get('segment_name')}: {micro['share_customers']:.2%} of customers"
                         + (f", {revenue:.2%} of revenue" if revenue is not None else ""))
        return lines

    def _prepare_fit(self, X) -> tuple[np.ndarray, np.ndarray, int, int]:
        X = fit_input(X)
        owner = type(self).__name__
        check_int_param(owner, "fit_sample", self.fit_sample, 100)
        if not isinstance(self.micro_share, numbers.Real) or not 0 < self.micro_share < 1:
            raise param_error(owner, "micro_share", "a float in the range (0, 1)", self.micro_share)
        self.n_features_in_ = X.shape[1]
        seed = resolve_seed(self.random_state)
        rows = sample_indices(X.shape[0], self.fit_sample, seed)
        if self.min_samples == "auto":
            min_samples = default_min_samples(len(rows), X.shape[1])
        else:
            min_samples = check_int_param(owner, "min_samples", self.min_samples, 2)
        min_samples = min(min_samples, max(2, len(rows) - 1))
        return X, rows, seed, min_samples

    def _finish(self, X: np.ndarray, rows: np.ndarray, fit_labels: np.ndarray, details: dict[str, Any]) -> None:
        """Labels for everyone (noise -> Outliers cluster), micro-segments, details."""
        n_clusters = int(fit_labels.max()) + 1 if (fit_labels >= 0).any() else 0
        if n_clusters == 0:
            raise InputError(
                f"{type(self).__name__} found no dense group: every customer is noise "
                f"({', '.join(f'{k}={v}' for k, v in details['parameters'].items())}); "
                "make the density threshold looser (a larger eps or smaller min_samples / min_cluster_size, "
                "e.g. --method-param min_samples=5) or use another method"
            )
        self.n_clusters_ = n_clusters
        if len(rows) < X.shape[0]:
            raw = self._raw_predict(X)[0]
            raw[rows] = fit_labels
        else:
            raw = fit_labels
        has_noise = bool((raw < 0).any())
        self.outlier_cluster_ = n_clusters if has_noise else None
        self.labels_ = np.where(raw < 0, n_clusters, raw).astype(np.int64)
        self.n_segments_ = n_clusters + int(has_noise)
        sizes = np.bincount(self.labels_, minlength=self.n_segments_)
        n = len(self.labels_)
        details["n_clusters"] = n_clusters
        details["noise_share"] = float(sizes[n_clusters] / n) if has_noise else 0.0
        details["fit_sample_size"] = int(len(rows))
        details["sampled"] = bool(len(rows) < n)
        details["micro_share"] = float(self.micro_share)
        details["micro_segments"] = [
            {"cluster": int(c), "customers": int(sizes[c]), "share_customers": float(sizes[c] / n)}
            for c in range(n_clusters) if sizes[c] / n < self.micro_share
        ]
        details["outliers"] = {"cluster": n_clusters, "customers": int(sizes[n_clusters])} if has_noise else None
        self.details_ = details
        self.selection_ = None

    def _segments(self, raw: np.ndarray) -> np.ndarray:
        if self.outlier_cluster_ is None:
            return raw
        return np.where(raw < 0, self.outlier_cluster_, raw).astype(np.int64)

    def predict(self, X):
        """Segment of each row (see the class docstring for the rule)."""
        raw, _ = self._raw_predict(self._check_X(X))
        return self._segments(raw)

    def confidence(self, X):
        """How sure each assignment is, in [0, 1] (see the class docstring)."""
        return self._raw_predict(self._check_X(X))[1]

    def _common_state(self) -> dict[str, Any]:
        return {
            "params": state_params(self),
            "n_features_in": self.n_features_in_,
            "n_segments": self.n_segments_,
            "n_clusters": self.n_clusters_,
            "outlier_cluster": self.outlier_cluster_,
            "details": self.details_,
        }

    def _restore_common(self, meta: dict[str, Any]) -> None:
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.n_clusters_ = int(meta["n_clusters"])
        self.outlier_cluster_ = meta["outlier_cluster"]
        self.details_ = meta["details"]
        self.selection_ = None


@register_method("dbscan")
class DBSCANSegmenter(_DensityBase):
    """DBSCAN with eps from the k-distance knee, noise as an Outliers group.

    New customers (and customers left out of a sampled fit) go to the segment of
    their nearest *core* customer if it is within ``eps``, else to Outliers. Training
    customers follow the same rule, so ``predict`` on the training data gives
    ``labels_`` exactly (scikit-learn gives a border customer reachable from two
    segments to the first one found; here it goes to the nearest core customer).

    Confidence: ``1 - d / eps`` for a customer in a segment (1 on a core customer),
    ``1 - eps / d`` for an outlier (0 at the edge of a segment, towards 1 far away),
    ``d`` being the distance to the nearest core customer.

    Parameters
    ----------
    eps : float or "auto"
        Neighbourhood radius; ``"auto"``: the k-distance knee (see the module docstring).
    min_samples : int or "auto"
        Customers (itself included) within eps that make a core customer.
    fit_sample : int
        Most customers clustered directly; the rest are assigned.
    knee_sample : int
        Customers whose k-distance makes the curve for ``eps="auto"``.
    micro_share : float
        Segments below this share of customers are reported as micro-segments.
    random_state : int, RandomState or None
    """

    param_docs = {
        "eps": ("auto|float", "neighbourhood radius ('auto': the knee of the k-distance curve)"),
        "min_samples": ("auto|int", "customers within eps that make a core customer"),
        "knee_sample": ("int", "customers whose k-distance makes the curve for eps='auto'"),
        "micro_share": ("float", "segments below this share of customers are reported as micro-segments"),
    }
    assignment_rule = "the segment of the nearest core customer within eps, else Outliers"
    report_sections = ("density",)

    def __init__(self, *, eps="auto", min_samples="auto", fit_sample=20_000, knee_sample=5_000, micro_share=0.02,
                 random_state=None):
        self.eps = eps
        self.min_samples = min_samples
        self.fit_sample = fit_sample
        self.knee_sample = knee_sample
        self.micro_share = micro_share
        self.random_state = random_state

    def fit(self, X, y=None):
        """Cluster (a sample of) the customers and assign everyone."""
        X, rows, seed, min_samples = self._prepare_fit(X)
        owner = type(self).__name__
        X_fit = X[rows]
        details: dict[str, Any] = {"min_samples": min_samples,
                                   "min_samples_rule": "given" if self.min_samples != "auto"
                                   else "max(2 * n_features, ceil(ln n))"}
        if self.eps == "auto":
            check_int_param(owner, "knee_sample", self.knee_sample, 10)
            nn = NearestNeighbors().fit(X_fit)
            query = X_fit[sample_indices(len(X_fit), self.knee_sample, seed + 1)]
            kdist = _kneighbors(nn, query, min(min_samples, len(X_fit)))[0][:, -1]
            eps, knee_index = k_distance_knee(kdist)
            if eps <= 0:
                eps = float(np.min(kdist[kdist > 0])) if (kdist > 0).any() else 1e-9
            curve = np.sort(kdist)
            picks = np.unique(np.linspace(0, len(curve) - 1, min(len(curve), 101)).round().astype(int))
            details["eps_source"] = "knee of the k-distance curve"
            details["k_distance_curve"] = {"quantile": [float(p / (len(curve) - 1)) for p in picks],
                                           "distance": [float(curve[p]) for p in picks],
                                           "knee_quantile": float(knee_index / max(len(curve) - 1, 1))}
        else:
            if not isinstance(self.eps, numbers.Real) or isinstance(self.eps, bool) or self.eps <= 0:
                raise param_error(owner, "eps", "'auto' or a float in the range (0, inf)", self.eps)
            eps = float(self.eps)
            details["eps_source"] = "given"
        details["eps"] = eps
        details["parameters"] = {"eps": round(eps, 6), "min_samples": min_samples}
        db = DBSCAN(eps=eps, min_samples=min_samples).fit(X_fit)
        core = db.core_sample_indices_
        self.eps_ = eps
        self.min_samples_ = min_samples
        self.core_points_ = X_fit[core]
        self.core_labels_ = db.labels_[core].astype(np.int64)
        details["n_core_points"] = int(len(core))
        if len(core) == 0:
            self._finish(X, rows, np.full(len(rows), -1), details)
        self._tree = NearestNeighbors(n_neighbors=1).fit(self.core_points_)
        self.n_clusters_ = int(self.core_labels_.max()) + 1
        # Border customers go to the nearest core customer's segment (see the class docstring).
        fit_labels = self._nearest_core(X_fit)[0]
        self._finish(X, rows, fit_labels, details)
        return self

    def _nearest_core(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_tree"):
            self._tree = NearestNeighbors(n_neighbors=1).fit(self.core_points_)
        dist, idx = _kneighbors(self._tree, X, 1)
        dist, idx = dist[:, 0], idx[:, 0]
        labels = np.where(dist <= self.eps_, self.core_labels_[idx], -1)
        return labels, dist

    def _raw_predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels, dist = self._nearest_core(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            conf = np.where(labels >= 0, 1.0 - dist / self.eps_, 1.0 - self.eps_ / np.maximum(dist, 1e-300))
        if getattr(self, "outlier_cluster_", "unset") is None:
            # No noise in training: there is no Outliers group, the nearest core decides.
            conf = np.where(labels >= 0, conf, 0.0)
            labels = self.core_labels_[_kneighbors(self._tree, X, 1)[1][:, 0]]
        return labels, np.clip(conf, 0.0, 1.0)

    def to_state(self):
        meta = self._common_state()
        meta.update(eps=self.eps_, min_samples=self.min_samples_)
        return meta, {"core_points": self.core_points_, "core_labels": self.core_labels_}

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ()))
        self._restore_common(meta)
        self.eps_ = float(meta["eps"])
        self.min_samples_ = int(meta["min_samples"])
        self.core_points_ = arrays["core_points"]
        self.core_labels_ = arrays["core_labels"].astype(np.int64)
        return self


@register_method("hdbscan")
class HDBSCANSegmenter(_DensityBase):
    """HDBSCAN (scikit-learn's) with noise as an Outliers group and approximate membership.

    scikit-learn's HDBSCAN cannot assign new customers, so segwise approximates
    membership the way the hdbscan library's ``approximate_predict`` does: among the
    ``2 * min_samples`` nearest training customers, take the one nearest in
    *mutual-reachability* distance (``max(core distance of the training customer,
    distance)``, ties to the nearer); a new customer joins that customer's segment
    if that distance is within the segment's reach (the largest core distance of its
    members), else Outliers. The segments are what this rule gives, for training
    customers as for new ones: HDBSCAN's labels are kept as the reference the rule
    matches against, and every training customer is then assigned by the rule, so
    a saved model gives every training customer the segment the run wrote. A
    training customer lands on itself, so the rule keeps HDBSCAN's label except
    where a denser neighbour of another segment is nearer;
    ``details_["reassigned_by_rule"]`` counts the customers it moved (a segment the
    rule leaves empty is dropped).

    Confidence: HDBSCAN's membership strength (``probabilities_``) of the matched
    training customer times ``core distance / mutual-reachability distance`` (so
    exactly the strength for a training customer); for an outlier
    ``1 - reach / distance`` to the nearest segment member found.

    Parameters
    ----------
    min_cluster_size : int or "auto"
        Smallest segment; ``"auto"``: ``max(10, ceil(0.0025 n))``.
    min_samples : int or "auto"
        Neighbours defining core distances (see the module docstring).
    cluster_selection_method : {"eom", "leaf"}
        scikit-learn's: "leaf" gives more, smaller, homogeneous segments.
    fit_sample, micro_share, random_state
        As for `DBSCANSegmenter`.
    """

    param_docs = {
        "min_cluster_size": ("auto|int", "smallest segment, in customers"),
        "min_samples": ("auto|int", "neighbours that make a customer dense"),
        "cluster_selection_method": ("str", "eom (excess of mass) or leaf"),
        "micro_share": ("float", "segments below this share of customers are reported as micro-segments"),
    }
    assignment_rule = "approximate membership: the segment of the nearest training customers, else Outliers"
    report_sections = ("density",)

    def __init__(self, *, min_cluster_size="auto", min_samples="auto", cluster_selection_method="eom",
                 fit_sample=20_000, micro_share=0.02, random_state=None):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.fit_sample = fit_sample
        self.micro_share = micro_share
        self.random_state = random_state

    def fit(self, X, y=None):
        """Cluster (a sample of) the customers and assign everyone."""
        X, rows, seed, min_samples = self._prepare_fit(X)
        owner = type(self).__name__
        if self.cluster_selection_method not in ("eom", "leaf"):
            raise param_error(owner, "cluster_selection_method", "a str among {'eom', 'leaf'}",
                              self.cluster_selection_method)
        X_fit = X[rows]
        if self.min_cluster_size == "auto":
            min_cluster_size = int(max(10, int(np.ceil(0.0025 * len(rows)))))
        else:
            min_cluster_size = check_int_param(owner, "min_cluster_size", self.min_cluster_size, 2)
        min_cluster_size = min(min_cluster_size, len(rows))
        hdb = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                      cluster_selection_method=self.cluster_selection_method, copy=True).fit(X_fit)
        fit_labels = hdb.labels_.astype(np.int64)
        details: dict[str, Any] = {
            "min_cluster_size": min_cluster_size, "min_samples": min_samples,
            "min_cluster_size_rule": "given" if self.min_cluster_size != "auto" else "max(10, ceil(0.0025 n))",
            "min_samples_rule": "given" if self.min_samples != "auto" else "max(2 * n_features, ceil(ln n))",
            "cluster_selection_method": self.cluster_selection_method,
            "parameters": {"min_cluster_size": min_cluster_size, "min_samples": min_samples},
        }
        # Special labels of scikit-learn (-2 infinite, -3 missing) cannot occur on prepared data; noise is -1.
        fit_labels = np.where(fit_labels < 0, -1, fit_labels)
        self.min_samples_ = min_samples
        self.train_points_ = X_fit
        self.train_labels_ = fit_labels
        self.train_strength_ = np.asarray(hdb.probabilities_, dtype=np.float64)
        nn = NearestNeighbors().fit(X_fit)
        self._tree = nn
        core = _kneighbors(nn, X_fit, min(min_samples, len(X_fit)))[0][:, -1]
        self.core_distances_ = core
        # The rule runs as for a model without a noise decision yet (a refit must not see the last one).
        self.__dict__.pop("outlier_cluster_", None)
        reference, rule = fit_labels, fit_labels
        # HDBSCAN's cluster -> its number after dropping empty segments (-2: dropped, never equal to a label).
        renumbered = np.arange(int(fit_labels.max()) + 1)
        self.n_clusters_ = 0
        self.reach_ = np.zeros(0)
        while (reference >= 0).any():
            n_clusters = int(reference.max()) + 1
            self.train_labels_ = reference
            self.reach_ = np.array([core[reference == c].max() for c in range(n_clusters)])
            self.n_clusters_ = n_clusters
            # The segments are what the assignment rule gives (see the class docstring).
            rule = self._raw_predict(X_fit)[0]
            kept = np.unique(rule[rule >= 0])
            if len(kept) == n_clusters:
                break
            # A segment whose every member the rule gives to another is no segment: its members
            # become reference noise and the rule runs again on the segments left.
            remap = np.full(n_clusters, -2, dtype=np.int64)
            remap[kept] = np.arange(len(kept))
            renumbered = np.where(renumbered >= 0, remap[np.maximum(renumbered, 0)], -2)
            reference = np.where(reference >= 0, np.maximum(remap[np.maximum(reference, 0)], -1), -1)
        was = np.where(fit_labels >= 0, renumbered[np.maximum(fit_labels, 0)], -1)
        moved = int(np.sum(rule != was))
        fit_labels = rule
        details["reassigned_by_rule"] = {"customers": moved, "share": float(moved / len(rows)),
                                         "rule": "nearest training customer in mutual reachability, within reach"}
        self._finish(X, rows, fit_labels, details)
        return self

    def _raw_predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_tree"):
            self._tree = NearestNeighbors().fit(self.train_points_)
        k = min(2 * self.min_samples_, len(self.train_points_))
        dist, idx = _kneighbors(self._tree, X, k)
        reach_dist = np.maximum(self.core_distances_[idx], dist)
        # Lexicographic minimum: mutual reachability, then plain distance.
        order = _lexmin(reach_dist, dist)
        rows = np.arange(len(X))
        best = idx[rows, order]
        best_reach = reach_dist[rows, order]
        labels = self.train_labels_[best].copy()
        in_reach = np.zeros(len(X), dtype=bool)
        member = labels >= 0
        in_reach[member] = best_reach[member] <= self.reach_[labels[member]]
        labels[~in_reach] = -1
        with np.errstate(divide="ignore", invalid="ignore"):
            conf = np.where(in_reach, self.train_strength_[best] * self.core_distances_[best]
                            / np.maximum(best_reach, 1e-300), 0.0)
        # Outliers: distance to the nearest segment member among the neighbours found.
        member_reach = np.where(self.train_labels_[idx] >= 0, reach_dist, np.inf)
        nearest_member = member_reach.argmin(axis=1)
        nearest_value = member_reach[rows, nearest_member]
        member_label = self.train_labels_[idx[rows, nearest_member]]
        with np.errstate(divide="ignore", invalid="ignore"):
            outlier_conf = np.where(np.isfinite(nearest_value),
                                    1.0 - self.reach_[np.maximum(member_label, 0)] / np.maximum(nearest_value, 1e-300),
                                    1.0) if len(self.reach_) else np.ones(len(X))
        conf = np.where(in_reach, conf, outlier_conf)
        if getattr(self, "outlier_cluster_", "unset") is None:
            # No noise in training: there is no Outliers group, the nearest member decides.
            fallback = member_label >= 0
            labels = np.where(labels >= 0, labels, np.where(fallback, member_label, 0))
        return labels, np.clip(np.nan_to_num(conf), 0.0, 1.0)

    def to_state(self):
        meta = self._common_state()
        meta["min_samples"] = self.min_samples_
        return meta, {"train_points": self.train_points_, "train_labels": self.train_labels_,
                      "train_strength": self.train_strength_, "core_distances": self.core_distances_,
                      "reach": self.reach_}

    @classmethod
    def from_state(cls, meta, arrays):
        self = cls(**params_from_state(meta["params"], ()))
        self._restore_common(meta)
        self.min_samples_ = int(meta["min_samples"])
        self.train_points_ = arrays["train_points"]
        self.train_labels_ = arrays["train_labels"].astype(np.int64)
        self.train_strength_ = arrays["train_strength"]
        self.core_distances_ = arrays["core_distances"]
        self.reach_ = arrays["reach"]
        return self


def _lexmin(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Column of the smallest ``primary`` in each row, ties broken by the smallest ``secondary``."""
    low = primary.min(axis=1, keepdims=True)
    masked = np.where(primary <= low, secondary, np.inf)
    return masked.argmin(axis=1)
