"""Spark MLlib methods: k-means, bisecting k-means and a Gaussian mixture, fitted where the data live.

On the Spark engine (`segwise.engines.spark`) the customers stay in Spark: the
`segwise.Segmenter` gives these methods the prepared customers as a Spark DataFrame
with a ``features`` vector column (`segwise.engines.statistics.CustomerStatistics.prepared`),
and they fit with MLlib. They are registered for the engine
(`segwise.cluster.base.register_engine_method`): on Spark, ``--method kmeans``,
``bisecting_kmeans`` and ``gmm`` are these. What they fit is exported into a numpy
clusterer (`SegmentClusterer.exported`) that the model file stores:
`segwise.cluster.KMeansSegmenter`, `SparkBisectingKMeans` or `SparkGaussianMixture`,
so ``segwise assign`` and ``segwise serve`` need no Spark. PySpark is imported only
when one of them fits.

Choosing k: every k in the range is fitted (on a seeded sample of at most
``fit_sample`` customers); its training cost (within-segment sum of squares, or
minus the log-likelihood for the mixture) gives the knee, and the silhouette comes
from MLlib's `ClusteringEvaluator` (squared Euclidean, Spark's definition) on a
seeded sample of ``selection_sample`` customers (Calinski-Harabasz and
Davies-Bouldin are computed on the driver for the same sample). The choice follows
`segwise.cluster.select.CHOICE_RULE`. When candidates were fitted on a sample, k-means is
refitted on everyone from the sample's centres, as the local engine does.

The exported models:

- ``spark_bisecting_kmeans``: the leaf centres of MLlib's bisecting k-means.
  MLlib assigns a point by walking down the bisection tree; the export assigns it
  to the nearest leaf centre (the tree is not exposed by PySpark). The two agree
  except near the boundary between leaves of different branches; segwise uses the
  exported rule for the training customers too, so a model's saved assignments and
  ``segwise assign`` always agree.
- ``spark_gmm``: MLlib's Gaussian mixture (weights, means, full covariances); a
  customer goes to the component of highest posterior probability, and the
  confidence is that probability.

They are registered as model classes (`segwise.cluster.MODEL_CLASSES`, not
`segwise.cluster.METHODS`): a model file naming them loads anywhere, while fitting
them needs the Spark engine, and ``segwise run --method spark_gmm`` on DuckDB says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.special import logsumexp
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.utils.validation import check_array, check_is_fitted

from segwise.cluster.base import SegmentClusterer, register_engine_method, register_method
from segwise.cluster.kmeans import KMeansSegmenter, _check_n_segments
from segwise.errors import InputError
from segwise.cluster.select import CHOICE_RULE, KSelection, _choose, knee_point

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = [
    "SparkBisectingKMeans", "SparkGaussianMixture", "SPARK_ONLY", "SPARK_METHODS", "MLlibKMeans",
    "MLlibBisectingKMeans", "MLlibGaussianMixture", "fit_spark_method", "kmeans_from_centers",
]

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


# --------------------------------------------------------------------------- fitting with MLlib

#: Method names on the Spark engine, and the method stored in the model file.
SPARK_METHODS = {"kmeans": "kmeans", "bisecting_kmeans": "spark_bisecting_kmeans", "gmm": "spark_gmm"}
_ALIASES = {"spark_bisecting_kmeans": "bisecting_kmeans", "spark_gmm": "gmm"}


def _estimator(method: str, k: int, seed: int, max_iter: int, tol: float | None):
    from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans

    if method == "kmeans":
        return KMeans(k=k, seed=seed, maxIter=max_iter, initMode="k-means||", tol=tol or 1e-4)
    if method == "bisecting_kmeans":
        return BisectingKMeans(k=k, seed=seed, maxIter=max_iter)
    return GaussianMixture(k=k, seed=seed, maxIter=max_iter, tol=tol or 0.01)


#: Added to every coordinate before MLlib's bisecting k-means, and taken off its centres.
#: MLlib splits a cluster by perturbing its centre by 1e-4 times the centre's norm;
#: standardised data has its overall centre at the origin, so the first split
#: perturbs by nothing and the whole population stays one cluster. Distances, and
#: so the clustering, do not change under a translation.
BISECTING_SHIFT = 1.0


def _shift(vectors: DataFrame, shift: float) -> DataFrame:
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql import functions as F

    shifted = F.transform(vector_to_array("features"), lambda x: x + F.lit(shift))
    return vectors.withColumn("features", array_to_vector(shifted))


def _cost(method: str, model) -> float:
    if method == "gmm":
        return -float(model.summary.logLikelihood)
    return float(model.summary.trainingCost)


def kmeans_from_centers(vectors: DataFrame, centers: np.ndarray, *, max_iter: int = 300,
                        epsilon: float = 1e-6, seed: int = 0) -> tuple[np.ndarray, float, int]:
    """Lloyd's k-means on Spark started from given centres; returns (centres, cost, k).

    PySpark's DataFrame k-means has no initial-model parameter, so this uses MLlib's
    RDD k-means (``initialModel``), which runs the same algorithm.
    """
    from pyspark.mllib.clustering import KMeans as RDDKMeans, KMeansModel as RDDKMeansModel
    from pyspark.mllib.linalg import Vectors as MLlibVectors

    rdd = vectors.select("features").rdd.map(lambda row: MLlibVectors.fromML(row[0])).cache()
    try:
        model = RDDKMeans.train(
            rdd, len(centers), maxIterations=max_iter, initialModel=RDDKMeansModel([c for c in centers]),
            epsilon=epsilon, seed=seed,
        )
        cost = float(model.computeCost(rdd))
    finally:
        rdd.unpersist()
    return np.asarray(model.clusterCenters, dtype=np.float64), cost, len(model.clusterCenters)


def _sample(vectors: DataFrame, n: int, size: int, seed: int) -> DataFrame:
    if n <= size:
        return vectors
    # A little more than needed, then cut: Bernoulli sampling is seeded but not exact.
    return vectors.sample(withReplacement=False, fraction=min(1.0, 1.1 * size / n), seed=seed).limit(size)


def fit_spark_method(
    vectors: DataFrame,
    *,
    method: str = "kmeans",
    n_segments: int | str = "auto",
    k_range: tuple[int, int] = (2, 12),
    random_state: int | None = 0,
    max_iter: int | None = None,
    tol: float | None = None,
    init_centers: np.ndarray | None = None,
    selection_sample: int = 10_000,
    fit_sample: int = 200_000,
) -> SegmentClusterer:
    """Fit ``method`` with MLlib on a DataFrame with a ``features`` vector column.

    Returns the exported numpy clusterer (without ``labels_``: the caller assigns
    the customers with it, so saved assignments equal ``segwise assign``'s).
    ``init_centers`` (k-means only) starts Lloyd's iterations from given centres.
    """
    method = _ALIASES.get(method, method)
    if method not in SPARK_METHODS:
        raise InputError(
            f"unknown method {method!r} on the Spark engine; methods are: {', '.join(SPARK_METHODS)}"
        )
    owner = f"the Spark {method}"
    n = vectors.count()
    _check_n_segments(n_segments, owner, n)
    seed = int(np.random.RandomState(random_state).randint(np.iinfo(np.int32).max))
    max_iter = max_iter or (300 if method == "kmeans" else 100 if method == "gmm" else 20)
    n_features = len(vectors.select("features").first()[0])
    if init_centers is not None:
        if method != "kmeans":
            raise InputError("init_centers applies to the kmeans method only")
        centers, cost, _ = kmeans_from_centers(vectors, np.asarray(init_centers, dtype=np.float64),
                                               max_iter=max_iter, seed=seed)
        return _export_kmeans(KMeansSegmenter, centers, cost, n_features, n_segments, k_range, random_state,
                              max_iter, None)
    if method != "bisecting_kmeans":
        return _fit(vectors, method, n, n_segments, k_range, random_state, seed, max_iter, tol, n_features,
                    selection_sample, fit_sample, shift=0.0)
    shifted = _shift(vectors, BISECTING_SHIFT).cache()
    try:
        return _fit(shifted, method, n, n_segments, k_range, random_state, seed, max_iter, tol, n_features,
                    selection_sample, fit_sample, shift=BISECTING_SHIFT)
    finally:
        shifted.unpersist()


def _fit(vectors, method, n, n_segments, k_range, random_state, seed, max_iter, tol, n_features,
         selection_sample, fit_sample, *, shift):
    from pyspark.ml.evaluation import ClusteringEvaluator

    selection = None
    if n_segments == "auto":
        lo, hi = int(k_range[0]), min(int(k_range[1]), n - 1)
        if lo < 2 or hi < lo:
            raise InputError(
                f"the range of numbers of segments must satisfy 2 <= low <= high (--k-min/--k-max, "
                f"Python: k_range); got {k_range[0]}..{k_range[1]}"
            )
        fit_rows = _sample(vectors, n, fit_sample, seed).cache()
        sil_rows = _sample(fit_rows, min(n, fit_sample), selection_sample, seed + 1).cache()
        try:
            n_fit, n_sil = fit_rows.count(), sil_rows.count()
            sample_x = np.asarray([r[0].toArray() for r in sil_rows.select("features").collect()])
            evaluator = ClusteringEvaluator(metricName="silhouette", distanceMeasure="squaredEuclidean")
            models, candidates = {}, []
            for k in range(lo, hi + 1):
                model = _estimator(method, k, seed, max_iter, tol).fit(fit_rows)
                models[k] = model
                sizes = np.asarray(model.summary.clusterSizes, dtype=float)
                predicted = model.transform(sil_rows)
                labels = np.asarray([r[0] for r in predicted.select("prediction").collect()])
                several = len(np.unique(labels)) >= 2
                candidates.append({
                    "k": k,
                    "inertia": _cost(method, model),
                    "silhouette": float(evaluator.evaluate(predicted)) if several else None,
                    "calinski_harabasz": float(calinski_harabasz_score(sample_x, labels)) if several else None,
                    "davies_bouldin": float(davies_bouldin_score(sample_x, labels)) if several else None,
                    "smallest_share": float(sizes.min() / sizes.sum()),
                    "fit_sample_size": int(n_fit),
                    "silhouette_sample_size": int(n_sil),
                })
        finally:
            sil_rows.unpersist()
            fit_rows.unpersist()
        knee = knee_point([c["k"] for c in candidates], [c["inertia"] for c in candidates])
        # Undefined scores are None (JSON null) in the record; the rule reads them as NaN.
        chosen, reason = _choose([{**c, "silhouette": float("nan") if c["silhouette"] is None else c["silhouette"]}
                                  for c in candidates], knee)
        rule = CHOICE_RULE + "; on Spark the silhouette is MLlib's ClusteringEvaluator (squared Euclidean)"
        selection = KSelection(candidates=candidates, chosen=chosen, knee=knee, rule=rule, reason=reason)
        model = models[chosen]
        if method == "kmeans" and n_fit < n:
            centers, cost, _ = kmeans_from_centers(vectors, np.asarray(model.clusterCenters()), max_iter=max_iter,
                                                   seed=seed)
            return _export_kmeans(KMeansSegmenter, centers, cost, n_features, n_segments, k_range, random_state,
                                  max_iter, selection)
        if n_fit < n and method == "bisecting_kmeans":
            model = _estimator(method, chosen, seed, max_iter, tol).fit(vectors)
    else:
        model = _estimator(method, int(n_segments), seed, max_iter, tol).fit(vectors)
    if method == "gmm":
        return _export_gmm(model, n_features, n_segments, k_range, random_state, max_iter, tol, selection)
    if method == "bisecting_kmeans" and len(model.clusterCenters()) < model.getK():
        raise InputError(
            f"MLlib's bisecting k-means found only {len(model.clusterCenters())} of the {model.getK()} segments "
            "asked for: it does not split a cluster whose customers all have the same prepared features. "
            "Ask for fewer segments, or use --method kmeans or gmm on these data"
        )
    cls = KMeansSegmenter if method == "kmeans" else SparkBisectingKMeans
    centers = np.asarray(model.clusterCenters(), dtype=np.float64) - shift
    return _export_kmeans(cls, centers, _cost(method, model), n_features, n_segments, k_range, random_state,
                          max_iter, selection)


def _export_kmeans(cls, centers, cost, n_features, n_segments, k_range, random_state, max_iter, selection):
    estimator = cls(n_segments=n_segments, k_range=tuple(k_range), max_iter=max_iter, random_state=random_state)
    estimator.cluster_centers_ = np.asarray(centers, dtype=np.float64)
    estimator.inertia_ = float(cost)
    estimator.n_iter_ = 0
    estimator.n_features_in_ = int(n_features)
    estimator.n_segments_ = int(len(centers))
    estimator.selection_ = selection
    return estimator


def _export_gmm(model, n_features, n_segments, k_range, random_state, max_iter, tol, selection):
    estimator = SparkGaussianMixture(n_segments=n_segments, k_range=tuple(k_range), max_iter=max_iter,
                                     tol=tol or 0.01, random_state=random_state)
    gaussians = model.gaussiansDF.collect()
    estimator.weights_ = np.asarray(model.weights, dtype=np.float64)
    estimator.means_ = np.asarray([g["mean"].toArray() for g in gaussians], dtype=np.float64)
    estimator.covariances_ = np.asarray([g["cov"].toArray() for g in gaussians], dtype=np.float64)
    estimator.log_likelihood_ = float(model.summary.logLikelihood)
    estimator.n_features_in_ = int(n_features)
    estimator.n_segments_ = int(len(estimator.weights_))
    estimator.selection_ = selection
    return estimator


# --------------------------------------------------------------------------- the methods


class _MLlibMethod(SegmentClusterer):
    """An MLlib method: fits a Spark DataFrame of prepared customers, exports a numpy model.

    Parameters
    ----------
    n_segments : int or "auto"
    k_range : tuple of two ints
    random_state : int or None
    max_iter, tol : optional
        MLlib's iteration limit and tolerance (defaults per method).
    init_centers : array, optional
        k-means only: start Lloyd's iterations from these centres.
    selection_sample, fit_sample : int
        Customers the silhouette, and the candidate fits of the choice of k, use.

    Attributes
    ----------
    model_ : SegmentClusterer
        The exported numpy model (what `exported` returns and the model file stores).
    n_segments_ : int
    selection_ : KSelection or None
    """

    #: The MLlib algorithm (a key of `SPARK_METHODS`).
    algorithm: ClassVar[str] = ""

    def __init__(self, n_segments="auto", *, k_range=(2, 12), random_state=None, max_iter=None, tol=None,
                 init_centers=None, selection_sample=10_000, fit_sample=200_000):
        self.n_segments = n_segments
        self.k_range = k_range
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.init_centers = init_centers
        self.selection_sample = selection_sample
        self.fit_sample = fit_sample

    def fit(self, X, y=None):
        """Fit on Spark. ``X``: a Spark DataFrame with a ``features`` vector column."""
        if not type(X).__module__.startswith("pyspark"):
            raise InputError(f"the MLlib method {self.algorithm!r} {SPARK_ONLY}")
        self.model_ = fit_spark_method(
            X, method=self.algorithm, n_segments=self.n_segments, k_range=tuple(self.k_range),
            random_state=self.random_state, max_iter=self.max_iter, tol=self.tol, init_centers=self.init_centers,
            selection_sample=self.selection_sample, fit_sample=self.fit_sample,
        )
        self.n_segments_ = int(self.model_.n_segments_)
        self.selection_ = self.model_.selection_
        return self

    def exported(self) -> SegmentClusterer:
        check_is_fitted(self, "model_")
        return self.model_

    def predict(self, X):
        """Segments of prepared customers given as rows (the exported model's rule)."""
        return self.exported().predict(X)

    def confidence(self, X):
        return self.exported().confidence(X)


@register_engine_method("spark", "kmeans")
class MLlibKMeans(_MLlibMethod):
    """MLlib k-means (k-means|| initialisation), exported to `segwise.cluster.KMeansSegmenter`."""

    algorithm = "kmeans"


@register_engine_method("spark", "bisecting_kmeans", "spark_bisecting_kmeans")
class MLlibBisectingKMeans(_MLlibMethod):
    """MLlib bisecting k-means, exported to `SparkBisectingKMeans`."""

    algorithm = "bisecting_kmeans"


@register_engine_method("spark", "gmm", "spark_gmm")
class MLlibGaussianMixture(_MLlibMethod):
    """MLlib Gaussian mixture, exported to `SparkGaussianMixture`."""

    algorithm = "gmm"
