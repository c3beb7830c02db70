"""Synthetic populations built to suit each method, with their planted truth.

Every generator is seeded and returns ``(X, truth...)``; the tests assert recovery
against the planted groups (adjusted Rand index, or recall and purity of a tiny group).
"""

from __future__ import annotations

import numpy as np


def nested_groups(per_group: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """3 broad groups, each of 3 detailed groups: returns X, broad truth, detailed truth.

    Broad centres are ~12 apart, detailed ones ~3 apart inside a broad group,
    customers 0.5 around their detailed centre.
    """
    rng = np.random.default_rng(seed)
    broad_centres = rng.normal(scale=12.0, size=(3, 4))
    X, broad, detailed = [], [], []
    for b in range(3):
        subs = broad_centres[b] + rng.normal(scale=3.0, size=(3, 4))
        for s in range(3):
            X.append(subs[s] + rng.normal(scale=0.5, size=(per_group, 4)))
            broad += [b] * per_group
            detailed += [3 * b + s] * per_group
    return np.vstack(X), np.asarray(broad), np.asarray(detailed)


def tiny_dense_group(n: int = 6000, seed: int = 0, tiny_share: float = 0.005, noise_share: float = 0.03):
    """Three large diffuse groups, a tiny dense group (0.5%) and uniform noise.

    Returns X and truth: 0..2 the large groups, 3 the tiny group, -1 the noise.
    """
    rng = np.random.default_rng(seed)
    n_tiny, n_noise = int(round(tiny_share * n)), int(round(noise_share * n))
    n_big = n - n_tiny - n_noise
    centres = np.array([[0, 0, 0, 0], [10, 0, 0, 0], [0, 10, 0, 0]], dtype=float)
    big = rng.integers(0, 3, n_big)
    X_big = centres[big] + rng.normal(scale=1.0, size=(n_big, 4))
    X_tiny = np.array([9.0, 9.0, 6.0, 6.0]) + rng.normal(scale=0.15, size=(n_tiny, 4))
    X_noise = rng.uniform(-5, 15, size=(n_noise, 4))
    X = np.vstack([X_big, X_tiny, X_noise])
    truth = np.concatenate([big, np.full(n_tiny, 3), np.full(n_noise, -1)])
    order = rng.permutation(n)
    return X[order], truth[order]


#: Three elongated, overlapping Gaussian groups (means, covariances) for the mixture tests.
OVERLAPPING = (
    [np.array([0.0, 0.0]), np.array([3.0, 0.0]), np.array([0.0, 4.0])],
    [np.array([[3.0, 2.4], [2.4, 3.0]]), np.array([[1.0, -0.6], [-0.6, 1.0]]), np.array([[0.5, 0.0], [0.0, 2.0]])],
)


def overlapping_groups(per_group: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples of `OVERLAPPING` and their group."""
    rng = np.random.default_rng(seed)
    means, covs = OVERLAPPING
    X = np.vstack([rng.multivariate_normal(m, c, per_group) for m, c in zip(means, covs)])
    return X, np.repeat(np.arange(len(means)), per_group)


def mixed_groups(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """4 groups told apart only by numeric AND categorical features together.

    Columns: 2 standardised numeric (groups overlap in them: {0,1} and {2,3} share a
    first coordinate), then 2 categorical level codes (90% the group's level, else
    random). Returns X (codes as floats) and the truth.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    centres = np.array([[0, 0], [0, 2.5], [2.5, 0], [2.5, 2.5]], dtype=float)
    num = centres[y] + rng.normal(scale=0.8, size=(n, 2))
    num = (num - num.mean(axis=0)) / num.std(axis=0)
    cat_a = np.where(rng.random(n) < 0.9, np.array([0, 1, 1, 0])[y], rng.integers(0, 3, n))
    cat_b = np.where(rng.random(n) < 0.9, np.array([2, 0, 1, 2])[y], rng.integers(0, 3, n))
    return np.column_stack([num, cat_a, cat_b]).astype(np.float64), y
