"""What `segwise.Segmenter` needs to drive every clustering method.

The methods (`segwise.cluster`) see only a prepared matrix; the Segmenter knows
the feature table, its families and the profiles. This module joins the two:

- **column parameters**: a method's parameters that name features (k-prototypes'
  ``categorical``, two-stage's ``first_features``, multi-view's ``views``) are
  given as family names, column names or patterns (``share_channel_*``) and
  resolved here to prepared-column positions;
- **Outliers**: the cluster a density method calls noise gets the last segment id
  and the name "Outliers" (see `order_clusters`, `name_profiles`);
- **composite names**: segments made of the segments of other segmentations (two
  stages, several views) are named by joining their parts' names;
- **method details**: a method's ``details_`` with cluster numbers translated to
  segment ids and names (and revenue shares), for run.json.
"""

from __future__ import annotations

import fnmatch
import numbers
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from segwise.errors import InputError
from segwise.profile import Profiles, compute_profiles, describe, name_segments

__all__ = [
    "OUTLIERS_NAME", "column_references", "resolve_column_params", "source_columns", "order_clusters", "name_profiles",
    "translate_details",
]

#: Name of the group of customers a density method calls noise.
OUTLIERS_NAME = "Outliers"


# --------------------------------------------------------------------------- columns


def _expand(items: Sequence[Any], families: Mapping[str, list[str]], columns: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, numbers.Integral):
            continue
        item = str(item)
        if item in families:
            out += families[item]
        elif item in columns:
            out.append(item)
        elif any(ch in item for ch in "*?["):
            out += [c for c in columns if fnmatch.fnmatchcase(c, item)]
    return list(dict.fromkeys(out))


def _as_names(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def column_references(method_cls, method_params: Mapping[str, Any], families: Mapping[str, list[str]],
                      columns: Sequence[str]) -> tuple[dict[str, tuple[str, Any, bool]], list[str], list[str]]:
    """The column parameters of a method, the feature columns they name, and notes.

    Returns ``(specs, referenced, notes)``: ``specs[param] = (kind, value, given)``
    where ``given`` says whether the user set it (else it is the method's default).
    """
    specs: dict[str, tuple[str, Any, bool]] = {}
    defaults = getattr(method_cls, "default_column_params", {})
    for param, kind in method_cls.column_params.items():
        if method_params.get(param) is not None:
            specs[param] = (kind, method_params[param], True)
        elif param in defaults:
            specs[param] = (kind, defaults[param], False)
    referenced: list[str] = []
    notes: list[str] = []
    for param, (kind, value, given) in specs.items():
        groups = value.items() if kind == "groups" else [(param, value)]
        for group, names in groups:
            found = _expand(_as_names(names), families, columns)
            if not found and not all(isinstance(v, numbers.Integral) for v in _as_names(names)):
                if given:
                    raise InputError(
                        f"{param}: {group!r} names no feature column ({', '.join(map(str, _as_names(names)))}); "
                        f"known families: {', '.join(families) or 'none'}; columns: {', '.join(columns)}"
                    )
                notes.append(f"{param} {group!r} left out: the features have none of {', '.join(map(str, _as_names(names)))}")
            referenced += found
    return specs, list(dict.fromkeys(referenced)), notes


def source_columns(prepared_names: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The feature column each prepared column comes from (``region=North`` -> ``region``)."""
    base = []
    for name in prepared_names:
        root = name.split("=")[0]
        if root.endswith("_missing") and root not in columns:
            root = root[: -len("_missing")]
        base.append(root)
    return base


def resolve_column_params(specs: Mapping[str, tuple[str, Any, bool]], prepared_names: Sequence[str],
                          families: Mapping[str, list[str]], columns: Sequence[str]) -> dict[str, Any]:
    """Column parameters as prepared-column positions (integers pass through)."""
    base = source_columns(prepared_names, columns)

    def positions(names: Any) -> list[int]:
        items = _as_names(names)
        wanted = set(_expand(items, families, columns))
        out = [i for i, b in enumerate(base) if b in wanted]
        out += [int(v) for v in items if isinstance(v, numbers.Integral)]
        return sorted(set(out))

    resolved: dict[str, Any] = {}
    for param, (kind, value, given) in specs.items():
        if kind == "groups":
            groups = {}
            for group, names in value.items():
                index = positions(names)
                if index:
                    groups[group] = index
                elif given:
                    raise InputError(f"{param}: {group!r} has no usable prepared column (all dropped in preparation)")
            if not groups:
                raise InputError(f"{param}: none of the groups has a usable feature column")
            resolved[param] = groups
        else:
            index = positions(value)
            if not index and given:
                raise InputError(f"{param}: no usable prepared column for {', '.join(map(str, _as_names(value)))}")
            resolved[param] = index or None
    return resolved


# --------------------------------------------------------------------------- ids


def order_clusters(frame: pd.DataFrame, raw_labels: np.ndarray, value_col: str | None,
                   outlier_cluster: int | None) -> np.ndarray:
    """``label_map[cluster] = segment id``: descending value, then size, then number; Outliers last."""
    n_clusters = int(raw_labels.max()) + 1
    sizes = np.bincount(raw_labels, minlength=n_clusters).astype(float)
    if value_col is not None:
        values = frame[value_col].to_numpy(dtype=np.float64, na_value=np.nan)
        sums = np.bincount(raw_labels, weights=np.nan_to_num(values), minlength=n_clusters)
        counts = np.bincount(raw_labels, weights=~np.isnan(values), minlength=n_clusters)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    else:
        means = np.zeros(n_clusters)
    last = np.zeros(n_clusters)
    if outlier_cluster is not None:
        last[outlier_cluster] = 1.0
    order = np.lexsort((np.arange(n_clusters), -sizes, -means, last))
    label_map = np.empty(n_clusters, dtype=np.int64)
    label_map[order] = np.arange(n_clusters)
    return label_map


# --------------------------------------------------------------------------- names


def _subset(profiles: Profiles, keep: set[int]) -> Profiles:
    return Profiles(segments=[s for s in profiles if s.segment_id in keep], population_means=profiles.population_means,
                    population_medians=profiles.population_medians, value_column=profiles.value_column,
                    units=profiles.units)


def _part_names(frame: pd.DataFrame, labels: np.ndarray, columns: Sequence[str] | None,
                profile_kw: dict[str, Any]) -> dict[int, str]:
    """Names of the segments of one part, from the columns that part was segmented on.

    Naming on the part's own columns keeps a channel view from being called
    "Loyal Regulars" because its segments happen to differ in value too.
    """
    mask = labels >= 0
    sub_frame = frame.loc[mask, list(columns)] if columns else frame[mask]
    sub_labels = labels[mask]
    kw = dict(profile_kw)
    if kw.get("value_column") not in sub_frame.columns:
        kw["value_column"] = None
    profiles = compute_profiles(sub_frame, sub_labels, **kw)
    name_segments(profiles, sub_frame, sub_labels, log_columns=kw.get("log_columns"))
    return profiles.names


def name_profiles(profiles: Profiles, frame: pd.DataFrame, labels: np.ndarray, *, log_columns: set[str],
                  overrides: Mapping[Any, str] | None, outlier_segment: int | None,
                  parts: list[dict[str, Any]] | None, segment_parts: dict[int, list[int]] | None,
                  profile_kw: dict[str, Any], part_columns: Mapping[str, Sequence[str]] | None = None
                  ) -> tuple[Profiles, dict[str, Any]]:
    """Name every segment (in place) and return the parts' profiles, if any.

    Outliers are left out when the other segments are named (they would otherwise
    take an archetype) and named `OUTLIERS_NAME`. Composite segments are named
    "A / B" from the names their parts get over all customers (or, for a part
    ``within`` another, within each segment of that part), each named on its own
    ``part_columns``. User ``overrides`` (by segment id or generated name) win.
    """
    part_columns = dict(part_columns or {})
    overrides = dict(overrides or {})
    real = {s.segment_id for s in profiles if s.segment_id != outlier_segment}
    mask = labels != outlier_segment if outlier_segment is not None else np.ones(len(labels), dtype=bool)
    if real:
        name_segments(_subset(profiles, real), frame[mask], labels[mask], log_columns=log_columns)
    part_profiles: dict[str, Any] = {}
    if parts and segment_parts:
        names_by_part: list[dict[Any, str]] = []
        index = {p["part"]: i for i, p in enumerate(parts)}
        for part in parts:
            part_labels = np.asarray(part["labels"], dtype=np.int64)
            columns = part_columns.get(part["part"])
            if part["within"] is None:
                names_by_part.append(_part_names(frame, part_labels, columns, profile_kw))
                part_profile = compute_profiles(frame[part_labels >= 0], part_labels[part_labels >= 0], **profile_kw)
                for seg in part_profile:
                    seg.name = names_by_part[-1][seg.segment_id]
                part_profiles[part["part"]] = part_profile.to_dict()
            else:
                parent_labels = np.asarray(parts[index[part["within"]]]["labels"], dtype=np.int64)
                names = {}
                for parent in np.unique(parent_labels):
                    inside = (parent_labels == parent) & (part_labels >= 0)
                    if inside.any():
                        child_names = _part_names(frame[inside], part_labels[inside], columns, profile_kw)
                        names.update({(int(parent), c): n for c, n in child_names.items()})
                names_by_part.append(names)
        for segment_id, values in segment_parts.items():
            pieces = []
            for i, value in enumerate(values):
                if value < 0:
                    continue
                within = parts[i]["within"]
                key = (int(values[index[within]]), int(value)) if within is not None else int(value)
                pieces.append(names_by_part[i].get(key, f"{parts[i]['part']} {value}"))
            profile = profiles[segment_id]
            profile.name = " / ".join(pieces)
            profile.archetype = None
    if outlier_segment is not None:
        profiles[outlier_segment].name = OUTLIERS_NAME
        profiles[outlier_segment].archetype = None
    for profile in profiles:
        custom = overrides.get(profile.segment_id, overrides.get(str(profile.segment_id), overrides.get(profile.name)))
        if custom:
            profile.name = str(custom)
            profile.name_overridden = True
    for profile in profiles:
        profile.description = describe(profile, profiles)
    final = [p.name for p in profiles]
    repeated = sorted({n for n in final if final.count(n) > 1})
    if repeated:
        raise InputError(f"segment names must be unique within a model; repeated: {', '.join(repeated)}")
    return profiles, part_profiles


# --------------------------------------------------------------------------- details


def translate_details(details: Any, label_map: np.ndarray, profiles: Profiles) -> Any:
    """``details`` with every ``"cluster"`` (and ``"clusters"``) given its segment id and name."""

    def segment(cluster: int) -> dict[str, Any]:
        seg = int(label_map[cluster])
        profile = profiles[seg]
        return {"segment_id": seg, "segment_name": profile.name, "share_revenue": profile.share_revenue}

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            out = {k: walk(v) for k, v in obj.items()}
            cluster = obj.get("cluster")
            if isinstance(cluster, numbers.Integral) and not isinstance(cluster, bool) and 0 <= cluster < len(label_map):
                for key, value in segment(int(cluster)).items():
                    out.setdefault(key, value)
            clusters = obj.get("clusters")
            if isinstance(clusters, list) and all(isinstance(c, numbers.Integral) for c in clusters):
                out.setdefault("segment_ids", [int(label_map[c]) for c in clusters])
                out.setdefault("segment_names", [profiles[int(label_map[c])].name for c in clusters])
            return out
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, tuple):
            return [walk(v) for v in obj]
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        return obj

    return walk(details)
