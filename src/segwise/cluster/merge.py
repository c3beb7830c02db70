"""Is the chosen partition over-split? Hartigan's dip test on the nearest pairs of segments.

The k rule (`segwise.cluster.select`) can cut one group in two: on held-out
families the silhouette margin chose k+1 or k+2. Two segments that are really one
group have, along the line joining their centres, a single mode; two real groups
have two. So, for the nearest pairs of segments (by the distance between their
centres in the prepared space), the points of both are projected on that line and
the projection is tested for unimodality with the dip test of Hartigan and
Hartigan (1985, *The Annals of Statistics* 13(1)):

- the **dip** (`dip_statistic`) is the largest distance between the empirical
  distribution function and the closest unimodal distribution function; it is
  small (at least ``1 / (2n)``) for one mode and approaches 1/4 for two well
  separated equal groups;
- its **p-value** (`dip_p_value`) compares it with the dips of `DIP_SIMULATIONS`
  uniform samples of the same size (the uniform is the least favourable
  unimodal distribution), drawn with a fixed seed and cached per size, so a run
  gives the same p-value every time.

`oversplit_pairs` tests the `NEAREST_PAIRS` nearest pairs; a pair whose p-value is
at least `UNIMODAL_P` looks like one mode. What follows (take the k-1 fit, and
within which bounds) is decided in `segwise.cluster.select`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from segwise.errors import InputError

__all__ = ["dip_statistic", "dip_p_value", "oversplit_pairs", "DIP_SIMULATIONS", "UNIMODAL_P", "NEAREST_PAIRS",
           "PAIR_SAMPLE"]

#: Uniform samples whose dips make the null distribution of one size.
DIP_SIMULATIONS = 200

#: Seed of the uniform samples (fixed: the p-value of a dip depends only on the sample size).
DIP_SEED = 16

#: A pair whose projection has a dip p-value of at least this looks like one mode.
UNIMODAL_P = 0.05

#: How many of the nearest pairs of segments are tested.
NEAREST_PAIRS = 3

#: At most this many of a pair's customers (a seeded sample) are projected and tested;
#: every pair of larger segments then shares one cached null distribution.
PAIR_SAMPLE = 1_000


def _hull(x: list[float], y: list[float], upper: bool) -> list[int]:
    """Indices of the lower (convex minorant) or upper (concave majorant) hull of points sorted by x."""
    kept: list[int] = []
    for i in range(len(x)):
        while len(kept) >= 2:
            a, b = kept[-2], kept[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            # The lower hull keeps only left turns, the upper hull only right turns.
            if (cross >= 0) if upper else (cross <= 0):
                kept.pop()
            else:
                break
        kept.append(i)
    return kept


def dip_statistic(values: Any) -> float:
    """Hartigan's dip of a one-dimensional sample.

    The dip is the sup-norm distance between the sample's empirical distribution
    function and the closest unimodal distribution function. It is computed by
    Hartigan and Hartigan's (1985) iteration: on the current modal interval, take
    the greatest convex minorant of the distribution function (below its steps)
    and its least concave majorant (above them); where they are furthest apart the
    modal interval shrinks, and the distances of the function to the minorant left
    of the new interval and to the majorant right of it are accumulated. When the
    two no longer differ by more than what was accumulated, half of it is the dip.

    Parameters
    ----------
    values : array-like
        The sample (any shape; flattened). Tied values are allowed: they make one
        step of the distribution function (AS 217, which treats them as separate
        points, can then give a different dip).

    Returns
    -------
    float
        The dip, between ``1 / (2n)`` and 1/4 for ``n`` distinct values (0 when all
        values are equal).

    Raises
    ------
    InputError
        When the sample is empty or has missing or infinite values.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise InputError("the dip test needs at least one value")
    if not np.isfinite(x).all():
        raise InputError("the dip test needs finite values (no missing or infinite ones)")
    n = x.size
    points, counts = np.unique(x, return_counts=True)
    if points.size < 2:
        return 0.0
    above = np.cumsum(counts).astype(np.float64)  # the distribution function at each point (times n)
    below = above - counts  # just before each point
    px, pa, pb = points.tolist(), above.tolist(), below.tolist()
    lo, hi = 0, points.size - 1
    accumulated = 0.0
    while hi > lo:
        minorant = [lo + i for i in _hull(px[lo:hi + 1], pb[lo:hi + 1], upper=False)]
        majorant = [lo + i for i in _hull(px[lo:hi + 1], pa[lo:hi + 1], upper=True)]
        span = points[lo:hi + 1]
        under = np.interp(span, points[minorant], below[minorant])
        over = np.interp(span, points[majorant], above[majorant])
        # Both are piecewise linear between their knots, so their largest gap is at a knot.
        knots = np.union1d(minorant, majorant)
        gaps = over[knots - lo] - under[knots - lo]
        widest = int(knots[int(np.argmax(gaps))])
        if gaps.max() <= accumulated:
            break
        if widest in set(minorant):
            new_lo, new_hi = widest, min(k for k in majorant if k >= widest)
        else:
            new_lo, new_hi = max(k for k in minorant if k <= widest), widest
        left = float(np.max(above[lo:new_lo + 1] - under[:new_lo - lo + 1]))
        right = float(np.max(over[new_hi - lo:] - below[new_hi:hi + 1]))
        accumulated = max(accumulated, left, right)
        if (new_lo, new_hi) == (lo, hi):
            accumulated = max(accumulated, float(gaps.max()))
            break
        lo, hi = new_lo, new_hi
    if hi == lo:
        # A modal interval of one point: its own step is the least any unimodal fit misses by.
        accumulated = max(accumulated, float(counts[lo]))
    return float(accumulated / (2 * n))


@lru_cache(maxsize=64)
def _uniform_dips(size: int, simulations: int) -> np.ndarray:
    rng = np.random.default_rng([DIP_SEED, size])
    return np.sort([dip_statistic(rng.random(size)) for _ in range(simulations)])


def dip_p_value(dip: float, size: int, simulations: int = DIP_SIMULATIONS) -> float:
    """The share of uniform samples of ``size`` values whose dip is at least ``dip``.

    The uniform samples are drawn with a fixed seed per size and their dips cached,
    so the p-value of a dip is the same in every run. It is ``(1 + m) / (1 +
    simulations)``, with ``m`` the simulated dips at least as large.

    Raises
    ------
    InputError
        When ``size`` is below 2 or ``simulations`` below 1.
    """
    if size < 2 or simulations < 1:
        raise InputError(f"the dip p-value needs a sample of at least 2 values and at least 1 simulation; got "
                         f"size {size}, {simulations} simulations")
    null = _uniform_dips(int(size), int(simulations))
    larger = null.size - int(np.searchsorted(null, dip, side="left"))
    return float((1 + larger) / (1 + null.size))


def oversplit_pairs(X: np.ndarray, labels: np.ndarray, *, random_state: int | None = 0,
                    pairs: int = NEAREST_PAIRS) -> list[dict[str, Any]]:
    """Dip-test the ``pairs`` nearest pairs of segments along the line joining their centres.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The customers in the prepared space the segments were fitted in.
    labels : ndarray of shape (n,)
        The segment of every customer (0 .. k-1).
    random_state : int or None
        Seed of the sample of at most `PAIR_SAMPLE` customers of a large pair.
    pairs : int
        How many pairs to test, nearest first.

    Returns
    -------
    list of dict
        One per pair tested, nearest first: ``segments`` (the two labels),
        ``distance`` (between centres), ``size`` (customers tested), ``dip``,
        ``p_value`` and ``one_mode`` (p-value at least `UNIMODAL_P`).
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if X.ndim != 2 or labels.shape != (X.shape[0],):
        raise InputError(f"oversplit_pairs needs a 2-D matrix and one label per row; got shapes {X.shape} "
                         f"and {labels.shape}")
    present = np.unique(labels)
    centres = np.stack([X[labels == s].mean(axis=0) for s in present])
    apart = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=2)
    first, second = np.triu_indices(len(present), k=1)
    order = np.argsort(apart[first, second], kind="stable")[:pairs]
    rng = np.random.default_rng(random_state)
    tested = []
    for i, j in zip(first[order], second[order]):
        direction = centres[j] - centres[i]
        distance = float(np.linalg.norm(direction))
        rows = np.flatnonzero((labels == present[i]) | (labels == present[j]))
        if distance == 0 or rows.size < 4:
            continue
        if rows.size > PAIR_SAMPLE:
            rows = np.sort(rng.choice(rows, PAIR_SAMPLE, replace=False))
        projected = X[rows] @ (direction / distance)
        dip = dip_statistic(projected)
        p = dip_p_value(dip, rows.size)
        tested.append({"segments": [int(present[i]), int(present[j])], "distance": round(distance, 4),
                       "size": int(rows.size), "dip": round(dip, 5), "p_value": round(p, 4),
                       "one_mode": bool(p >= UNIMODAL_P)})
    return tested
