"""Report sections from validation and tracking: quality, stability, drift, alignment, segments over time, economics.

Each function reads one part of ``run.json`` in the shape written below, and returns
the section's data (numbers formatted for people) or None when the part is absent.
Segment references follow `segwise.report.method_data`: a ``segment_name`` may come
with a ``segment_id``; without it the name comes from ``profiles.json``.

**"validation"** (quality of the segments in the prepared features)::

    {"silhouette": float | null, "silhouette_ci": [lo, hi] | null, "silhouette_sample_size": int,
     "confidence": float, "per_segment_silhouette": {"<id>": float | null},
     "per_segment_sampled": {"<id>": int}, "davies_bouldin": float | null,
     "calinski_harabasz": float | null, "bic": float | null, "log_likelihood": float | null,
     "n_customers": int, "space": str}

**"stability"** (bootstrap)::

    {"B": int, "ari_mean": float, "ari_ci": [lo, hi], "per_segment": {"<id>": jaccard},
     "per_segment_ci": {"<id>": [lo, hi]} (optional), "unstable": [id], "threshold": float,
     "by_k": {"candidates": [{"k": int, "ari_mean": float}]} (optional; see `segwise.report.data`)}

**"drift"**::

    {"training_as_of": str, "features": {"<column>": {"psi": float, "level": str}},
     "segment_share_psi": float, "segment_shares": {"<id>": {"training": float, "current": float}},
     "retrain_recommended": bool, "reasons": [str], "thresholds": {"moderate": float, "significant": float}}

**"tracking"** (or the files ``transitions.parquet`` and ``shares.parquet`` in the
run directory, with the same columns)::

    {"transitions": [{"period_start": str, "period_end": str, "from_segment_id": int | null (new),
                      "from_segment": str, "to_segment_id": int | null (gone), "to_segment": str,
                      "customers": int, "row_share": float}],
     "shares": [{"as_of": str, "segment_id": int, "segment_name": str, "customers": int, "share": float}],
     "temporal_ari": {"<period_end>": float} (optional)}

**"economics"**::

    {"period_days": int, "definitions": {"<measure>": str},
     "segments": [{"segment_id": int, "segment_name": str, "customers": int, "share_customers": float,
                   "revenue": float, "share_revenue": float, "average_order_value": float,
                   "orders_per_customer": float, "share_active": float, "retention_proxy": float,
                   "clv_mean": float, "clv_total": float, "share_clv": float, "p_alive_median": float,
                   "expected_purchases_90d_mean": float, "expected_purchases_365d_mean": float}],
     "total": {same measures}}

Measures may be null (the data cannot give them); other numeric measures are
shown as plain numbers.

**"alignment"** (ids matched to a previous model on retraining)::

    {"previous_model_id": str, "method": "centroid" | "profile", "rule": str,
     "matches": [{"segment_id": int, "segment_name": str, "previous_segment_id": int | null,
                  "previous_name": str | null, "distance": float | null, "limit": float | null,
                  "status": "kept" | "new", "nearest_previous_name": str (optional, a rejected pair)}],
     "new_segments": [{"segment_id": int, "segment_name": str}],
     "vanished_segments": [{"segment_id": int, "segment_name": str}]}

**"actionability"**::

    {"actionable": bool, "rule": str,
     "flags": [{"kind": "too_small" | "too_similar" | str, "segment_ids": [int], "detail": str,
                "suggestion": str}]}
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from segwise.profile import feature_label
from segwise.report.format import fmt_int, fmt_money, fmt_number, fmt_pct, is_missing
from segwise.report.method_data import segment_name
from segwise.report.palette import OUTLIER_COLOUR
from segwise.report.rundir import RunFiles

__all__ = [
    "validation_section", "stability_section", "drift_section", "alignment_section", "tracking_section",
    "economics_section", "actionability_section",
]

#: Columns of the economics table: key, heading, formatter.
ECONOMICS_COLUMNS = (
    ("customers", "Customers", "int"),
    ("share_customers", "Share of customers", "pct"),
    ("revenue", "Revenue", "money"),
    ("share_revenue", "Share of revenue", "pct"),
    ("average_order_value", "Average order", "money"),
    ("orders_per_customer", "Orders per customer", "number"),
    ("share_active", "Active in the period", "pct"),
    ("retention_proxy", "Retained (both periods)", "pct"),
    # The value family's predictions (absent, so not shown, when its models could not be fitted).
    ("clv_mean", "Predicted CLV per customer (365 d)", "money"),
    ("clv_total", "Predicted CLV in total (365 d)", "money"),
    ("share_clv", "Share of predicted CLV", "pct"),
    ("p_alive_median", "Median P(alive)", "pct"),
    ("expected_purchases_90d_mean", "Expected purchases (90 d)", "number"),
    ("expected_purchases_365d_mean", "Expected purchases (365 d)", "number"),
)
FLAG_TITLES = {"too_small": "Too small to act on", "too_similar": "Too similar to tell apart"}
#: Overall quality measures: key, name, which way is better, what it measures.
QUALITY_MEASURES = (
    ("davies_bouldin", "Davies-Bouldin index", "lower is better",
     "average similarity of each segment to its closest other segment"),
    ("calinski_harabasz", "Calinski-Harabasz index", "higher is better",
     "spread between segments relative to the spread within them"),
    ("bic", "BIC", "lower is better", "fit of the mixture model, penalised for its number of parameters"),
    ("log_likelihood", "Log-likelihood per customer", "higher is better", "how well the mixture model fits"),
)


def validation_section(validation: Mapping[str, Any] | None, names: Mapping[int, str],
                       colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Quality of the segments: silhouette overall (with its interval) and per segment, and the other indices."""
    if not validation:
        return None
    measures = []
    silhouette = validation.get("silhouette")
    if not is_missing(silhouette):
        ci = list(validation.get("silhouette_ci") or [])[:2]
        interval = (f"{fmt_pct(validation.get('confidence', 0.95), 0)} interval {fmt_number(ci[0], 2)} to "
                    f"{fmt_number(ci[1], 2)}; " if len(ci) == 2 and not any(map(is_missing, ci)) else "")
        measures.append({
            "name": "Silhouette", "value": fmt_number(silhouette, 2), "better": "higher is better (-1 to 1)",
            "meaning": "how much closer customers are to their own segment than to the next one",
            "detail": f"{interval}{fmt_int(validation.get('silhouette_sample_size'))} customers sampled",
        })
    for key, name, better, meaning in QUALITY_MEASURES:
        if not is_missing(validation.get(key)):
            measures.append({"name": name, "value": fmt_number(validation[key]), "better": better,
                             "meaning": meaning, "detail": ""})
    sampled = {int(k): v for k, v in (validation.get("per_segment_sampled") or {}).items()}
    bars = [
        {"segment_id": segment_id, "name": names.get(segment_id, f"segment {segment_id}"),
         "colour": colours.get(segment_id, OUTLIER_COLOUR), "silhouette": float(value),
         "sampled": int(sampled.get(segment_id) or 0)}
        for segment_id, value in sorted((int(k), v) for k, v in (validation.get("per_segment_silhouette") or {}).items())
        if not is_missing(value)
    ]
    if not measures and not bars:
        return None
    return {
        "measures": measures,
        "bars": bars,
        "overall": None if is_missing(silhouette) else float(silhouette),
        # A negative mean: the segment's customers are, on average, closer to another segment.
        "overlapping": [b["name"] for b in bars if b["silhouette"] < 0],
        "space": validation.get("space") or "prepared features",
    }


def stability_section(stability: Mapping[str, Any] | None, names: Mapping[int, str],
                      colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Bootstrap stability of every segment (mean best-match Jaccard) and of the whole segmentation."""
    if not stability or not stability.get("per_segment"):
        return None
    per_segment = {int(k): v for k, v in stability["per_segment"].items()}
    intervals = {int(k): v for k, v in (stability.get("per_segment_ci") or {}).items()}
    unstable = {int(s) for s in stability.get("unstable") or []}
    bars = []
    for segment_id in sorted(per_segment):
        value = per_segment[segment_id]
        if is_missing(value):
            continue
        ci = intervals.get(segment_id)
        bars.append({
            "segment_id": segment_id, "name": names.get(segment_id, f"segment {segment_id}"),
            "colour": colours.get(segment_id, OUTLIER_COLOUR), "jaccard": float(value),
            "low": float(ci[0]) if ci and not is_missing(ci[0]) else None,
            "high": float(ci[1]) if ci and not is_missing(ci[1]) else None,
            "unstable": segment_id in unstable,
        })
    ari_ci = list(stability.get("ari_ci") or [])[:2]
    return {
        "bars": bars,
        "threshold": float(stability.get("threshold", 0.6)),
        "ari_mean": fmt_number(stability.get("ari_mean"), 2),
        "ari_ci": [fmt_number(v, 2) for v in ari_ci] if len(ari_ci) == 2 and not any(map(is_missing, ari_ci)) else None,
        "refits": fmt_int(stability.get("B")),
        "unstable": [names.get(s, f"segment {s}") for s in sorted(unstable)],
    }


def drift_section(drift: Mapping[str, Any] | None, names: Mapping[int, str],
                  colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Population stability index per feature and of the segment shares, and the retrain advice."""
    if not drift or not (drift.get("features") or drift.get("segment_shares")):
        return None
    features = sorted(
        ((column, float(item["psi"]), item.get("level", "")) for column, item in (drift.get("features") or {}).items()
         if not is_missing(item.get("psi"))),
        key=lambda t: -t[1],
    )
    shares = []
    for key, item in (drift.get("segment_shares") or {}).items():
        segment_id = int(key)
        shares.append({"segment_id": segment_id, "name": names.get(segment_id, f"segment {segment_id}"),
                       "colour": colours.get(segment_id, OUTLIER_COLOUR),
                       "training": float(item.get("training") or 0.0), "current": float(item.get("current") or 0.0)})
    shares.sort(key=lambda s: s["segment_id"])
    thresholds = drift.get("thresholds") or {}
    return {
        "features": [{"column": c, "label": feature_label(c), "psi": p, "level": lvl} for c, p, lvl in features],
        "shares": shares,
        "segment_share_psi": fmt_number(drift.get("segment_share_psi"), 2),
        "moderate": float(thresholds.get("moderate", 0.1)),
        "significant": float(thresholds.get("significant", 0.25)),
        "retrain": bool(drift.get("retrain_recommended")),
        "reasons": list(drift.get("reasons") or []),
        "training_as_of": drift.get("training_as_of"),
        "as_of": drift.get("as_of"),
    }


def alignment_section(alignment: Mapping[str, Any] | None, names: Mapping[int, str],
                      colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Which segments kept the id (and name) of the previous model's, which are new, which vanished."""
    if not alignment or not alignment.get("matches"):
        return None
    rows = []
    for match in sorted(alignment["matches"], key=lambda m: int(m["segment_id"])):
        segment_id = int(match["segment_id"])
        kept = match.get("status") == "kept"
        previous_id = match.get("previous_segment_id")
        if kept and previous_id is not None:
            previous = f"{match.get('previous_name') or 'segment'} ({previous_id})"
        elif match.get("nearest_previous_name"):
            previous = f"none (nearest: {match['nearest_previous_name']}, too far)"
        else:
            previous = "none"
        rows.append({
            "segment_id": segment_id, "name": segment_name(match, names),
            "colour": colours.get(segment_id, OUTLIER_COLOUR), "status": "kept" if kept else "new",
            "previous": previous, "distance": fmt_number(match.get("distance")),
            "limit": fmt_number(match.get("limit")),
        })
    vanished = [f"{item.get('segment_name') or 'segment'} ({item.get('segment_id')})"
                for item in alignment.get("vanished_segments") or []]
    return {
        "previous_model_id": str(alignment.get("previous_model_id") or ""),
        "method": str(alignment.get("method") or ""),
        "rule": str(alignment.get("rule") or ""),
        "rows": rows,
        "n_kept": sum(r["status"] == "kept" for r in rows),
        "n_new": sum(r["status"] == "new" for r in rows),
        "vanished": vanished,
    }


def _records(value: Any) -> pd.DataFrame | None:
    if value is None:
        return None
    frame = value if isinstance(value, pd.DataFrame) else pd.DataFrame(list(value))
    return None if frame.empty else frame


def tracking_section(tracking: Mapping[str, Any] | None, files: RunFiles,
                     colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Transition heatmap of the latest period and segment shares over time."""
    tracking = tracking or {}
    transitions = _records(tracking.get("transitions"))
    if transitions is None:
        transitions = _records(files.transitions)
    shares = _records(tracking.get("shares"))
    if shares is None:
        shares = _records(files.shares)
    if transitions is None and shares is None:
        return None
    section: dict[str, Any] = {"matrix": None, "shares": None}
    if transitions is not None:
        transitions = transitions.copy()
        for column in ("period_start", "period_end"):
            transitions[column] = transitions[column].astype(str).str[:10]
        periods = transitions[["period_start", "period_end"]].drop_duplicates().sort_values("period_end")
        start, end = periods.iloc[-1]
        latest = transitions[(transitions["period_start"] == start) & (transitions["period_end"] == end)]
        row_order = _segment_order(latest, "from_segment_id", "from_segment", "new")
        col_order = _segment_order(latest, "to_segment_id", "to_segment", "gone")
        counts = latest.pivot_table(index="from_segment", columns="to_segment", values="customers", aggfunc="sum",
                                    fill_value=0).reindex(index=row_order, columns=col_order, fill_value=0)
        totals = counts.sum(axis=1).replace(0, np.nan)
        share = counts.div(totals, axis=0).fillna(0.0)
        stayed = sum(counts.at[n, n] for n in row_order if n in col_order)
        present = counts.drop(index=[r for r in row_order if r == "new"], errors="ignore")
        present = present.drop(columns=[c for c in col_order if c == "gone"], errors="ignore")
        temporal = (tracking.get("temporal_ari") or {}).get(str(end))
        section["matrix"] = {
            "rows": row_order, "cols": col_order,
            "share": share.to_numpy().round(4).tolist(),
            "text": [[f"{fmt_pct(s, 0)}<br>{fmt_int(c)}" for s, c in zip(srow, crow)]
                     for srow, crow in zip(share.to_numpy(), counts.to_numpy())],
            "period": f"{start} to {end}",
            "n_periods": int(len(periods)),
            "stayed": fmt_pct(stayed / present.to_numpy().sum()) if present.to_numpy().sum() else None,
            "temporal_ari": fmt_number(temporal, 2) if temporal is not None else None,
        }
    if shares is not None:
        shares = shares.copy()
        shares["as_of"] = shares["as_of"].astype(str).str[:10]
        lines = []
        for segment_id, group in shares.groupby("segment_id", sort=True):
            group = group.sort_values("as_of")
            lines.append({"segment_id": int(segment_id), "name": str(group["segment_name"].iloc[-1]),
                          "colour": colours.get(int(segment_id), OUTLIER_COLOUR),
                          "as_of": group["as_of"].tolist(), "share": group["share"].astype(float).tolist()})
        section["shares"] = {"lines": lines, "dates": sorted(shares["as_of"].unique().tolist())}
    return section


def _segment_order(frame: pd.DataFrame, id_column: str, name_column: str, special: str) -> list[str]:
    """Segments in id order; rows without an id ("new", "gone") first for rows, last for columns."""
    known = frame[[id_column, name_column]].drop_duplicates()
    real = list(dict.fromkeys(known[known[id_column].notna()].sort_values(id_column)[name_column]))
    other = [n for n in dict.fromkeys(known[known[id_column].isna()][name_column]) if n not in real]
    return other + real if special == "new" else real + other


# --------------------------------------------------------------------------- business


_FORMATTERS = {"int": fmt_int, "pct": fmt_pct, "number": lambda v: fmt_number(v, 3)}


def economics_section(economics: Mapping[str, Any] | None, names: Mapping[int, str], colours: Mapping[int, str],
                      currency: str | None) -> dict[str, Any] | None:
    """The economics table: one row per segment and one for everyone."""
    if not economics or not economics.get("segments"):
        return None
    rows = list(economics["segments"])
    present = [(key, heading, kind) for key, heading, kind in ECONOMICS_COLUMNS
               if any(not is_missing(r.get(key)) for r in rows)]

    def cell(value: Any, kind: str) -> str:
        return fmt_money(value, currency) if kind == "money" else _FORMATTERS[kind](value)

    table_rows = [
        {"name": segment_name(r, names), "colour": colours.get(int(r.get("segment_id", -1)), OUTLIER_COLOUR),
         "cells": [cell(r.get(key), kind) for key, _, kind in present]}
        for r in rows
    ]
    total = economics.get("total")
    definitions = dict(economics.get("definitions") or {})
    period = economics.get("period_days")
    return {
        "headings": [heading for _, heading, _ in present],
        "definitions": [
            definitions.get(key, "").replace("{p}", str(period)) for key, _, _ in present
        ],
        "rows": table_rows,
        "total": [cell(total.get(key), kind) for key, _, kind in present] if total else None,
        "period_days": period,
    }


def actionability_section(actionability: Mapping[str, Any] | None, names: Mapping[int, str],
                          colours: Mapping[int, str]) -> dict[str, Any] | None:
    """Warnings about segments too small or too similar to act on."""
    if not actionability:
        return None
    flags = []
    for flag in actionability.get("flags") or []:
        ids = [int(s) for s in flag.get("segment_ids") or []]
        given = list(flag.get("segment_names") or [])
        segments = [
            {"name": given[i] if i < len(given) else names.get(s, f"segment {s}"),
             "colour": colours.get(s, OUTLIER_COLOUR)}
            for i, s in enumerate(ids)
        ]
        kind = str(flag.get("kind", ""))
        flags.append({"title": FLAG_TITLES.get(kind, kind.replace("_", " ").capitalize()), "segments": segments,
                      "detail": flag.get("detail", ""), "suggestion": flag.get("suggestion", "")})
    return {"actionable": bool(actionability.get("actionable", not flags)), "flags": flags,
            "rule": actionability.get("rule", "")}
