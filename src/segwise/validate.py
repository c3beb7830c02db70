"""Internal validity of a segmentation, memory-safe at any size.

Silhouette needs pairwise distances, so above ``sample_size`` customers it is
computed on a fixed, seeded random sample, and even then in row blocks: memory is
``block x sample`` (about `BLOCK_BYTES`), never ``n x n``. `silhouette_many` scores
several labelings of the same sample in one pass over the distances (how every
candidate number of segments is scored at once).

Calinski-Harabasz and Davies-Bouldin use every customer. scikit-learn's versions
copy the whole matrix (centred data, per-segment subsets), which at 10 million
customers is gigabytes; `cluster_scatter` computes the same sums in blocks of rows,
so they need only a few per-segment vectors beyond ``X`` itself.

`validation_report` is what a run records under ``"validation"`` in run.json:

``n_customers``, ``n_segments``
    sizes of what was scored;
``silhouette``, ``silhouette_ci`` ([low, high]), ``silhouette_sample_size``, ``silhouette_bootstrap``
    mean silhouette on a seeded sample of at most 20,000 customers, and the
    percentile interval (``confidence``, default 95%) of that mean over
    ``silhouette_bootstrap`` resamples of the sampled customers' silhouette values:
    the uncertainty that comes from scoring a sample, or a population that is itself
    a sample of customers;
``per_segment_silhouette``
    segment id (text) to the mean silhouette of its sampled customers (None when
    the sample holds none of them), with ``per_segment_sampled`` the counts;
``davies_bouldin`` (lower is better), ``calinski_harabasz`` (higher is better)
    on all customers;
``bic``, ``log_likelihood``
    for methods that have a likelihood (a method exposing ``bic(X)`` and
    ``score(X)``, the mean log-likelihood per customer, as scikit-learn's
    `GaussianMixture` does); None otherwise;
``space``
    what the distances are measured in (the prepared matrix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from segwise.cluster.silhouette import (  # noqa: F401  (re-exported: the validation report's helpers)
    BLOCK_BYTES, SILHOUETTE_SAMPLE, _block_rows, sample_indices, silhouette_many, silhouette_values,
)

__all__ = [
    "internal_metrics", "sample_indices", "silhouette_many", "silhouette_values", "cluster_scatter",
    "calinski_harabasz", "davies_bouldin", "validation_report", "ClusterScatter",
    "SILHOUETTE_SAMPLE", "VALIDATION_SAMPLE", "BLOCK_BYTES",
]

#: Customers used for the silhouette of the validation report.
VALIDATION_SAMPLE = 20_000


@dataclass
class ClusterScatter:
    """Per-segment sums of one labeling, computed in blocks of rows.

    Attributes
    ----------
    codes : ndarray
        The distinct labels, sorted; the arrays below follow this order.
    sizes : ndarray of int
    centroids : ndarray of shape (n_segments, n_features)
    within_sq : ndarray
        Sum of squared distances of each segment's rows to its centroid.
    within_mean_dist : ndarray
        Mean Euclidean distance of each segment's rows to its centroid.
    overall_mean : ndarray
    """

    codes: np.ndarray
    sizes: np.ndarray
    centroids: np.ndarray
    within_sq: np.ndarray
    within_mean_dist: np.ndarray
    overall_mean: np.ndarray


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct labels and each row's position among them (as `np.unique`).

    Segment ids are small non-negative integers: a lookup table then needs one
    n-sized array instead of the several of a sort.
    """
    if labels.dtype.kind in "iu" and len(labels) and labels.min() >= 0 and labels.max() < 2**20:
        codes = np.flatnonzero(np.bincount(labels))
        lookup = np.zeros(int(labels.max()) + 1, dtype=np.int64)
        lookup[codes] = np.arange(len(codes))
        return codes.astype(labels.dtype), lookup[labels]
    return np.unique(labels, return_inverse=True)


def cluster_scatter(X: np.ndarray, labels: np.ndarray) -> ClusterScatter:
    """Centroids and within-segment scatter of ``labels`` on ``X``, without copying ``X``."""
    X = np.asarray(X)
    labels = np.asarray(labels)
    n, p = X.shape
    codes, inverse = _encode(labels)
    k = len(codes)
    block = _block_rows(8 * max(p, k))
    sums = np.zeros((k, p))
    for start in range(0, n, block):
        stop = min(start + block, n)
        idx = inverse[start:stop]
        rows = X[start:stop].astype(np.float64, copy=False)
        for j in range(p):
            sums[:, j] += np.bincount(idx, weights=rows[:, j], minlength=k)
    sizes = np.bincount(inverse, minlength=k)
    centroids = sums / np.maximum(sizes, 1)[:, None]
    within_sq = np.zeros(k)
    within_dist = np.zeros(k)
    for start in range(0, n, block):
        stop = min(start + block, n)
        idx = inverse[start:stop]
        diff = centroids[idx]
        np.subtract(X[start:stop], diff, out=diff)
        d2 = np.einsum("ij,ij->i", diff, diff)
        within_sq += np.bincount(idx, weights=d2, minlength=k)
        within_dist += np.bincount(idx, weights=np.sqrt(d2), minlength=k)
    return ClusterScatter(
        codes=codes, sizes=sizes, centroids=centroids, within_sq=within_sq,
        within_mean_dist=within_dist / np.maximum(sizes, 1), overall_mean=sums.sum(axis=0) / max(n, 1),
    )


def calinski_harabasz(scatter: ClusterScatter) -> float:
    """Calinski-Harabasz index from `cluster_scatter` (equal to scikit-learn's)."""
    n, k = int(scatter.sizes.sum()), len(scatter.codes)
    diff = scatter.centroids - scatter.overall_mean
    between = float(np.sum(scatter.sizes * np.einsum("ij,ij->i", diff, diff)))
    within = float(scatter.within_sq.sum())
    return 1.0 if within == 0.0 else between * (n - k) / (within * (k - 1.0))


def davies_bouldin(scatter: ClusterScatter) -> float:
    """Davies-Bouldin index from `cluster_scatter` (equal to scikit-learn's)."""
    c = scatter.centroids
    sq = np.einsum("ij,ij->i", c, c)
    centre_dist = np.sqrt(np.maximum(sq[:, None] - 2.0 * c @ c.T + sq[None, :], 0.0))
    np.fill_diagonal(centre_dist, 0.0)
    intra = scatter.within_mean_dist
    if np.allclose(intra, 0) or np.allclose(centre_dist, 0):
        return 0.0
    centre_dist[centre_dist == 0] = np.inf
    ratios = (intra[:, None] + intra[None, :]) / centre_dist
    np.fill_diagonal(ratios, -np.inf)
    return float(np.mean(ratios.max(axis=1)))


def internal_metrics(
    X: np.ndarray, labels: np.ndarray, *, sample_size: int = SILHOUETTE_SAMPLE, random_state: int | None = 0,
    sample: np.ndarray | None = None,
) -> dict[str, Any]:
    """Silhouette (sampled), Calinski-Harabasz and Davies-Bouldin of ``labels`` on ``X``.

    Scores are NaN when there are fewer than two segments (they are undefined).
    """
    labels = np.asarray(labels)
    n_labels = len(np.unique(labels))
    out: dict[str, Any] = {"n_segments": int(n_labels)}
    if n_labels < 2 or n_labels >= len(labels):
        out.update(silhouette=float("nan"), calinski_harabasz=float("nan"), davies_bouldin=float("nan"),
                   silhouette_sample_size=0)
        return out
    if sample is None:
        sample = sample_indices(len(labels), sample_size, random_state)
    sampled_labels = labels[sample]
    silhouette = silhouette_many(X[sample], [sampled_labels])[0] if len(np.unique(sampled_labels)) >= 2 else float("nan")
    scatter = cluster_scatter(X, labels)
    out.update(
        silhouette=float(silhouette),
        silhouette_sample_size=int(len(sample)),
        calinski_harabasz=calinski_harabasz(scatter),
        davies_bouldin=davies_bouldin(scatter),
    )
    return out


def _likelihood(clusterer: Any, X: np.ndarray) -> tuple[float | None, float | None]:
    """BIC and total log-likelihood of a method that has them (see the module docstring)."""
    bic = getattr(clusterer, "bic", None)
    score = getattr(clusterer, "score", None)
    if not callable(bic) or not callable(score):
        return None, None
    return float(bic(X)), float(score(X)) * X.shape[0]


def validation_report(
    X: np.ndarray,
    labels: np.ndarray,
    *,
    clusterer: Any = None,
    sample_size: int = VALIDATION_SAMPLE,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> dict[str, Any]:
    """Quality of a segmentation of the prepared matrix ``X`` (shape in the module docstring).

    Parameters
    ----------
    X : ndarray of shape (n_customers, n_features)
        The prepared matrix the segments were found in.
    labels : array of int
        Segment id of each row.
    clusterer : fitted method, optional
        Its ``bic(X)`` and ``score(X)`` are reported when it has them.
    sample_size : int
        Customers used for the silhouette (all of them when there are fewer).
    n_bootstrap : int
        Resamples of the sampled silhouette values for its confidence interval.
    confidence : float
        Coverage of the interval.
    random_state : int or None
        Seed of the sample and of the resamples.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"The 'confidence' parameter of validation_report must be in (0, 1). Got {confidence!r} instead.")
    X = np.asarray(X)
    labels = np.asarray(labels)
    n = len(labels)
    ids = np.unique(labels)
    report: dict[str, Any] = {
        "n_customers": int(n), "n_segments": int(len(ids)), "space": "prepared features",
        "silhouette": None, "silhouette_ci": None, "silhouette_sample_size": 0,
        "silhouette_bootstrap": int(n_bootstrap), "confidence": float(confidence),
        "per_segment_silhouette": {str(int(s)): None for s in ids},
        "per_segment_sampled": {str(int(s)): 0 for s in ids},
        "davies_bouldin": None, "calinski_harabasz": None, "bic": None, "log_likelihood": None,
    }
    if clusterer is not None:
        report["bic"], report["log_likelihood"] = _likelihood(clusterer, X)
    if len(ids) < 2 or len(ids) >= n:
        return report
    scatter = cluster_scatter(X, labels)
    report["calinski_harabasz"] = calinski_harabasz(scatter)
    report["davies_bouldin"] = davies_bouldin(scatter)
    sample = sample_indices(n, sample_size, random_state)
    sampled = labels[sample]
    if len(np.unique(sampled)) < 2:
        return report
    values = silhouette_values(X[sample], sampled)
    rng = np.random.default_rng(None if random_state is None else random_state + 1)
    means = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        means[b] = values[rng.integers(0, len(values), len(values))].mean()
    tail = (1.0 - confidence) / 2.0
    report["silhouette"] = float(values.mean())
    report["silhouette_sample_size"] = int(len(sample))
    if n_bootstrap > 0:
        report["silhouette_ci"] = [float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))]
    for seg in ids:
        mask = sampled == seg
        report["per_segment_sampled"][str(int(seg))] = int(mask.sum())
        if mask.any():
            report["per_segment_silhouette"][str(int(seg))] = float(values[mask].mean())
    return report
