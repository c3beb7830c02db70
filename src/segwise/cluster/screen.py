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
   the rest (at least `MIN_KEPT` columns are always kept);
4. a **second look** inside each first cluster: a column left out is readmitted when a
   two-way split of one of those clusters is real (Hartigan's dip test along the line
   joining the two halves' centres rejects one mode, p < `SECOND_LOOK_P`: the
   over-split check's `segwise.cluster.merge.oversplit_pairs`) and holds at
   least `MIN_BETWEEN_SHARE` of the column's variance within that cluster. A first fit
   with few clusters separates the columns that differ between its clusters, not those
   that tell types apart inside one of them (a tenure that splits long-standing from
   new customers among the low spenders). Columns of fewer than
   `SECOND_LOOK_MIN_DISTINCT` distinct values are not readmitted: flags and small counts
   split any cluster into a lattice whose halves the dip test sees as separate modes.

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

__all__ = ["ColumnScreen", "between_shares", "screen_columns", "second_look", "MIN_BETWEEN_SHARE", "SCREEN_SAMPLE",
           "MIN_KEPT", "SECOND_LOOK", "SECOND_LOOK_P", "SECOND_LOOK_MIN_DISTINCT", "SECOND_LOOK_MIN_CLUSTER"]

#: Share of a column's variance between the first clusters below which it is left out.
MIN_BETWEEN_SHARE = 0.2

#: Customers the first clustering is fitted on (a uniform sample beyond it).
SCREEN_SAMPLE = 20_000

#: Columns always kept (the best ones), so that something is left to segment on.
MIN_KEPT = 2

#: Whether left-out columns get the second look inside the first clusters (step 4).
SECOND_LOOK = True

#: Dip-test p-value below which a first cluster's two-way split counts as real.
SECOND_LOOK_P = 0.01

#: Fewest distinct prepared values of a column the second look readmits.
SECOND_LOOK_MIN_DISTINCT = 20

#: Smallest first cluster looked into: this share of the customers, and at least 50 of them.
SECOND_LOOK_MIN_CLUSTER = 0.05


@dataclass
class ColumnScreen:
    """What the screen measured and decided."""

    between_share: dict[str, float] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    first_k: int | None = None
    threshold: float = MIN_BETWEEN_SHARE
    #: Columns readmitted by the second look, each with the cluster, its share there and the dip p-value.
    readmitted: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": f"a column is kept when >= {self.threshold} of its variance lies between the clusters of a "
                    f"first fit on all columns (k={self.first_k})" + (
                        f", or within one of those clusters between the halves of a real split (dip test p < "
                        f"{SECOND_LOOK_P}; columns of at least {SECOND_LOOK_MIN_DISTINCT} distinct values)"
                        if SECOND_LOOK else ""),
            "kept": list(self.kept), "left_out": list(self.left_out),
            "between_share": {c: round(v, 3) for c, v in self.between_share.items()}}
        if self.readmitted:
            out["readmitted"] = {c: {k: round(v, 4) for k, v in d.items()} for c, d in self.readmitted.items()}
        return out

    def notes(self) -> list[str]:
        """Sentences for the run's notes (run.json, CLI)."""
        notes = []
        if self.left_out:
            listed = ", ".join(f"{c} ({self.between_share[c]:.2f})" for c in self.left_out)
            notes.append(f"{len(self.left_out)} column(s) left out of the definition because a first clustering on "
                         f"all columns (k={self.first_k}) does not separate them (share of variance between clusters "
                         f"below {self.threshold}): {listed}; they still describe the segments")
        if self.readmitted:
            again = ", ".join(f"{c} ({d['share']:.2f} of its variance within a first cluster, dip p={d['p']:.3f})"
                              for c, d in self.readmitted.items())
            notes.append(f"kept although the first clustering does not separate them, because they split one of its "
                         f"clusters in two real groups: {again}")
        return notes


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
    if SECOND_LOOK and screen.left_out:
        screen.readmitted = second_look(prepared, labels, sources, screen.left_out, threshold=threshold)
        if screen.readmitted:
            screen.kept = [c for c in columns if c in screen.kept or c in screen.readmitted]
            screen.left_out = [c for c in columns if c not in screen.kept]
    return screen


def second_look(prepared: np.ndarray, labels: np.ndarray, sources: Sequence[str], candidates: Sequence[str],
                threshold: float = MIN_BETWEEN_SHARE, random_state: int = 0) -> dict[str, dict[str, float]]:
    """Left-out columns that a real two-way split inside one of the first clusters separates (step 4).

    Parameters
    ----------
    prepared, labels, sources
        As in `between_shares`: the first fit's prepared matrix and clusters.
    candidates : sequence of str
        The source columns the first look left out.
    threshold : float
        Smallest share of a column's variance within the cluster that the split must hold.
    random_state : int
        Seed of the two-way k-means and of the dip test's sample (`oversplit_pairs`).

    Returns
    -------
    dict
        Per readmitted column: the cluster (``cluster``), the column's share of variance
        between the split's halves (``share``) and the dip test's p-value (``p``).
    """
    from sklearn.cluster import KMeans

    from segwise.cluster.merge import oversplit_pairs

    X = np.asarray(prepared, dtype=np.float64)
    labels = np.asarray(labels)
    sources = list(sources)
    eligible = set()
    for column in candidates:
        positions = [j for j, s in enumerate(sources) if s == column]
        if positions and max(len(np.unique(X[:, j])) for j in positions) >= SECOND_LOOK_MIN_DISTINCT:
            eligible.add(column)
    found: dict[str, dict[str, float]] = {}
    if not eligible:
        return found
    smallest = max(50, SECOND_LOOK_MIN_CLUSTER * len(X))
    for cluster in np.unique(labels):
        rows = X[labels == cluster]
        if len(rows) < smallest:
            continue
        halves = KMeans(n_clusters=2, n_init=4, random_state=random_state).fit(rows)
        # The over-split check's test of a pair of segments, here on the two halves.
        tested = oversplit_pairs(rows, halves.labels_, random_state=random_state, pairs=1)
        if not tested or tested[0]["p_value"] >= SECOND_LOOK_P:
            continue
        p = tested[0]["p_value"]
        within = between_shares(rows, halves.labels_, sources)
        for column in sorted(eligible):
            share = within.get(column, 0.0)
            if share >= threshold and share > found.get(column, {}).get("share", -1.0):
                found[column] = {"cluster": float(cluster), "share": share, "p": p}
    return {c: found[c] for c in candidates if c in found}
