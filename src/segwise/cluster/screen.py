"""Screening a customer table's columns: leave out those the segments do not separate.

A customer table brings whatever columns its owner keeps (survey scores, postcode
digits, ad impressions); by default every one defines the segments, so columns
without cluster structure dilute the distance and the real types merge. The
screen is one hard-thresholded step of sparse k-means (Witten and Tibshirani,
2010, who weight each feature by its between-cluster sum of squares):

1. cluster the prepared columns once (on a sample of at most `SCREEN_SAMPLE`
   customers);
2. for every source column, the share of its prepared variance that lies between
   those clusters (its R², the largest over a categorical column's levels);
3. columns below `MIN_BETWEEN_SHARE` are left out and the segments are fitted on
   the rest (at least `MIN_KEPT` columns are always kept).

A column with real groups carries a large share of its variance between clusters
found on all columns; a noise column independent of the groups carries almost
none, whatever its distribution. The threshold was measured with
``bench.quality`` (docs/quality.md). Order logs are not screened: their default
definition is already a set of measured families (`segwise.defining_columns`),
and screening them turned the population without clusters from "weak" into
"moderate" structure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["ColumnScreen", "between_shares", "screen_columns", "MIN_BETWEEN_SHARE", "SCREEN_SAMPLE", "MIN_KEPT"]

#: Share of a column's variance between the first clusters below which it is left out.
MIN_BETWEEN_SHARE = 0.2

#: Customers the first clustering is fitted on (a uniform sample beyond it).
SCREEN_SAMPLE = 20_000

#: Columns always kept (the best ones), so that something is left to segment on.
MIN_KEPT = 2


@dataclass
class ColumnScreen:
    """What the screen measured and decided."""

    between_share: dict[str, float] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    first_k: int | None = None
    threshold: float = MIN_BETWEEN_SHARE

    def to_dict(self) -> dict[str, object]:
        return {"rule": f"a column is kept when >= {self.threshold} of its variance lies between the clusters of a "
                        f"first fit on all columns (k={self.first_k})",
                "kept": list(self.kept), "left_out": list(self.left_out),
                "between_share": {c: round(v, 3) for c, v in self.between_share.items()}}

    def notes(self) -> list[str]:
        """Sentences for the run's notes (run.json, CLI)."""
        if not self.left_out:
            return []
        listed = ", ".join(f"{c} ({self.between_share[c]:.2f})" for c in self.left_out)
        return [f"{len(self.left_out)} column(s) left out of the definition because a first clustering on all "
                f"columns (k={self.first_k}) does not separate them (share of variance between clusters below "
                f"{self.threshold}): {listed}; they still describe the segments"]


def between_shares(prepared: np.ndarray, labels: np.ndarray, sources: Sequence[str]) -> dict[str, float]:
    """Per source column, the largest R² (between-cluster share of variance) of its prepared columns.

    Parameters
    ----------
    prepared : ndarray of shape (n_customers, n_prepared)
    labels : ndarray of shape (n_customers,)
        Cluster of every customer.
    sources : sequence of str
        The source column of every prepared column (``region=North`` -> ``region``).
    """
    X = np.asarray(prepared, dtype=np.float64)
    labels = np.asarray(labels)
    _, index = np.unique(labels, return_inverse=True)
    counts = np.bincount(index).astype(np.float64)
    means = X.mean(axis=0)
    total = ((X - means) ** 2).sum(axis=0)
    sums = np.zeros((len(counts), X.shape[1]))
    np.add.at(sums, index, X)
    centres = sums / counts[:, None]
    between = (counts[:, None] * (centres - means) ** 2).sum(axis=0)
    out: dict[str, float] = {}
    for j, source in enumerate(sources):
        share = float(between[j] / total[j]) if total[j] > 0 else 0.0
        out[source] = max(out.get(source, 0.0), share)
    return out


def screen_columns(prepared: np.ndarray, labels: np.ndarray, sources: Sequence[str], columns: Sequence[str],
                   first_k: int | None = None, threshold: float = MIN_BETWEEN_SHARE) -> ColumnScreen:
    """Decide which of ``columns`` stay in the definition (see the module docstring).

    Parameters
    ----------
    prepared, labels, sources
        As in `between_shares`: the first fit's prepared matrix and clusters.
    columns : sequence of str
        The defining columns, in order; the result keeps that order.
    first_k : int, optional
        Number of clusters of the first fit (recorded).
    threshold : float
        Smallest between-cluster share of variance a column needs.

    Returns
    -------
    ColumnScreen
    """
    shares = between_shares(prepared, labels, sources)
    screen = ColumnScreen(between_share={c: shares.get(c, 0.0) for c in columns}, first_k=first_k,
                          threshold=threshold)
    best = sorted(columns, key=lambda c: screen.between_share[c], reverse=True)[:MIN_KEPT]
    for column in columns:
        keep = screen.between_share[column] >= threshold or column in best
        (screen.kept if keep else screen.left_out).append(column)
    return screen
