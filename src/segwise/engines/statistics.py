"""Sufficient statistics: what fitting needs from customers that are not rows in memory.

Preparation and profiles can be learned from aggregates instead of rows: column
counts, moment sums and quantile sketches (`ColumnSummaries`, `TransformedSummary`)
and per-segment sums, means and medians (`SegmentStats`). An engine that holds the
customers where they live answers a `CustomerStatistics` (the Spark engine:
`segwise.engines.spark_stats.SparkCustomers`), and the federated coordinator merges the
silos' answers into the same types; `segwise.prepare.Preprocessor.fit`,
`segwise.segmenter.Segmenter.fit` and `segwise.profile.segment_profiles` take them
whatever computed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

__all__ = ["ColumnSummaries", "TransformedSummary", "ColumnStatistics", "SegmentStats", "CustomerStatistics",
           "YES_NO_GAP", "yes_no_scale"]

#: Distance between the two prepared values of a two-valued numeric column: that of the
#: two levels of a yes/no text column (two one-hot columns, each 0 or 1).
YES_NO_GAP = float(np.sqrt(2.0))


def yes_no_scale(scale: np.ndarray, lowest: np.ndarray, highest: np.ndarray, two_valued: np.ndarray,
                 numeric: list[str], report: dict[str, Any]) -> np.ndarray:
    """The scaling step's divisors, each two-valued column's set to put its two values `YES_NO_GAP` apart.

    Parameters
    ----------
    scale : ndarray of shape (n_columns,)
        The scaler's divisors (standard deviations or interquartile ranges).
    lowest, highest : ndarray of shape (n_columns,)
        Smallest and largest value of each column after imputation, log transform and
        winsorising.
    two_valued : ndarray of bool, shape (n_columns,)
        Columns whose values there are all ``lowest`` or ``highest``.
    numeric : list of str
        Column names; the two-valued ones are listed in ``report["yes_no"]``.
    report : dict
        The preparation's report.

    Returns
    -------
    ndarray of shape (n_columns,)
    """
    scale = np.array(scale, dtype=np.float64, copy=True)
    two_valued = np.asarray(two_valued, dtype=bool)
    scale[two_valued] = (np.asarray(highest) - np.asarray(lowest))[two_valued] / YES_NO_GAP
    report["yes_no"] = [c for c, m in zip(numeric, two_valued) if m]
    return scale


@dataclass
class ColumnSummaries:
    """Aggregates of numeric feature columns over all customers: what
    `Preprocessor.fit_from_statistics` learns from instead of rows.

    Counts may be fractional (noisy counts under differential privacy).

    Attributes
    ----------
    columns : list of str
    n_rows : float
        Number of customers.
    n_missing, n_negative : ndarray of shape (n_columns,)
        Missing values, and observed values below zero, of each column.
    moments : ndarray of shape (3, n_columns)
        Sums of ``x``, ``x**2`` and ``x**3`` over the observed values.
    quantiles : callable
        ``quantiles(j, probabilities, extra_value, extra_count)``: quantiles (linear
        interpolation, as `numpy.quantile`) of column ``j``'s observed values together
        with ``extra_count`` copies of ``extra_value`` (the imputed value of the missing
        ones). Typically backed by a mergeable histogram sketch.
    """

    columns: list[str]
    n_rows: float
    n_missing: np.ndarray
    n_negative: np.ndarray
    moments: np.ndarray
    quantiles: Callable[[int, np.ndarray, float, float], np.ndarray]


@dataclass
class TransformedSummary:
    """Aggregates of the imputed, de-skewed and winsorised columns (before scaling).

    Attributes
    ----------
    n_rows : float
    sums : ndarray of shape (n_columns,)
    cross : ndarray of shape (n_columns, n_columns)
        Sums of products ``t_i * t_j`` over customers (diagonal: sums of squares).
    """

    n_rows: float
    sums: np.ndarray
    cross: np.ndarray


@dataclass
class ColumnStatistics:
    """What `segwise.prepare.Preprocessor.fit` learns from instead of rows.

    Attributes
    ----------
    summaries : ColumnSummaries
        Aggregates of the raw columns.
    transformed : callable
        Called once with the plan ``{"columns", "fill_values", "log_mask",
        "clip_low", "clip_high"}``; returns the `TransformedSummary` of the columns
        after imputation, log transform and winsorising.
    """

    summaries: ColumnSummaries
    transformed: Callable[[dict[str, Any]], TransformedSummary]


@dataclass
class SegmentStats:
    """The per-segment aggregates profiles and names are made of.

    `segwise.profile.segment_stats` computes them with numpy from a feature frame,
    the Spark engine with Spark aggregates (only these, one row per segment, reach
    the driver) and the federated coordinator from the silos' sketches. Arrays are indexed [segment, column]
    in the order of ``segment_ids`` and ``numeric``.
    """

    numeric: list[str]
    categorical: list[str]
    segment_ids: np.ndarray
    n_customers: np.ndarray
    means: np.ndarray
    medians: np.ndarray
    observed: np.ndarray
    pop_mean: np.ndarray
    pop_std: np.ndarray
    pop_median: np.ndarray
    naming_zscores: dict[int, dict[str, float]]
    categories: dict[int, dict[str, dict[str, float]]]
    revenue: np.ndarray | None = None


@runtime_checkable
class CustomerStatistics(Protocol):
    """Customers held by an engine, asked for statistics instead of rows.

    ``columns`` are the feature columns, in order. `preparation_state` computes every
    statistic a `segwise.prepare.Preprocessor` learns (given the unfitted
    preprocessor, whose parameters say which) and returns its fitted state
    (``to_state`` form); `prepared` gives the prepared customers where they live, for
    a method that fits there (`segwise.cluster.mllib`); `segment_stats` aggregates the
    profiles of given segment ids.
    """

    engine_name: str
    columns: list[str]

    def preparation_state(self, preprocessor: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...

    def prepared(self, preprocessor: Any) -> Any: ...

    def segment_stats(self, labels: np.ndarray, *, value_column: str | None,
                      log_columns: set[str]) -> SegmentStats: ...

    def close(self) -> None: ...
