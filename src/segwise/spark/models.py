"""Models fitted by Spark MLlib, as ordinary segwise clusterers (numpy only, no Spark).

A model trained on the Spark engine is exported into the model file with these
classes (k-means exports to `segwise.cluster.KMeansSegmenter` itself), so
``segwise assign`` and ``segwise serve`` load and apply it without PySpark. They
are registered as model classes (`segwise.cluster.MODEL_CLASSES`, not
`segwise.cluster.METHODS`): a model file naming them loads anywhere, while fitting
them needs the Spark engine, and ``segwise run --method spark_gmm`` on DuckDB says so.

- ``spark_bisecting_kmeans``: the leaf centres of MLlib's bisecting k-means.
  MLlib assigns a point by walking down the bisection tree; the export assigns it
  to the nearest leaf centre (the tree is not exposed by PySpark). The two agree
  except near the boundary between leaves of different branches; segwise uses the
  exported rule for the training customers too, so a model's saved assignments and
  ``segwise assign`` always agree.
- ``spark_gmm``: MLlib's Gaussian mixture (weights, means, full covariances); a
  customer goes to the component of highest posterior probability, and the
  confidence is that probability.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from sklearn.utils.validation import check_array, check_is_fitted

from segwise.cluster.base import SegmentClusterer, register_method
from segwise.cluster.kmeans import KMeansSegmenter
from segwise.errors import InputError
from segwise.cluster.select import KSelection

__all__ = ["SparkBisectingKMeans", "SparkGaussianMixture", "SPARK_ONLY"]

SPARK_ONLY = "is fitted on the Spark engine (segwise run --engine spark, Python: engine='spark')"


@register_method("spark_bisecting_kmeans",
                 fitted_by="the Spark engine (segwise run --engine spark --method bisecting_kmeans)")
class SparkBisectingKMeans(KMeansSegmenter):
    """Bisecting k-means fitted by Spark MLlib; assigns to the nearest leaf centre."""

    def fit(self, X, y=None):
        raise InputError(f"the method {self.method_name!r} {SPARK_ONLY}")


@register_method("spark_gmm", fitted_by="the Spark engine (segwise run --engine spark --method gmm)")
class SparkGaussianMixture(SegmentClusterer):
    """A Gaussian mixture fitted by Spark MLlib (full covariances).

    Parameters
    ----------
    n_segments : int or "auto"
    k_range : tuple of two ints
    max_iter : int
    tol : float
    random_state : int or None

    Attributes
    ----------
    weights_ : ndarray of shape (n_segments,)
    means_ : ndarray of shape (n_segments, n_features)
    covariances_ : ndarray of shape (n_segments, n_features, n_features)
    n_segments_ : int
    selection_ : KSelection or None
    """

    def __init__(self, n_segments="auto", *, k_range=(2, 12), max_iter=100, tol=0.01, random_state=None):
        self.n_segments = n_segments
        self.k_range = k_range
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None):
        raise InputError(f"the method {self.method_name!r} {SPARK_ONLY}")

    def _log_resp(self, X) -> np.ndarray:
        check_is_fitted(self, "means_")
        X = check_array(X, dtype=[np.float64, np.float32]).astype(np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input."
            )
        d = X.shape[1]
        log_prob = np.empty((X.shape[0], self.n_segments_))
        for k in range(self.n_segments_):
            # A small ridge keeps a degenerate component (e.g. a constant column inside
            # it) invertible, as MLlib's own density evaluation does.
            cov = self.covariances_[k] + 1e-9 * np.eye(d)
            chol = np.linalg.cholesky(cov)
            z = np.linalg.solve(chol, (X - self.means_[k]).T)
            log_det = 2.0 * np.log(np.diag(chol)).sum()
            log_prob[:, k] = -0.5 * (d * np.log(2 * np.pi) + log_det + (z**2).sum(axis=0))
        weighted = log_prob + np.log(np.maximum(self.weights_, np.finfo(float).tiny))
        return weighted - logsumexp(weighted, axis=1, keepdims=True)

    def predict_proba(self, X):
        """Posterior probability of each component."""
        return np.exp(self._log_resp(X))

    def predict(self, X):
        """The component of highest posterior probability."""
        return np.argmax(self._log_resp(X), axis=1).astype(np.int64)

    def confidence(self, X):
        """The posterior probability of the assigned component."""
        return self.predict_proba(X).max(axis=1)

    def to_state(self):
        check_is_fitted(self, "means_")
        meta = {
            "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()},
            "n_features_in": self.n_features_in_,
            "n_segments": self.n_segments_,
            "log_likelihood": self.log_likelihood_,
            "selection": self.selection_.to_dict() if self.selection_ is not None else None,
        }
        return meta, {"weights": self.weights_, "means": self.means_, "covariances": self.covariances_}

    @classmethod
    def from_state(cls, meta, arrays):
        params = dict(meta["params"])
        if "k_range" in params:
            params["k_range"] = tuple(params["k_range"])
        self = cls(**params)
        self.weights_ = arrays["weights"]
        self.means_ = arrays["means"]
        self.covariances_ = arrays["covariances"]
        self.n_features_in_ = int(meta["n_features_in"])
        self.n_segments_ = int(meta["n_segments"])
        self.log_likelihood_ = float(meta["log_likelihood"])
        self.selection_ = KSelection.from_dict(meta["selection"]) if meta.get("selection") else None
        return self
