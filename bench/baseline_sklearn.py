"""The scikit-learn notebook baseline for segmentation.

What a typical customer-segmentation notebook does with a customer feature
table: standardise the columns (``StandardScaler``), fit ``KMeans`` for every k
from 2 to 12 (scikit-learn defaults, ``random_state=0``), and score every k with
the full ``silhouette_score`` (all customers, O(n^2) pairwise distances).

It clusters on the same columns as `segwise.Segmenter` (the rfm and affinity
families of the cached segwise feature table), so the two segmentation steps do
comparable work. The full silhouette runs only up to `FULL_SILHOUETTE_MAX_CUSTOMERS`;
above that it is recorded as skipped, with the memory the n x n distance matrix
would need.
"""

from __future__ import annotations

import json

import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from bench.datasets import Dataset
from bench.timing import PhaseTimer, StepOutcome

__all__ = [
    "K_RANGE", "FULL_SILHOUETTE_MAX_CUSTOMERS", "full_silhouette_skip_reason", "notebook_segmentation",
    "sklearn_notebook",
]

#: Numbers of segments tried, as in `segwise.Segmenter`'s default ``k_range``.
K_RANGE = range(2, 13)

#: Largest number of customers the full silhouette is computed for.
FULL_SILHOUETTE_MAX_CUSTOMERS = 100_000


def full_silhouette_skip_reason(n_customers: int) -> str | None:
    """Why the full silhouette is not computed for ``n_customers``, or None when it is."""
    if n_customers <= FULL_SILHOUETTE_MAX_CUSTOMERS:
        return None
    matrix_gib = n_customers**2 * 8 / 2**30
    return (
        f"O(n^2) silhouette would need {matrix_gib:,.0f} GB for the {n_customers:,} x {n_customers:,} "
        f"float64 distance matrix (full silhouette runs up to {FULL_SILHOUETTE_MAX_CUSTOMERS:,} customers)"
    )


def notebook_segmentation(features: pd.DataFrame, columns: list[str], timer: PhaseTimer) -> dict:
    """Scale, fit KMeans for every k in `K_RANGE`, and score each with the full silhouette.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per customer.
    columns : list of str
        Columns to cluster on.
    timer : bench.timing.PhaseTimer
        Receives the phases ``scale``, ``kmeans_sweep`` and (when run) ``silhouette``.

    Returns
    -------
    dict
        ``columns``, ``inertia`` and ``silhouette`` by k (silhouette None when
        skipped), ``best_k_silhouette`` and ``silhouette_skipped`` (the reason, or
        None).
    """
    with timer.phase("scale"):
        X = StandardScaler().fit_transform(features[columns].to_numpy(dtype="float64"))
    labels_by_k = {}
    inertia = {}
    with timer.phase("kmeans_sweep"):
        for k in K_RANGE:
            model = KMeans(n_clusters=k, random_state=0).fit(X)
            labels_by_k[k] = model.labels_
            inertia[k] = float(model.inertia_)
    skip_reason = full_silhouette_skip_reason(len(X))
    silhouette = dict.fromkeys(K_RANGE)
    if skip_reason is None:
        with timer.phase("silhouette"):
            for k, labels in labels_by_k.items():
                silhouette[k] = float(silhouette_score(X, labels))
    scored = {k: s for k, s in silhouette.items() if s is not None}
    return {
        "columns": list(columns),
        "inertia": inertia,
        "silhouette": silhouette,
        "best_k_silhouette": max(scored, key=scored.get) if scored else None,
        "silhouette_skipped": skip_reason,
    }


def sklearn_notebook(dataset: Dataset) -> StepOutcome:
    """The measured step: read the cached feature table, then `notebook_segmentation`.

    The columns are those `segwise.Segmenter` defines segments on (rfm and
    affinity families), as recorded with the cached table.
    """
    columns = json.loads(dataset.features_meta_path.read_text())["segment_columns"]
    timer = PhaseTimer()
    with timer.phase("read_features"):
        features = pd.read_parquet(dataset.features_path, columns=["customer_id", *columns])
    info = notebook_segmentation(features, columns, timer)
    info["customers"] = len(features)
    skip_reason = info.pop("silhouette_skipped")
    return StepOutcome(
        phases=timer.phases, info=info, skipped_parts={"silhouette": skip_reason} if skip_reason else {}
    )
