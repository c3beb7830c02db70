"""Silhouette of many labelings at once, memory-safe at any size.

Silhouette needs pairwise distances, so above a sample size the rows are a fixed,
seeded random sample (`sample_indices`), and even then the distances are computed in
square tiles, each once for both of its sides (distances are symmetric): memory is
one tile (`TILE_ROWS` squared) plus ``sample x clusters`` sums, never ``n x n``.
`silhouette_many` scores several labelings of the same sample in one pass over the
distances, which is how every candidate number of segments is scored at once
(`segwise.cluster.select`); `segwise.validate` uses the same helpers for its report.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

__all__ = ["sample_indices", "silhouette_many", "silhouette_values", "SILHOUETTE_SAMPLE", "BLOCK_BYTES", "TILE_ROWS"]

#: Customers used for the silhouette of candidate numbers of segments.
SILHOUETTE_SAMPLE = 10_000
#: Bytes of one block of distances (or of rows) held in memory at once.
BLOCK_BYTES = 32 * 2**20
#: Rows (and columns) of one tile of pair distances. A 256 x 256 tile of float64 is
#: 512 KiB: it stays in the CPU cache between the product that makes it and the two
#: products that use it. 20,000 customers, one labeling of 7 clusters, one thread:
#: 0.42 CPU-s with 256, 0.68 with 512, 0.72 with 1024, 1.1 with 2048 (rows blocks of
#: the whole width before: 1.35).
TILE_ROWS = 256


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


def _tile_rows() -> int:
    """Rows of one square tile of distances: `TILE_ROWS`, or fewer if `BLOCK_BYTES` is smaller."""
    return max(1, min(TILE_ROWS, int(np.sqrt(BLOCK_BYTES / 8))))


def _distance_tile(left: np.ndarray, right: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Euclidean distances between rows ``rows`` and ``cols`` of the augmented matrices."""
    # One product gives ``|x|^2 + |y|^2 - 2 x.y`` (see `_augmented`), the same terms
    # added in the same order as three separate passes would, without those passes.
    d = left[rows] @ right[cols].T
    np.maximum(d, 0.0, out=d)
    return np.sqrt(d, out=d)


def _augmented(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[-2X, |x|^2, 1]`` and ``[X, 1, |x|^2]``: their product is the squared distances."""
    sq = np.einsum("ij,ij->i", X, X)[:, None]
    ones = np.ones_like(sq)
    return np.hstack([-2.0 * X, sq, ones]), np.hstack([X, ones, sq])


def _cluster_distance_sums(X: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Sum of every row's distances to the members of each cluster (columns of ``onehot``).

    Distances are symmetric, so each tile of the pair-distance matrix on or above the
    diagonal is computed once and used for both of its sides: its rows' sums over the
    tile's columns and, transposed, its columns' sums over its rows. That halves the
    distance computations; memory stays one tile.
    """
    n = X.shape[0]
    left, right = _augmented(X)
    sums = np.zeros((n, onehot.shape[1]))
    tile = _tile_rows()
    for i0 in range(0, n, tile):
        rows = slice(i0, min(i0 + tile, n))
        for j0 in range(i0, n, tile):
            cols = slice(j0, min(j0 + tile, n))
            d = _distance_tile(left, right, rows, cols)
            if j0 == i0:
                # A row's distance to itself is 0 (rounding may leave a tiny positive number).
                np.fill_diagonal(d, 0.0)
                sums[rows] += d @ onehot[rows]
            else:
                sums[rows] += d @ onehot[cols]
                # onehot.T @ d reads the tile in its memory order (faster than d.T @ onehot).
                sums[cols] += (onehot[rows].T @ d).T
    return sums


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
    # One indicator matrix for all labelings side by side: each tile of distances
    # is multiplied once (one wide product instead of a thin one per labeling).
    onehot = np.zeros((n, offset))
    for labels_idx, _, start in encoded:
        onehot[np.arange(n), start + labels_idx] = 1.0
    all_sums = _cluster_distance_sums(X, onehot)
    del onehot
    values: list[np.ndarray | None] = []
    rows = np.arange(n)
    for labels_idx, sizes, first in encoded:
        if len(sizes) < 2:
            values.append(None)
            continue
        sums = all_sums[:, first:first + len(sizes)]
        own_size = sizes[labels_idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            a = sums[rows, labels_idx] / np.maximum(own_size - 1, 1)
            means = sums / sizes[None, :]
        means[rows, labels_idx] = np.inf
        b = means.min(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = (b - a) / np.maximum(a, b)
        # A singleton's silhouette is 0, as in scikit-learn.
        values.append(np.where(own_size > 1, np.nan_to_num(s), 0.0))
    return values


def silhouette_values(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Silhouette of every row of ``X`` (as `sklearn.metrics.silhouette_samples`), in tiles.

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
    distance matrix built once, in symmetric tiles.
    """
    return [float(v.mean()) if v is not None else float("nan") for v in _silhouette_rows(X, labelings)]


