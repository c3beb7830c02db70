"""Drift of the customer population against the model's training snapshot.

The **population stability index** compares two distributions over the same bins:

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with ``e_i`` the training share and ``a_i`` the current share of bin ``i`` (shares
below `PSI_EPSILON` are raised to it, so an empty bin does not make it infinite).

- Per feature: the bins are the training deciles of each feature that defines the
  segments (ties merge bins, so a count like ``n_orders`` has as many bins as it has
  distinct deciles), plus one bin for missing values; a categorical feature has one
  bin per training level, one for any other level and one for missing.
- Per segment share: the bins are the segments.

The training snapshot (`training_snapshot`) holds the bin edges and shares; it is
stored in the model file, so drift needs nothing but the model and current data.

**Retrain rule** (`RETRAIN_RULE`): a retrain is recommended when the PSI of the
segment shares, or of any feature that defines the segments, exceeds
`PSI_SIGNIFICANT` (0.25, the customary "significant shift" level of credit
scoring); 0.1 to 0.25 (`PSI_MODERATE`) is reported as a moderate shift to watch.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "psi", "training_snapshot", "drift_report", "bin_shares", "PSI_EPSILON", "PSI_MODERATE", "PSI_SIGNIFICANT",
    "RETRAIN_RULE", "PSI_BINS",
]

#: Deciles.
PSI_BINS = 10
#: Floor of a bin share in the PSI.
PSI_EPSILON = 1e-4
#: PSI above this is a moderate shift.
PSI_MODERATE = 0.1
#: PSI above this is a significant shift: retrain.
PSI_SIGNIFICANT = 0.25
RETRAIN_RULE = (
    f"retrain when the PSI of the segment shares, or of any feature that defines the segments, exceeds "
    f"{PSI_SIGNIFICANT}; {PSI_MODERATE} to {PSI_SIGNIFICANT} is a moderate shift"
)


def psi(expected: np.ndarray, actual: np.ndarray, *, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    if e.shape != a.shape:
        raise ValueError(f"the two distributions have different bins ({e.shape[0]} and {a.shape[0]})")
    return float(np.sum((a - e) * np.log(a / e)))


def _numeric_reference(values: np.ndarray, bins: int) -> dict[str, Any]:
    observed = values[~np.isnan(values)]
    if len(observed):
        edges = np.unique(np.quantile(observed, np.arange(1, bins) / bins))
    else:
        edges = np.zeros(0)
    reference = {"kind": "numeric", "edges": edges.tolist()}
    reference["shares"] = bin_shares(values, reference).tolist()
    return reference


def _categorical_reference(series: pd.Series) -> dict[str, Any]:
    levels = sorted(str(v) for v in series.dropna().unique())
    reference = {"kind": "categorical", "levels": levels}
    reference["shares"] = bin_shares(series, reference).tolist()
    return reference


def bin_shares(values, reference: Mapping[str, Any]) -> np.ndarray:
    """Shares of ``values`` in the bins of a reference (last bin: missing values)."""
    if reference["kind"] == "numeric":
        x = np.asarray(values, dtype=np.float64)
        missing = np.isnan(x)
        edges = np.asarray(reference["edges"], dtype=np.float64)
        # Bin i holds (edges[i-1], edges[i]]; the last one everything above.
        codes = np.where(missing, len(edges) + 1, np.searchsorted(edges, np.where(missing, 0.0, x), side="left"))
        n_bins = len(edges) + 2
    else:
        series = pd.Series(values, dtype=object)
        levels = list(reference["levels"])
        missing = series.isna().to_numpy()
        codes = pd.Index(levels, dtype=object).get_indexer(series.astype(str).to_numpy()).astype(np.int64)
        codes = np.where(missing, len(levels) + 1, np.where(codes < 0, len(levels), codes))
        n_bins = len(levels) + 2
    counts = np.bincount(codes, minlength=n_bins).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def training_snapshot(frame: pd.DataFrame, columns: list[str], segment_shares: Mapping[int, float], *,
                      as_of: str | None = None, bins: int = PSI_BINS) -> dict[str, Any]:
    """Bin edges and shares of the defining features, and the segment shares, at training."""
    features = {}
    for column in columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            features[column] = _numeric_reference(series.to_numpy(dtype=np.float64, na_value=np.nan), bins)
        else:
            features[column] = _categorical_reference(series)
    return {
        "as_of": as_of,
        "n_customers": int(len(frame)),
        "bins": bins,
        "features": features,
        "segment_shares": {str(int(k)): float(v) for k, v in segment_shares.items()},
    }


def _level(value: float) -> str:
    if value > PSI_SIGNIFICANT:
        return "significant"
    if value > PSI_MODERATE:
        return "moderate"
    return "stable"


def drift_report(snapshot: Mapping[str, Any], frame: pd.DataFrame, segment_ids: np.ndarray) -> dict[str, Any]:
    """PSI per feature and of the segment shares against ``snapshot``, and the retrain recommendation.

    Parameters
    ----------
    snapshot : dict
        From `training_snapshot`.
    frame : DataFrame
        Current features (at least the snapshot's columns).
    segment_ids : array of int
        Current segment of each row of ``frame``.
    """
    features = {}
    for column, reference in snapshot["features"].items():
        if column not in frame.columns:
            continue
        value = psi(reference["shares"], bin_shares(frame[column], reference))
        features[column] = {"psi": value, "level": _level(value)}
    training_shares = {int(k): v for k, v in snapshot["segment_shares"].items()}
    ids, counts = np.unique(np.asarray(segment_ids), return_counts=True)
    current = dict(zip(ids.tolist(), (counts / max(counts.sum(), 1)).tolist()))
    order = sorted(set(training_shares) | set(current))
    share_psi = psi([training_shares.get(s, 0.0) for s in order], [current.get(s, 0.0) for s in order])
    reasons = []
    if share_psi > PSI_SIGNIFICANT:
        reasons.append(f"segment shares shifted (PSI {share_psi:.3f} > {PSI_SIGNIFICANT})")
    for column, item in sorted(features.items(), key=lambda kv: -kv[1]["psi"]):
        if item["psi"] > PSI_SIGNIFICANT:
            reasons.append(f"{column} shifted (PSI {item['psi']:.3f} > {PSI_SIGNIFICANT})")
    return {
        "training_as_of": snapshot.get("as_of"),
        "features": features,
        "max_feature_psi": max((f["psi"] for f in features.values()), default=0.0),
        "segment_share_psi": share_psi,
        "segment_share_level": _level(share_psi),
        "segment_shares": {
            str(s): {"training": training_shares.get(s, 0.0), "current": current.get(s, 0.0)} for s in order
        },
        "retrain_recommended": bool(reasons),
        "reasons": reasons,
        "thresholds": {"moderate": PSI_MODERATE, "significant": PSI_SIGNIFICANT, "epsilon": PSI_EPSILON},
        "rule": RETRAIN_RULE,
    }
