"""Fitting a `segwise.prepare.Preprocessor` from aggregate statistics instead of rows.

Where rows may not be pooled (`segwise.federated`), the preparation is learned from
what the data holders can share: counts, sums of powers and quantile sketches of
every column (`ColumnSummaries`), then sums and cross-products of the transformed
columns (`TransformedSummary`). The steps are those of `Preprocessor.fit`, and the
fitted state is the same, so the model file and `transform` do not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from segwise.errors import InputError

if TYPE_CHECKING:
    from segwise.prepare import Preprocessor

__all__ = ["ColumnSummaries", "TransformedSummary", "fit_from_statistics"]


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


def fit_from_statistics(
    preprocessor: "Preprocessor", summaries: ColumnSummaries, transformed: Callable[[dict[str, Any]], TransformedSummary],
) -> "Preprocessor":
    """`Preprocessor.fit_from_statistics` (documented there)."""
    from segwise.prepare import _param_error

    preprocessor._validate_params()
    owner = type(preprocessor).__name__
    if preprocessor.skew_transform == "quantile":
        raise _param_error("skew_transform", owner, "'log1p' or 'none' when fitting from statistics",
                           preprocessor.skew_transform)
    if preprocessor.pca is not None:
        raise _param_error("pca", owner, "None when fitting from statistics", preprocessor.pca)
    if preprocessor.categorical_columns:
        raise InputError(
            f"categorical column(s) {', '.join(map(repr, preprocessor.categorical_columns))} cannot be prepared "
            "from aggregate statistics; leave them out of the features"
        )
    columns = list(summaries.columns)
    numeric = list(preprocessor.numeric_columns) if preprocessor.numeric_columns is not None else columns
    unknown = [c for c in numeric if c not in columns]
    if unknown:
        raise InputError(f"the statistics have no column(s) {', '.join(map(repr, unknown))}")
    index = [columns.index(c) for c in numeric]
    n = float(summaries.n_rows)
    if n < 2:
        raise ValueError(f"n_samples={n:g} should be >= 2: at least 2 customers are needed")
    preprocessor.feature_names_in_ = np.asarray(numeric, dtype=object)
    preprocessor.n_features_in_ = len(numeric)
    report: dict[str, Any] = {"dropped": {}, "log": {}, "quantile": [], "indicators": [], "capped_levels": {}}
    n_missing = np.clip(np.asarray(summaries.n_missing, dtype=np.float64)[index], 0.0, n)
    n_observed = n - n_missing
    all_missing = n_observed < 0.5
    for c in np.asarray(numeric)[all_missing]:
        report["dropped"][c] = "no values"
    keep = ~all_missing
    numeric = [c for c, k in zip(numeric, keep) if k]
    index = [i for i, k in zip(index, keep) if k]
    n_missing, n_observed = n_missing[keep], n_observed[keep]
    missing_share = n_missing / n
    if preprocessor.indicator_min_share is not None:
        indicators = [c for c, s_ in zip(numeric, missing_share) if s_ >= preprocessor.indicator_min_share and s_ < 1]
    else:
        indicators = []
    report["indicators"] = [f"{c}_missing" for c in indicators]

    half = np.array([0.5])
    if preprocessor.impute == "median":
        fill = np.array([summaries.quantiles(j, half, 0.0, 0.0)[0] for j in index])
    else:
        fill = np.asarray(summaries.moments, dtype=np.float64)[0, index] / np.maximum(n_observed, 1.0)
    # Moments of the imputed columns: the observed values plus the missing ones at the fill value.
    sums = np.asarray(summaries.moments, dtype=np.float64)[:, index] + n_missing * fill ** np.arange(1, 4)[:, None]
    skewness = _skewness_from_sums(n, sums)
    negative = np.asarray(summaries.n_negative, dtype=np.float64)[index] + np.where(fill < 0, n_missing, 0.0)
    log_mask, quantile_mask = preprocessor._skew_masks(numeric, skewness, negative / n, report)

    def forward(values: np.ndarray) -> np.ndarray:
        return np.where(log_mask, np.sign(values) * np.log1p(np.abs(values)), values)

    if preprocessor.winsorize is not None:
        bounds = np.array([
            summaries.quantiles(j, np.asarray(preprocessor.winsorize, dtype=np.float64), f, m)
            for j, f, m in zip(index, fill, n_missing)
        ]).reshape(len(numeric), 2)
        clip_lo, clip_hi = forward(bounds[:, 0]), forward(bounds[:, 1])
    else:
        clip_lo, clip_hi = np.full(len(numeric), -np.inf), np.full(len(numeric), np.inf)

    plan = {"columns": numeric, "fill_values": fill, "log_mask": log_mask, "clip_low": clip_lo,
            "clip_high": clip_hi}
    summary = transformed(plan)
    n_t = float(summary.n_rows)
    mean = np.asarray(summary.sums, dtype=np.float64) / n_t
    cov = np.asarray(summary.cross, dtype=np.float64) / n_t - np.outer(mean, mean)
    variance = np.maximum(np.diag(cov), 0.0)
    if preprocessor.scaler == "standard":
        center, scale = mean, np.sqrt(variance)
    else:
        q = np.array([
            summaries.quantiles(j, np.array([0.25, 0.5, 0.75]), f, m) for j, f, m in zip(index, fill, n_missing)
        ]).reshape(len(numeric), 3)
        t = np.clip(forward(q.T), clip_lo, clip_hi)
        center, scale = t[1], t[2] - t[0]
    scale = np.where(scale == 0, 1.0, scale)
    constant = variance <= (1e-12 * np.maximum(np.abs(mean), 1.0)) ** 2
    corr = None
    if preprocessor.corr_threshold is not None and (~constant).sum() > 1:
        with np.errstate(all="ignore"):
            corr = cov / np.sqrt(np.outer(variance, variance))
    kept = preprocessor._prune(numeric, constant, corr, report)
    preprocessor._set_fitted(
        numeric, fill_values=fill, log_mask=log_mask, quantile_mask=quantile_mask, quantiles=np.zeros((0, 0)),
        references=np.zeros(0), clip_low=clip_lo, clip_high=clip_hi, center=center, scale=scale, kept=kept,
        indicators=indicators, levels={}, modes={}, report=report,
    )
    return preprocessor



def _skewness_from_sums(n: float, sums: np.ndarray) -> np.ndarray:
    """`_skewness` from the sums of ``x``, ``x**2`` and ``x**3`` (rows 0-2 of ``sums``)."""
    mean = sums[0] / n
    m2 = np.maximum(sums[1] / n - mean**2, 0.0)
    m3 = sums[2] / n - 3 * mean * sums[1] / n + 2 * mean**3
    tiny = m2 <= (1e-12 * np.maximum(np.abs(mean), 1.0)) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = np.where(tiny, 0.0, m3 / np.where(tiny, 1.0, np.sqrt(m2) ** 3))
    return np.nan_to_num(skew)
