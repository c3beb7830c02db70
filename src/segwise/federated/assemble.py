"""Turning aggregates into the ordinary segwise model: profiles, names, model file.

The federated result is stored exactly like a central one (`segwise.model`): a
`Segmenter` state with the `Preprocessor` fitted from statistics, a k-means clusterer
holding the global centroids, segments ordered by value, profiled and named from
per-segment aggregates (`segwise.engines.statistics.SegmentStats`, made into profiles
by `segwise.profile.profiles_from_stats` and named by `segwise.naming`, as on every
engine), ordered by value by `segwise.profile.order_by_value`. So ``segwise assign``
and every consumer of ``model.segwise`` work unchanged.

What differs from a central fit is recorded, not hidden: the silhouette needs
pairwise distances between customers and is not available (None); medians come
from histogram sketches; under differential privacy the inertia is not released and
profile statistics are noisy.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from segwise._version import __version__
from segwise.cluster.kmeans import KMeansSegmenter
from segwise.features import FeatureSpec
from segwise.features.base import FeatureColumn
from segwise.federated import protocol
from segwise.federated.sketch import MergedColumns
from segwise.model import SegmentationModel
from segwise.prepare import Preprocessor
from segwise.engines.statistics import SegmentStats
from segwise.naming import named_profiles
from segwise.profile import Profiles, order_by_value
from segwise.cluster.select import KSelection
from segwise.segmenter import Segmenter

__all__ = ["assemble_model", "segment_profiles", "model_to_wire", "model_from_wire",
           "aggregate_metrics"]


def model_to_wire(model: SegmentationModel) -> dict[str, Any]:
    """A model as JSON (document and arrays), to send to silos."""
    document, arrays = model.to_document()
    return {"document": document, "arrays": protocol.encode_arrays(arrays)}


def model_from_wire(data: Mapping[str, Any]) -> SegmentationModel:
    """Inverse of `model_to_wire` (no code is executed: JSON and arrays only)."""
    document = data["document"]
    arrays = protocol.decode_arrays(data["arrays"])
    return SegmentationModel(
        segmenter=Segmenter.from_state(document["segmenter"], arrays),
        spec=FeatureSpec.from_dict(document["feature_spec"]),
        metadata=dict(document.get("metadata", {})),
    )


def _safe_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def segment_profiles(
    merged: MergedColumns, columns: list[str], label_map: np.ndarray, *, docs: Mapping[str, FeatureColumn],
    value_col: str | None, overrides: Mapping[Any, str] | None = None,
) -> Profiles:
    """Profiles and names of the segments from per-cluster sketches of the raw columns."""
    k, d = merged.counts.shape[:2]
    cluster_of = np.argsort(label_map)  # row i describes segment i
    sizes = np.maximum(np.round(merged.n_rows()), 0).astype(np.int64)[cluster_of]
    moments, kept = merged.moments()
    moments, kept = moments[cluster_of], kept[cluster_of]
    n_observed = merged.n_observed()[cluster_of]
    means = _safe_divide(moments[..., 0], kept)
    all_kept = kept.sum(axis=0)
    pop_mean = _safe_divide(moments[..., 0].sum(axis=0), all_kept)
    pop_std = np.sqrt(np.maximum(_safe_divide(moments[..., 1].sum(axis=0), all_kept) - pop_mean**2, 0.0))
    half = np.array([0.5])
    medians = np.array([[merged.quantiles(j, half, group=int(c))[0] for j in range(d)] for c in cluster_of])
    pop_median = np.array([merged.quantiles(j, half)[0] for j in range(d)])
    ranking = _naming_zscores(moments, kept, merged.n_negative().sum(axis=0), columns, docs)
    revenue = None
    if value_col is not None and value_col in columns:
        j = columns.index(value_col)
        revenue = [float(moments[i, j, 0] * n_observed[i, j] / kept[i, j]) if kept[i, j] > 0 else 0.0
                   for i in range(k)]
    zs = {i: {c: float(v) for c, v in zip(columns, np.nan_to_num(ranking[i]))} for i in range(k)}
    stats_ = SegmentStats(
        numeric=list(columns), categorical=[], segment_ids=np.arange(k, dtype=np.int64), n_customers=sizes,
        means=means, medians=medians, observed=_safe_divide(n_observed, np.maximum(sizes, 1)[:, None].astype(float)),
        pop_mean=pop_mean, pop_std=pop_std, pop_median=pop_median, naming_zscores=zs,
        categories={i: {} for i in range(k)}, revenue=None if revenue is None else np.asarray(revenue),
    )
    return named_profiles(stats_, units={c: docs[c].unit for c in columns if c in docs},
                          value_column=value_col if revenue is not None else None, overrides=overrides)


def _naming_zscores(moments: np.ndarray, kept: np.ndarray, n_negative: np.ndarray, columns: list[str],
                    docs: Mapping[str, FeatureColumn]) -> np.ndarray:
    """`segwise.profile.naming_zscores` from moment sums: standardised segment means, on
    a log scale for non-negative log-scale or skewed columns."""
    total = moments.sum(axis=0)  # (d, 5)
    n = kept.sum(axis=0)
    mean = _safe_divide(total[:, 0], n)
    m2 = np.maximum(_safe_divide(total[:, 1], n) - mean**2, 0.0)
    m3 = _safe_divide(total[:, 2], n) - 3 * mean * _safe_divide(total[:, 1], n) + 2 * mean**3
    with np.errstate(invalid="ignore", divide="ignore"):
        skew = np.nan_to_num(np.where(m2 > 0, m3 / np.sqrt(m2) ** 3, 0.0))
    log_scale = np.array([c in docs and docs[c].log_scale for c in columns])
    use_log = (n_negative < 0.5) & (log_scale | (skew > 1.0))
    first = np.where(use_log, 3, 0)
    cols = np.arange(len(columns))
    seg_sum = moments[:, cols, first]
    seg_sq = moments[:, cols, first + 1]
    pop_mean = _safe_divide(seg_sum.sum(axis=0), n)
    pop_std = np.sqrt(np.maximum(_safe_divide(seg_sq.sum(axis=0), n) - pop_mean**2, 0.0))
    seg_mean = _safe_divide(seg_sum, kept)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pop_std > 0, (seg_mean - pop_mean) / np.where(pop_std > 0, pop_std, 1.0), 0.0)


def aggregate_metrics(centroids: np.ndarray, counts: np.ndarray, inertia: np.ndarray | None,
                      distance: np.ndarray | None) -> dict[str, Any]:
    """Calinski-Harabasz and Davies-Bouldin from per-segment counts, centroids and scatter.

    Equal to scikit-learn's scores on the pooled rows when the centroids are the means
    of their members (a converged k-means). The silhouette needs distances between
    customers and is None.
    """
    k = len(counts)
    out: dict[str, Any] = {"n_segments": int(k), "silhouette": None, "silhouette_sample_size": 0,
                           "calinski_harabasz": None, "davies_bouldin": None}
    if inertia is None or k < 2:
        return out
    n = counts.sum()
    overall = (counts[:, None] * centroids).sum(axis=0) / n
    between = float((counts * ((centroids - overall) ** 2).sum(axis=1)).sum())
    within = float(inertia.sum())
    if within > 0 and n > k:
        out["calinski_harabasz"] = float(between * (n - k) / (within * (k - 1)))
    scatter = _safe_divide(distance, counts)
    separation = np.sqrt(((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (scatter[:, None] + scatter[None, :]) / separation
    ratio[np.arange(k), np.arange(k)] = -np.inf
    out["davies_bouldin"] = float(np.nanmean(np.max(np.nan_to_num(ratio, posinf=np.inf), axis=1)))
    return out


def assemble_model(
    *, preprocessor: Preprocessor, centroids: np.ndarray, segment_sketches: MergedColumns, columns: list[str],
    docs: Mapping[str, FeatureColumn], spec: FeatureSpec, as_of: date, inertia: float | None,
    metrics: dict[str, Any], selection: KSelection | None, segmenter_params: dict[str, Any],
    names: Mapping[Any, str] | None, metadata: dict[str, Any], notes: Sequence[str] = (),
) -> SegmentationModel:
    """The `SegmentationModel` of a federated fit (see the module docstring)."""
    k = centroids.shape[0]
    value_col = "monetary_total" if "monetary_total" in columns else None
    moments, kept = segment_sketches.moments()
    sizes = segment_sketches.n_rows()
    value_means = _safe_divide(moments[:, columns.index(value_col), 0], kept[:, columns.index(value_col)]) \
        if value_col else None
    label_map = order_by_value(sizes, value_means)
    profiles = segment_profiles(segment_sketches, columns, label_map, docs=docs, value_col=value_col, overrides=names)
    clusterer = KMeansSegmenter(n_segments=k, k_range=tuple(segmenter_params["k_range"]),
                                random_state=segmenter_params["random_state"])
    clusterer_meta = {
        "params": {key: (list(v) if isinstance(v, tuple) else v) for key, v in clusterer.get_params().items()},
        "n_features_in": int(centroids.shape[1]),
        "inertia": float(inertia) if inertia is not None else None,  # not released under differential privacy
        "n_segments": int(k),
        "selection": selection.to_dict() if selection is not None else None,
    }
    clusterer = KMeansSegmenter.from_state(clusterer_meta, {"cluster_centers": np.asarray(centroids, dtype=np.float64)})
    segmenter = Segmenter.from_parts(
        segmenter_params, preprocessor=preprocessor, clusterer=clusterer, label_map=label_map, columns=list(columns),
        docs={c: docs[c] for c in columns if c in docs}, value_col=value_col, profiles=profiles,
        notes=["segments fitted by federated k-means: profiles come from aggregates of every silo", *notes],
        metrics=metrics,
    )
    full_metadata = {
        "model_id": uuid.uuid4().hex,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "segwise_version": __version__,
        "as_of": str(as_of),
        "n_customers": int(max(round(float(sizes.sum())), 0)),
        "method": "kmeans",
        "n_segments": int(k),
        **metadata,
    }
    return SegmentationModel(segmenter=segmenter, spec=spec, metadata=full_metadata)
