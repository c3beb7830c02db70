"""Silhouette of many labelings at once, memory-safe at any size.

Silhouette needs pairwise distances, so above a sample size the rows are a fixed,
seeded random sample (`sample_indices`), and even then the distances are computed in
row blocks: memory is ``block x sample`` (about `BLOCK_BYTES`), never ``n x n``.
`silhouette_many` scores several labelings of the same sample in one pass over the
distances, which is how every candidate number of segments is scored at once
(`segwise.cluster.select`); `segwise.validate` uses the same helpers for its report.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["sample_indices", "silhouette_many", "silhouette_values", "SILHOUETTE_SAMPLE", "BLOCK_BYTES"]

#: Customers used for the silhouette of candidate numbers of segments.
SILHOUETTE_SAMPLE = 10_000
#: Bytes of one block of distances (or of rows) held in memory at once.
BLOCK_BYTES = 32 * 2**20


def sample_indices(n: int, sample_size: int, random_state: int | None = 0) -> np.ndarray:
    """Sorted indices of a seeded random sample of at most ``sample_size`` of ``n`` rows."""
    if n <= sample_size:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, sample_size, replace=False))


def _block_rows(row_bytes: int) -> int:
    return max(1, BLOCK_BYTES // max(row_bytes, 1))


def _silhouette_rows(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    """Silhouette of every row for each labeling (None for fewer than two clusters)."""
    # The products here are thin (a few columns) and bound by memory: a second BLAS
    # thread mostly waits. One thread used half the CPU time and half the wall time
    # of two (10,000 customers, 11 labelings, on a shared 2-core machine; bench/results).
    with threadpool_limits(1, user_api="blas"):
        return _silhouette_blocks(X, labelings)


def _silhouette_blocks(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    encoded = []
    offset = 0
    for labels in labelings:
        codes, labels_idx = np.unique(np.asarray(labels), return_inverse=True)
        sizes = np.bincount(labels_idx, minlength=len(codes)).astype(np.float64)
        encoded.append((labels_idx, sizes, offset))
        offset += len(codes)
    # One indicator matrix for all labelings side by side: each block of distances
    # is multiplied once (one wide product instead of a thin one per labeling).
    onehot = np.zeros((n, offset))
    for labels_idx, _, start in encoded:
        onehot[np.arange(n), start + labels_idx] = 1.0
    values = [np.zeros(n) if len(enc[1]) >= 2 else None for enc in encoded]
    sq = np.einsum("ij,ij->i", X, X)
    # Two n-wide float arrays per row of a block (squared and plain distances).
    block = _block_rows(16 * n)
    for start in range(0, n, block):
        stop = min(start + block, n)
        # In place: one block-sized array instead of a temporary per operation.
        d2 = X[start:stop] @ X.T
        d2 *= -2.0
        d2 += sq[start:stop, None]
        d2 += sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        d = np.sqrt(d2, out=d2)
        rows = np.arange(stop - start)
        d[rows, np.arange(start, stop)] = 0.0
        all_sums = d @ onehot
        for i, (labels_idx, sizes, first) in enumerate(encoded):
            if values[i] is None:
                continue
            sums = all_sums[:, first:first + len(sizes)]
            own = labels_idx[start:stop]
            own_size = sizes[own]
            with np.errstate(invalid="ignore", divide="ignore"):
                a = sums[rows, own] / np.maximum(own_size - 1, 1)
                means = sums / sizes[None, :]
            means[rows, own] = np.inf
            b = means.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (b - a) / np.maximum(a, b)
            # A singleton's silhouette is 0, as in scikit-learn.
            values[i][start:stop] = np.where(own_size > 1, np.nan_to_num(s), 0.0)
    return values


def silhouette_values(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of every row of ``X`` (as `sklearn.metrics.silhouette_samples`), in blocks.

    Needs at least two distinct labels. Memory is about `BLOCK_BYTES` beyond the
    inputs, whatever the number of rows; time is quadratic, so pass a sample.
    """
    values = _silhouette_rows(X, [labels])[0]
    if values is None:
        raise ValueError("the silhouette needs at least two segments")
    return values


def silhouette_many(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[float]:
    """Mean silhouette (Euclidean) of each labeling of the rows of ``X``.

    Equal to `sklearn.metrics.silhouette_score` for each labeling (singleton
    clusters score 0, as there; NaN for fewer than two clusters), computed with the
    distance matrix built once, in blocks of rows.
    """
    return [float(v.mean()) if v is not None else float("nan") for v in _silhouette_rows(X, labelings)]


