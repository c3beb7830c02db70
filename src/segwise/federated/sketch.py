"""Mergeable histogram sketches: quantiles and moments of a column without its rows.

A silo summarises each feature column as counts on a fixed grid that every silo
shares (`LogGrid`: zero, and magnitudes of either sign in log-spaced bins of equal
relative width), plus its missing values. Counts add up across silos, so the
coordinator's merged histogram is the histogram of all customers; quantiles are read
from it by `weighted_quantile` exactly as `numpy.quantile` reads them from the rows,
with each bin's values at one point.

Without differential privacy a silo also sends, per bin, the sum of the values in it
when the bin holds at least ``min_group_size`` of its customers (the bin's mean is then
an aggregate, never one customer's value); integer-valued columns (order counts,
days) are thereby exact, since their bins hold a single value. With differential
privacy only the counts are sent (with noise), and a bin stands at its geometric
midpoint.

What a histogram reveals: for a value that few customers share, the count of a 2%-wide
bin says that some customer's value lies in that bin. That is a property of
publishing quantile sketches at all; differential privacy is what bounds it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["LogGrid", "column_statistics", "MergedColumns", "weighted_quantile", "MOMENTS"]

#: Moment sums sent per column without differential privacy: x, x^2, x^3, and the
#: first two powers of log1p(max(x, 0)).
MOMENTS = ("sum", "sum_sq", "sum_cube", "sum_log", "sum_log_sq")


@dataclass(frozen=True)
class LogGrid:
    """Bins shared by every silo: ``|x| < low`` is the zero bin; above it, each sign has
    ``bins_per_decade`` bins per power of ten up to ``high`` (larger values join the last).
    """

    bins_per_decade: int = 50
    low: float = 1e-3
    high: float = 1e9

    @property
    def n_side(self) -> int:
        return int(math.ceil(math.log10(self.high / self.low) * self.bins_per_decade))

    @property
    def size(self) -> int:
        return 2 * self.n_side + 1

    def index(self, values: np.ndarray) -> np.ndarray:
        """Bin of each (finite) value: negatives first (most negative at 0), zero, positives."""
        values = np.asarray(values, dtype=np.float64)
        magnitude = np.abs(values)
        with np.errstate(divide="ignore"):
            k = np.floor(np.log10(np.maximum(magnitude, self.low) / self.low) * self.bins_per_decade)
        k = np.clip(k, 0, self.n_side - 1).astype(np.int64)
        zero = magnitude < self.low
        return np.where(zero, self.n_side, np.where(values > 0, self.n_side + 1 + k, self.n_side - 1 - k))

    def representatives(self) -> np.ndarray:
        """The geometric midpoint of every bin (0 for the zero bin)."""
        k = np.arange(self.n_side)
        mid = self.low * 10.0 ** ((k + 0.5) / self.bins_per_decade)
        return np.concatenate([-mid[::-1], [0.0], mid])

    def negative_bins(self) -> slice:
        return slice(0, self.n_side)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LogGrid":
        return cls(bins_per_decade=int(data["bins_per_decade"]), low=float(data["low"]), high=float(data["high"]))


def column_statistics(
    values: np.ndarray, grid: LogGrid, *, groups: np.ndarray | None = None, n_groups: int = 1,
    min_group_size: int = 5, exact: bool = True,
) -> dict[str, np.ndarray]:
    """A silo's sketch of every column of ``values`` (rows: its customers; NaN: missing).

    Returns arrays indexed ``[group, column, ...]``: ``missing`` (G, d) and ``counts``
    (G, d, bins); with ``exact``, also ``bin_sums``/``bin_kept`` (G, d, bins: sums of
    the values of bins holding at least ``min_group_size`` customers, and how many
    values they sum) and ``moments``/``moments_kept`` (G, d, 5 / G, d: `MOMENTS` of
    group-columns with at least ``min_group_size`` observed values).
    """
    values = np.asarray(values, dtype=np.float64)
    n, d = values.shape
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    bins = grid.size
    observed = ~np.isnan(values)
    cell = groups[:, None] * d + np.arange(d)[None, :]
    missing = np.bincount(cell[~observed], minlength=n_groups * d).reshape(n_groups, d).astype(np.float64)
    flat_cell = cell[observed]
    x = values[observed]
    slot = flat_cell * bins + grid.index(x)
    counts = np.bincount(slot, minlength=n_groups * d * bins).astype(np.float64)
    out = {"missing": missing, "counts": counts.reshape(n_groups, d, bins)}
    if not exact:
        return out
    kept = counts >= min_group_size
    bin_sums = np.bincount(slot, weights=x, minlength=n_groups * d * bins)
    out["bin_sums"] = np.where(kept, bin_sums, 0.0).reshape(n_groups, d, bins)
    out["bin_kept"] = np.where(kept, counts, 0.0).reshape(n_groups, d, bins)
    logs = np.log1p(np.maximum(x, 0.0))
    powers = np.stack([x, x**2, x**3, logs, logs**2], axis=1)
    moments = np.stack(
        [np.bincount(flat_cell, weights=powers[:, m], minlength=n_groups * d) for m in range(len(MOMENTS))], axis=1
    ).reshape(n_groups, d, len(MOMENTS))
    n_observed = np.bincount(flat_cell, minlength=n_groups * d).reshape(n_groups, d).astype(np.float64)
    enough = n_observed >= min_group_size
    out["moments"] = np.where(enough[..., None], moments, 0.0)
    out["moments_kept"] = np.where(enough, n_observed, 0.0)
    return out


def weighted_quantile(values: np.ndarray, weights: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """`numpy.quantile` (linear) of a sample in which ``values[i]`` occurs ``weights[i]`` times.

    Weights may be fractional (noisy counts); negative weights count as zero.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    probabilities = np.atleast_1d(np.asarray(probabilities, dtype=np.float64))
    keep = weights > 0
    if not keep.any():
        return np.full(probabilities.shape, np.nan)
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cum = np.cumsum(w)
    total = cum[-1]
    position = probabilities * max(total - 1.0, 0.0)
    lower = np.floor(position)

    def at(rank: np.ndarray) -> np.ndarray:
        return v[np.minimum(np.searchsorted(cum, rank, side="right"), len(v) - 1)]

    upper = np.minimum(lower + 1.0, max(total - 1.0, 0.0))
    return at(lower) + (position - lower) * (at(upper) - at(lower))


class MergedColumns:
    """The sum over silos of `column_statistics` arrays, read as one population.

    Parameters
    ----------
    arrays : dict of str to ndarray
        Summed arrays (keys as returned by `column_statistics`).
    grid : LogGrid
    noise_floor : float
        Counts below it are set to zero (use a few standard deviations of
        the noise of a merged count under differential privacy).
    """

    def __init__(self, arrays: dict[str, np.ndarray], grid: LogGrid, *, noise_floor: float = 0.0) -> None:
        self.arrays = arrays
        self.grid = grid
        counts = np.asarray(arrays["counts"], dtype=np.float64)
        # Noisy counts: a bin below the floor is more likely noise than customers.
        # Without this, the noise of hundreds of empty bins adds up to a fake tail that
        # moves every quantile (stability-based histogram, as in DP practice).
        self.counts = np.where(counts >= max(noise_floor, 0.0), np.clip(counts, 0.0, None), 0.0)
        self.missing = np.clip(arrays["missing"], 0.0, None)
        self.exact = "bin_sums" in arrays
        reps = np.broadcast_to(grid.representatives(), self.counts.shape)
        if self.exact:
            kept = arrays["bin_kept"]
            with np.errstate(invalid="ignore", divide="ignore"):
                self.bin_values = np.where(kept > 0, arrays["bin_sums"] / np.where(kept > 0, kept, 1.0), reps)
        else:
            self.bin_values = np.array(reps)

    @property
    def n_groups(self) -> int:
        return self.counts.shape[0]

    def n_observed(self) -> np.ndarray:
        """(G, d) observed values of each group and column."""
        return self.counts.sum(axis=-1)

    def n_rows(self) -> np.ndarray:
        """(G,) customers of each group (averaged over columns: counts may be noisy)."""
        return (self.n_observed() + self.missing).mean(axis=1)

    def n_negative(self) -> np.ndarray:
        return self.counts[..., self.grid.negative_bins()].sum(axis=-1)

    def quantiles(self, column: int, probabilities: np.ndarray, extra_value: float = 0.0, extra_count: float = 0.0,
                  group: int | None = None) -> np.ndarray:
        """Quantiles of one column (of one group, or of all), with ``extra_count`` extra values."""
        if group is None:
            counts, values = self.counts[:, column].ravel(), self.bin_values[:, column].ravel()
        else:
            counts, values = self.counts[group, column], self.bin_values[group, column]
        if extra_count > 0:
            counts = np.append(counts, extra_count)
            values = np.append(values, extra_value)
        return weighted_quantile(values, counts, probabilities)

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(G, d, 5) `MOMENTS` sums and (G, d) how many values they cover.

        Exact sums where silos sent them; otherwise computed from the histogram.
        """
        if self.exact:
            return self.arrays["moments"], self.arrays["moments_kept"]
        x = self.bin_values
        logs = np.log1p(np.maximum(x, 0.0))
        powers = np.stack([x, x**2, x**3, logs, logs**2], axis=-1)
        return (self.counts[..., None] * powers).sum(axis=-2), self.n_observed()
