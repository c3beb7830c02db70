"""Clustering with Spark MLlib and choosing the number of segments on Spark.

Methods: ``kmeans`` (MLlib k-means, k-means|| initialisation), ``bisecting_kmeans``
(MLlib bisecting k-means, hierarchical) and ``gmm`` (MLlib Gaussian mixture, soft
membership). The fitted model is exported into a numpy clusterer
(`segwise.cluster.KMeansSegmenter`, `segwise.spark.models.SparkBisectingKMeans`,
`segwise.spark.models.SparkGaussianMixture`) that the model file stores.

Choosing k: every k in the range is fitted (on a seeded sample of at most
``fit_sample`` customers); its training cost (within-segment sum of squares, or
minus the log-likelihood for the mixture) gives the knee, and the silhouette comes
from MLlib's `ClusteringEvaluator` (squared Euclidean, Spark's definition) on a
seeded sample of ``selection_sample`` customers (Calinski-Harabasz and
Davies-Bouldin are computed on the driver for the same sample). The choice follows
`segwise.cluster.select.CHOICE_RULE`. When candidates were fitted on a sample, k-means is
refitted on everyone from the sample's centres, as the local engine does.
"""

from __future__ import annotations

import numpy as np
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segwise.cluster.base import SegmentClusterer
from segwise.cluster.kmeans import KMeansSegmenter, _check_n_segments
from segwise.errors import InputError
from segwise.cluster.select import CHOICE_RULE, KSelection, _choose, knee_point
from segwise.spark.models import SparkBisectingKMeans, SparkGaussianMixture

__all__ = ["SPARK_METHODS", "fit_spark_method", "kmeans_from_centers"]

#: Method names on the Spark engine, and the method stored in the model file.
SPARK_METHODS = {"kmeans": "kmeans", "bisecting_kmeans": "spark_bisecting_kmeans", "gmm": "spark_gmm"}
_ALIASES = {"spark_bisecting_kmeans": "bisecting_kmeans", "spark_gmm": "gmm"}


def _estimator(method: str, k: int, seed: int, max_iter: int, tol: float | None):
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

