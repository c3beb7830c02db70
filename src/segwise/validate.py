"""Internal validity of a segmentation, memory-safe at any size.

Silhouette needs pairwise distances, so above ``sample_size`` customers it is
computed on a fixed, seeded random sample, and even then in row chunks: memory is
``chunk x sample``, never ``n x n``. `silhouette_many` scores several labelings of
the same sample in one pass over the distances (how every candidate number of
segments is scored at once). Calinski-Harabasz and Davies-Bouldin are linear in n
and use every customer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

__all__ = ["internal_metrics", "sample_indices", "silhouette_many", "SILHOUETTE_SAMPLE"]

#: Customers used for the silhouette when there are more.
SILHOUETTE_SAMPLE = 10_000
#: Rows of the distance matrix held in memory at once.
_CHUNK = 1024


def sample_indices(n: int, sample_size: int, random_state: int | None = 0) -> np.ndarray:
    """Sorted indices of a seeded random sample of at most ``sample_size`` of ``n`` rows."""
    if n <= sample_size:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, sample_size, replace=False))


def silhouette_many(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[float]:
    """Mean silhouette (Euclidean) of each labeling of the rows of ``X``.

    Equal to `sklearn.metrics.silhouette_score` for each labeling (singleton
    clusters score 0, as there), computed with the distance matrix built once, in
    chunks of rows.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    encoded = []
    for labels in labelings:
        codes, labels_idx = np.unique(np.asarray(labels), return_inverse=True)
        onehot = np.zeros((n, len(codes)))
        onehot[np.arange(n), labels_idx] = 1.0
        encoded.append((labels_idx, onehot, onehot.sum(axis=0)))
    totals = [0.0] * len(encoded)
    sq = np.einsum("ij,ij->i", X, X)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        block = X[start:stop]
        d2 = sq[start:stop, None] - 2.0 * block @ X.T + sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        d = np.sqrt(d2)
        d[np.arange(stop - start), np.arange(start, stop)] = 0.0
        rows = np.arange(stop - start)
        for i, (labels_idx, onehot, sizes) in enumerate(encoded):
            if len(sizes) < 2:
                continue
            sums = d @ onehot
            own = labels_idx[start:stop]
            own_size = sizes[own]
            with np.errstate(invalid="ignore", divide="ignore"):
                a = sums[rows, own] / np.maximum(own_size - 1, 1)
                means = sums / sizes[None, :]
            means[rows, own] = np.inf
            b = means.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (b - a) / np.maximum(a, b)
            s = np.where(own_size > 1, np.nan_to_num(s), 0.0)
            totals[i] += float(s.sum())
    return [t / n if len(enc[2]) >= 2 else float("nan") for t, enc in zip(totals, encoded)]


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
    out.update(
        silhouette=float(silhouette),
        silhouette_sample_size=int(len(sample)),
        calinski_harabasz=float(calinski_harabasz_score(X, labels)),
        davies_bouldin=float(davies_bouldin_score(X, labels)),
    )
    return out
