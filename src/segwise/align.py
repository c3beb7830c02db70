"""Stable segment ids across retrains: match a retrained model to the previous one.

When a model is retrained, its segments are numbered by value afresh; a marketer
expects "Loyal Regulars" to stay segment 1. `align_segments` matches the new
segments to the previous model's, one-to-one, with the Hungarian algorithm
(`scipy.optimize.linear_sum_assignment`) on distances measured in the **previous
model's prepared space** (its own imputation, transforms, scaling and weights):

- ``method="centroid"``: the previous segments' centres are the previous method's
  ``cluster_centers_`` when it has them, otherwise the means of the customers the
  previous model assigns to each segment; the new segments' centres are the means
  of their customers. Needs the new training features.
- ``method="profile"``: each segment's mean profile (the per-segment feature means
  stored with every model) is placed in that space; needs no customer data, so it
  works from two model files alone.

A matched pair is **accepted** when its distance is at most ``match_ratio`` (0.5)
times the distance from the previous segment's centre to the nearest other previous
centre: the new segment sits well inside the previous segment's neighbourhood.
Otherwise, and for new segments left over when the new model has more, the new
segment is **new** (a fresh id, above every id the previous model or its ancestors
used) and the previous one has **vanished** (its id is retired, never reused).
`apply_alignment` relabels the new model in place: accepted segments take the
previous id and name; new ones keep their generated name, marked ``(new)`` if the
name is already taken. Ids may then have gaps (a vanished id stays retired).

What a run records under ``"alignment"`` in run.json (`Alignment.to_dict`):
``previous_model_id``, ``method``, ``match_ratio``, ``matches`` (one per new
segment: ``segment_id`` final id, ``segment_name``, ``previous_segment_id`` and
``previous_name`` or None, ``distance``, ``limit``, ``status`` "kept" or "new"),
``new_segments`` and ``vanished_segments`` (lists of ``{"segment_id", "segment_name"}``),
``segment_id_high_water`` (largest id ever used) and ``rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from segwise.errors import InputError

__all__ = ["Alignment", "align_segments", "apply_alignment", "align_model", "ALIGN_METHODS", "MATCH_RATIO"]

ALIGN_METHODS = ("centroid", "profile")
#: A match is kept when its distance is at most this share of the previous segment's
#: distance to its nearest neighbour.
MATCH_RATIO = 0.5


@dataclass
class Alignment:
    """How the segments of a retrained model map onto the previous model's.

    Attributes
    ----------
    id_map : dict of int to int
        New model's original segment id to its aligned id.
    names : dict of int to str
        Aligned id to name.
    matches : list of dict
    vanished : list of dict
        Previous segments no new segment matched.
    previous_model_id : str or None
    method : str
    match_ratio : float
    high_water : int
        Largest segment id used by this model or any it was aligned to.
    """

    id_map: dict[int, int]
    names: dict[int, str]
    matches: list[dict[str, Any]]
    vanished: list[dict[str, Any]]
    previous_model_id: str | None
    method: str
    match_ratio: float
    high_water: int

    @property
    def new_segments(self) -> list[int]:
        return [m["segment_id"] for m in self.matches if m["status"] == "new"]

    @property
    def kept(self) -> dict[int, int]:
        """Aligned id of every kept segment to the previous id (the same number)."""
        return {m["segment_id"]: m["previous_segment_id"] for m in self.matches if m["status"] == "kept"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "previous_model_id": self.previous_model_id,
            "method": self.method,
            "match_ratio": self.match_ratio,
            "matches": self.matches,
            "new_segments": [{"segment_id": s, "segment_name": self.names[s]} for s in self.new_segments],
            "vanished_segments": list(self.vanished),
            "segment_id_high_water": self.high_water,
            "rule": (
                "segments matched one-to-one (Hungarian algorithm) on distance in the previous model's prepared "
                f"space; a match is kept when its distance is at most {self.match_ratio} x the previous segment's "
                "distance to its nearest other segment, otherwise the new segment is new and the previous one vanished"
            ),
        }


def _frame(features) -> pd.DataFrame:
    from segwise.features.build import FeatureTable

    return features.frame if isinstance(features, FeatureTable) else features


def _prepared(previous_segmenter, frame: pd.DataFrame, what: str) -> np.ndarray:
    pre = previous_segmenter.preprocessor_
    needed = list(pre.numeric_in_) + list(pre.categorical_levels_)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks columns the previous model's segments are defined on ({', '.join(missing[:5])}); "
            "align on profiles instead (method='profile')"
        )
    return pre.transform(frame)


def _group_means(X: np.ndarray, labels: np.ndarray, ids: list[int]) -> np.ndarray:
    out = np.full((len(ids), X.shape[1]), np.nan)
    for row, seg in enumerate(ids):
        mask = labels == seg
        if mask.any():
            out[row] = X[mask].mean(axis=0)
    return out


def _profile_frame(segmenter, ids: list[int]) -> pd.DataFrame:
    profiles = segmenter.profiles_
    means = pd.DataFrame([profiles[s].means for s in ids])
    for column in segmenter.preprocessor_.categorical_levels_:
        means[column] = [
            max(profiles[s].categories.get(column, {"": 0.0}).items(), key=lambda kv: kv[1])[0] or np.nan
            for s in ids
        ]
    return means


def _centres(model, previous, features, method: str) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    seg, prev = model.segmenter, previous.segmenter
    new_ids = sorted(int(s) for s in seg.segment_names_)
    old_ids = sorted(int(s) for s in prev.segment_names_)
    if method == "profile":
        new_c = _prepared(prev, _profile_frame(seg, new_ids), "the new model's profiles")
        old_c = _prepared(prev, _profile_frame(prev, old_ids), "the previous model's profiles")
        return new_c, old_c, new_ids, old_ids
    if features is None:
        raise InputError("centroid alignment needs the new model's training features; give features= "
                         "or align on profiles (method='profile')")
    frame = _frame(features)
    X_old_space = _prepared(prev, frame, "the feature table")
    labels = np.asarray(seg.labels_) if len(frame) == len(seg.labels_) else np.asarray(seg.predict(frame))
    new_c = _group_means(X_old_space, labels, new_ids)
    centers = getattr(prev.clusterer_, "cluster_centers_", None)
    if centers is not None and np.asarray(centers).shape == (len(prev.label_map_), X_old_space.shape[1]):
        old_c = np.full((len(old_ids), X_old_space.shape[1]), np.nan)
        for raw, seg_id in enumerate(prev.label_map_):
            old_c[old_ids.index(int(seg_id))] = centers[raw]
    else:
        old_c = _group_means(X_old_space, np.asarray(prev.predict(frame)), old_ids)
    return new_c, old_c, new_ids, old_ids


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    return np.where(np.isfinite(d), d, np.inf)


def align_segments(model, previous, features=None, *, method: str = "centroid",
                   match_ratio: float = MATCH_RATIO) -> Alignment:
    """Match the segments of ``model`` to those of ``previous`` (rule in the module docstring).

    Parameters
    ----------
    model, previous : SegmentationModel
        The retrained model and the one whose ids and names are kept.
    features : FeatureTable or DataFrame, optional
        The new model's training features (needed by ``method="centroid"``).
    method : {"centroid", "profile"}
    match_ratio : float
        Largest accepted distance, as a share of the previous segment's distance
        to its nearest other previous segment.

    Returns
    -------
    Alignment
        Nothing is changed; `apply_alignment` relabels the model.
    """
    if method not in ALIGN_METHODS:
        raise InputError(f"The 'method' parameter of align_segments must be one of {ALIGN_METHODS}. Got {method!r} instead.")
    if not match_ratio > 0:
        raise InputError(f"The 'match_ratio' parameter of align_segments must be a float in the range (0, inf). "
                         f"Got {match_ratio!r} instead.")
    new_c, old_c, new_ids, old_ids = _centres(model, previous, features, method)
    dist = _distances(new_c, old_c)
    old_gap = _distances(old_c, old_c)
    np.fill_diagonal(old_gap, np.inf)
    nearest_other = old_gap.min(axis=1) if len(old_ids) > 1 else np.full(len(old_ids), np.inf)
    finite = np.where(np.isfinite(dist), dist, 1e12)
    rows, cols = linear_sum_assignment(finite)
    pairs = dict(zip(rows.tolist(), cols.tolist()))
    prev_names = previous.segmenter.segment_names_
    high_water = max(max(old_ids), int(previous.metadata.get("segment_id_high_water", -1)))
    id_map: dict[int, int] = {}
    names: dict[int, str] = {}
    matches: list[dict[str, Any]] = []
    matched_old: set[int] = set()
    for row, new_id in enumerate(new_ids):
        col = pairs.get(row)
        distance = float(dist[row, col]) if col is not None else None
        limit = float(match_ratio * nearest_other[col]) if col is not None else None
        keep = col is not None and distance is not None and np.isfinite(distance) and distance <= limit
        if keep:
            old_id = old_ids[col]
            matched_old.add(old_id)
            id_map[new_id] = old_id
            names[old_id] = prev_names[old_id]
        matches.append({
            "new_model_segment_id": new_id,
            "previous_segment_id": old_ids[col] if col is not None else None,
            "previous_name": prev_names[old_ids[col]] if col is not None else None,
            "distance": distance if distance is None or np.isfinite(distance) else None,
            "limit": limit if limit is None or np.isfinite(limit) else None,
            "status": "kept" if keep else "new",
        })
    taken = set(names.values())
    for match in matches:
        new_id = match["new_model_segment_id"]
        if match["status"] == "new":
            high_water += 1
            id_map[new_id] = high_water
            name = model.segmenter.segment_names_[new_id]
            candidate, n = name, 1
            while candidate in taken:
                candidate = f"{name} (new)" if n == 1 else f"{name} (new {n})"
                n += 1
            names[high_water] = candidate
            taken.add(candidate)
        match["segment_id"] = id_map[new_id]
        match["segment_name"] = names[id_map[new_id]]
        if match["status"] == "new":
            # A rejected pair is reported for its distance, but the segment has no predecessor.
            match["nearest_previous_segment_id"] = match.pop("previous_segment_id")
            match["nearest_previous_name"] = match.pop("previous_name")
            match["previous_segment_id"] = None
            match["previous_name"] = None
    vanished = [{"segment_id": s, "segment_name": prev_names[s]} for s in old_ids if s not in matched_old]
    return Alignment(id_map=id_map, names=names, matches=matches, vanished=vanished,
                     previous_model_id=previous.metadata.get("model_id"), method=method, match_ratio=match_ratio,
                     high_water=max(high_water, max(id_map.values())))


def apply_alignment(model, alignment: Alignment) -> None:
    """Relabel ``model`` (its segmenter, profiles and metadata) with the aligned ids and names."""
    seg = model.segmenter
    lookup = np.arange(max(alignment.id_map) + 1)
    for old, new in alignment.id_map.items():
        lookup[old] = new
    seg.label_map_ = lookup[seg.label_map_].astype(np.int64)
    seg.labels_ = lookup[np.asarray(seg.labels_)].astype(np.int64)
    for profile in seg.profiles_:
        profile.segment_id = alignment.id_map[profile.segment_id]
        profile.name = alignment.names[profile.segment_id]
    seg.profiles_.segments.sort(key=lambda p: p.segment_id)
    seg.segment_names_ = seg.profiles_.names
    model.metadata["segment_id_high_water"] = alignment.high_water
    model.metadata["aligned_to"] = alignment.previous_model_id


def align_model(model, previous, features=None, *, method: str = "centroid",
                match_ratio: float = MATCH_RATIO) -> Alignment:
    """`align_segments` then `apply_alignment`: relabel ``model`` like ``previous``; returns the alignment."""
    alignment = align_segments(model, previous, features, method=method, match_ratio=match_ratio)
    apply_alignment(model, alignment)
    return alignment
