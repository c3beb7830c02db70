"""k-means (k-means++ initialisation, seeded) with an automatic number of segments."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits
from sklearn.utils.validation import check_array, check_is_fitted

from segwise.cluster.base import SegmentClusterer, register_method
from segwise.errors import InputError
from segwise.cluster.select import KSelection, select_n_segments

__all__ = ["KMeansSegmenter", "centroid_confidence"]


def centroid_confidence(distances: np.ndarray) -> np.ndarray:
    """Confidence from distances to every centroid: ``1 - d_nearest / d_second``.

    1 at a centroid, 0 on the boundary between the two nearest segments. With a
    single centroid every customer gets 1.
    """
    if distances.shape[1] < 2:
        return np.ones(distances.shape[0])
    two = np.partition(distances, 1, axis=1)[:, :2]
    nearest, second = two[:, 0], two[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(second > 0, 1.0 - nearest / second, 0.0)
    return np.clip(conf, 0.0, 1.0)


def squared_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of every row to every centre (n x k, chunk-free)."""
    x_sq = np.einsum("ij,ij->i", X, X)[:, None]
    c_sq = np.einsum("ij,ij->i", centers, centers)[None, :]
    return np.maximum(x_sq - 2.0 * X @ centers.T + c_sq, 0.0)


def _check_n_segments(value: Any, owner: str, n_samples: int | None = None) -> None:
    if value == "auto":
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise InputError(
            f"The 'n_segments' parameter of {owner} must be 'auto' or an int in the range [1, inf). "
            f"Got {value!r} instead."
        )
    if n_samples is not None and value > n_samples:
        raise InputError(
            f"{value} segments were asked for but there are only {n_samples} customers (n_samples={n_samples}); "
            "ask for fewer segments (or --segments auto)"
        )


@register_method("kmeans")
class KMeansSegmenter(SegmentClusterer):
    """k-means segmentation with k-means++ initialisation and automatic k.

    Parameters
    ----------
    n_segments : int or "auto"
        Number of segments; ``"auto"`` chooses it over ``k_range`` with
        `segwise.cluster.select.select_n_segments` (rule documented there).
    k_range : tuple of two ints
        Smallest and largest number of segments tried by ``"auto"``.
    n_init : int
        k-means++ restarts; the best (lowest inertia) is kept.
    max_iter : int
        Lloyd iterations per run.
    random_state : int, RandomState or None
        Seed; the same seed gives the same segments.
    selection_sample : int
        Customers used for the silhouette when choosing k.
    fit_sample : int
        Above this many customers, candidate k are fitted on a seeded sample of
        this size and the chosen k is refitted on everyone.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_segments, n_features)
    labels_ : ndarray of shape (n_samples,)
    n_segments_ : int
    inertia_ : float
    selection_ : KSelection or None
    """

    param_docs = {}  # every parameter is one of `COMMON_PARAM_DOCS`
    assignment_rule = "the nearest centroid (Euclidean, in the prepared space)"

    def __init__(self, n_segments="auto", *, k_range=(2, 12), n_init=4, max_iter=300, random_state=None,
                 selection_sample=10_000, fit_sample=100_000):
        self.n_segments = n_segments
        self.k_range = k_range
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state
        self.selection_sample = selection_sample
        self.fit_sample = fit_sample

    def _fit_k(self, X: np.ndarray, k: int, seed: int) -> KMeans:
        # Up to fit_sample rows, Lloyd's iterations are short and OpenMP's barrier at
        # the end of each costs more than a second thread saves: 20x slower on 9k
        # customers, 4x on 90k, measured while another process held a core (bench/).
        with threadpool_limits(1 if X.shape[0] <= self.fit_sample else None, user_api="openmp"):
            return KMeans(n_clusters=k, init="k-means++", n_init=self.n_init, max_iter=self.max_iter,
                          random_state=seed).fit(X)

    def fit(self, X, y=None):
        """Fit k-means (choosing the number of segments when ``n_segments="auto"``)."""
        X = check_array(X, dtype=[np.float64, np.float32])
        self.n_features_in_ = X.shape[1]
        owner = type(self).__name__
        _check_n_segments(self.n_segments, owner, X.shape[0])
        if not isinstance(self.n_init, numbers.Integral) or self.n_init < 1:
            raise InputError(f"The 'n_init' parameter of {owner} must be an int in the range [1, inf). Got {self.n_init!r} instead.")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if self.n_segments == "auto":
            lo, hi = self.k_range
            # Candidates are fitted in float32 (half the memory traffic of Lloyd's
            # iterations, the bulk of choosing k); scores are computed in float64.
            self.selection_: KSelection | None = select_n_segments(
                X, lambda X_fit, k: self._fit_k(X_fit.astype(np.float32), k, seed), k_range=(lo, hi),
                sample_size=self.selection_sample, fit_sample_size=self.fit_sample, random_state=seed,
            )
            model = self.selection_.models[self.selection_.chosen]
            self.selection_.models = {}
            # Refit the chosen k on everyone in float64 from the candidate's centroids
            # (a few iterations), so labels_ agree with predict.
            model = KMeans(n_clusters=self.selection_.chosen, init=model.cluster_centers_.astype(X.dtype), n_init=1,
                           max_iter=self.max_iter).fit(X)
        else:
            self.selection_ = None
            model = self._fit_k(X, int(self.n_segments), seed)
        self.cluster_centers_ = model.cluster_centers_.astype(np.float64)
        self.labels_ = model.labels_.astype(np.int64)
        self.inertia_ = float(model.inertia_)
        self.n_iter_ = int(model.n_iter_)
        self.n_segments_ = int(self.cluster_centers_.shape[0])
        return self

    def _distances(self, X) -> np.ndarray:
        check_is_fitted(self, "cluster_centers_")
        X = check_array(X, dtype=[np.float64, np.float32])
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input."
            )
        return squared_distances(X.astype(np.float64), self.cluster_centers_)

    def predict(self, X):
        """Nearest centroid of each row."""
        return np.argmin(self._distances(X), axis=1).astype(np.int64)

    def confidence(self, X):
        """``1 - d_nearest / d_second`` with Euclidean distances (see `centroid_confidence`)."""
        return centroid_confidence(np.sqrt(self._distances(X)))

    def predict_with_confidence(self, X):
        """`predict` and `confidence` from one computation of the distances."""
        squared = self._distances(X)
        return np.argmin(squared, axis=1).astype(np.int64), centroid_confidence(np.sqrt(squared))

    def assign_prepared(self, X):
        """`predict_with_confidence` without scikit-learn's input validation, which costs more than the
        arithmetic for one customer: the distances are computed once, directly."""
        squared = squared_distances(X, self.cluster_centers_)
        return np.argmin(squared, axis=1), centroid_confidence(np.sqrt(squared))

    def distances(self, X):
        """Euclidean distance of each row to each centroid."""
        return np.sqrt(self._distances(X))

    def to_state(self):
        check_is_fitted(self, "cluster_centers_")
        meta = {
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()
                       if not hasattr(v, "randint")},
            "n_features_in": self.n_features_in_,
            # None when unknown (a differentially private federated fit does not release it).
            "inertia": self.inertia_ if np.isfinite(self.inertia_) else None,
            "n_segments": self.n_segments_,
            "selection": self.selection_.to_dict() if self.selection_ is not None else None,
        }
        return meta, {"cluster_centers": self.cluster_centers_}

    @classmethod
    def from_state(cls, meta, arrays):
        params = dict(meta["params"])
        if "k_range" in params:
            params["k_range"] = tuple(params["k_range"])
        self = cls(**params)
        self.cluster_centers_ = arrays["cluster_centers"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.inertia_ = float(meta["inertia"]) if meta.get("inertia") is not None else float("nan")
        self.n_segments_ = int(meta["n_segments"])
        self.selection_ = KSelection.from_dict(meta["selection"]) if meta.get("selection") else None
        return self
