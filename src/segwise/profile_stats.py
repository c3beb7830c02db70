"""The per-segment aggregates behind profiles and names.

`segwise.profile` turns them into traits, names and descriptions; this module
computes them with numpy from a feature frame, and `segwise.spark.profile`
computes the same numbers with Spark aggregates (only one row per segment reaches
the driver).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["SegmentStats", "segment_stats", "naming_zscores"]


@dataclass
class SegmentStats:
    """The per-segment aggregates profiles and names are made of.

    `segment_stats` computes them with numpy from a feature frame;
    `segwise.spark.profile` computes the same numbers with Spark aggregates, so only
    these (one row per segment) reach the driver. Arrays are indexed [segment, column]
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


def segment_stats(features: pd.DataFrame, labels: np.ndarray, *, value_column: str | None = None,
                  log_columns: set[str] | None = None) -> SegmentStats:
    """`SegmentStats` of ``features`` grouped by ``labels`` (numpy, on this machine)."""

    labels = np.asarray(labels)
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    values = features[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
    ids = np.unique(labels)
    means, medians, observed, revenue, categories = [], [], [], [], {}
    for seg in ids:
        mask = labels == seg
        block = values[mask]
        with warnings.catch_warnings():
            # An all-missing column in a segment (e.g. inter-purchase days of
            # one-time buyers) has no mean: NaN is the honest answer.
            warnings.simplefilter("ignore", RuntimeWarning)
            means.append(np.nanmean(block, axis=0))
            medians.append(np.nanmedian(block, axis=0))
        observed.append((~np.isnan(block)).mean(axis=0) if len(block) else np.zeros(len(numeric)))
        if value_column in numeric:
            revenue.append(float(np.nansum(features.loc[mask, value_column])))
        categories[int(seg)] = {
            column: {str(k): float(v) for k, v in features.loc[mask, column].astype("object")
                     .value_counts(normalize=True, dropna=True).head(5).items()}
            for column in categorical
        }
    shape = (len(ids), len(numeric))
    return SegmentStats(
        numeric=numeric, categorical=categorical, segment_ids=ids.astype(np.int64),
        n_customers=np.asarray([(labels == seg).sum() for seg in ids], dtype=np.int64),
        means=np.asarray(means).reshape(shape), medians=np.asarray(medians).reshape(shape),
        observed=np.asarray(observed).reshape(shape),
        pop_mean=np.nanmean(values, axis=0) if len(values) else np.zeros(len(numeric)),
        pop_std=np.nanstd(values, axis=0), pop_median=np.nanmedian(values, axis=0),
        naming_zscores=naming_zscores(features, labels, set(log_columns or ())),
        categories=categories, revenue=np.asarray(revenue) if value_column in numeric else None,
    )


def naming_zscores(features: pd.DataFrame, labels: np.ndarray, log_columns: set[str]) -> dict[int, dict[str, float]]:
    """Standardised segment means, with durations, counts and skewed amounts on a log scale.

    On the raw scale one extreme segment dominates the standard deviation of a
    skewed column; on the log scale every segment's position is readable.
    """
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    # A copy: columns are log-transformed in place, and pandas may hand out a read-only view.
    values = features[numeric].to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    for j, column in enumerate(numeric):
        col = values[:, j]
        finite = col[np.isfinite(col)]
        if finite.size == 0 or finite.min() < 0:
            continue
        with np.errstate(all="ignore"):
            # (A constant column has no skewness; scipy would warn about it.)
            skewed = finite.size > 2 and finite.max() > finite.min() and float(np.nan_to_num(stats.skew(finite))) > 1.0
        if column in log_columns or skewed:
            values[:, j] = np.log1p(col)
    mean = np.nanmean(values, axis=0)
    std = np.nanstd(values, axis=0)
    out = {}
    for seg in np.unique(labels):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            seg_mean = np.nanmean(values[labels == seg], axis=0)
        z = np.where(std > 0, (seg_mean - mean) / np.where(std > 0, std, 1.0), 0.0)
        out[int(seg)] = {c: float(v) for c, v in zip(numeric, z)}
    return out
